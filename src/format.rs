//! The data formats of the bytes sources read and sinks write (`format:`).

use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    Csv,
    Jsonl,
    Text,
    /// Kafka only: the message value as one string field.
    Raw,
}

impl DataFormat {
    pub fn name(self) -> &'static str {
        match self {
            DataFormat::Csv => "csv",
            DataFormat::Jsonl => "jsonl",
            DataFormat::Text => "text",
            DataFormat::Raw => "raw",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<DataFormat> {
        Some(match s {
            "csv" => DataFormat::Csv,
            "jsonl" => DataFormat::Jsonl,
            "text" => DataFormat::Text,
            "raw" => DataFormat::Raw,
            _ => return None,
        })
    }

    /// The format a path's extension implies.
    pub fn from_extension(path: &str) -> Option<DataFormat> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(DataFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(DataFormat::Jsonl),
            "txt" | "log" => Some(DataFormat::Text),
            _ => None,
        }
    }
}
