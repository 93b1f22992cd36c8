//! `drop`: removes fields.

use super::component::{BuiltStep, Compiled, Output, Relational, StepConfig, StepInput, StepType};
use super::{LayoutCache, Operator, StepError};
use crate::diag::did_you_mean;
use crate::diag::Diagnostics;
use crate::expr::Expr;
use crate::record::{Batch, Record, Schema, SchemaMaker};
use crate::spec::fields::{f, Ty};
use crate::spec::model::StepReader;
use crate::spec::Spanned;
use std::sync::Arc;

pub struct Drop {
    names: Vec<Arc<str>>,
    layouts: LayoutCache<(SchemaMaker, Vec<usize>)>,
}

impl Drop {
    pub fn new(names: Vec<Arc<str>>) -> Drop {
        Drop { names, layouts: LayoutCache::default() }
    }
}

impl Operator for Drop {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        let names = &self.names;
        let (schema, keep) = self.layouts.get(record.schema(), |s| {
            let keep: Vec<usize> = (0..s.len()).filter(|&i| !names.contains(&s.names()[i])).collect();
            (SchemaMaker::new(&Schema::new(keep.iter().map(|&i| s.names()[i].clone()).collect())), keep)
        });
        let values = keep.iter().map(|&i| record.values()[i].clone()).collect();
        out.push(record.with_fields(schema.for_record(), values));
        Ok(())
    }
}

pub const TYPE: StepType = StepType { field: f("drop", Ty::NameList, "Remove fields."), parse };

/// `drop:` as written.
#[derive(Debug)]
struct DropConfig(Vec<Spanned<String>>);

fn parse(reader: &StepReader, _diags: &mut Diagnostics) -> Option<Arc<dyn StepConfig>> {
    Some(Arc::new(DropConfig(reader.names(reader.body))))
}

impl StepConfig for DropConfig {
    fn kind(&self) -> &'static str {
        "drop"
    }

    fn relational(&self) -> Relational<'_> {
        Relational::Remove(&self.0)
    }

    fn describe(&self) -> String {
        self.0.iter().map(|n| n.value.clone()).collect::<Vec<_>>().join(", ")
    }

    fn compile(&self, input: &StepInput, diags: &mut Diagnostics) -> Option<Compiled> {
        let fields = input.fields.map(|known| {
            for n in &self.0 {
                if !known.iter().any(|x| **x == *n.value) {
                    diags.error(
                        n.span,
                        format!("`drop` names unknown field `{}`", n.value),
                        did_you_mean(&n.value, known.iter().map(|x| &**x)),
                    );
                }
            }
            known.iter().filter(|x| !self.0.iter().any(|n| *n.value == ***x)).cloned().collect()
        });
        let names = self.0.iter().map(|n| Arc::from(n.value.as_str())).collect();
        Some(Compiled {
            step: Arc::new(DropStep { names, fingerprint: self.describe() }),
            output: Output::Fields(fields),
        })
    }
}

#[derive(Debug)]
struct DropStep {
    names: Vec<Arc<str>>,
    fingerprint: String,
}

impl BuiltStep for DropStep {
    fn operator(&self) -> Box<dyn Operator> {
        Box::new(Drop::new(self.names.clone()))
    }

    fn exprs(&self) -> Vec<&Expr> {
        Vec::new()
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn stateless(&self) -> bool {
        true
    }
}
