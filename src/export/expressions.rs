//! flowctl expressions as Flink SQL: the parsed tree (`expr::parse`, the one flowctl
//! compiles) is walked node by node, with the type of every subexpression worked out
//! from the input's columns, so that only constructs whose Flink SQL meaning equals
//! flowctl's are written. Anything else is refused at its column in the YAML file.

use super::types::{literal, quote, Approximations, Column, Refusal, Sql, SqlType};
use crate::spec::ExprSpec;
use sqlparser::ast::{
    self, BinaryOperator as B, CastKind, DataType, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectNamePart,
    Spanned as _, UnaryOperator,
};

/// Translates `e` over `columns`.
pub fn translate(e: &ExprSpec, columns: &[Column], approx: &Approximations) -> Result<Sql, Refusal> {
    Translator { spec: e, columns, approx }.expr(&parsed(e)?)
}

/// The parsed tree of `e` (flowctl has compiled it, so this fails only on a bug).
fn parsed(e: &ExprSpec) -> Result<ast::Expr, Refusal> {
    crate::expr::parse(&e.text).map_err(|err| Refusal::new(e.span_at(err.offset, 0), err.message, err.hint.as_deref()))
}

/// A call's arguments when they are all plain expressions (no `*`, names, DISTINCT
/// or clauses).
fn plain_args(args: &FunctionArguments) -> Option<Vec<&ast::Expr>> {
    let FunctionArguments::List(l) = args else { return None };
    if l.duplicate_treatment.is_some() || !l.clauses.is_empty() {
        return None;
    }
    l.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
            _ => None,
        })
        .collect()
}

/// Translates `e` and requires a boolean (a filter's predicate).
pub fn predicate(e: &ExprSpec, columns: &[Column], approx: &Approximations) -> Result<Sql, Refusal> {
    let sql = translate(e, columns, approx)?;
    match sql.ty {
        SqlType::Boolean | SqlType::Null => Ok(sql),
        other => Err(Refusal::new(e.span, format!("a filter must be a bool; this is {}", other.name()), None)),
    }
}

struct Translator<'a> {
    spec: &'a ExprSpec,
    columns: &'a [Column],
    approx: &'a Approximations,
}

/// What is wrong with a function call, and the refusal it becomes.
const NO_EQUIVALENT: &str = "see docs/flink.md for the functions that translate";

