//! SQL expressions over records (Flink SQL's SELECT-list / WHERE syntax): the public
//! API — compile text once against a [`Scope`], then evaluate per [`Record`].
//!
//! Text is parsed with `sqlparser`, then compiled into a tree of boxed closures
//! (`compile.rs`) so that evaluation does no name lookups: fields resolve to schema
//! indexes, functions to function pointers, literal patterns to matchers.

mod cast;
mod compile;
mod functions;
mod like;
mod node;
mod ops;
mod parse;

pub(crate) use cast::{parse_timestamp, parse_timestamp_with};
pub(crate) use ops::compare;
pub(crate) use parse::split_call_args;

use std::fmt;
use std::sync::Arc;

use sqlparser::ast::{self, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectNamePart};

use crate::record::{Record, Schema, Value};
use compile::Compiler;
use node::Node;

/// What a compiled expression may refer to.
pub struct Scope<'a> {
    /// When Some: the exact top-level fields the input records can have (CSV header / declared schema).
    /// Referencing any other top-level field is a compile error "unknown field `x`" with a did-you-mean hint.
    /// When None: any field may be referenced; a missing field reads as NULL at run time.
    pub fields: Option<&'a [Arc<str>]>,
    /// When Some: records will usually have exactly this schema (Arc pointer); field references
    /// resolve to indexes at compile time, checked per record with `Arc::ptr_eq`, falling back
    /// to a lookup by name for records of another shape.
    pub schema: Option<Arc<Schema>>,
}

impl Scope<'_> {
    /// Any field, no schema.
    pub fn open() -> Scope<'static> {
        Scope { fields: None, schema: None }
    }
}

/// A problem in the expression text, at a byte offset into it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    pub message: String,
    /// Byte offset into the expression text where the problem is.
    pub offset: usize,
    pub hint: Option<String>,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileError {}

/// A failure while evaluating an expression on one record.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub message: String,
}

impl EvalError {
    pub fn new(message: impl Into<String>) -> EvalError {
        EvalError { message: message.into() }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

/// A compiled expression; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Expr {
    inner: Arc<Inner>,
}

struct Inner {
    text: Box<str>,
    node: Node,
    path: Option<Vec<Arc<str>>>,
    /// The top-level fields read, each once.
    fields: Box<[Arc<str>]>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.text()).finish()
    }
}

/// Compiles `text`, reporting every error found (sorted by offset), not just the first.
pub fn compile(text: &str, scope: &Scope) -> Result<Expr, Vec<CompileError>> {
    let ast = parse::parse_expr(text).map_err(|e| vec![e])?;
    let mut c = Compiler::new(text, scope);
    let node = c.expr(&ast);
    let fields = std::mem::take(&mut c.fields);
    finish(c)?;
    Ok(Expr::from_parts(text, node, field_path_of(&ast), fields))
}

fn finish(c: Compiler) -> Result<(), Vec<CompileError>> {
    let mut errors = c.errors;
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by_key(|e| e.offset);
    Err(errors)
}

impl Expr {
    fn from_parts(text: &str, node: Node, path: Option<Vec<Arc<str>>>, mut fields: Vec<Arc<str>>) -> Expr {
        fields.sort_unstable();
        fields.dedup();
        Expr { inner: Arc::new(Inner { text: text.into(), node, path, fields: fields.into() }) }
    }

    /// The top-level fields this expression reads (`a` for `a.b[1]`), sorted.
    pub fn fields(&self) -> &[Arc<str>] {
        &self.inner.fields
    }

    #[inline]
    pub fn eval(&self, record: &Record) -> Result<Value, EvalError> {
        // A bare field (keys, most arguments) cloned where the caller puts it.
        match &self.inner.node {
            Node::Field(f) => Ok(f.get(record).clone()),
            node => node.eval(record),
        }
    }

    /// For a bare top-level field (`a`, not `a.b` or `a + 1`), where it is in `schema`
    /// (`Some(None)`: absent, so NULL); None for any other expression.
    pub fn field_index(&self, schema: &Arc<Schema>) -> Option<Option<usize>> {
        self.bare_field().map(|f| f.index_in(schema))
    }

    /// The name of a bare top-level field (see [`Expr::field_index`]).
    pub fn bare_field_name(&self) -> Option<&str> {
        self.bare_field().map(|f| &*f.name)
    }

    fn bare_field(&self) -> Option<&node::FieldRef> {
        match &self.inner.node {
            Node::Field(f) if f.steps.is_empty() => Some(f),
            _ => None,
        }
    }

    /// The value of a bare top-level field, borrowed; None for any other expression.
    #[inline]
    pub fn field_value<'r>(&self, record: &'r Record) -> Option<&'r Value> {
        self.bare_field().map(|f| f.get(record))
    }

    /// Calls `f` on the expression's value: a bare field read in place (a value handed
    /// out, even a borrowed one in a `Cow`, is copied through memory, which stalls on
    /// store forwarding), anything else evaluated as by [`Expr::eval_cow`].
    #[inline]
    pub fn with_value<T>(&self, record: &Record, f: impl FnOnce(&Value) -> T) -> Result<T, EvalError> {
        match self.field_value(record) {
            Some(value) => Ok(f(value)),
            None => self.eval_cow(record).map(|value| f(&value)),
        }
    }

    /// Like [`Expr::eval`], but a bare field or a constant is borrowed, not cloned.
    #[inline]
    pub fn eval_cow<'r>(&'r self, record: &'r Record) -> Result<std::borrow::Cow<'r, Value>, EvalError> {
        use std::borrow::Cow;
        match &self.inner.node {
            Node::Field(f) => Ok(Cow::Borrowed(f.get(record))),
            Node::Const(v) => Ok(Cow::Borrowed(v)),
            other => other.eval(record).map(Cow::Owned),
        }
    }

    /// Filter semantics: true keeps; NULL and false drop; a non-bool result is an error.
    #[inline]
    pub fn eval_predicate(&self, record: &Record) -> Result<bool, EvalError> {
        match &self.inner.node {
            Node::Bool(f) => Ok(f(record)? == Some(true)),
            Node::Const(v) => predicate(v),
            Node::Field(f) => predicate(f.get(record)),
            Node::Val(f) => predicate(&f(record)?),
        }
    }

    pub fn text(&self) -> &str {
        &self.inner.text
    }

    /// Some(path) when the expression is a bare (possibly nested) field reference:
    /// `a` -> ["a"], `a.b.c` -> ["a","b","c"], `a['b']` -> ["a","b"]; otherwise None.
    pub fn field_path(&self) -> Option<&[Arc<str>]> {
        self.inner.path.as_deref()
    }
}

