//! `filter`: keeps records where the expression is true (NULL counts as false).
//! Stateless: runs on the source lanes at the head of a pipeline, where a chain of
//! filters judges each record in place (`Operator::predicate`).

use super::component::{BuiltStep, Compiled, Output, Relational, StepConfig, StepInput, StepType};
use super::{Operator, StepError};
use crate::diag::Diagnostics;
use crate::expr::Expr;
use crate::record::{Batch, Record};
use crate::spec::fields::{f, Ty};
use crate::spec::model::StepReader;
use crate::spec::ExprSpec;
use std::sync::Arc;

pub struct Filter {
    predicate: Expr,
}

impl Filter {
    pub fn new(predicate: Expr) -> Filter {
        Filter { predicate }
    }
}

impl Operator for Filter {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        match self.predicate.eval_predicate(&record) {
            Ok(true) => out.push(record),
            Ok(false) => {}
            Err(error) => return Err(StepError { error, record }),
        }
        Ok(())
    }

    fn predicate(&self) -> Option<&Expr> {
        Some(&self.predicate)
    }
}

pub const TYPE: StepType = StepType {
    field: f("filter", Ty::Expr, "Keep records where the expression is true (null counts as false)."),
    parse,
};

/// `filter:` as written.
#[derive(Debug)]
struct FilterConfig(ExprSpec);

fn parse(reader: &StepReader, _diags: &mut Diagnostics) -> Option<Arc<dyn StepConfig>> {
    Some(Arc::new(FilterConfig(reader.expr(reader.body))))
}

impl StepConfig for FilterConfig {
    fn kind(&self) -> &'static str {
        "filter"
    }

    fn relational(&self) -> Relational<'_> {
        Relational::Filter(&self.0)
    }

    fn describe(&self) -> String {
        self.0.text.clone()
    }

    fn compile(&self, input: &StepInput, diags: &mut Diagnostics) -> Option<Compiled> {
        let predicate = input.compile(&self.0, diags)?;
        Some(Compiled { step: Arc::new(FilterStep(predicate)), output: Output::Input })
    }
}

#[derive(Debug)]
struct FilterStep(Expr);

impl BuiltStep for FilterStep {
    fn operator(&self) -> Box<dyn Operator> {
        Box::new(Filter::new(self.0.clone()))
    }

    fn exprs(&self) -> Vec<&Expr> {
        vec![&self.0]
    }

    fn fingerprint(&self) -> String {
        self.0.text().to_string()
    }

    fn stateless(&self) -> bool {
        true
    }
}
