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
use crate::record::{Record, Schema, Value};

pub(crate) struct Compiler<'a> {
    scope: &'a Scope<'a>,
    lines: LineIndex<'a>,
    pub(crate) errors: Vec<CompileError>,
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
            scope,
            lines: LineIndex::new(text),
            errors: Vec::new(),
            empty: Record::new(Schema::new(Vec::new()), Vec::new()),
        }
    }

    pub(crate) fn at(&self, span: Span) -> usize {
        self.lines.span_start(span)
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
                let at = self.at(expr.span());
                let inner = self.expr(expr);
                let lenient = matches!(kind, CastKind::TryCast | CastKind::SafeCast);
                self.cast_node(inner, data_type, lenient, at)
            }
            E::Substring { expr, substring_from, substring_for, .. } => {
                let one = ast::Expr::value(ast::Value::Number("1".into(), false));
                let mut args = vec![&**expr, substring_from.as_deref().unwrap_or(&one)];
                args.extend(substring_for.as_deref());
                self.call("substr", self.at(e.span()), &args)
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
                self.call(name, self.at(e.span()), &args)
            }
            E::Position { expr, r#in } => self.call("position", self.at(e.span()), &[&**expr, &**r#in]),
            E::Ceil { expr, field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) } => {
                self.call("ceil", self.at(e.span()), &[&**expr])
            }
            E::Floor { expr, field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) } => {
                self.call("floor", self.at(e.span()), &[&**expr])
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
        if let Some(fields) = self.scope.fields {
            if !fields.iter().any(|f| &**f == name) {
                let hint = did_you_mean(name, fields.iter().map(|f| &**f));
                return self.error(self.at(id.span), format!("unknown field `{name}`"), hint);
            }
        }
        let slot = self.scope.schema.as_ref().and_then(|s| s.index_of(name).map(|i| (s.clone(), i)));
        let mut all: Vec<Step> = rest.iter().map(|i| Step::Key(Arc::from(i.value.as_str()))).collect();
        all.append(&mut steps);
        Node::Field(FieldRef { name: Arc::from(name), slot, steps: all })
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
                        Node::Const(Value::Str(s)) => DynStep::Fixed(Step::Key(s)),
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
        let Some(target) = CastTarget::from_sql(data_type) else {
            let hint =
                Some("supported types: BIGINT, INT, DOUBLE, DECIMAL, VARCHAR, STRING, BOOLEAN, TIMESTAMP".into());
            return self.error(at, format!("cannot cast to `{data_type}`"), hint);
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
        let name = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(id)] => id.value.to_lowercase(),
            _ => return self.error(at, format!("unknown function `{}`", f.name), None),
        };
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
        (Operand::Field(f), Operand::Const(c)) => Node::Bool(Box::new(move |r| cmp_values(op, f.get(r), &c))),
        (Operand::Const(c), Operand::Field(f)) => Node::Bool(Box::new(move |r| cmp_values(op, &c, f.get(r)))),
        (a, b) => Node::Bool(Box::new(move |r| a.with(r, |x| b.with(r, |y| cmp_values(op, x, y))))),
    }
}
