//! AST to closures: resolves fields against the scope, binds functions, specialises
//! common shapes (field compared with a literal, predicates kept as `Option<bool>`),
//! folds constant subexpressions and collects every compile error with its offset.

use std::sync::Arc;

use sqlparser::ast::{
    self, AccessExpr, BinaryOperator, CastKind, CeilFloorKind, DateTimeField, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, ObjectNamePart, Spanned, Subscript, TrimWhereField, UnaryOperator,
};
use sqlparser::tokenizer::Span;

use super::cast::{cast, CastTarget};
use super::functions::{self, Imp};
use super::like::{LikeCache, LikeMatcher};
use super::node::{as_bool, list_item, FieldRef, Node, Operand, Step, NULL};
use super::ops::{and3, arith, cmp_values, concat, negate, or3, sql_eq, ArithOp, CmpOp};
use super::parse::{did_you_mean, LineIndex};
use super::{CompileError, EvalError, Scope};
use crate::record::{Record, Schema, Str, Value};

pub(crate) struct Compiler<'a> {
    text: &'a str,
    scope: &'a Scope<'a>,
    lines: LineIndex<'a>,
    pub(crate) errors: Vec<CompileError>,
    /// The top-level field names read so far, in order of appearance (repeats kept).
    pub(crate) fields: Vec<Arc<str>>,
    /// Constant folding evaluates closures against a record with no fields.
    empty: Record,
}

/// A step of a nested access whose key is only known per record.
enum DynStep {
    Fixed(Step),
    Computed(Operand),
}

impl<'a> Compiler<'a> {
    pub(crate) fn new(text: &'a str, scope: &'a Scope<'a>) -> Compiler<'a> {
        Compiler {
            text,
            scope,
            lines: LineIndex::new(text),
            errors: Vec::new(),
            fields: Vec::new(),
            empty: Record::new(Schema::new(Vec::new()), Vec::new()),
        }
    }

    pub(crate) fn at(&self, span: Span) -> usize {
        self.lines.span_start(span)
    }

    /// sqlparser's spans of `SUBSTRING(x ...)`, `CAST(x ...)` and friends start at `x`;
    /// errors about the call itself point at its keyword, found by walking back over `(`.
    fn keyword_before(&self, span: Span) -> usize {
        let at = self.at(span);
        let head = self.text[..at].trim_end();
        let Some(head) = head.strip_suffix('(') else {
            return at;
        };
        let head = head.trim_end();
        let word = head.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_');
        if word.len() == head.len() {
            at
        } else {
            word.len()
        }
    }

    /// Records an error and returns a placeholder so compilation goes on to find more.
    fn error(&mut self, offset: usize, message: impl Into<String>, hint: Option<String>) -> Node {
        self.errors.push(CompileError { message: message.into(), offset, hint });
        Node::Const(Value::Null)
    }

    /// Evaluates a node whose inputs are all constants. A node that fails stays as it
    /// is: the error then belongs to the records that reach it (a `CASE` branch may never run).
    fn fold(&self, node: Node) -> Node {
        match node {
            Node::Val(_) | Node::Bool(_) => match node.eval(&self.empty) {
                Ok(v) => Node::Const(v),
                Err(_) => node,
            },
            other => other,
        }
    }

    pub(crate) fn expr(&mut self, e: &ast::Expr) -> Node {
        use ast::Expr as E;
        match e {
            E::Identifier(id) => self.field(id, &[], Vec::new()),
            E::CompoundIdentifier(ids) => match ids.split_first() {
                Some((first, rest)) => self.field(first, rest, Vec::new()),
                None => self.error(self.at(e.span()), "empty identifier", None),
            },
            E::CompoundFieldAccess { root, access_chain } => self.access(root, access_chain),
            E::Nested(inner) => self.expr(inner),
            E::Value(v) => self.literal(v),
            E::TypedString(ts) => {
                let value = self.literal(&ts.value);
                self.cast_node(value, &ts.data_type, false, self.at(ts.value.span))
            }
            E::UnaryOp { op, expr } => self.unary(*op, expr, e),
            E::BinaryOp { left, op, right } => self.binary(left, op, right, e),
            E::IsNull(x) => self.test(x, |v| Ok(v.is_null())),
            E::IsNotNull(x) => self.test(x, |v| Ok(!v.is_null())),
            E::IsUnknown(x) => self.test(x, |v| Ok(as_bool(v, "`IS UNKNOWN`")?.is_none())),
            E::IsNotUnknown(x) => self.test(x, |v| Ok(as_bool(v, "`IS NOT UNKNOWN`")?.is_some())),
            E::IsTrue(x) => self.test(x, |v| Ok(as_bool(v, "`IS TRUE`")? == Some(true))),
            E::IsNotTrue(x) => self.test(x, |v| Ok(as_bool(v, "`IS NOT TRUE`")? != Some(true))),
            E::IsFalse(x) => self.test(x, |v| Ok(as_bool(v, "`IS FALSE`")? == Some(false))),
            E::IsNotFalse(x) => self.test(x, |v| Ok(as_bool(v, "`IS NOT FALSE`")? != Some(false))),
            E::IsDistinctFrom(a, b) => self.distinct(a, b, true),
            E::IsNotDistinctFrom(a, b) => self.distinct(a, b, false),
            E::In { expr, target: ast::InTarget::List(list), negated, .. } => self.in_list(expr, list, *negated),
            E::Between { expr, negated, low, high } => self.between(expr, low, high, *negated),
            E::Like { negated, any: false, expr, pattern, escape_char } => {
                self.like(expr, pattern, escape_char.as_deref(), *negated, false)
            }
            E::ILike { negated, any: false, expr, pattern, escape_char } => {
                self.like(expr, pattern, escape_char.as_deref(), *negated, true)
            }
            E::Case { operand, conditions, else_result, .. } => {
                self.case(operand.as_deref(), conditions, else_result.as_deref())
            }
            E::Cast { kind, expr, data_type, format } => {
                if format.is_some() {
                    return self.error(self.at(e.span()), "`CAST ... FORMAT` is not supported", None);
                }
                let at = self.keyword_before(expr.span());
                let inner = self.expr(expr);
                let lenient = matches!(kind, CastKind::TryCast | CastKind::SafeCast);
                self.cast_node(inner, data_type, lenient, at)
            }
            E::Substring { expr, substring_from, substring_for, .. } => {
                let one = ast::Expr::value(ast::Value::Number("1".into(), false));
                let mut args = vec![&**expr];
                match (substring_from, substring_for) {
                    (Some(from), _) => args.push(from),
                    (None, Some(_)) => args.push(&one),
                    // `substr(s)`: left short so that the arity check reports it.
                    (None, None) => {}
                }
                args.extend(substring_for.as_deref());
                self.call("substr", self.keyword_before(expr.span()), &args)
            }
            E::Trim { trim_where, trim_what, expr, trim_characters } => {
                let name = match trim_where {
                    Some(TrimWhereField::Leading) => "ltrim",
                    Some(TrimWhereField::Trailing) => "rtrim",
                    _ => "trim",
                };
                let mut args = vec![&**expr];
                args.extend(trim_what.as_deref());
                args.extend(trim_characters.iter().flatten());
                self.call(name, self.keyword_before(expr.span()), &args)
            }
            E::Position { expr, r#in } => self.call("position", self.keyword_before(expr.span()), &[&**expr, &**r#in]),
            E::Ceil { expr, field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) } => {
                self.call("ceil", self.keyword_before(expr.span()), &[&**expr])
            }
            E::Floor { expr, field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) } => {
                self.call("floor", self.keyword_before(expr.span()), &[&**expr])
            }
            E::Function(f) => self.function(f),
            other => {
                let shown = other.to_string();
                self.error(self.at(other.span()), format!("unsupported expression `{shown}`"), None)
            }
        }
    }

