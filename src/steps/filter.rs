//! `filter`: keeps records where the expression is true (NULL counts as false).

use super::{Operator, StepError};
use crate::expr::Expr;
use crate::record::{Batch, Record};

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
