//! The scalar function library: its documentation table (names, signatures, arity,
//! NULL behaviour) and the implementations the compiler binds calls to.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use regex::Regex;

use super::cast::{parse_timestamp, parse_timestamp_with};
use super::node::{as_bool, Node, Operand};
use super::ops::{arith, compare, sql_eq, ArithOp};
use super::{EvalError, FunctionDoc};
use crate::record::Value;

type R = Result<Value, EvalError>;

macro_rules! doc {
    ($name:literal, $sig:literal, $min:expr, $max:expr, $doc:literal) => {
        FunctionDoc { name: $name, signature: $sig, min_args: $min, max_args: $max, doc: $doc }
    };
}

/// Unless a doc says otherwise, a NULL argument makes the result NULL.
static FUNCTIONS: &[FunctionDoc] = &[
    doc!("lower", "lower(s)", 1, Some(1), "The string in lower case."),
    doc!("upper", "upper(s)", 1, Some(1), "The string in upper case."),
    doc!("length", "length(x)", 1, Some(1), "Number of characters of a string, or of elements of a list or map."),
    doc!("char_length", "char_length(x)", 1, Some(1), "Alias of `length`."),
    doc!("trim", "trim(s[, chars])", 1, Some(2), "Removes leading and trailing whitespace (or any of `chars`). Also `TRIM([BOTH|LEADING|TRAILING] [chars FROM] s)`."),
    doc!("ltrim", "ltrim(s[, chars])", 1, Some(2), "Removes leading whitespace (or any of `chars`)."),
    doc!("rtrim", "rtrim(s[, chars])", 1, Some(2), "Removes trailing whitespace (or any of `chars`)."),
    doc!("substr", "substr(s, start[, len])", 2, Some(3), "The `len` characters (default: all) of `s` from 1-based position `start`; a negative `start` counts from the end, 0 means 1. Also `SUBSTRING(s FROM start [FOR len])`."),
    doc!("substring", "substring(s, start[, len])", 2, Some(3), "Alias of `substr`."),
    doc!("replace", "replace(s, from, to)", 3, Some(3), "Replaces every occurrence of `from` in `s` with `to` (an empty `from` changes nothing)."),
    doc!("concat", "concat(a, ...)", 1, None, "Concatenates the text forms of its arguments; NULL if any argument is NULL (as in Flink)."),
    doc!("split", "split(s, sep)", 2, Some(2), "Splits `s` at every `sep` into a list of strings (an empty `sep` splits into characters)."),
    doc!("split_index", "split_index(s, sep, i)", 3, Some(3), "Part `i` (0-based) of `s` split at `sep`, as in Flink; NULL when there are fewer parts."),
    doc!("position", "position(needle, s)", 2, Some(2), "1-based character position of the first `needle` in `s`, 0 when absent. Also `POSITION(needle IN s)`."),
    doc!("starts_with", "starts_with(s, prefix)", 2, Some(2), "Whether `s` starts with `prefix`."),
    doc!("ends_with", "ends_with(s, suffix)", 2, Some(2), "Whether `s` ends with `suffix`."),
    doc!("regexp_like", "regexp_like(s, pattern)", 2, Some(2), "Whether the regular expression matches somewhere in `s`."),
    doc!("regexp_extract", "regexp_extract(s, pattern[, group])", 2, Some(3), "The text of capture group `group` (default 0, the whole match) of the first match; NULL when there is no match or the group did not take part."),
    doc!("regexp_replace", "regexp_replace(s, pattern, repl)", 3, Some(3), "Replaces every match; `repl` may refer to groups as `$1` or `${name}` (in this argument `${name}` is never replaced from the environment)."),
    doc!("abs", "abs(x)", 1, Some(1), "Absolute value (int stays int)."),
    doc!("round", "round(x[, digits])", 1, Some(2), "Rounds half away from zero to `digits` decimal places (default 0; negative rounds to tens, hundreds...). Int stays int."),
    doc!("floor", "floor(x)", 1, Some(1), "Largest integer value not above `x` (int stays int)."),
    doc!("ceil", "ceil(x)", 1, Some(1), "Smallest integer value not below `x` (int stays int)."),
    doc!("ceiling", "ceiling(x)", 1, Some(1), "Alias of `ceil`."),
    doc!("power", "power(x, y)", 2, Some(2), "`x` raised to `y`, as a float."),
    doc!("sqrt", "sqrt(x)", 1, Some(1), "Square root, as a float (NaN for negative numbers)."),
    doc!("mod", "mod(a, b)", 2, Some(2), "Remainder of `a / b`, like `a % b`."),
    doc!("coalesce", "coalesce(a, ...)", 1, None, "The first non-NULL argument (later arguments are not evaluated); NULL if all are NULL."),
    doc!("nullif", "nullif(a, b)", 2, Some(2), "NULL when `a = b`, otherwise `a`."),
    doc!("if", "if(cond, a, b)", 3, Some(3), "`a` when `cond` is true, otherwise (false or NULL) `b`; only the chosen branch is evaluated."),
    doc!("greatest", "greatest(a, ...)", 1, None, "The largest argument; NULL if any argument is NULL (SQL standard)."),
    doc!("least", "least(a, ...)", 1, None, "The smallest argument; NULL if any argument is NULL (SQL standard)."),
    doc!("now", "now()", 0, Some(0), "The current wall-clock time as a timestamp (read for every record)."),
    doc!("current_timestamp", "current_timestamp()", 0, Some(0), "Alias of `now`; also usable without parentheses."),
    doc!("to_timestamp", "to_timestamp(x[, fmt])", 1, Some(2), "A timestamp from epoch milliseconds (int) or a string: RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]` or `YYYY-MM-DD`, or with a strftime `fmt` such as `'%d/%m/%Y %H:%M'`; times without an offset are UTC. An unparsable string is an error."),
    doc!("date_format", "date_format(ts, fmt)", 2, Some(2), "Formats a timestamp (or epoch milliseconds) in UTC with a strftime pattern, e.g. `'%Y-%m-%d'`."),
    doc!("unix_timestamp", "unix_timestamp([ts])", 0, Some(1), "Seconds since the epoch of `ts` (a timestamp or a parsable string), or of now without an argument."),
    doc!("epoch_millis", "epoch_millis(ts)", 1, Some(1), "Milliseconds since the epoch of a timestamp (or a parsable string)."),
    doc!("json_parse", "json_parse(s)", 1, Some(1), "Parses JSON text into a value (map, list, string, number, bool or NULL); invalid JSON is an error."),
    doc!("to_json", "to_json(x)", 1, Some(1), "The JSON text of a value."),
    doc!("typeof", "typeof(x)", 1, Some(1), "The type name of a value: null, bool, int, float, string, timestamp, list or map (NULL gives 'null')."),
];

