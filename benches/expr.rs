//! Benchmarks of compiled expressions over one million in-memory records: a typical
//! filter and a three-field projection.

use std::sync::{Arc, OnceLock};

use divan::{black_box, Bencher};
use flowctl::expr::{compile, Scope};
use flowctl::record::{Record, Schema, Value};

const N: usize = 1_000_000;

fn main() {
    divan::main()
}

/// Deterministic access-log-like records sharing one schema.
fn records() -> &'static (Arc<Schema>, Vec<Record>) {
    static RECORDS: OnceLock<(Arc<Schema>, Vec<Record>)> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let schema = Schema::from_names(&["ts", "user_id", "url", "bytes", "status"]);
        let urls: Vec<Value> = (0..64).map(|i| Value::str(&format!("/Api/Items/{i}?q=X"))).collect();
        let statuses = [200, 200, 200, 404, 500, 200, 304, 200];
        let records = (0..N)
            .map(|i| {
                let x = (i as u64).wrapping_mul(2_654_435_761) % 1_000_003;
                Record::new(
                    schema.clone(),
                    vec![
                        Value::Timestamp(1_700_000_000_000 + i as i64),
                        Value::Int((x % 5000) as i64),
                        urls[i % urls.len()].clone(),
                        Value::Int((x % 4000) as i64),
                        Value::Int(statuses[i % statuses.len()]),
                    ],
                )
            })
            .collect();
        (schema, records)
    })
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn filter_status_and_bytes(bencher: Bencher) {
    let (schema, recs) = records();
    let scope = Scope { fields: Some(schema.names()), schema: Some(schema.clone()) };
    let e = compile("status = 200 AND bytes > 1000", &scope).expect("valid expression");
    bencher.counter(divan::counter::ItemsCount::new(N)).bench(|| {
        let mut kept = 0usize;
        for r in recs {
            if e.eval_predicate(black_box(r)).expect("no eval error") {
                kept += 1;
            }
        }
        kept
    });
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn map_three_fields(bencher: Bencher) {
    let (schema, recs) = records();
    let scope = Scope { fields: Some(schema.names()), schema: Some(schema.clone()) };
    let exprs: Vec<_> = ["user_id", "lower(url)", "bytes / 1024.0"]
        .iter()
        .map(|t| compile(t, &scope).expect("valid expression"))
        .collect();
    bencher.counter(divan::counter::ItemsCount::new(N)).bench(|| {
        let mut n = 0usize;
        for r in recs {
            for e in &exprs {
                let v = e.eval(black_box(r)).expect("no eval error");
                n += usize::from(!v.is_null());
                drop(black_box(v));
            }
        }
        n
    });
}

/// The same filter written by hand: the floor set by walking one million records in
/// memory, for comparison with `filter_status_and_bytes`.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn baseline_handwritten_filter(bencher: Bencher) {
    let (_, recs) = records();
    bencher.counter(divan::counter::ItemsCount::new(N)).bench(|| {
        let mut kept = 0usize;
        for r in recs {
            let v = black_box(r).values();
            if matches!(v[4], Value::Int(200)) && matches!(v[3], Value::Int(b) if b > 1000) {
                kept += 1;
            }
        }
        kept
    });
}