    /// A record field, with literal steps below it (`a.b.c`).
    fn field(&mut self, id: &Ident, rest: &[Ident], mut steps: Vec<Step>) -> Node {
        let name = id.value.as_str();
        self.fields.push(Arc::from(name));
        if let Some(fields) = self.scope.fields {
            if !fields.iter().any(|f| &**f == name) {
                let hint = did_you_mean(name, fields.iter().map(|f| &**f));
                return self.error(self.at(id.span), format!("unknown field `{name}`"), hint);
            }
        }
        let slot = self.scope.schema.as_ref().and_then(|s| s.index_of(name).map(|i| (s.clone(), i)));
        let mut all: Vec<Step> = rest.iter().map(|i| Step::Key(Arc::from(i.value.as_str()))).collect();
        all.append(&mut steps);
        Node::Field(FieldRef::new(Arc::from(name), slot, all))
    }

    /// `root.a['k'][2]`: literal steps on a field stay a borrowed field path; anything
    /// else evaluates the root and walks the steps per record.
    fn access(&mut self, root: &ast::Expr, chain: &[AccessExpr]) -> Node {
        let mut steps = Vec::with_capacity(chain.len());
        for a in chain {
            let step = match a {
                AccessExpr::Dot(ast::Expr::Identifier(id)) => DynStep::Fixed(Step::Key(Arc::from(id.value.as_str()))),
                AccessExpr::Dot(other) => {
                    let at = self.at(other.span());
                    self.error(at, "expected a field name after `.`", None);
                    continue;
                }
                AccessExpr::Subscript(Subscript::Index { index }) => {
                    let at = self.at(index.span());
                    match self.expr(index) {
                        Node::Const(Value::Int(i)) => DynStep::Fixed(Step::Index(i)),
                        Node::Const(Value::Str(s)) => DynStep::Fixed(Step::Key(Arc::from(s.as_str()))),
                        Node::Const(Value::Null) => DynStep::Fixed(Step::Index(0)),
                        Node::Const(other) => {
                            let msg = format!("a subscript must be an int or a string, found {}", other.type_name());
                            self.error(at, msg, None);
                            continue;
                        }
                        dynamic => DynStep::Computed(dynamic.into_operand()),
                    }
                }
                AccessExpr::Subscript(Subscript::Slice { .. }) => {
                    let at = self.at(root.span());
                    self.error(at, "list slices are not supported", None);
                    continue;
                }
            };
            steps.push(step);
        }
        let all_fixed = steps.iter().all(|s| matches!(s, DynStep::Fixed(_)));
        let fixed = |steps: Vec<DynStep>| -> Vec<Step> {
            steps
                .into_iter()
                .filter_map(|s| match s {
                    DynStep::Fixed(s) => Some(s),
                    DynStep::Computed(_) => None,
                })
                .collect()
        };
        match root {
            ast::Expr::Identifier(id) if all_fixed => return self.field(id, &[], fixed(steps)),
            ast::Expr::CompoundIdentifier(ids) if all_fixed && !ids.is_empty() => {
                return self.field(&ids[0], &ids[1..], fixed(steps));
            }
            _ => {}
        }
        let base = self.expr(root);
        let foldable = base.is_const() && all_fixed;
        let base = base.into_operand();
        let node = Node::Val(Box::new(move |r| {
            base.with(r, |v| {
                let mut cur = v;
                for s in &steps {
                    cur = match s {
                        DynStep::Fixed(step) => step.apply(cur),
                        DynStep::Computed(o) => o.with(r, |k| subscript(cur, k))?,
                    };
                }
                Ok(cur.clone())
            })
        }));
        if foldable {
            self.fold(node)
        } else {
            node
        }
    }

    fn literal(&mut self, v: &ast::ValueWithSpan) -> Node {
        match &v.value {
            ast::Value::Number(s, _) => match parse_number(s) {
                Some(n) => Node::Const(n),
                None => self.error(self.at(v.span), format!("invalid number `{s}`"), None),
            },
            ast::Value::SingleQuotedString(s) => Node::Const(Value::str(s)),
            ast::Value::Boolean(b) => Node::Const(Value::Bool(*b)),
            ast::Value::Null => Node::Const(Value::Null),
            other => self.error(self.at(v.span), format!("unsupported literal `{other}`"), None),
        }
    }

    fn unary(&mut self, op: UnaryOperator, x: &ast::Expr, whole: &ast::Expr) -> Node {
        match op {
            UnaryOperator::Not => {
                let n = self.expr(x);
                let c = n.is_const();
                let f = n.into_bool("`NOT`");
                self.maybe_fold(c, Node::Bool(Box::new(move |r| Ok(f(r)?.map(|b| !b)))))
            }
            UnaryOperator::Minus => {
                // `-9223372036854775808` only fits as a whole, not as the negation of its digits.
                if let ast::Expr::Value(ast::ValueWithSpan { value: ast::Value::Number(s, _), .. }) = x {
                    if let Some(v) = parse_number(&format!("-{s}")) {
                        return Node::Const(v);
                    }
                }
                let n = self.expr(x);
                let c = n.is_const();
                let o = n.into_operand();
                self.maybe_fold(c, Node::Val(Box::new(move |r| o.with(r, negate))))
            }
            UnaryOperator::Plus => self.expr(x),
            other => self.error(self.at(whole.span()), format!("unsupported operator `{other}`"), None),
        }
    }

    fn maybe_fold(&self, all_const: bool, node: Node) -> Node {
        if all_const {
            self.fold(node)
        } else {
            node
        }
    }

    fn binary(&mut self, left: &ast::Expr, op: &BinaryOperator, right: &ast::Expr, whole: &ast::Expr) -> Node {
        use BinaryOperator as B;
        let cmp = match op {
            B::Eq => Some(CmpOp::Eq),
            B::NotEq => Some(CmpOp::NotEq),
            B::Lt => Some(CmpOp::Lt),
            B::LtEq => Some(CmpOp::LtEq),
            B::Gt => Some(CmpOp::Gt),
            B::GtEq => Some(CmpOp::GtEq),
            _ => None,
        };
        let ar = match op {
            B::Plus => Some(ArithOp::Add),
            B::Minus => Some(ArithOp::Sub),
            B::Multiply => Some(ArithOp::Mul),
            B::Divide => Some(ArithOp::Div),
            B::Modulo => Some(ArithOp::Rem),
            _ => None,
        };
        let known = cmp.is_some() || ar.is_some() || matches!(op, B::And | B::Or | B::StringConcat);
        if !known {
            let (l, r) = (self.expr(left), self.expr(right));
            drop((l, r));
            return self.error(self.at(whole.span()), format!("unsupported operator `{op}`"), None);
        }
        let l = self.expr(left);
        let r = self.expr(right);
        let all_const = l.is_const() && r.is_const();
        let node = if let Some(c) = cmp {
            comparison(c, l, r)
        } else if let Some(a) = ar {
            let (x, y) = (l.into_operand(), r.into_operand());
            Node::Val(Box::new(move |r| x.with(r, |a1| y.with(r, |b1| arith(a, a1, b1)))))
        } else if *op == B::StringConcat {
            let (x, y) = (l.into_operand(), r.into_operand());
            Node::Val(Box::new(move |r| x.with(r, |a1| y.with(r, |b1| concat(a1, b1)))))
        } else if *op == B::And {
            let (x, y) = (l.into_bool("`AND`"), r.into_bool("`AND`"));
            Node::Bool(Box::new(move |r| and3(x(r)?, || y(r))))
        } else {
            let (x, y) = (l.into_bool("`OR`"), r.into_bool("`OR`"));
            Node::Bool(Box::new(move |r| or3(x(r)?, || y(r))))
        };
        self.maybe_fold(all_const, node)
    }