pub(crate) fn docs() -> &'static [FunctionDoc] {
    FUNCTIONS
}

/// How a library function is evaluated.
#[derive(Clone, Copy)]
pub(crate) enum Imp {
    F1(fn(&Value) -> R),
    F2(fn(&Value, &Value) -> R),
    F3(fn(&Value, &Value, &Value) -> R),
    /// Any number of arguments, evaluated (cloned) into a slice.
    Var(fn(&[Value]) -> R),
    /// Needs lazy arguments or compile-time preparation.
    Special(Special),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    Coalesce,
    If,
    NullIf,
    RegexpLike,
    RegexpExtract,
    RegexpReplace,
    Now,
}

impl Special {
    /// Whether argument 1 is a regular expression to compile up front.
    pub(crate) fn takes_regex(self) -> bool {
        matches!(self, Special::RegexpLike | Special::RegexpExtract | Special::RegexpReplace)
    }
}

pub(crate) struct Def {
    pub doc: &'static FunctionDoc,
    pub imp: Imp,
    /// NULL in any argument gives NULL without calling the implementation.
    pub strict: bool,
    /// Same arguments, same result: calls with constant arguments are folded.
    pub pure: bool,
}

/// Binds a (lower-case) function name.
pub(crate) fn lookup(name: &str) -> Option<Def> {
    use Imp::*;
    let (imp, strict, pure) = match name {
        "lower" => (F1(lower), true, true),
        "upper" => (F1(upper), true, true),
        "length" | "char_length" => (F1(length), true, true),
        "trim" => (Var(trim_both), true, true),
        "ltrim" => (Var(trim_start), true, true),
        "rtrim" => (Var(trim_end), true, true),
        "substr" | "substring" => (Var(substr), true, true),
        "replace" => (F3(replace), true, true),
        "concat" => (Var(concat), true, true),
        "split" => (F2(split), true, true),
        "split_index" => (F3(split_index), true, true),
        "position" => (F2(position), true, true),
        "starts_with" => (F2(starts_with), true, true),
        "ends_with" => (F2(ends_with), true, true),
        "regexp_like" => (Special(self::Special::RegexpLike), true, true),
        "regexp_extract" => (Special(self::Special::RegexpExtract), true, true),
        "regexp_replace" => (Special(self::Special::RegexpReplace), true, true),
        "abs" => (F1(abs), true, true),
        "round" => (Var(round), true, true),
        "floor" => (F1(floor), true, true),
        "ceil" | "ceiling" => (F1(ceil), true, true),
        "power" => (F2(power), true, true),
        "sqrt" => (F1(sqrt), true, true),
        "mod" => (F2(modulo), true, true),
        "coalesce" => (Special(self::Special::Coalesce), false, true),
        "nullif" => (Special(self::Special::NullIf), false, true),
        "if" => (Special(self::Special::If), false, true),
        "greatest" => (Var(greatest), true, true),
        "least" => (Var(least), true, true),
        "now" | "current_timestamp" => (Special(self::Special::Now), false, false),
        "to_timestamp" => (Var(to_timestamp), true, true),
        "date_format" => (F2(date_format), true, true),
        "unix_timestamp" => (Var(unix_timestamp), true, false),
        "epoch_millis" => (F1(epoch_millis), true, true),
        "json_parse" => (F1(json_parse), true, true),
        "to_json" => (F1(to_json), true, true),
        "typeof" => (F1(type_of), false, true),
        _ => return None,
    };
    let doc = FUNCTIONS.iter().find(|d| d.name == name)?;
    Some(Def { doc, imp, strict, pure })
}

