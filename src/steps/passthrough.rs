//! `key_by` and `window` at run time: records pass unchanged. The `reduce` that must
//! follow them (see validate/order.rs) computes keys and windows itself, so a key is
//! never evaluated twice or carried in the record.

use super::{Operator, StepError};
use crate::record::{Batch, Record};

pub struct Passthrough;

impl Operator for Passthrough {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        out.push(record);
        Ok(())
    }

    fn passes_through(&self) -> bool {
        true
    }
}
