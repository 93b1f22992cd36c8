//! One checkpoint file: a header line with the format version, a CRC-32 of the body
//! and the body's length, then the body as JSON (readable with `tail -n +2 | jq`).
//!
//! ```text
//! flowctl-checkpoint 1 crc32:1a2b3c4d bytes:5123
//! { "pipeline": "w1", "epoch": 7, ... }
//! ```
//! A flipped byte fails the checksum; a truncated file fails the length.

use super::{Checkpoint, FORMAT_VERSION};

const MAGIC: &str = "flowctl-checkpoint";

pub fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>, String> {
    let body = serde_json::to_vec_pretty(checkpoint).map_err(|e| format!("cannot encode checkpoint: {e}"))?;
    let mut out =
        format!("{MAGIC} {FORMAT_VERSION} crc32:{:08x} bytes:{}\n", crc32fast::hash(&body), body.len()).into_bytes();
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks the header, length and checksum, then parses the body.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    let newline = bytes.iter().position(|b| *b == b'\n').ok_or("no header line")?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| "the header is not text")?;
    let body = &bytes[newline + 1..];
    let parts: Vec<&str> = header.split(' ').collect();
    let [magic, version, crc, len] = parts[..] else {
        return Err(format!("malformed header `{header}`"));
    };
    if magic != MAGIC {
        return Err("not a flowctl checkpoint".into());
    }
    let version: u32 = version.parse().map_err(|_| format!("bad format version `{version}`"))?;
    // Version 1 is the only one so far; a later version adds migrations here.
    if version != FORMAT_VERSION {
        return Err(format!("format version {version} is not one this flowctl reads ({FORMAT_VERSION})"));
    }
    let len: usize = len
        .strip_prefix("bytes:")
        .and_then(|l| l.parse().ok().filter(|v: &usize| v.to_string() == l))
        .ok_or("bad length in header")?;
    if body.len() != len {
        return Err(format!("truncated or padded: the header says {len} bytes, the file has {}", body.len()));
    }
    // Exactly as written (eight lower-case hex digits), so the header itself is checked too.
    let crc = crc
        .strip_prefix("crc32:")
        .and_then(|c| u32::from_str_radix(c, 16).ok().filter(|v| format!("{v:08x}") == c))
        .ok_or("bad checksum in header")?;
    let actual = crc32fast::hash(body);
    if actual != crc {
        return Err(format!("checksum mismatch (header crc32:{crc:08x}, content crc32:{actual:08x})"));
    }
    serde_json::from_slice(body).map_err(|e| format!("cannot read the checkpoint body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Position, SinkState, SourceState, StepState};
    use proptest::prelude::*;

    fn sample(epoch: u64, offset: u64, watermark: i64, state: i64) -> Checkpoint {
        Checkpoint {
            pipeline: "p".into(),
            lineage: "l".into(),
            epoch,
            created_ms: 1,
            completed: false,
            watermark,
            sources: vec![SourceState {
                id: "in".into(),
                lane: None,
                position: Some(Position { file: 0, path: "a.csv".into(), offset, line: 3 }),
                max_event_time: Some(watermark),
            }],
            steps: vec![StepState {
                key: "reduce #1".into(),
                fingerprint: "x".into(),
                state: serde_json::json!({"n": state}),
            }],
            sinks: vec![SinkState { id: "out".into(), state: serde_json::json!({"length": offset}) }],
        }
    }

    proptest! {
        #[test]
        fn round_trip(epoch in 0u64..u64::MAX, offset in 0u64..u64::MAX, watermark in i64::MIN..i64::MAX, state in i64::MIN..i64::MAX) {
            let c = sample(epoch, offset, watermark, state);
            prop_assert_eq!(decode(&encode(&c).unwrap()).unwrap(), c);
        }

        #[test]
        fn any_flipped_byte_is_detected(index in 0usize..10_000, bit in 0u8..8) {
            let bytes = encode(&sample(7, 100, 5, 9)).unwrap();
            let mut corrupt = bytes.clone();
            let i = index % corrupt.len();
            corrupt[i] ^= 1 << bit;
            prop_assert!(decode(&corrupt).is_err());
        }
    }

    #[test]
    fn truncation_is_detected() {
        let bytes = encode(&sample(1, 2, 3, 4)).unwrap();
        let err = decode(&bytes[..bytes.len() - 10]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }
}