/// Builds the call node. `regex` is argument 1 compiled at compile time when it was a literal.
pub(crate) fn build(def: &Def, mut args: Vec<Node>, regex: Option<Regex>) -> Node {
    let name = def.doc.name;
    let strict = def.strict;
    match def.imp {
        Imp::F1(f) if args.len() == 1 => {
            let a = pop(&mut args);
            Node::Val(Box::new(move |r| a.with(r, |x| if strict && x.is_null() { Ok(Value::Null) } else { f(x) })))
        }
        Imp::F2(f) if args.len() == 2 => {
            let b = pop(&mut args);
            let a = pop(&mut args);
            Node::Val(Box::new(move |r| {
                a.with(r, |x| {
                    if strict && x.is_null() {
                        return Ok(Value::Null);
                    }
                    b.with(r, |y| if strict && y.is_null() { Ok(Value::Null) } else { f(x, y) })
                })
            }))
        }
        Imp::F3(f) if args.len() == 3 => {
            let c = pop(&mut args);
            let b = pop(&mut args);
            let a = pop(&mut args);
            Node::Val(Box::new(move |r| {
                a.with(r, |x| {
                    b.with(r, |y| {
                        c.with(r, |z| {
                            if strict && (x.is_null() || y.is_null() || z.is_null()) {
                                Ok(Value::Null)
                            } else {
                                f(x, y, z)
                            }
                        })
                    })
                })
            }))
        }
        Imp::F1(_) | Imp::F2(_) | Imp::F3(_) => {
            // Arity is checked before building, so this is unreachable; fail loudly anyway.
            let n = args.len();
            Node::Val(Box::new(move |_| Err(EvalError::new(format!("function `{name}` called with {n} arguments")))))
        }
        Imp::Var(f) => {
            let ops: Vec<Operand> = args.into_iter().map(Node::into_operand).collect();
            Node::Val(Box::new(move |r| {
                let mut vals = Vec::with_capacity(ops.len());
                for o in &ops {
                    let v = o.eval(r)?;
                    if strict && v.is_null() {
                        return Ok(Value::Null);
                    }
                    vals.push(v);
                }
                f(&vals)
            }))
        }
        Imp::Special(s) => build_special(s, args, regex),
    }
}

fn pop(args: &mut Vec<Node>) -> Operand {
    args.pop().unwrap_or(Node::Const(Value::Null)).into_operand()
}

