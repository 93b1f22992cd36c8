//! `flat_map`: one output per element of a list, the input record plus `as` = the
//! element. A NULL list gives no output (as SQL's UNNEST).

use super::component::{BuiltStep, Compiled, Output, Relational, StepConfig, StepInput, StepType};
use super::{LayoutCache, Operator, StepError};
use crate::diag::Diagnostics;
use crate::expr::{EvalError, Expr};
use crate::record::{Batch, Record, Schema, SchemaMaker, Value};
use crate::spec::fields::req;
use crate::spec::fields::{f, Ty};
use crate::spec::model::StepReader;
use crate::spec::{ExprSpec, Spanned};
use std::sync::Arc;

pub struct FlatMap {
    each: Expr,
    as_field: Arc<str>,
    layouts: LayoutCache<(SchemaMaker, usize)>,
}

impl FlatMap {
    pub fn new(each: Expr, as_field: Arc<str>) -> FlatMap {
        FlatMap { each, as_field, layouts: LayoutCache::default() }
    }
}

impl Operator for FlatMap {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        let items = match self.each.eval(&record) {
            Ok(Value::List(items)) => items,
            Ok(Value::Null) => return Ok(()),
            Ok(other) => {
                let error =
                    EvalError { message: format!("flat_map `each` must give a list, got {}", other.type_name()) };
                return Err(StepError { error, record });
            }
            Err(error) => return Err(StepError { error, record }),
        };
        let as_field = &self.as_field;
        let (schema, target) = self.layouts.get(record.schema(), |s| match s.index_of(as_field) {
            Some(i) => (SchemaMaker::new(s), i),
            None => {
                let mut names = s.names().to_vec();
                names.push(as_field.clone());
                let n = names.len() - 1;
                (SchemaMaker::new(&Schema::new(names)), n)
            }
        });
        for item in items.iter() {
            let mut values = record.values().to_vec();
            values.resize(schema.schema().len(), Value::Null);
            values[*target] = item.clone();
            out.push(record.with_fields(schema.for_record(), values));
        }
        Ok(())
    }
}

const FIELDS: &[crate::spec::fields::Field] =
    &[req("each", Ty::Expr, "An expression giving a list."), req("as", Ty::Str, "The field receiving each element.")];

pub const TYPE: StepType = StepType {
    field: f(
        "flat_map",
        Ty::Object(FIELDS),
        "One output per element of a list: the input record plus `as` = the element.",
    ),
    parse,
};

/// `flat_map:` as written.
#[derive(Debug)]
struct FlatMapConfig {
    each: ExprSpec,
    as_field: Spanned<String>,
}

fn parse(reader: &StepReader, _diags: &mut Diagnostics) -> Option<Arc<dyn StepConfig>> {
    // The shape check has reported a missing `each` or `as`.
    let each = reader.expr(reader.get("each")?);
    let as_field = reader.text("as")?;
    Some(Arc::new(FlatMapConfig { each, as_field }))
}

impl StepConfig for FlatMapConfig {
    fn kind(&self) -> &'static str {
        "flat_map"
    }

    fn relational(&self) -> Relational<'_> {
        Relational::Unnest { each: &self.each, as_field: &self.as_field }
    }

    fn describe(&self) -> String {
        format!("each {} as {}", self.each.text, self.as_field.value)
    }

    fn compile(&self, input: &StepInput, diags: &mut Diagnostics) -> Option<Compiled> {
        let as_field: Arc<str> = Arc::from(self.as_field.value.as_str());
        let fields = input.fields.map(|known| {
            let mut fields = known.to_vec();
            if !fields.contains(&as_field) {
                fields.push(as_field.clone());
            }
            fields
        });
        let each = input.compile(&self.each, diags)?;
        let step = FlatMapStep { each, as_field, fingerprint: self.describe() };
        Some(Compiled { step: Arc::new(step), output: Output::Fields(fields) })
    }
}

#[derive(Debug)]
struct FlatMapStep {
    each: Expr,
    as_field: Arc<str>,
    fingerprint: String,
}

impl BuiltStep for FlatMapStep {
    fn operator(&self) -> Box<dyn Operator> {
        Box::new(FlatMap::new(self.each.clone(), self.as_field.clone()))
    }

    fn exprs(&self) -> Vec<&Expr> {
        vec![&self.each]
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn stateless(&self) -> bool {
        true
    }
}