impl Translator<'_> {
    fn refuse<T>(&self, node: &ast::Expr, message: impl Into<String>, hint: Option<&str>) -> Result<T, Refusal> {
        Err(Refusal { hint: hint.map(str::to_string), ..self.refusal(node, message) })
    }

    /// A refusal at `node`'s position.
    fn refusal(&self, node: &ast::Expr, message: impl Into<String>) -> Refusal {
        let offset = crate::expr::offset_of(&self.spec.text, node.span());
        Refusal::new(self.spec.span_at(offset, 0), message, None)
    }

    fn expr(&self, e: &ast::Expr) -> Result<Sql, Refusal> {
        use ast::Expr as E;
        let sql = |text: String, ty: SqlType| Ok(Sql { text, ty });
        match e {
            E::Identifier(id) => self.column(e, &id.value),
            E::Nested(inner) => {
                let s = self.expr(inner)?;
                sql(format!("({})", s.text), s.ty)
            }
            E::Value(v) => self.value(e, &v.value),
            E::UnaryOp { op, expr } => {
                let s = self.expr(expr)?;
                match op {
                    UnaryOperator::Not if s.ty == SqlType::Boolean || s.ty == SqlType::Null => {
                        sql(format!("NOT ({})", s.text), SqlType::Boolean)
                    }
                    UnaryOperator::Minus if s.ty.numeric() => sql(format!("-({})", s.text), s.ty),
                    UnaryOperator::Plus if s.ty.numeric() => Ok(s),
                    _ => self.refuse(e, format!("`{op}` on {} has no Flink SQL translation", s.ty.name()), None),
                }
            }
            E::BinaryOp { left, op, right } => self.binary(e, left, op, right),
            E::IsNull(x) => sql(format!("({} IS NULL)", self.expr(x)?.text), SqlType::Boolean),
            E::IsNotNull(x) => sql(format!("({} IS NOT NULL)", self.expr(x)?.text), SqlType::Boolean),
            E::In { expr, target: ast::InTarget::List(list), negated, .. } => {
                let x = self.expr(expr)?;
                let mut items = Vec::new();
                for item in list {
                    let s = self.expr(item)?;
                    if !x.ty.comparable(s.ty) {
                        return self.refuse(item, self.mixed("IN", x.ty, s.ty), None);
                    }
                    items.push(s.text);
                }
                let not = if *negated { "NOT " } else { "" };
                sql(format!("({} {not}IN ({}))", x.text, items.join(", ")), SqlType::Boolean)
            }
            E::Between { expr, negated, low, high } => {
                let (x, lo, hi) = (self.expr(expr)?, self.expr(low)?, self.expr(high)?);
                if !x.ty.comparable(lo.ty) || !x.ty.comparable(hi.ty) {
                    return self.refuse(e, self.mixed("BETWEEN", x.ty, lo.ty), None);
                }
                let not = if *negated { "NOT " } else { "" };
                sql(format!("({} {not}BETWEEN {} AND {})", x.text, lo.text, hi.text), SqlType::Boolean)
            }
            E::Like { negated, any: false, expr, pattern, escape_char: None } => {
                let (x, p) = (self.expr(expr)?, self.expr(pattern)?);
                if x.ty != SqlType::String || !matches!(p.ty, SqlType::String | SqlType::Null) {
                    return self.refuse(e, "LIKE on a value that is not a string has no Flink SQL translation", None);
                }
                let not = if *negated { "NOT " } else { "" };
                sql(format!("({} {not}LIKE {})", x.text, p.text), SqlType::Boolean)
            }
            E::Case { operand, conditions, else_result, .. } => {
                self.case(e, operand.as_deref(), conditions, else_result.as_deref())
            }
            E::Cast { kind: CastKind::Cast | CastKind::DoubleColon, expr, data_type, format: None } => {
                self.cast(e, expr, data_type)
            }
            E::Substring { expr, substring_from, substring_for, .. } => {
                let args: Vec<&ast::Expr> = [Some(&**expr), substring_from.as_deref(), substring_for.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                self.call(e, "substr", &args)
            }
            E::Position { expr, r#in } => self.call(e, "position", &[expr, r#in]),
            E::Function(f) => self.function(e, f),
            E::Trim { trim_where, trim_what: None, expr, trim_characters: None } => {
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "trim",
                };
                self.call(e, name, &[expr])
            }
            E::Trim { .. } => self.call(e, "trim", &[]),
            E::CompoundIdentifier(_) | E::CompoundFieldAccess { .. } => self.refuse(
                e,
                "nested fields have no column in the exported table",
                Some("lift the field into a column of its own before exporting, or read it from a flat schema"),
            ),
            _ => self.refuse(e, format!("`{e}` has no Flink SQL translation in `flowctl export`"), None),
        }
    }

    fn column(&self, e: &ast::Expr, name: &str) -> Result<Sql, Refusal> {
        match self.columns.iter().find(|c| c.name == name) {
            Some(c) => Ok(Sql { text: quote(&c.name), ty: c.ty }),
            None => self.refuse(
                e,
                format!("field `{name}` is not a column of the step's input in the exported script"),
                Some("Flink needs every column's type: declare it in the source's `schema:`"),
            ),
        }
    }

    fn value(&self, e: &ast::Expr, v: &ast::Value) -> Result<Sql, Refusal> {
        let (text, ty) = match v {
            ast::Value::Number(n, _) if n.contains(['.', 'e', 'E']) => {
                // A DOUBLE literal: Flink reads `1.5` as DECIMAL, flowctl as a float.
                let n = if n.contains(['e', 'E']) { n.clone() } else { format!("{n}E0") };
                (n, SqlType::Double)
            }
            ast::Value::Number(n, _) => match n.parse::<i64>() {
                Ok(i) if i32::try_from(i).is_ok() => (n.clone(), SqlType::Bigint),
                Ok(_) => (format!("CAST({n} AS BIGINT)"), SqlType::Bigint),
                Err(_) => return self.refuse(e, format!("`{n}` does not fit a BIGINT"), None),
            },
            ast::Value::SingleQuotedString(s) => (literal(s), SqlType::String),
            ast::Value::Boolean(b) => (if *b { "TRUE" } else { "FALSE" }.to_string(), SqlType::Boolean),
            ast::Value::Null => ("NULL".to_string(), SqlType::Null),
            _ => return self.refuse(e, format!("the literal `{v}` has no Flink SQL translation"), None),
        };
        Ok(Sql { text, ty })
    }

    fn mixed(&self, what: &str, a: SqlType, b: SqlType) -> String {
        format!("`{what}` between {} and {} has no Flink SQL translation with flowctl's meaning", a.name(), b.name())
    }

    fn binary(&self, e: &ast::Expr, left: &ast::Expr, op: &B, right: &ast::Expr) -> Result<Sql, Refusal> {
        let (l, r) = (self.expr(left)?, self.expr(right)?);
        // Parenthesised, so the tree's shape never depends on Flink's precedence rules.
        let text = format!("({} {op} {})", l.text, r.text);
        let both = |t: SqlType| (l.ty == t || l.ty == SqlType::Null) && (r.ty == t || r.ty == SqlType::Null);
        let ty = match op {
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq if l.ty.comparable(r.ty) => SqlType::Boolean,
            B::And | B::Or if both(SqlType::Boolean) => SqlType::Boolean,
            B::Plus | B::Minus | B::Multiply | B::Divide if l.ty.numeric() && r.ty.numeric() => {
                if l.ty == SqlType::Double || r.ty == SqlType::Double {
                    SqlType::Double
                } else {
                    SqlType::Bigint
                }
            }
            // Truncated remainder in both; Flink's `%` takes integers only.
            B::Modulo if both(SqlType::Bigint) => SqlType::Bigint,
            B::StringConcat if both(SqlType::String) => SqlType::String,
            _ => return self.refuse(e, self.mixed(&op.to_string(), l.ty, r.ty), None),
        };
        Ok(Sql { text, ty })
    }

    fn case(
        &self,
        e: &ast::Expr,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        else_result: Option<&ast::Expr>,
    ) -> Result<Sql, Refusal> {
        let mut text = String::from("CASE");
        let mut ty = SqlType::Null;
        let subject = operand.map(|o| self.expr(o)).transpose()?;
        if let Some(s) = &subject {
            text.push_str(&format!(" {}", s.text));
        }
        for when in conditions {
            let c = self.expr(&when.condition)?;
            let fits = match &subject {
                Some(s) => s.ty.comparable(c.ty),
                None => matches!(c.ty, SqlType::Boolean | SqlType::Null),
            };
            if !fits {
                return self.refuse(&when.condition, format!("a CASE condition of type {}", c.ty.name()), None);
            }
            let r = self.expr(&when.result)?;
            ty = SqlType::unify(ty, r.ty)
                .map_or_else(|| self.refuse(&when.result, self.mixed("CASE", ty, r.ty), None), Ok)?;
            text.push_str(&format!(" WHEN {} THEN {}", c.text, r.text));
        }
        if let Some(x) = else_result {
            let r = self.expr(x)?;
            ty = SqlType::unify(ty, r.ty).map_or_else(|| self.refuse(x, self.mixed("CASE", ty, r.ty), None), Ok)?;
            text.push_str(&format!(" ELSE {}", r.text));
        }
        text.push_str(" END");
        if ty == SqlType::Null {
            return self.refuse(e, "a CASE whose every result is NULL has no type in Flink SQL", None);
        }
        Ok(Sql { text, ty })
    }

    fn cast(&self, e: &ast::Expr, inner: &ast::Expr, to: &DataType) -> Result<Sql, Refusal> {
        let x = self.expr(inner)?;
        let target = match to {
            DataType::BigInt(_) | DataType::Int64 | DataType::Int8(_) => SqlType::Bigint,
            DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 | DataType::Float64 => SqlType::Double,
            DataType::Varchar(_) | DataType::String(_) | DataType::Text => SqlType::String,
            DataType::Boolean | DataType::Bool => SqlType::Boolean,
            _ => {
                return self.refuse(
                    e,
                    format!("CAST to `{to}` has no translation with flowctl's meaning"),
                    Some("cast to BIGINT, DOUBLE or STRING"),
                )
            }
        };
        // Text forms and parsing rules differ between flowctl and Flink for these.
        let same_meaning = match (x.ty, target) {
            (a, b) if a == b => true,
            (SqlType::Null, _) => true,
            (SqlType::Bigint, SqlType::Double | SqlType::String) => true,
            (SqlType::Double, SqlType::Bigint) => true,
            (SqlType::String, SqlType::Bigint | SqlType::Double) => true,
            _ => false,
        };
        if !same_meaning {
            return self.refuse(
                e,
                format!("CAST from {} to {} differs between flowctl and Flink", x.ty.name(), target.name()),
                None,
            );
        }
        Ok(Sql { text: format!("CAST({} AS {})", x.text, target.name()), ty: target })
    }

    fn function(&self, e: &ast::Expr, f: &ast::Function) -> Result<Sql, Refusal> {
        let (name, ident) = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(id)] => (id.value.to_lowercase(), &id.value),
            _ => return self.refuse(e, format!("unknown function `{}`", f.name), None),
        };
        let args: Vec<&ast::Expr> = match &f.args {
            // A keyword read as a call without parentheses (`user`) is a field.
            FunctionArguments::None if name != "current_timestamp" => return self.column(e, ident),
            FunctionArguments::None => Vec::new(),
            _ => match plain_args(&f.args) {
                Some(args) => args,
                None => return self.refuse(e, format!("`{name}` with these arguments has no translation"), None),
            },
        };
        self.call(e, &name, &args)
    }

    /// A library function by its flowctl name.
    fn call(&self, e: &ast::Expr, name: &str, args: &[&ast::Expr]) -> Result<Sql, Refusal> {
        use SqlType::{Bigint as I, Boolean as Bo, Double as D, String as S};
        let xs = args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>, _>>()?;
        let tys: Vec<SqlType> = xs.iter().map(|x| x.ty).collect();
        let texts: Vec<&str> = xs.iter().map(|x| x.text.as_str()).collect();
        let is = |i: usize, t: SqlType| tys.get(i).is_some_and(|x| *x == t || *x == SqlType::Null);
        let all = |t: SqlType| tys.iter().all(|x| *x == t || *x == SqlType::Null);
        let numeric = |i: usize| tys.get(i).is_some_and(|x| x.numeric());
        let call = |flink: &str, ty: SqlType| Ok(Sql { text: format!("{flink}({})", texts.join(", ")), ty });
        let n = args.len();
        match name {
            "trim" | "ltrim" | "rtrim" => {
                let why = format!("`{name}` removes all whitespace in flowctl but only spaces in Flink");
                let refusal = Refusal {
                    hint: Some("use regexp_replace with an explicit pattern".into()),
                    ..self.refusal(e, why)
                };
                let side = match name {
                    "trim" => "BOTH",
                    "ltrim" => "LEADING",
                    _ => "TRAILING",
                };
                match (n, tys.first()) {
                    (1, Some(S | SqlType::Null)) => {
                        self.approx
                            .allow(refusal, &format!("written as TRIM({side} FROM ...), which removes spaces only"))?;
                        Ok(Sql { text: format!("TRIM({side} FROM {})", texts[0]), ty: S })
                    }
                    _ => Err(refusal),
                }
            }
            "lower" | "upper" if n == 1 && is(0, S) => call(&name.to_uppercase(), S),
            "length" | "char_length" if n == 1 && is(0, S) => call("CHAR_LENGTH", I),
            "replace" if n == 3 && all(S) => call("REPLACE", S),
            "concat" if n >= 1 && tys.iter().all(|t| matches!(t, S | I | SqlType::Null)) => {
                // An int's text form is the same in both; a float's is not.
                let parts: Vec<String> = xs
                    .iter()
                    .map(|x| if x.ty == I { format!("CAST({} AS STRING)", x.text) } else { x.text.clone() })
                    .collect();
                Ok(Sql { text: format!("CONCAT({})", parts.join(", ")), ty: S })
            }
            "split_index" if n == 3 && is(0, S) && is(1, S) && is(2, I) => call("SPLIT_INDEX", S),
            "position" if n == 2 && all(S) => {
                Ok(Sql { text: format!("POSITION({} IN {})", texts[0], texts[1]), ty: I })
            }
            "starts_with" if n == 2 && all(S) => call("STARTSWITH", Bo),
            "ends_with" if n == 2 && all(S) => call("ENDSWITH", Bo),
            "regexp_like" if n == 2 && all(S) => call("REGEXP", Bo),
            "regexp_extract" if (2..=3).contains(&n) && is(0, S) && is(1, S) && (n == 2 || is(2, I)) => {
                let group = texts.get(2).copied().unwrap_or("0");
                Ok(Sql { text: format!("REGEXP_EXTRACT({}, {}, {group})", texts[0], texts[1]), ty: S })
            }
            "regexp_replace" if n == 3 && all(S) => call("REGEXP_REPLACE", S),
            "substr" | "substring" if (2..=3).contains(&n) && is(0, S) && all_from(1, &tys, I) => {
                // flowctl counts a negative start from the end and reads 0 as 1; only a
                // positive literal start means the same in Flink.
                match args[1] {
                    ast::Expr::Value(v) if matches!(&v.value, ast::Value::Number(s, _) if s.parse::<i64>().is_ok_and(|i| i > 0)) => {
                        call("SUBSTR", S)
                    }
                    other => self.refuse(
                        other,
                        "a `substr` start that is not a positive number differs in Flink",
                        Some("write the start as a positive literal"),
                    ),
                }
            }
            "abs" if n == 1 && numeric(0) => call("ABS", tys[0]),
            "round" if (1..=2).contains(&n) && numeric(0) && (n == 1 || is(1, I)) => call("ROUND", tys[0]),
            "floor" if n == 1 && numeric(0) => call("FLOOR", tys[0]),
            "ceil" | "ceiling" if n == 1 && numeric(0) => call("CEIL", tys[0]),
            "power" if n == 2 && numeric(0) && numeric(1) => {
                Ok(Sql { text: format!("POWER(CAST({} AS DOUBLE), {})", texts[0], texts[1]), ty: D })
            }
            "sqrt" if n == 1 && numeric(0) => Ok(Sql { text: format!("SQRT(CAST({} AS DOUBLE))", texts[0]), ty: D }),
            "mod" if n == 2 && all(I) => call("MOD", I),
            "coalesce" | "greatest" | "least" if n >= 1 => {
                let ty = tys.iter().try_fold(SqlType::Null, |acc, t| SqlType::unify(acc, *t));
                match ty {
                    Some(ty) if ty != SqlType::Null && (name == "coalesce" || ty != Bo) => {
                        call(&name.to_uppercase(), ty)
                    }
                    _ => {
                        self.refuse(e, format!("`{name}` of mixed or unknown types has no Flink SQL translation"), None)
                    }
                }
            }
            "nullif" if n == 2 && tys[0].comparable(tys[1]) && tys[0] != SqlType::Null => call("NULLIF", tys[0]),
            "if" if n == 3 && is(0, Bo) => match SqlType::unify(tys[1], tys[2]) {
                Some(ty) if ty != SqlType::Null => call("IF", ty),
                _ => self.refuse(e, self.mixed("if", tys[1], tys[2]), None),
            },
            "now" | "current_timestamp" | "unix_timestamp" => self.refuse(
                e,
                format!("`{name}` reads the wall clock; flowctl has no timestamp column type in an exported table"),
                None,
            ),
            "to_timestamp" | "date_format" | "epoch_millis" => self.refuse(
                e,
                format!("`{name}` uses strftime patterns and timestamp values, which the export does not translate"),
                None,
            ),
            "split" => self.refuse(e, "`split` returns a list, which the export does not translate", None),
            "json_parse" | "to_json" | "typeof" => self.refuse(
                e,
                format!("`{name}` works on dynamic JSON values, which have no Flink SQL column type"),
                None,
            ),
            _ => self.refuse(
                e,
                format!(
                    "`{name}` with arguments of type {} has no Flink SQL translation",
                    tys.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                ),
                Some(NO_EQUIVALENT),
            ),
        }
    }
}