fn build_special(s: Special, args: Vec<Node>, regex: Option<Regex>) -> Node {
    let mut ops: Vec<Operand> = args.into_iter().map(Node::into_operand).collect();
    match s {
        Special::Now => Node::Val(Box::new(|_| Ok(Value::Timestamp(now_millis())))),
        Special::Coalesce => Node::Val(Box::new(move |r| {
            for o in &ops {
                let v = o.eval(r)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            Ok(Value::Null)
        })),
        Special::NullIf => {
            let b = ops.pop().unwrap_or(Operand::Const(Value::Null));
            let a = ops.pop().unwrap_or(Operand::Const(Value::Null));
            Node::Val(Box::new(move |r| {
                let x = a.eval(r)?;
                let same = b.with(r, |y| sql_eq(&x, y))?;
                Ok(if same == Some(true) { Value::Null } else { x })
            }))
        }
        Special::If => {
            let no = ops.pop().unwrap_or(Operand::Const(Value::Null));
            let yes = ops.pop().unwrap_or(Operand::Const(Value::Null));
            let cond = ops.pop().unwrap_or(Operand::Const(Value::Null));
            Node::Val(Box::new(move |r| {
                if cond.with(r, |c| as_bool(c, "function `if`"))? == Some(true) {
                    yes.eval(r)
                } else {
                    no.eval(r)
                }
            }))
        }
        Special::RegexpLike | Special::RegexpExtract | Special::RegexpReplace => {
            let mut ops = ops.into_iter();
            let subject = ops.next().unwrap_or(Operand::Const(Value::Null));
            let pattern = ops.next().unwrap_or(Operand::Const(Value::Null));
            let third = ops.next();
            let pattern = match regex {
                Some(re) => Pattern::Fixed(re),
                None => Pattern::Dynamic(pattern, RegexCache::default()),
            };
            let name = match s {
                Special::RegexpLike => "regexp_like",
                Special::RegexpExtract => "regexp_extract",
                _ => "regexp_replace",
            };
            Node::Val(Box::new(move |r| {
                subject.with(r, |sv| {
                    if sv.is_null() {
                        return Ok(Value::Null);
                    }
                    let text = want_str(name, sv)?;
                    let Some(re) = pattern.get(r, name)? else {
                        return Ok(Value::Null);
                    };
                    let third = match &third {
                        Some(o) => o.eval(r)?,
                        None => Value::Int(0),
                    };
                    if third.is_null() {
                        return Ok(Value::Null);
                    }
                    match s {
                        Special::RegexpLike => Ok(Value::Bool(re.is_match(text))),
                        Special::RegexpExtract => regexp_extract(&re, text, &third),
                        _ => {
                            let repl = want_str(name, &third)?;
                            Ok(str_value(re.replace_all(text, repl).into_owned()))
                        }
                    }
                })
            }))
        }
    }
}

enum Pattern {
    Fixed(Regex),
    Dynamic(Operand, RegexCache),
}

impl Pattern {
    /// The regex for this record; `None` when the pattern is NULL.
    fn get(&self, r: &crate::record::Record, name: &str) -> Result<Option<Cow<'_, Regex>>, EvalError> {
        match self {
            Pattern::Fixed(re) => Ok(Some(Cow::Borrowed(re))),
            Pattern::Dynamic(o, cache) => o.with(r, |p| match p {
                Value::Null => Ok(None),
                other => cache.get(want_str(name, other)?).map(|re| Some(Cow::Owned(re))),
            }),
        }
    }
}

/// Patterns only known at run time are compiled on first use and remembered; cleared
/// when full because data-driven patterns are usually few.
#[derive(Default)]
struct RegexCache(Mutex<ahash::HashMap<String, Regex>>);

impl RegexCache {
    fn get(&self, pattern: &str) -> Result<Regex, EvalError> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(re) = map.get(pattern) {
            return Ok(re.clone());
        }
        let re = Regex::new(pattern).map_err(|e| EvalError::new(format!("invalid regular expression: {e}")))?;
        if map.len() >= 256 {
            map.clear();
        }
        map.insert(pattern.to_string(), re.clone());
        Ok(re)
    }
}

fn regexp_extract(re: &Regex, text: &str, group: &Value) -> R {
    let g = want_int("regexp_extract", group)?;
    let g = usize::try_from(g)
        .ok()
        .filter(|g| *g < re.captures_len())
        .ok_or_else(|| EvalError::new(format!("function `regexp_extract`: the pattern has no group {g}")))?;
    Ok(re
        .captures(text)
        .and_then(|c| c.get(g))
        .map_or(Value::Null, |m| Value::Str(crate::record::Str::from(m.as_str()))))
}

pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn type_err(name: &str, expected: &str, v: &Value) -> EvalError {
    EvalError::new(format!("function `{name}` expects {expected}, got {}", v.type_name()))
}

fn want_str<'v>(name: &str, v: &'v Value) -> Result<&'v str, EvalError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(type_err(name, "a string", other)),
    }
}

fn want_int(name: &str, v: &Value) -> Result<i64, EvalError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(type_err(name, "an int", other)),
    }
}

fn want_num(name: &str, v: &Value) -> Result<f64, EvalError> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        other => Err(type_err(name, "a number", other)),
    }
}