    /// `x IS [NOT] NULL/TRUE/FALSE/UNKNOWN`: never NULL itself.
    fn test(&mut self, x: &ast::Expr, f: fn(&Value) -> Result<bool, EvalError>) -> Node {
        let n = self.expr(x);
        let c = n.is_const();
        let o = n.into_operand();
        self.maybe_fold(c, Node::Bool(Box::new(move |r| o.with(r, |v| f(v).map(Some)))))
    }

    fn distinct(&mut self, a: &ast::Expr, b: &ast::Expr, distinct: bool) -> Node {
        let (x, y) = (self.expr(a), self.expr(b));
        let c = x.is_const() && y.is_const();
        let (x, y) = (x.into_operand(), y.into_operand());
        let node = Node::Bool(Box::new(move |r| {
            x.with(r, |v| {
                y.with(r, |w| {
                    let same = match (v.is_null(), w.is_null()) {
                        (true, true) => true,
                        (false, false) => sql_eq(v, w)? == Some(true),
                        _ => false,
                    };
                    Ok(Some(same != distinct))
                })
            })
        }));
        self.maybe_fold(c, node)
    }

    fn in_list(&mut self, x: &ast::Expr, list: &[ast::Expr], negated: bool) -> Node {
        let needle = self.expr(x);
        let items: Vec<Node> = list.iter().map(|e| self.expr(e)).collect();
        let c = needle.is_const() && items.iter().all(Node::is_const);
        let needle = needle.into_operand();
        let items: Vec<Operand> = items.into_iter().map(Node::into_operand).collect();
        let node = Node::Bool(Box::new(move |r| {
            needle.with(r, |v| {
                if v.is_null() {
                    return Ok(None);
                }
                let mut saw_null = false;
                for it in &items {
                    match it.with(r, |w| sql_eq(v, w))? {
                        Some(true) => return Ok(Some(!negated)),
                        Some(false) => {}
                        None => saw_null = true,
                    }
                }
                // SQL: no match but a NULL in the list means "unknown".
                Ok(if saw_null { None } else { Some(negated) })
            })
        }));
        self.maybe_fold(c, node)
    }

    fn between(&mut self, x: &ast::Expr, low: &ast::Expr, high: &ast::Expr, negated: bool) -> Node {
        let (x, lo, hi) = (self.expr(x), self.expr(low), self.expr(high));
        let c = x.is_const() && lo.is_const() && hi.is_const();
        let (x, lo, hi) = (x.into_operand(), lo.into_operand(), hi.into_operand());
        let node = Node::Bool(Box::new(move |r| {
            x.with(r, |v| {
                let above = lo.with(r, |l| cmp_values(CmpOp::GtEq, v, l))?;
                let within = and3(above, || hi.with(r, |h| cmp_values(CmpOp::LtEq, v, h)))?;
                Ok(within.map(|b| b != negated))
            })
        }));
        self.maybe_fold(c, node)
    }

    fn like(
        &mut self,
        x: &ast::Expr,
        pattern: &ast::Expr,
        escape: Option<&ast::Expr>,
        negated: bool,
        ci: bool,
    ) -> Node {
        let what = if ci { "`ILIKE`" } else { "`LIKE`" };
        let subject = self.expr(x);
        let escape_char = match escape {
            None => None,
            Some(e) => match self.expr(e) {
                Node::Const(Value::Str(s)) if s.chars().count() == 1 => s.chars().next(),
                _ => {
                    let at = self.at(e.span());
                    self.error(at, "the escape of `LIKE` must be a single-character string literal", None);
                    None
                }
            },
        };
        let pat_at = self.at(pattern.span());
        let pat = self.expr(pattern);
        let c = subject.is_const() && pat.is_const();
        let subject = subject.into_operand();
        let test = move |m: &LikeMatcher, v: &Value| match v {
            Value::Null => Ok(None),
            Value::Str(s) => Ok(Some(m.is_match(s) != negated)),
            other => Err(EvalError::new(format!("{what} expects a string, got {}", other.type_name()))),
        };
        let node = match pat {
            Node::Const(Value::Str(p)) => match LikeMatcher::new(&p, escape_char, ci) {
                Ok(m) => Node::Bool(Box::new(move |r| subject.with(r, |v| test(&m, v)))),
                Err(msg) => return self.error(pat_at, msg, None),
            },
            Node::Const(Value::Null) => return Node::Const(Value::Null),
            Node::Const(other) => {
                return self.error(
                    pat_at,
                    format!("{what} pattern must be a string, found {}", other.type_name()),
                    None,
                )
            }
            dynamic => {
                let p = dynamic.into_operand();
                let cache = LikeCache::default();
                Node::Bool(Box::new(move |r| {
                    p.with(r, |pv| match pv {
                        Value::Null => Ok(None),
                        Value::Str(ps) => {
                            let m = cache.get(ps, escape_char, ci).map_err(EvalError::new)?;
                            subject.with(r, |v| test(&m, v))
                        }
                        other => {
                            Err(EvalError::new(format!("{what} pattern must be a string, got {}", other.type_name())))
                        }
                    })
                }))
            }
        };
        self.maybe_fold(c, node)
    }

    fn case(&mut self, operand: Option<&ast::Expr>, whens: &[ast::CaseWhen], else_: Option<&ast::Expr>) -> Node {
        let operand = operand.map(|o| self.expr(o).into_operand());
        let mut conds: Vec<(Node, Node)> = Vec::with_capacity(whens.len());
        for w in whens {
            let cond = self.expr(&w.condition);
            let result = self.expr(&w.result);
            conds.push((cond, result));
        }
        let else_ = else_.map_or(Node::Const(Value::Null), |e| self.expr(e)).into_operand();
        match operand {
            Some(subject) => {
                let arms: Vec<(Operand, Operand)> =
                    conds.into_iter().map(|(c, r)| (c.into_operand(), r.into_operand())).collect();
                Node::Val(Box::new(move |r| {
                    subject.with(r, |v| {
                        for (when, then) in &arms {
                            if when.with(r, |w| sql_eq(v, w))? == Some(true) {
                                return then.eval(r);
                            }
                        }
                        else_.eval(r)
                    })
                }))
            }
            None => {
                let arms: Vec<_> =
                    conds.into_iter().map(|(c, r)| (c.into_bool("`CASE WHEN`"), r.into_operand())).collect();
                Node::Val(Box::new(move |r| {
                    for (when, then) in &arms {
                        if when(r)? == Some(true) {
                            return then.eval(r);
                        }
                    }
                    else_.eval(r)
                }))
            }
        }
    }