fn all_from(start: usize, tys: &[SqlType], t: SqlType) -> bool {
    tys.iter().skip(start).all(|x| *x == t || *x == SqlType::Null)
}

/// A `reduce` aggregate (`sum(bytes * 2)`) as a Flink SQL aggregate call.
pub fn aggregate(e: &ExprSpec, columns: &[Column], approx: &Approximations) -> Result<Sql, Refusal> {
    let tree = parsed(e)?;
    let t = Translator { spec: e, columns, approx };
    let ast::Expr::Function(f) = &tree else {
        return t.refuse(&tree, "expected an aggregate call like `sum(x)`", None);
    };
    let name = f.name.to_string().to_lowercase();
    let star = matches!(&f.args, FunctionArguments::List(l)
        if matches!(l.args.as_slice(), [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]));
    let args = match plain_args(&f.args) {
        Some(args) => args,
        None if star => Vec::new(),
        None => return t.refuse(&tree, format!("`{name}` with these arguments has no translation"), None),
    };
    let arg = match args.as_slice() {
        [] => None,
        [x] => Some(t.expr(x)?),
        _ => return t.refuse(&tree, format!("`{name}` takes one argument"), None),
    };
    let sql = |text: String, ty: SqlType| Ok(Sql { text, ty });
    match (name.as_str(), &arg) {
        ("count", None) => sql("COUNT(*)".into(), SqlType::Bigint),
        ("count", Some(a)) => sql(format!("COUNT({})", a.text), SqlType::Bigint),
        ("count_distinct", Some(a)) => sql(format!("COUNT(DISTINCT {})", a.text), SqlType::Bigint),
        ("sum", Some(a)) if a.ty.numeric() && a.ty != SqlType::Null => sql(format!("SUM({})", a.text), a.ty),
        ("min" | "max", Some(a)) if a.ty != SqlType::Null => sql(format!("{}({})", name.to_uppercase(), a.text), a.ty),
        // Flink's AVG of integers is an integer; flowctl's is a float.
        ("avg", Some(a)) if a.ty.numeric() => sql(format!("AVG(CAST({} AS DOUBLE))", a.text), SqlType::Double),
        ("first" | "last", Some(a)) => {
            let why = format!("`{name}` follows arrival order, which Flink's FIRST_VALUE/LAST_VALUE do not guarantee");
            let flink = if name == "first" { "FIRST_VALUE" } else { "LAST_VALUE" };
            t.approx.allow(t.refusal(&tree, why), &format!("written as {flink}, whose order is Flink's"))?;
            sql(format!("{flink}({})", a.text), a.ty)
        }
        ("collect", _) => t.refuse(&tree, "`collect` makes a list; Flink's COLLECT makes an unordered multiset", None),
        _ => t.refuse(&tree, format!("the aggregate `{}` has no Flink SQL translation", e.text), None),
    }
}