fn want_millis(name: &str, v: &Value) -> Result<i64, EvalError> {
    match v {
        Value::Timestamp(ms) | Value::Int(ms) => Ok(*ms),
        Value::Str(s) => parse_timestamp(s)
            .ok_or_else(|| EvalError::new(format!("function `{name}` cannot parse '{s}' as a timestamp"))),
        other => Err(type_err(name, "a timestamp", other)),
    }
}

fn str_value(s: String) -> Value {
    Value::Str(crate::record::Str::from(s))
}

fn lower(v: &Value) -> R {
    let s = want_str("lower", v)?;
    // Already-lower text (the common case for URLs, keys) shares the input's buffer.
    if !s.chars().any(char::is_uppercase) {
        return Ok(v.clone());
    }
    Ok(str_value(s.to_lowercase()))
}

fn upper(v: &Value) -> R {
    let s = want_str("upper", v)?;
    if !s.chars().any(char::is_lowercase) {
        return Ok(v.clone());
    }
    Ok(str_value(s.to_uppercase()))
}

fn length(v: &Value) -> R {
    let n = match v {
        Value::Str(s) => s.chars().count(),
        Value::List(items) => items.len(),
        Value::Map(fields) => fields.len(),
        other => return Err(type_err("length", "a string or list", other)),
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

#[derive(Clone, Copy)]
enum Side {
    Both,
    Start,
    End,
}

fn trim_with(name: &str, a: &[Value], side: Side) -> R {
    let s = want_str(name, &a[0])?;
    let out = match a.get(1) {
        None => match side {
            Side::Both => s.trim(),
            Side::Start => s.trim_start(),
            Side::End => s.trim_end(),
        },
        Some(chars) => {
            let set: Vec<char> = want_str(name, chars)?.chars().collect();
            let f = |c: char| set.contains(&c);
            match side {
                Side::Both => s.trim_matches(f),
                Side::Start => s.trim_start_matches(f),
                Side::End => s.trim_end_matches(f),
            }
        }
    };
    Ok(if out.len() == s.len() { a[0].clone() } else { Value::Str(crate::record::Str::from(out)) })
}

fn trim_both(a: &[Value]) -> R {
    trim_with("trim", a, Side::Both)
}

fn trim_start(a: &[Value]) -> R {
    trim_with("ltrim", a, Side::Start)
}

fn trim_end(a: &[Value]) -> R {
    trim_with("rtrim", a, Side::End)
}

fn substr(a: &[Value]) -> R {
    let s = want_str("substr", &a[0])?;
    let start = want_int("substr", &a[1])?;
    let len = a.get(2).map(|v| want_int("substr", v)).transpose()?;
    let from = match start {
        0 => 0,
        s if s > 0 => usize::try_from(s - 1).unwrap_or(usize::MAX),
        neg => {
            let n = s.chars().count();
            n.saturating_sub(usize::try_from(neg.unsigned_abs()).unwrap_or(usize::MAX))
        }
    };
    let take = match len {
        Some(l) => usize::try_from(l.max(0)).unwrap_or(usize::MAX),
        None => usize::MAX,
    };
    Ok(str_value(s.chars().skip(from).take(take).collect()))
}

fn replace(s: &Value, from: &Value, to: &Value) -> R {
    let (s, from_s, to) = (want_str("replace", s)?, want_str("replace", from)?, want_str("replace", to)?);
    if from_s.is_empty() {
        return Ok(str_value(s.to_string()));
    }
    Ok(str_value(s.replace(from_s, to)))
}

fn concat(a: &[Value]) -> R {
    let mut out = String::new();
    for v in a {
        v.write_text(&mut out);
    }
    Ok(str_value(out))
}

fn split(s: &Value, sep: &Value) -> R {
    let (s, sep) = (want_str("split", s)?, want_str("split", sep)?);
    let items: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::Str(crate::record::Str::from(c.to_string()))).collect()
    } else {
        Parts::of(s, sep).map(Value::str).collect()
    };
    Ok(Value::List(Arc::new(items)))
}

fn split_index(s: &Value, sep: &Value, i: &Value) -> R {
    let (s, sep) = (want_str("split_index", s)?, want_str("split_index", sep)?);
    let Value::Int(i) = i else {
        return Err(EvalError::new(format!("split_index: the index must be an int, got {}", i.type_name())));
    };
    let part = if sep.is_empty() || *i < 0 { None } else { Parts::of(s, sep).nth(*i as usize) };
    Ok(part.map_or(Value::Null, Value::str))
}

/// The parts of a string between occurrences of a non-empty separator. A one-byte
/// separator (the usual case) is found by `memchr`; any other by `str::split`, whose
/// searches (substring, or character then `memcmp`) were a seventh of Nexmark q22's
/// time for `'/'`.
enum Parts<'a> {
    /// The rest of the string after the parts handed out (None after the last one).
    ByByte {
        rest: Option<&'a str>,
        sep: u8,
    },
    ByStr(std::str::Split<'a, &'a str>),
}

