//! The `socket` sink: a TCP client sending one line per record (jsonl or csv) to
//! host:port. At-least-once; the peer closing the connection fails the run.

use super::encode::Encoder;
use super::{Sink, SinkError};
use crate::error::Error;
use crate::format::DataFormat;
use crate::record::Record;
use std::io::BufWriter;
use std::net::TcpStream;

pub struct SocketSink {
    id: String,
    address: String,
    encoder: Encoder<BufWriter<TcpStream>>,
}

/// A `socket` sink's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SocketConfig {
    /// host:port to connect to.
    pub address: String,
    pub format: DataFormat,
}

impl SocketConfig {
    /// The address must be host:port (else only `run` finds out, without a position).
    pub fn check(&self) -> Result<(), crate::diag::Problem> {
        crate::sources::check_address(&self.address)
    }

    pub fn build(&self, id: &str) -> Result<SocketSink, Error> {
        SocketSink::connect(id, &self.address, self.format)
    }
}

impl SocketSink {
    pub fn connect(id: &str, address: &str, format: DataFormat) -> Result<SocketSink, Error> {
        let stream = TcpStream::connect(address)
            .map_err(|e| Error::io(format!("sink `{id}`: cannot connect to {address}"), e))?;
        let out = BufWriter::with_capacity(64 * 1024, stream);
        let encoder = match format {
            DataFormat::Csv => Encoder::csv(out, true, b','),
            _ => Encoder::jsonl(out),
        };
        Ok(SocketSink { id: id.to_string(), address: address.to_string(), encoder })
    }

    fn failed(&self, e: std::io::Error) -> SinkError {
        SinkError::Failed(Error::io(format!("sink `{}`: cannot send to {}", self.id, self.address), e))
    }
}

impl Sink for SocketSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        // Flushed per batch: a stream consumer sees records promptly.
        match self.encoder.write(records).and_then(|_| self.encoder.flush()) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn line_encoder(&self) -> Option<super::encode::LineEncoder> {
        Some(self.encoder.line_encoder())
    }

    fn write_lines(&mut self, lines: &str) -> Result<(), SinkError> {
        self.encoder.write_lines(lines).and_then(|_| self.encoder.flush()).map_err(|e| self.failed(e))
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        match self.encoder.flush() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }
}
