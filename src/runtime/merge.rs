//! Combines the sources' channels into one ordered stream. Bounded sources are read
//! one after another in the order written (ties of the deterministic merge when there
//! is no event time), so the output does not depend on thread timing; unbounded
//! sources are taken in arrival order.

use super::Message;
use crossbeam_channel::{Receiver, Select};

pub struct Merge {
    inputs: Vec<Receiver<Message>>,
    ended: Vec<bool>,
    sequential: bool,
}

impl Merge {
    pub fn new(inputs: Vec<Receiver<Message>>, all_bounded: bool) -> Merge {
        let ended = vec![false; inputs.len()];
        Merge { inputs, ended, sequential: all_bounded }
    }

    /// The next message and the source it came from; None when every source ended.
    pub fn next(&mut self) -> Option<(usize, Message)> {
        loop {
            let open: Vec<usize> = (0..self.inputs.len()).filter(|&i| !self.ended[i]).collect();
            let first = *open.first()?;
            let (index, received) = if self.sequential || open.len() == 1 {
                (first, self.inputs[first].recv())
            } else {
                let mut select = Select::new();
                for &i in &open {
                    select.recv(&self.inputs[i]);
                }
                let op = select.select();
                let index = open[op.index()];
                (index, op.recv(&self.inputs[index]))
            };
            match received {
                Ok(Message::End) | Err(_) => {
                    self.ended[index] = true;
                    if received.is_err() {
                        return Some((
                            index,
                            Message::Failed(crate::error::Error::Internal(
                                "a source thread stopped without a reason".into(),
                            )),
                        ));
                    }
                }
                Ok(message) => return Some((index, message)),
            }
        }
    }
}
