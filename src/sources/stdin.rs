//! The `stdin` source: standard input until EOF. Not replayable.

use super::decode::Decoder;
use super::{BadRecord, Source};
use crate::error::{Error, Result};
use crate::record::{Batch, Origin, Schema};
use crate::spec::Decoding;
use std::io::Stdin;
use std::sync::Arc;

pub struct StdinSource {
    decoder: Decoder<Stdin>,
    done: bool,
}

impl StdinSource {
    pub fn new(decoding: &Decoding, origin: Origin, schema: Option<Arc<Schema>>) -> StdinSource {
        StdinSource { decoder: Decoder::new(std::io::stdin(), 64 * 1024, decoding, origin, schema, None), done: false }
    }
}

impl Source for StdinSource {
    fn read_batch(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let more = self.decoder.read(max, out, bad).map_err(|e| Error::io("source stdin: cannot read", e))?;
        self.done = !more;
        Ok(more || !out.is_empty() || !bad.is_empty())
    }

    fn files(&self) -> Vec<Arc<str>> {
        vec![Arc::from("<stdin>")]
    }
}