    fn cast_node(&mut self, inner: Node, data_type: &ast::DataType, lenient: bool, at: usize) -> Node {
        let target = match CastTarget::from_sql(data_type) {
            Ok(target) => target,
            Err(message) => {
                let hint = Some(
                    "supported types: BIGINT, INT, SMALLINT, TINYINT, DOUBLE, DECIMAL[(p,s)], VARCHAR, STRING, BOOLEAN, TIMESTAMP"
                        .into(),
                );
                return self.error(at, message, hint);
            }
        };
        let c = inner.is_const();
        let o = inner.into_operand();
        let node = if lenient {
            Node::Val(Box::new(move |r| o.with(r, |v| Ok(cast(v, target).unwrap_or(Value::Null)))))
        } else {
            Node::Val(Box::new(move |r| o.with(r, |v| cast(v, target))))
        };
        self.maybe_fold(c, node)
    }

    fn function(&mut self, f: &ast::Function) -> Node {
        let at = self.at(f.name.span());
        let (name, ident) = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(id)] => (id.value.to_lowercase(), id),
            _ => return self.error(at, format!("unknown function `{}`", f.name), None),
        };
        // sqlparser reads SQL keywords such as `user` without parentheses as calls;
        // for us a bare word is a field unless it is a known niladic function.
        if matches!(f.args, FunctionArguments::None) && name != "current_timestamp" {
            return self.field(ident, &[], Vec::new());
        }
        if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() || f.null_treatment.is_some() {
            return self.error(at, format!("`{name}` with OVER/FILTER/WITHIN GROUP is not supported"), None);
        }
        let args = match self.function_args(&f.args, &name, at) {
            Some(a) => a,
            None => return Node::Const(Value::Null),
        };
        self.call(&name, at, &args)
    }

    /// The plain argument expressions of a call; `None` after reporting an error.
    pub(crate) fn function_args<'e>(
        &mut self,
        args: &'e FunctionArguments,
        name: &str,
        at: usize,
    ) -> Option<Vec<&'e ast::Expr>> {
        let list = match args {
            FunctionArguments::None => return Some(Vec::new()),
            FunctionArguments::Subquery(_) => {
                self.error(at, "subqueries are not supported", None);
                return None;
            }
            FunctionArguments::List(l) => l,
        };
        if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
            self.error(at, format!("`{name}` does not take DISTINCT, ORDER BY or other clauses"), None);
            return None;
        }
        let mut out = Vec::with_capacity(list.args.len());
        for a in &list.args {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => out.push(e),
                FunctionArg::Unnamed(_) => {
                    self.error(at, "`*` is only allowed in `count(*)`", None);
                    return None;
                }
                _ => {
                    self.error(at, "named arguments are not supported", None);
                    return None;
                }
            }
        }
        Some(out)
    }

    fn call(&mut self, name: &str, at: usize, args: &[&ast::Expr]) -> Node {
        let Some(def) = functions::lookup(name) else {
            let hint = did_you_mean(name, functions::docs().iter().map(|d| d.name));
            self.error(at, format!("unknown function `{name}`"), hint);
            // Still compile the arguments so their errors are reported too.
            for a in args {
                self.expr(a);
            }
            return Node::Const(Value::Null);
        };
        let n = args.len();
        if n < def.doc.min_args || def.doc.max_args.is_some_and(|m| n > m) {
            let msg = format!("function `{name}` takes {}, got {n}", arity(def.doc.min_args, def.doc.max_args));
            let hint = Some(format!("usage: {}", def.doc.signature));
            self.error(at, msg, hint);
            for a in args {
                self.expr(a);
            }
            return Node::Const(Value::Null);
        }
        let nodes: Vec<Node> = args.iter().map(|a| self.expr(a)).collect();
        let all_const = nodes.iter().all(Node::is_const);
        // Strict functions with a literal NULL argument are NULL whatever the record.
        if def.strict && nodes.iter().any(|n| matches!(n, Node::Const(Value::Null))) {
            return Node::Const(Value::Null);
        }
        let mut regex = None;
        if let Imp::Special(s) = def.imp {
            if s.takes_regex() {
                if let Some(Node::Const(v)) = nodes.get(1) {
                    match v {
                        Value::Str(p) => match regex::Regex::new(p) {
                            Ok(re) => regex = Some(re),
                            Err(e) => {
                                let at = self.at(args[1].span());
                                return self.error(
                                    at,
                                    format!("invalid regular expression: {}", first_line(&e.to_string())),
                                    None,
                                );
                            }
                        },
                        other => {
                            let at = self.at(args[1].span());
                            let msg =
                                format!("function `{name}` expects a string pattern, found {}", other.type_name());
                            return self.error(at, msg, None);
                        }
                    }
                }
            }
        }
        let node = functions::build(&def, nodes, regex);
        self.maybe_fold(all_const && def.pure, node)
    }
}

fn first_line(s: &str) -> String {
    // regex errors are multi-line drawings of the pattern; keep the gist.
    s.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map_or_else(|| s.to_string(), |l| l.trim_start_matches("error: ").to_string())
}

fn arity(min: usize, max: Option<usize>) -> String {
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    match max {
        Some(0) => "no arguments".to_string(),
        Some(m) if m == min => format!("{m} {}", plural(m)),
        Some(m) if m == min + 1 => format!("{min} or {m} arguments"),
        Some(m) => format!("{min} to {m} arguments"),
        None => format!("at least {min} {}", plural(min)),
    }
}

/// Integers without '.' or an exponent that fit i64 are ints; everything else a float.
fn parse_number(s: &str) -> Option<Value> {
    if !s.contains(['.', 'e', 'E']) {
        if let Ok(i) = s.parse::<i64>() {
            return Some(Value::Int(i));
        }
    }
    s.parse::<f64>().ok().map(Value::Float)
}

/// `field <op> int literal`, one closure per operator so that the int case is a single
/// inlined compare; other value types take the general path.
fn field_vs_int(op: CmpOp, f: FieldRef, k: i64) -> Node {
    macro_rules! with_op {
        ($cmp:tt) => {
            Node::Bool(Box::new(move |r| match f.get(r) {
                Value::Int(x) => Ok(Some(*x $cmp k)),
                other => cmp_values(op, other, &Value::Int(k)),
            }))
        };
    }
    match op {
        CmpOp::Eq => with_op!(==),
        CmpOp::NotEq => with_op!(!=),
        CmpOp::Lt => with_op!(<),
        CmpOp::LtEq => with_op!(<=),
        CmpOp::Gt => with_op!(>),
        CmpOp::GtEq => with_op!(>=),
    }
}

/// `field = 'text'` and `field <> 'text'`: a string field compared by its bytes, without
/// the general comparison's dispatch; other value types take the general path.
fn field_equals_str(negated: bool, f: FieldRef, k: Str) -> Node {
    let constant = Value::Str(k.clone());
    let op = if negated { CmpOp::NotEq } else { CmpOp::Eq };
    Node::Bool(Box::new(move |r| match f.get(r) {
        Value::Str(x) => Ok(Some((x.as_str() == k.as_str()) != negated)),
        other => cmp_values(op, other, &constant),
    }))
}

/// `v[k]` with a run-time key: ints index lists (1-based), strings read map entries.
fn subscript<'v>(v: &'v Value, k: &Value) -> Result<&'v Value, EvalError> {
    Ok(match (v, k) {
        (Value::List(items), Value::Int(i)) => list_item(items, *i),
        (Value::Map(_), Value::Str(key)) => v.get_field(key).unwrap_or(&NULL),
        (_, Value::Int(_) | Value::Str(_) | Value::Null) => &NULL,
        (_, other) => {
            return Err(EvalError::new(format!("a subscript must be an int or a string, got {}", other.type_name())))
        }
    })
}