impl<'a> Parts<'a> {
    fn of(s: &'a str, sep: &'a str) -> Parts<'a> {
        match sep.as_bytes() {
            &[byte] => Parts::ByByte { rest: Some(s), sep: byte },
            _ => Parts::ByStr(s.split(sep)),
        }
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            // An ASCII byte is a whole character: the cuts fall on character boundaries.
            Parts::ByByte { rest, sep } => {
                let s = (*rest)?;
                match memchr::memchr(*sep, s.as_bytes()) {
                    Some(i) => {
                        *rest = s.get(i + 1..);
                        s.get(..i)
                    }
                    None => rest.take(),
                }
            }
            Parts::ByStr(parts) => parts.next(),
        }
    }
}

fn position(needle: &Value, s: &Value) -> R {
    let (needle, s) = (want_str("position", needle)?, want_str("position", s)?);
    Ok(Value::Int(match s.find(needle) {
        Some(i) => i64::try_from(s[..i].chars().count()).unwrap_or(i64::MAX).saturating_add(1),
        None => 0,
    }))
}

fn starts_with(s: &Value, p: &Value) -> R {
    Ok(Value::Bool(want_str("starts_with", s)?.starts_with(want_str("starts_with", p)?)))
}

fn ends_with(s: &Value, p: &Value) -> R {
    Ok(Value::Bool(want_str("ends_with", s)?.ends_with(want_str("ends_with", p)?)))
}

fn abs(v: &Value) -> R {
    match v {
        Value::Int(i) => i.checked_abs().map(Value::Int).ok_or_else(|| EvalError::new("integer overflow in `abs`")),
        Value::Float(f) => Ok(Value::Float(f.abs())),
        other => Err(type_err("abs", "a number", other)),
    }
}

fn round(a: &[Value]) -> R {
    let digits = a.get(1).map(|d| want_int("round", d)).transpose()?.unwrap_or(0);
    match &a[0] {
        Value::Int(i) if digits >= 0 => Ok(Value::Int(*i)),
        Value::Int(i) => {
            // |i| < 9.3e18 < 10^20 / 2: to 20 or more places left of the point it is 0.
            let Some(p) = u32::try_from(-digits).ok().filter(|d| *d < 20).map(|d| 10i128.pow(d)) else {
                return Ok(Value::Int(0));
            };
            // Round half away from zero on the integer itself (in 128 bits) to stay exact.
            let i = i128::from(*i);
            let (q, rem) = (i / p, i % p);
            let q = if rem.abs() * 2 >= p { q + i.signum() } else { q };
            i64::try_from(q * p).map(Value::Int).map_err(|_| {
                EvalError::new(format!("integer overflow in `round`: {i} rounded to {} places is {}", digits, q * p))
            })
        }
        Value::Float(f) => {
            let p = 10f64.powi(i32::try_from(digits.clamp(-400, 400)).unwrap_or(0));
            let r = (f * p).round() / p;
            Ok(Value::Float(if r.is_finite() { r } else { *f }))
        }
        other => Err(type_err("round", "a number", other)),
    }
}

fn floor(v: &Value) -> R {
    match v {
        Value::Int(_) => Ok(v.clone()),
        Value::Float(f) => Ok(Value::Float(f.floor())),
        other => Err(type_err("floor", "a number", other)),
    }
}

fn ceil(v: &Value) -> R {
    match v {
        Value::Int(_) => Ok(v.clone()),
        Value::Float(f) => Ok(Value::Float(f.ceil())),
        other => Err(type_err("ceil", "a number", other)),
    }
}

fn power(x: &Value, y: &Value) -> R {
    Ok(Value::Float(want_num("power", x)?.powf(want_num("power", y)?)))
}

fn sqrt(x: &Value) -> R {
    Ok(Value::Float(want_num("sqrt", x)?.sqrt()))
}

fn modulo(a: &Value, b: &Value) -> R {
    arith(ArithOp::Rem, a, b)
}

fn extreme(a: &[Value], keep: std::cmp::Ordering) -> R {
    let mut best = &a[0];
    for v in &a[1..] {
        if compare(v, best)? == Some(keep) {
            best = v;
        }
    }
    Ok(best.clone())
}

fn greatest(a: &[Value]) -> R {
    extreme(a, std::cmp::Ordering::Greater)
}

