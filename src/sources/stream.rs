//! Sources that read one byte stream until EOF: `stdin`, and `socket` (a TCP client
//! reading lines from host:port). Neither can replay: after a crash, input already
//! read is not read again.

use super::decode::Decoding;
use super::decode::{Decoder, KnownColumns};
use super::{BadRecord, Source};
use crate::diag::Problem;
use crate::error::{Error, Result};
use crate::record::{Batch, Origin};
use std::io::Read;
use std::sync::Arc;

/// A `stdin` source's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct StdinConfig {
    pub decoding: Decoding,
}

impl StdinConfig {
    pub fn build(&self, origin: Origin, columns: KnownColumns) -> Box<dyn Source> {
        Box::new(StreamSource::stdin(&self.decoding, origin, columns))
    }
}

/// A `socket` source's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SocketConfig {
    /// host:port to connect to.
    pub address: String,
    pub decoding: Decoding,
}

impl SocketConfig {
    /// The address must be host:port (else only `run` finds out, without a position).
    pub fn check(&self) -> Result<(), Problem> {
        check_address(&self.address)
    }

    pub fn build(&self, id: &str, origin: Origin, columns: KnownColumns) -> Result<Box<dyn Source>> {
        Ok(Box::new(StreamSource::socket(&self.address, id, &self.decoding, origin, columns)?))
    }
}

/// Whether `address` is host:port with a port number (socket sources and sinks).
pub fn check_address(address: &str) -> Result<(), Problem> {
    let why = match address.rsplit_once(':') {
        None => "no `:port`",
        Some(("", _)) => "no host",
        Some((_, port)) if port.parse::<u16>().is_err() => "the port is not a number from 0 to 65535",
        Some(_) => return Ok(()),
    };
    Err(Problem {
        message: format!("`address` must be host:port, found `{address}`: {why}"),
        hint: Some("such as localhost:9000 or [::1]:9000".into()),
    })
}

pub struct StreamSource<R: Read> {
    decoder: Decoder<R>,
    name: String,
    done: bool,
    bounded: bool,
}

impl StreamSource<std::io::Stdin> {
    pub fn stdin(decoding: &Decoding, origin: Origin, columns: KnownColumns) -> Self {
        let decoder = Decoder::new(std::io::stdin(), 64 * 1024, decoding, origin, columns, None);
        StreamSource { decoder, name: "<stdin>".into(), done: false, bounded: true }
    }
}

impl StreamSource<std::net::TcpStream> {
    /// Connects to `address`; unbounded (it ends only when the peer closes).
    pub fn socket(address: &str, id: &str, decoding: &Decoding, origin: Origin, columns: KnownColumns) -> Result<Self> {
        let stream = std::net::TcpStream::connect(address)
            .map_err(|e| Error::io(format!("source `{id}`: cannot connect to {address}"), e))?;
        let decoder = Decoder::new(stream, 64 * 1024, decoding, origin, columns, None);
        Ok(StreamSource { decoder, name: format!("tcp://{address}"), done: false, bounded: false })
    }
}

impl<R: Read + Send> Source for StreamSource<R> {
    fn read_batch(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let more = self.decoder.read(max, out, bad).map_err(|e| Error::io(format!("cannot read {}", self.name), e))?;
        self.done = !more;
        Ok(more || !out.is_empty() || !bad.is_empty())
    }

    fn files(&self) -> Vec<Arc<str>> {
        vec![Arc::from(self.name.as_str())]
    }

    fn bounded(&self) -> bool {
        self.bounded
    }
}