fn predicate(v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        other => Err(EvalError::new(format!("a filter must be a bool, got {}", other.type_name()))),
    }
}

fn field_path_of(e: &ast::Expr) -> Option<Vec<Arc<str>>> {
    let ident = |i: &ast::Ident| Arc::<str>::from(i.value.as_str());
    match e {
        ast::Expr::Identifier(id) => Some(vec![ident(id)]),
        ast::Expr::CompoundIdentifier(ids) => Some(ids.iter().map(ident).collect()),
        ast::Expr::Nested(inner) => field_path_of(inner),
        // Keywords such as `user` parse as calls without parentheses (see compile.rs).
        ast::Expr::Function(f) if matches!(f.args, ast::FunctionArguments::None) => match f.name.0.as_slice() {
            [ast::ObjectNamePart::Identifier(id)] if !id.value.eq_ignore_ascii_case("current_timestamp") => {
                Some(vec![ident(id)])
            }
            _ => None,
        },
        ast::Expr::CompoundFieldAccess { root, access_chain } => {
            let mut path = field_path_of(root)?;
            for a in access_chain {
                path.push(match a {
                    ast::AccessExpr::Dot(ast::Expr::Identifier(id)) => ident(id),
                    ast::AccessExpr::Subscript(ast::Subscript::Index {
                        index: ast::Expr::Value(ast::ValueWithSpan { value: ast::Value::SingleQuotedString(s), .. }),
                    }) => Arc::from(s.as_str()),
                    _ => return None,
                });
            }
            Some(path)
        }
        _ => None,
    }
}

/// A top-level call whose function name is not looked up in the library (aggregates in
/// `reduce: {n: count(), s: sum(bytes * 2)}`).
#[derive(Debug, Clone)]
pub struct Call {
    /// Lower-cased.
    pub name: String,
    pub name_offset: usize,
    pub args: Vec<Expr>,
}

/// Parses `name(arg, ...)` and compiles each argument as a normal expression (its
/// `text()` is the argument's own text); `count()` and `count(*)` have no arguments.
pub fn compile_call(text: &str, scope: &Scope) -> Result<Call, Vec<CompileError>> {
    let ast = parse::parse_expr(text).map_err(|e| vec![e])?;
    let not_a_call = || {
        let offset = text.len() - text.trim_start().len();
        vec![CompileError { message: "expected an aggregate call like `sum(x)`".into(), offset, hint: None }]
    };
    let ast::Expr::Function(f) = &ast else {
        return Err(not_a_call());
    };
    let [ObjectNamePart::Identifier(id)] = f.name.0.as_slice() else {
        return Err(not_a_call());
    };
    if matches!(f.args, FunctionArguments::None) {
        return Err(not_a_call());
    }
    let name = id.value.to_lowercase();
    let mut c = Compiler::new(text, scope);
    let name_offset = c.at(id.span);
    if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() || f.null_treatment.is_some() {
        return Err(vec![CompileError {
            message: format!("`{name}` with OVER/FILTER/WITHIN GROUP is not supported"),
            offset: name_offset,
            hint: None,
        }]);
    }
    let star = match &f.args {
        FunctionArguments::List(l) => {
            l.duplicate_treatment.is_none()
                && l.clauses.is_empty()
                && matches!(l.args.as_slice(), [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)])
        }
        _ => false,
    };
    let exprs = if star { Vec::new() } else { c.function_args(&f.args, &name, name_offset).unwrap_or_default() };
    let ranges = parse::split_call_args(text).filter(|r| r.len() == exprs.len());
    let mut args = Vec::with_capacity(exprs.len());
    for (i, e) in exprs.iter().enumerate() {
        let node = c.expr(e);
        let fields = std::mem::take(&mut c.fields);
        let arg_text = match &ranges {
            Some(r) => text[r[i].0..r[i].1].to_string(),
            None => e.to_string(),
        };
        args.push(Expr::from_parts(&arg_text, node, field_path_of(e), fields));
    }
    finish(c)?;
    Ok(Call { name, name_offset, args })
}

/// The parsed tree of an expression's text (what [`compile`] compiles), for
/// translations to other engines' SQL (`export/`).
pub fn parse(text: &str) -> Result<ast::Expr, CompileError> {
    parse::parse_expr(text)
}

/// The byte offset in `text` where a node of its parsed tree starts.
pub fn offset_of(text: &str, span: sqlparser::tokenizer::Span) -> usize {
    parse::LineIndex::new(text).span_start(span)
}

/// Documentation of one library function (reference docs, arity checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionDoc {
    pub name: &'static str,
    /// e.g. "substr(s, start[, len])"
    pub signature: &'static str,
    pub min_args: usize,
    pub max_args: Option<usize>,
    pub doc: &'static str,
}

/// The function library, in documentation order.
pub fn functions() -> &'static [FunctionDoc] {
    functions::docs()
}