fn least(a: &[Value]) -> R {
    extreme(a, std::cmp::Ordering::Less)
}

fn to_timestamp(a: &[Value]) -> R {
    match (&a[0], a.get(1)) {
        (Value::Str(s), Some(fmt)) => {
            let fmt = want_str("to_timestamp", fmt)?;
            parse_timestamp_with(s.trim(), fmt).map(Value::Timestamp).ok_or_else(|| {
                EvalError::new(format!("function `to_timestamp` cannot parse '{s}' with format '{fmt}'"))
            })
        }
        (Value::Float(f), None) if f.is_finite() => Ok(Value::Timestamp(f.trunc() as i64)),
        (v, None) => want_millis("to_timestamp", v).map(Value::Timestamp),
        (v, Some(_)) => Err(type_err("to_timestamp", "a string when a format is given", v)),
    }
}

fn date_format(ts: &Value, fmt: &Value) -> R {
    use std::fmt::Write as _;
    type Items = Vec<chrono::format::Item<'static>>;
    thread_local! {
        /// The last pattern parsed on this thread (a pattern is usually a constant:
        /// parsing it per call was a tenth of Nexmark q14's time).
        static PARSED: std::cell::RefCell<Option<(String, Items)>> = const { std::cell::RefCell::new(None) };
    }
    let ms = want_millis("date_format", ts)?;
    let fmt = want_str("date_format", fmt)?;
    let t = chrono::DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| EvalError::new("function `date_format`: timestamp out of range"))?;
    let invalid = || EvalError::new(format!("function `date_format`: invalid format '{fmt}'"));
    PARSED.with_borrow_mut(|parsed| {
        if parsed.as_ref().is_none_or(|(last, _)| last != fmt) {
            let items = chrono::format::StrftimeItems::new(fmt).parse_to_owned().map_err(|_| invalid())?;
            *parsed = Some((fmt.to_string(), items));
        }
        let items = parsed.as_ref().map(|(_, items)| items.iter()).into_iter().flatten();
        let mut out = String::new();
        write!(out, "{}", t.format_with_items(items)).map_err(|_| invalid())?;
        Ok(str_value(out))
    })
}

fn unix_timestamp(a: &[Value]) -> R {
    let ms = match a.first() {
        Some(v) => want_millis("unix_timestamp", v)?,
        None => now_millis(),
    };
    Ok(Value::Int(ms.div_euclid(1000)))
}

fn epoch_millis(v: &Value) -> R {
    want_millis("epoch_millis", v).map(Value::Int)
}

fn json_parse(v: &Value) -> R {
    let s = want_str("json_parse", v)?;
    serde_json::from_str::<serde_json::Value>(s)
        .map(Value::from_json)
        .map_err(|e| EvalError::new(format!("function `json_parse`: invalid JSON: {e}")))
}

fn to_json(v: &Value) -> R {
    Ok(str_value(v.to_json()))
}