/// A `flat_map`'s `each` as a Flink array of strings: only `split(s, 'sep')` with a
/// non-empty literal separator translates. flowctl splits '' into one empty string,
/// Flink's SPLIT into no element, so that case is spelled out.
pub fn split_list(e: &ExprSpec, columns: &[Column], approx: &Approximations) -> Result<Sql, Refusal> {
    let tree = parsed(e)?;
    let t = Translator { spec: e, columns, approx };
    let not_split = || t.refuse(&tree, "only `split(s, 'separator')` is exported as a list", None);
    let ast::Expr::Function(f) = &tree else { return not_split() };
    let Some(args) = plain_args(&f.args) else { return not_split() };
    if !f.name.to_string().eq_ignore_ascii_case("split") || args.len() != 2 {
        return not_split();
    }
    let sep = match args[1] {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) if !s.is_empty() => s,
            _ => {
                return t.refuse(
                    args[1],
                    "the separator of an exported `split` must be a non-empty string literal",
                    None,
                )
            }
        },
        other => {
            return t.refuse(other, "the separator of an exported `split` must be a non-empty string literal", None)
        }
    };
    let s = t.expr(args[0])?;
    if s.ty != SqlType::String {
        return t.refuse(args[0], format!("`split` of {} has no Flink SQL translation", s.ty.name()), None);
    }
    let text = format!(
        "CASE WHEN {s} = '' THEN ARRAY[CAST('' AS STRING)] ELSE SPLIT({s}, {sep}) END",
        s = s.text,
        sep = literal(sep)
    );
    Ok(Sql { text, ty: SqlType::String })
}