/// Comparison node; `field <op> literal` reads the field by reference with no
/// operand dispatch, the shape of most filters.
fn comparison(op: CmpOp, l: Node, r: Node) -> Node {
    match (l.into_operand(), r.into_operand()) {
        (Operand::Field(f), Operand::Const(Value::Int(k))) => field_vs_int(op, f, k),
        (Operand::Const(Value::Int(k)), Operand::Field(f)) => field_vs_int(op.flip(), f, k),
        (Operand::Field(f), Operand::Const(Value::Str(k))) if matches!(op, CmpOp::Eq | CmpOp::NotEq) => {
            field_equals_str(op == CmpOp::NotEq, f, k)
        }
        (Operand::Const(Value::Str(k)), Operand::Field(f)) if matches!(op, CmpOp::Eq | CmpOp::NotEq) => {
            field_equals_str(op == CmpOp::NotEq, f, k)
        }
        (Operand::Field(f), Operand::Const(c)) => Node::Bool(Box::new(move |r| cmp_values(op, f.get(r), &c))),
        (Operand::Const(c), Operand::Field(f)) => Node::Bool(Box::new(move |r| cmp_values(op, &c, f.get(r)))),
        (a, b) => Node::Bool(Box::new(move |r| a.with(r, |x| b.with(r, |y| cmp_values(op, x, y))))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::expr::{compile, compile_call, CompileError, Scope};
    use crate::record::{Record, Schema, Value};

    fn rec() -> Record {
        let payload = Value::from_json(
            serde_json::from_str(r#"{"user":{"id":7,"name":"Ann"},"tags":["a","b"],"n":null}"#).unwrap(),
        );
        Record::from_pairs(vec![
            ("status", Value::Int(200)),
            ("bytes", Value::Int(1500)),
            ("ratio", Value::Float(0.5)),
            ("url", Value::str("/Api/X")),
            ("name", Value::str("bob")),
            ("ok", Value::Bool(true)),
            ("nothing", Value::Null),
            ("ts", Value::Timestamp(1000)),
            ("payload", payload),
            ("tags", Value::List(Arc::new(vec![Value::str("x"), Value::str("y")]))),
            ("odd name", Value::Int(3)),
            ("i", Value::Int(2)),
            ("k", Value::str("user")),
        ])
    }

    fn eval(text: &str) -> Value {
        let e = compile(text, &Scope::open()).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        e.eval(&rec()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn eval_err(text: &str) -> String {
        let e = compile(text, &Scope::open()).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        e.eval(&rec()).expect_err(text).message
    }

    fn errs(text: &str, scope: &Scope) -> Vec<CompileError> {
        compile(text, scope).expect_err(text)
    }

    fn b(x: bool) -> Value {
        Value::Bool(x)
    }

    fn s(x: &str) -> Value {
        Value::str(x)
    }

    #[test]
    fn literals() {
        assert_eq!(eval("42"), Value::Int(42));
        assert_eq!(eval("-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(eval("1.5e3"), Value::Float(1500.0));
        assert_eq!(eval("2.0"), Value::Float(2.0));
        assert_eq!(eval("99999999999999999999"), Value::Float(1e20));
        assert_eq!(eval("'it''s'"), s("it's"));
        assert_eq!(eval("TRUE"), b(true));
        assert_eq!(eval("false"), b(false));
        assert_eq!(eval("NULL"), Value::Null);
        assert_eq!(eval("TIMESTAMP '1970-01-01 00:00:02'"), Value::Timestamp(2000));
    }

    #[test]
    fn fields_and_nesting() {
        assert_eq!(eval("status"), Value::Int(200));
        assert_eq!(eval("\"odd name\""), Value::Int(3));
        assert_eq!(eval("missing"), Value::Null);
        assert_eq!(eval("payload.user.id"), Value::Int(7));
        assert_eq!(eval("payload.user.nope"), Value::Null);
        assert_eq!(eval("payload.tags[2]"), s("b"));
        assert_eq!(eval("payload['user']['name']"), s("Ann"));
        assert_eq!(eval("payload[k].id"), Value::Int(7));
        assert_eq!(eval("tags[1]"), s("x"));
        assert_eq!(eval("tags[0]"), Value::Null);
        assert_eq!(eval("tags[3]"), Value::Null);
        assert_eq!(eval("tags[i]"), s("y"));
        assert_eq!(eval("status.x"), Value::Null);
        assert_eq!(eval("json_parse('{\"a\":[5,6]}').a[2]"), Value::Int(6));
        assert_eq!(eval_err("tags[ratio]"), "a subscript must be an int or a string, got float");
    }

    #[test]
    fn fields_read() {
        let fields =
            |t: &str| compile(t, &Scope::open()).unwrap().fields().iter().map(|f| f.to_string()).collect::<Vec<_>>();
        assert_eq!(fields("status = 200 AND bytes > status"), ["bytes", "status"]);
        assert_eq!(fields("payload.user.id"), ["payload"]);
        assert_eq!(fields("tags[i] || lower(\"odd name\")"), ["i", "odd name", "tags"]);
        assert_eq!(fields("CASE WHEN x > 0 THEN CAST(y AS INT) ELSE coalesce(z, 1) END"), ["x", "y", "z"]);
        assert_eq!(fields("1 + 2"), Vec::<String>::new());
        let call = crate::expr::compile_call("sum(a * b)", &Scope::open()).unwrap();
        assert_eq!(call.args[0].fields().iter().map(|f| f.to_string()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn field_paths() {
        let path = |t: &str| {
            compile(t, &Scope::open())
                .unwrap()
                .field_path()
                .map(|p| p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(path("a"), Some(vec!["a".to_string()]));
        assert_eq!(path("a.b.c"), Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(path("a['b']"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(path("a[1]"), None);
        assert_eq!(path("a + 1"), None);
        assert_eq!(path("lower(a)"), None);
    }

    #[test]
    fn comparisons() {
        assert_eq!(eval("status = 200"), b(true));
        assert_eq!(eval("200 = status"), b(true));
        assert_eq!(eval("status <> 200"), b(false));
        assert_eq!(eval("status != 404"), b(true));
        assert_eq!(eval("bytes > 1000"), b(true));
        assert_eq!(eval("bytes >= 1500"), b(true));
        assert_eq!(eval("bytes < 1500"), b(false));
        assert_eq!(eval("bytes <= 1500.0"), b(true));
        assert_eq!(eval("1 = 1.0"), b(true));
        assert_eq!(eval("ratio < 1"), b(true));
        assert_eq!(eval("name > 'alice'"), b(true));
        assert_eq!(eval("ok = TRUE"), b(true));
        assert_eq!(eval("ts > TIMESTAMP '1970-01-01 00:00:00'"), b(true));
        assert_eq!(eval("nothing = 1"), Value::Null);
        assert_eq!(eval("status = nothing"), Value::Null);
        assert_eq!(eval("bytes = status"), b(false));
        assert_eq!(eval_err("name = 1"), "cannot compare string with int");
        assert_eq!(eval_err("status > url"), "cannot compare int with string");
    }

    #[test]
    fn logic_is_three_valued() {
        assert_eq!(eval("status = 200 AND bytes > 1000"), b(true));
        assert_eq!(eval("nothing = 1 AND FALSE"), b(false));
        assert_eq!(eval("nothing = 1 AND TRUE"), Value::Null);
        assert_eq!(eval("nothing = 1 OR TRUE"), b(true));
        assert_eq!(eval("nothing = 1 OR FALSE"), Value::Null);
        assert_eq!(eval("NOT ok"), b(false));
        assert_eq!(eval("NOT (nothing = 1)"), Value::Null);
        assert_eq!(eval("FALSE AND status"), b(false));
        assert_eq!(eval_err("status AND ok"), "`AND` expects a bool, got int");
        assert_eq!(eval_err("FALSE OR name"), "`OR` expects a bool, got string");
        assert_eq!(eval("ok OR name"), b(true));
        assert_eq!(eval_err("NOT name"), "`NOT` expects a bool, got string");
    }

    #[test]
    fn arithmetic() {
        assert_eq!(eval("bytes + 1"), Value::Int(1501));
        assert_eq!(eval("bytes - 2 * 3"), Value::Int(1494));
        assert_eq!(eval("7 / 2"), Value::Int(3));
        assert_eq!(eval("-7 / 2"), Value::Int(-3));
        assert_eq!(eval("7 % 3"), Value::Int(1));
        assert_eq!(eval("bytes / 1000.0"), Value::Float(1.5));
        assert_eq!(eval("ratio * 2"), Value::Float(1.0));
        assert_eq!(eval("-bytes"), Value::Int(-1500));
        assert_eq!(eval("+bytes"), Value::Int(1500));
        assert_eq!(eval("-ratio"), Value::Float(-0.5));
        assert_eq!(eval("nothing + 1"), Value::Null);
        assert_eq!(eval("ts + 500"), Value::Timestamp(1500));
        assert_eq!(eval_err("bytes / 0"), "division by zero");
        assert_eq!(eval_err("bytes % 0"), "division by zero");
        assert_eq!(eval_err("ratio / 0.0"), "division by zero");
        assert_eq!(eval_err("9223372036854775807 + status"), "integer overflow in `+`");
        assert_eq!(eval_err("name * 2"), "cannot apply `*` to string and int");
        assert_eq!(eval("name || '-' || status"), s("bob-200"));
        assert_eq!(eval("name || nothing"), Value::Null);
        assert_eq!(eval("'r=' || ratio"), s("r=0.5"));
    }

    #[test]
    fn predicates_of_sql() {
        assert_eq!(eval("status IN (200, 304)"), b(true));
        assert_eq!(eval("status IN (404, 500)"), b(false));
        assert_eq!(eval("status NOT IN (404, 500)"), b(true));
        assert_eq!(eval("status IN (404, NULL)"), Value::Null);
        assert_eq!(eval("status IN (200, NULL)"), b(true));
        assert_eq!(eval("nothing IN (1)"), Value::Null);
        assert_eq!(eval("status IN (bytes, 200.0)"), b(true));
        assert_eq!(eval("bytes BETWEEN 1000 AND 2000"), b(true));
        assert_eq!(eval("bytes NOT BETWEEN 1000 AND 2000"), b(false));
        assert_eq!(eval("bytes BETWEEN 1 AND nothing"), Value::Null);
        assert_eq!(eval("bytes BETWEEN 2000 AND nothing"), b(false));
        assert_eq!(eval("nothing IS NULL"), b(true));
        assert_eq!(eval("status IS NOT NULL"), b(true));
        assert_eq!(eval("ok IS TRUE"), b(true));
        assert_eq!(eval("nothing IS NOT TRUE"), b(true));
        assert_eq!(eval("ok IS FALSE"), b(false));
        assert_eq!(eval("nothing IS NOT FALSE"), b(true));
        assert_eq!(eval("nothing IS UNKNOWN"), b(true));
        assert_eq!(eval_err("status IS TRUE"), "`IS TRUE` expects a bool, got int");
        assert_eq!(eval("nothing IS DISTINCT FROM 1"), b(true));
        assert_eq!(eval("nothing IS NOT DISTINCT FROM NULL"), b(true));
        assert_eq!(eval("status IS DISTINCT FROM 200.0"), b(false));
    }

    #[test]
    fn like_and_ilike() {
        assert_eq!(eval("url LIKE '/Api/%'"), b(true));
        assert_eq!(eval("url LIKE '/api/%'"), b(false));
        assert_eq!(eval("url ILIKE '/api/%'"), b(true));
        assert_eq!(eval("url NOT ILIKE '/api/%'"), b(false));
        assert_eq!(eval("url LIKE '%X'"), b(true));
        assert_eq!(eval("name LIKE 'b_b'"), b(true));
        assert_eq!(eval("name NOT LIKE 'b%'"), b(false));
        assert_eq!(eval("'50%' LIKE '50!%' ESCAPE '!'"), b(true));
        assert_eq!(eval("'505' LIKE '50!%' ESCAPE '!'"), b(false));
        assert_eq!(eval("nothing LIKE 'a%'"), Value::Null);
        assert_eq!(eval("name LIKE nothing"), Value::Null);
        assert_eq!(eval("name LIKE k || '%'"), b(false));
        assert_eq!(eval("'userX' LIKE k || '%'"), b(true));
        assert_eq!(eval_err("status LIKE '2%'"), "`LIKE` expects a string, got int");
    }

    #[test]
    fn case_and_cast() {
        assert_eq!(eval("CASE WHEN status >= 500 THEN 'err' WHEN status >= 200 THEN 'ok' END"), s("ok"));
        assert_eq!(eval("CASE WHEN status > 500 THEN 'err' END"), Value::Null);
        assert_eq!(eval("CASE WHEN nothing THEN 1 ELSE 2 END"), Value::Int(2));
        assert_eq!(eval("CASE status WHEN 404 THEN 'nf' WHEN 200 THEN 'ok' ELSE '?' END"), s("ok"));
        assert_eq!(eval("CASE nothing WHEN NULL THEN 'null' ELSE 'else' END"), s("else"));
        assert_eq!(eval("CASE WHEN TRUE THEN 1 ELSE 1 / 0 END"), Value::Int(1));
        assert_eq!(eval_err("CASE WHEN status THEN 1 END"), "`CASE WHEN` expects a bool, got int");
        assert_eq!(eval("CAST('42' AS BIGINT)"), Value::Int(42));
        assert_eq!(eval("CAST(ratio AS INT)"), Value::Int(0));
        assert_eq!(eval("CAST(2.9 AS INTEGER)"), Value::Int(2));
        assert_eq!(eval("CAST(status AS DOUBLE)"), Value::Float(200.0));
        assert_eq!(eval("CAST(status AS DECIMAL(10, 2))"), Value::Float(200.0));
        assert_eq!(eval("CAST(status AS VARCHAR)"), s("200"));
        assert_eq!(eval("CAST(status AS STRING)"), s("200"));
        assert_eq!(eval("CAST('true' AS BOOLEAN)"), b(true));
        assert_eq!(eval("CAST('1970-01-01T00:00:01Z' AS TIMESTAMP)"), Value::Timestamp(1000));
        assert_eq!(eval("CAST(5000 AS TIMESTAMP)"), Value::Timestamp(5000));
        assert_eq!(eval("CAST(nothing AS BIGINT)"), Value::Null);
        assert_eq!(eval("TRY_CAST(name AS BIGINT)"), Value::Null);
        assert_eq!(eval_err("CAST(name AS BIGINT)"), "cannot cast string 'bob' to BIGINT");
        assert_eq!(eval_err("CAST('abc' AS BIGINT)"), "cannot cast string 'abc' to BIGINT");
    }

    #[test]
    fn special_syntax_functions() {
        assert_eq!(eval("SUBSTRING(name FROM 2 FOR 1)"), s("o"));
        assert_eq!(eval("SUBSTRING(name FROM 2)"), s("ob"));
        assert_eq!(eval("substring(name, 1, 2)"), s("bo"));
        assert_eq!(eval("substr(name, 2)"), s("ob"));
        assert_eq!(eval("TRIM('  a  ')"), s("a"));
        assert_eq!(eval("TRIM(BOTH 'x' FROM 'xxaxx')"), s("a"));
        assert_eq!(eval("TRIM(LEADING 'x' FROM 'xxaxx')"), s("axx"));
        assert_eq!(eval("TRIM(TRAILING 'x' FROM 'xxaxx')"), s("xxa"));
        assert_eq!(eval("POSITION('b' IN name)"), Value::Int(1));
        assert_eq!(eval("CEIL(ratio)"), Value::Float(1.0));
        assert_eq!(eval("FLOOR(ratio)"), Value::Float(0.0));
        assert!(matches!(eval("CURRENT_TIMESTAMP"), Value::Timestamp(_)));
    }

    #[test]
    fn library_functions() {
        assert_eq!(eval("lower(url)"), s("/api/x"));
        assert_eq!(eval("UPPER(name)"), s("BOB"));
        assert_eq!(eval("length(name)"), Value::Int(3));
        assert_eq!(eval("length(tags)"), Value::Int(2));
        assert_eq!(eval("ltrim('  a ')"), s("a "));
        assert_eq!(eval("rtrim(' a  ')"), s(" a"));
        assert_eq!(eval("replace(url, 'X', 'Y')"), s("/Api/Y"));
        assert_eq!(eval("concat(name, '-', status)"), s("bob-200"));
        assert_eq!(eval("concat(name, nothing)"), Value::Null);
        assert_eq!(eval("split('a,b', ',')"), Value::List(Arc::new(vec![s("a"), s("b")])));
        assert_eq!(eval("split('a,b', ',')[2]"), s("b"));
        assert_eq!(eval("split_index('https://x.com/a/b', '/', 3)"), s("a"));
        assert_eq!(eval("split_index('a/b', '/', 5)"), Value::Null);
        assert_eq!(eval("split_index('a::b::c', '::', 2)"), s("c"));
        assert_eq!(eval("split_index('aébéc', 'é', 1)"), s("b"));
        assert_eq!(eval("split('x--y-z', '--')"), Value::List(Arc::new(vec![s("x"), s("y-z")])));
        assert_eq!(eval("regexp_extract(url, '/(\\w+)/', 1)"), s("Api"));
        assert_eq!(eval("regexp_extract(url, '[0-9]+')"), Value::Null);
        assert_eq!(eval("regexp_extract(url, '/A(p)i')"), s("/Api"));
        assert_eq!(eval("regexp_replace(url, '[A-Z]', '_')"), s("/_pi/_"));
        assert_eq!(eval("regexp_replace(name, '(b)', '<$1>')"), s("<b>o<b>"));
        assert_eq!(eval("regexp_like(url, '^/Api')"), b(true));
        assert_eq!(eval("regexp_like(name, k)"), b(false));
        assert_eq!(eval("regexp_like(nothing, 'x')"), Value::Null);
        assert_eq!(eval_err("regexp_like(name, k || '(')").split(':').next(), Some("invalid regular expression"));
        assert_eq!(eval("starts_with(url, '/Api')"), b(true));
        assert_eq!(eval("ends_with(url, 'Y')"), b(false));
        assert_eq!(eval("abs(-3)"), Value::Int(3));
        assert_eq!(eval("round(2.567, 2)"), Value::Float(2.57));
        assert_eq!(eval("floor(2.5)"), Value::Float(2.0));
        assert_eq!(eval("ceiling(2.1)"), Value::Float(3.0));
        assert_eq!(eval("power(2, 3)"), Value::Float(8.0));
        assert_eq!(eval("sqrt(16)"), Value::Float(4.0));
        assert_eq!(eval("mod(7, 3)"), Value::Int(1));
        assert_eq!(eval_err("mod(status, 0)"), "division by zero");
        assert_eq!(eval("coalesce(nothing, NULL, name, 'z')"), s("bob"));
        assert_eq!(eval("coalesce(nothing)"), Value::Null);
        assert_eq!(eval("coalesce(name, 1 / 0)"), s("bob"));
        assert_eq!(eval("nullif(status, 200)"), Value::Null);
        assert_eq!(eval("nullif(status, 404)"), Value::Int(200));
        assert_eq!(eval("nullif(nothing, 1)"), Value::Null);
        assert_eq!(eval("if(status = 200, 'ok', 1 / 0)"), s("ok"));
        assert_eq!(eval("if(nothing = 1, 'yes', 'no')"), s("no"));
        assert_eq!(eval("greatest(1, bytes, 3.5)"), Value::Int(1500));
        assert_eq!(eval("least(1, bytes, 0.5)"), Value::Float(0.5));
        assert_eq!(eval("greatest(1, nothing)"), Value::Null);
        assert!(matches!(eval("now()"), Value::Timestamp(t) if t > 1_600_000_000_000));
        assert_eq!(eval("to_timestamp(1500)"), Value::Timestamp(1500));
        assert_eq!(eval("to_timestamp('1970-01-01 00:00:02')"), Value::Timestamp(2000));
        assert_eq!(eval("to_timestamp('02/01/1970', '%d/%m/%Y')"), Value::Timestamp(86_400_000));
        assert_eq!(eval("date_format(ts, '%Y-%m-%d %H:%M:%S')"), s("1970-01-01 00:00:01"));
        assert_eq!(eval("unix_timestamp(ts)"), Value::Int(1));
        assert_eq!(eval("epoch_millis(ts)"), Value::Int(1000));
        assert_eq!(eval("json_parse('[1, \"a\"]')"), Value::List(Arc::new(vec![Value::Int(1), s("a")])));
        assert_eq!(eval("to_json(payload.user)"), s(r#"{"id":7,"name":"Ann"}"#));
        assert_eq!(eval("typeof(ratio)"), s("float"));
        assert_eq!(eval("lower(nothing)"), Value::Null);
        assert!(eval_err("json_parse(name)").starts_with("function `json_parse`: invalid JSON"));
        assert_eq!(eval_err("upper(status)"), "function `upper` expects a string, got int");
    }

    #[test]
    fn constants_are_folded() {
        let e = compile("1 + 2 * 3", &Scope::open()).unwrap();
        assert!(matches!(e.inner.node, crate::expr::node::Node::Const(Value::Int(7))));
        let e = compile("upper('a') || 'b'", &Scope::open()).unwrap();
        assert!(matches!(&e.inner.node, crate::expr::node::Node::Const(Value::Str(s)) if &**s == "Ab"));
        // Failing constants stay for run time, where only records that reach them fail.
        let e = compile("1 / 0", &Scope::open()).unwrap();
        assert!(e.eval(&rec()).is_err());
        let e = compile("now()", &Scope::open()).unwrap();
        assert!(!matches!(e.inner.node, crate::expr::node::Node::Const(_)));
    }

    #[test]
    fn eval_predicate_semantics() {
        let r = rec();
        let p = |t: &str| compile(t, &Scope::open()).unwrap().eval_predicate(&r);
        assert_eq!(p("status = 200"), Ok(true));
        assert_eq!(p("status = 1"), Ok(false));
        assert_eq!(p("nothing = 1"), Ok(false));
        assert_eq!(p("ok"), Ok(true));
        assert_eq!(p("nothing"), Ok(false));
        assert_eq!(p("if(ok, TRUE, FALSE)"), Ok(true));
        assert_eq!(p("status").unwrap_err().message, "a filter must be a bool, got int");
        assert_eq!(p("'x'").unwrap_err().message, "a filter must be a bool, got string");
    }

    #[test]
    fn schema_fast_path_and_fallback() {
        let schema = Schema::from_names(&["a", "b"]);
        let names = schema.names().to_vec();
        let scope = Scope { fields: Some(&names), schema: Some(schema.clone()) };
        let e = compile("b * 10 + a", &scope).unwrap();
        let same = Record::new(schema.clone(), vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(e.eval(&same).unwrap(), Value::Int(21));
        // A thread's twin of the schema takes the compiled slots too.
        let twin = Record::new(schema.twin(), vec![Value::Int(5), Value::Int(6)]);
        assert_eq!(e.eval(&twin).unwrap(), Value::Int(65));
        // Same names in another order and another Arc: found by name.
        let other = Record::from_pairs(vec![("b", Value::Int(3)), ("a", Value::Int(4))]);
        assert_eq!(e.eval(&other).unwrap(), Value::Int(34));
        let missing = Record::from_pairs(vec![("b", Value::Int(3))]);
        assert_eq!(e.eval(&missing).unwrap(), Value::Null);
        let p = compile("a = 1", &scope).unwrap();
        assert_eq!(p.eval_predicate(&same), Ok(true));
        assert_eq!(p.eval_predicate(&other), Ok(false));
        // A field outside the schema (allowed when fields is None) is looked up by name.
        let open = Scope { fields: None, schema: Some(schema.clone()) };
        let e = compile("c", &open).unwrap();
        assert_eq!(e.eval(&Record::from_pairs(vec![("c", Value::Int(9))])).unwrap(), Value::Int(9));
        assert_eq!(e.eval(&same).unwrap(), Value::Null);
    }

    #[test]
    fn unknown_fields_and_functions_have_offsets_and_hints() {
        let names: Vec<Arc<str>> = ["url", "status"].iter().map(|s| Arc::from(*s)).collect();
        let scope = Scope { fields: Some(&names), schema: None };
        let e = errs("lower(urll) = 'x' AND statsu > 1", &scope);
        assert_eq!(
            e,
            vec![
                CompileError {
                    message: "unknown field `urll`".into(),
                    offset: 6,
                    hint: Some("did you mean `url`?".into())
                },
                CompileError {
                    message: "unknown field `statsu`".into(),
                    offset: 22,
                    hint: Some("did you mean `status`?".into())
                },
            ]
        );
        let e = errs("lowr(url)", &scope);
        assert_eq!(e[0].message, "unknown function `lowr`");
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `lower`?"));
        assert_eq!(e[0].offset, 0);
        // Nested paths only check the top-level field.
        assert!(compile("url.anything", &scope).is_ok());
        let e = errs("x.y = 1", &scope);
        assert_eq!(e[0].message, "unknown field `x`");
    }

    #[test]
    fn arity_and_other_compile_errors() {
        let open = Scope::open();
        let e = errs("1 + substr(name)", &open);
        assert_eq!(e[0].message, "function `substr` takes 2 or 3 arguments, got 1");
        assert_eq!(e[0].offset, 4);
        assert_eq!(e[0].hint.as_deref(), Some("usage: substr(s, start[, len])"));
        assert_eq!(errs("lower()", &open)[0].message, "function `lower` takes 1 argument, got 0");
        assert_eq!(errs("now(1)", &open)[0].message, "function `now` takes no arguments, got 1");
        assert_eq!(errs("replace(a)", &open)[0].message, "function `replace` takes 3 arguments, got 1");
        assert_eq!(errs("coalesce()", &open)[0].message, "function `coalesce` takes at least 1 argument, got 0");
        let e = errs("regexp_like(name, '(')", &open);
        assert!(e[0].message.starts_with("invalid regular expression"), "{}", e[0].message);
        assert_eq!(e[0].offset, 18);
        let e = errs("name LIKE 'a!' ESCAPE '!'", &open);
        assert_eq!(e[0].offset, 10);
        let e = errs("CAST(a AS DATE)", &open);
        assert_eq!(e[0].message, "cannot cast to `DATE`");
        let e = errs("a & 1", &open);
        assert_eq!(e[0].message, "unsupported operator `&`");
        let e = errs("a = )", &open);
        assert_eq!((e[0].message.as_str(), e[0].offset), ("expected an expression, found `)`", 4));
        let e = errs("count(*)", &open);
        assert_eq!(e[0].message, "`*` is only allowed in `count(*)`");
    }

    #[test]
    fn expr_api() {
        let e = compile("status = 200", &Scope::open()).unwrap();
        assert_eq!(e.text(), "status = 200");
        assert_eq!(format!("{e:?}"), "Expr(\"status = 200\")");
        fn send_sync<T: Send + Sync + Clone>(_: &T) {}
        send_sync(&e);
        let e2 = e.clone();
        assert_eq!(std::thread::spawn(move || e2.eval(&rec())).join().unwrap(), Ok(Value::Bool(true)));
        assert!(crate::expr::functions().iter().any(|f| f.name == "regexp_extract"));
    }

    #[test]
    fn aggregate_calls() {
        let names: Vec<Arc<str>> = ["bytes", "url"].iter().map(|s| Arc::from(*s)).collect();
        let scope = Scope { fields: Some(&names), schema: None };
        let c = compile_call("count()", &scope).unwrap();
        assert_eq!((c.name.as_str(), c.name_offset, c.args.len()), ("count", 0, 0));
        let c = compile_call(" COUNT(*)", &scope).unwrap();
        assert_eq!((c.name.as_str(), c.name_offset, c.args.len()), ("count", 1, 0));
        let c = compile_call("sum(bytes * 2)", &scope).unwrap();
        assert_eq!(c.name, "sum");
        assert_eq!(c.args[0].text(), "bytes * 2");
        let r = Record::from_pairs(vec![("bytes", Value::Int(4))]);
        assert_eq!(c.args[0].eval(&r).unwrap(), Value::Int(8));
        let c = compile_call("percentile(bytes, 0.5)", &scope).unwrap();
        assert_eq!(c.args.iter().map(|a| a.text()).collect::<Vec<_>>(), ["bytes", "0.5"]);
        assert_eq!(c.args[0].field_path().map(|p| p.len()), Some(1));
        let e = compile_call("bytes + 1", &scope).unwrap_err();
        assert_eq!(e[0].message, "expected an aggregate call like `sum(x)`");
        let e = compile_call("sum(byts)", &scope).unwrap_err();
        assert_eq!((e[0].message.as_str(), e[0].offset), ("unknown field `byts`", 4));
        let e = compile_call("sum(x) + 1", &scope).unwrap_err();
        assert_eq!(e[0].message, "expected an aggregate call like `sum(x)`");
    }
}