fn type_of(v: &Value) -> R {
    Ok(Value::Str(crate::record::Str::from(v.type_name())))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Parts equal `str::split`'s, for one-byte and longer separators.
        #[test]
        fn parts_are_those_of_str_split(s in "[a/é:]{0,12}", sep in proptest::sample::select(vec!["/", ":", "é", "//", "a/"])) {
            proptest::prop_assert_eq!(Parts::of(&s, sep).collect::<Vec<_>>(), s.split(sep).collect::<Vec<_>>());
        }
    }

    #[test]
    fn every_documented_function_is_bound_and_arity_is_consistent() {
        for d in docs() {
            let def = lookup(d.name).unwrap_or_else(|| panic!("{} has no implementation", d.name));
            assert!(d.max_args.is_none_or(|m| m >= d.min_args), "{}", d.name);
            assert!(d.signature.starts_with(d.name), "{}", d.name);
            if let Imp::F1(_) = def.imp {
                assert_eq!((d.min_args, d.max_args), (1, Some(1)), "{}", d.name);
            }
            if let Imp::F2(_) = def.imp {
                assert_eq!((d.min_args, d.max_args), (2, Some(2)), "{}", d.name);
            }
            if let Imp::F3(_) = def.imp {
                assert_eq!((d.min_args, d.max_args), (3, Some(3)), "{}", d.name);
            }
        }
        let mut names: Vec<&str> = docs().iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), docs().len(), "duplicate doc entries");
        assert!(lookup("nope").is_none());
    }

    #[test]
    fn string_helpers() {
        let s = Value::str;
        assert_eq!(substr(&[s("héllo"), Value::Int(2), Value::Int(3)]).unwrap(), s("éll"));
        assert_eq!(substr(&[s("hello"), Value::Int(-3)]).unwrap(), s("llo"));
        assert_eq!(substr(&[s("hello"), Value::Int(0), Value::Int(2)]).unwrap(), s("he"));
        assert_eq!(substr(&[s("hello"), Value::Int(9)]).unwrap(), s(""));
        assert_eq!(trim_both(&[s("xxaxx"), s("x")]).unwrap(), s("a"));
        assert_eq!(trim_start(&[s("  a ")]).unwrap(), s("a "));
        assert_eq!(replace(&s("aXbX"), &s("X"), &s("-")).unwrap(), s("a-b-"));
        assert_eq!(replace(&s("ab"), &s(""), &s("-")).unwrap(), s("ab"));
        assert_eq!(position(&s("l"), &s("héllo")).unwrap(), Value::Int(3));
        assert_eq!(position(&s("z"), &s("hello")).unwrap(), Value::Int(0));
        assert_eq!(split(&s("a,b"), &s(",")).unwrap(), Value::List(Arc::new(vec![s("a"), s("b")])));
        assert_eq!(length(&s("héllo")).unwrap(), Value::Int(5));
        assert!(lower(&Value::Int(1)).unwrap_err().message.contains("expects a string, got int"));
    }

    #[test]
    fn numeric_helpers() {
        assert_eq!(round(&[Value::Float(2.5)]).unwrap(), Value::Float(3.0));
        assert_eq!(round(&[Value::Float(-2.345), Value::Int(2)]).unwrap(), Value::Float(-2.35));
        assert_eq!(round(&[Value::Int(1250), Value::Int(-2)]).unwrap(), Value::Int(1300));
        assert_eq!(round(&[Value::Int(-1249), Value::Int(-2)]).unwrap(), Value::Int(-1200));
        assert_eq!(abs(&Value::Int(-3)).unwrap(), Value::Int(3));
        assert_eq!(floor(&Value::Float(-1.5)).unwrap(), Value::Float(-2.0));
        assert_eq!(ceil(&Value::Float(1.2)).unwrap(), Value::Float(2.0));
        assert_eq!(power(&Value::Int(2), &Value::Int(10)).unwrap(), Value::Float(1024.0));
        assert_eq!(greatest(&[Value::Int(1), Value::Float(2.5), Value::Int(2)]).unwrap(), Value::Float(2.5));
        assert_eq!(least(&[Value::str("b"), Value::str("a")]).unwrap(), Value::str("a"));
        assert!(greatest(&[Value::Int(1), Value::str("a")]).is_err());
    }

    #[test]
    fn time_helpers() {
        assert_eq!(to_timestamp(&[Value::Int(5)]).unwrap(), Value::Timestamp(5));
        assert_eq!(to_timestamp(&[Value::str("1970-01-01 00:00:01")]).unwrap(), Value::Timestamp(1000));
        assert_eq!(
            to_timestamp(&[Value::str("01/01/1970 00:01"), Value::str("%d/%m/%Y %H:%M")]).unwrap(),
            Value::Timestamp(60_000)
        );
        assert!(to_timestamp(&[Value::str("nope")]).is_err());
        assert_eq!(
            date_format(&Value::Timestamp(86_400_000), &Value::str("%Y-%m-%d")).unwrap(),
            Value::str("1970-01-02")
        );
        assert!(date_format(&Value::Timestamp(0), &Value::str("%Q")).is_err());
        // Patterns taking turns on one thread (the last one parsed is kept).
        for _ in 0..2 {
            assert_eq!(date_format(&Value::Timestamp(3_600_000), &Value::str("%H")).unwrap(), Value::str("01"));
            assert_eq!(date_format(&Value::Timestamp(3_600_000), &Value::str("%Y")).unwrap(), Value::str("1970"));
        }
        assert_eq!(unix_timestamp(&[Value::Timestamp(-1)]).unwrap(), Value::Int(-1));
        assert_eq!(epoch_millis(&Value::str("1970-01-01T00:00:00.5Z")).unwrap(), Value::Int(500));
    }

    #[test]
    fn json_helpers() {
        let v = json_parse(&Value::str(r#"{"a":[1,2.5,"x",null]}"#)).unwrap();
        assert_eq!(to_json(&v).unwrap(), Value::str(r#"{"a":[1,2.5,"x",null]}"#));
        assert!(json_parse(&Value::str("{")).unwrap_err().message.starts_with("function `json_parse`: invalid JSON"));
        assert_eq!(type_of(&Value::Null).unwrap(), Value::str("null"));
    }
}
