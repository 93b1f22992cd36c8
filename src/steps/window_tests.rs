//! Property tests of window assignment and of `WindowReduce` against brute-force
//! oracles written straight from the contract's definitions.

use super::*;
use crate::expr::{compile, Scope};
use crate::steps::aggregate::AggFunc;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

const D: fn(i64) -> Duration = |ms| Duration::from_millis(ms as u64);

fn aggregates() -> Vec<Aggregate> {
    let v = compile("v", &Scope::open()).expect("compiles");
    vec![
        Aggregate { name: Arc::from("n"), func: AggFunc::Count, arg: None },
        Aggregate { name: Arc::from("total"), func: AggFunc::Sum, arg: Some(v.clone()) },
        Aggregate { name: Arc::from("vs"), func: AggFunc::Collect, arg: Some(v) },
    ]
}

/// (key, ts, v) in arrival order.
type Event = (u8, i64, i64);

fn records(events: &[Event], ooo: i64) -> Vec<Record> {
    let schema = Schema::from_names(&["k", "v"]);
    let mut max_ts: Option<i64> = None;
    events
        .iter()
        .map(|&(k, ts, v)| {
            let mut r = Record::new(schema.clone(), vec![Value::str(&format!("k{k}")), Value::Int(v)]);
            r.event_time = Some(ts);
            r.watermark = max_ts.map_or(crate::record::NO_WATERMARK, |m| m - ooo);
            max_ts = Some(max_ts.map_or(ts, |m| m.max(ts)));
            r
        })
        .collect()
}

/// Runs the operator, telling it the watermark every `every` records, as the executor
/// does after each batch. Returns every emission and the late count.
fn run(kind: WindowKind, lateness: i64, events: &[Event], ooo: i64, every: usize) -> (Vec<Record>, usize) {
    let key = compile("k", &Scope::open()).expect("compiles");
    let mut op = WindowReduce::new(vec![Arc::from("k")], vec![key], aggregates(), &kind, D(lateness));
    let mut out = Vec::new();
    let mut late = 0;
    let recs = records(events, ooo);
    let mut max_ts = i64::MIN;
    for (i, r) in recs.into_iter().enumerate() {
        max_ts = max_ts.max(r.event_time.unwrap_or(i64::MIN));
        op.process(r, &mut out).expect("no record errors");
        if (i + 1) % every == 0 {
            op.on_watermark(max_ts - ooo, &mut out);
        }
        late += op.take_late().len();
    }
    op.on_watermark(i64::MAX, &mut out);
    op.on_end(&mut out);
    late += op.take_late().len();
    (out, late)
}

/// A window result: (key, start, end) -> (count, sum, collected values).
type Results = BTreeMap<(String, i64, i64), (i64, i64, Vec<i64>)>;

fn summarize(contents: &BTreeMap<(String, i64, i64), Vec<i64>>) -> Results {
    contents.iter().map(|(k, vs)| (k.clone(), (vs.len() as i64, vs.iter().sum(), vs.clone()))).collect()
}

/// The last emission per window (later ones are updates for accepted late records).
fn last_emissions(out: &[Record]) -> Results {
    let mut r = Results::new();
    for rec in out {
        let v = rec.values();
        let key = v[0].to_text();
        let (Value::Int(start), Value::Int(end), Value::Int(n)) = (&v[1], &v[2], &v[3]) else {
            panic!("shape {rec:?}")
        };
        let total = match &v[4] {
            Value::Int(t) => *t,
            other => panic!("sum {other:?}"),
        };
        let Value::List(items) = &v[5] else { panic!("collect") };
        let vs = items.iter().map(|x| if let Value::Int(i) = x { *i } else { panic!("item") }).collect();
        r.insert((key, *start, *end), (*n, total, vs));
    }
    r
}

fn wm_before(events: &[Event], i: usize, ooo: i64) -> i64 {
    events[..i].iter().map(|e| e.1).max().map_or(i64::MIN, |m| m - ooo)
}

/// The contract, for tumbling and sliding windows: a record goes to each of its
/// windows it is not too late for; it is late when it is too late for all of them.
fn oracle_time(size: i64, slide: i64, lateness: i64, events: &[Event], ooo: i64) -> (Results, usize) {
    let mut contents: BTreeMap<(String, i64, i64), Vec<i64>> = BTreeMap::new();
    let mut late = 0;
    for (i, &(k, ts, v)) in events.iter().enumerate() {
        let wm = wm_before(events, i, ooo);
        let mut accepted = false;
        // Every window start that is a multiple of `slide` with start <= ts < start + size.
        let mut start = ts.div_euclid(slide) * slide;
        while start + size > ts {
            let end = start + size;
            if end - 1 + lateness > wm {
                contents.entry((format!("k{k}"), start, end)).or_default().push(v);
                accepted = true;
            }
            start -= slide;
        }
        if !accepted {
            late += 1;
        }
    }
    (summarize(&contents), late)
}

/// The contract, for session windows, by brute force over explicit sessions.
fn oracle_session(gap: i64, lateness: i64, events: &[Event], ooo: i64) -> (Results, usize) {
    struct S {
        key: u8,
        start: i64,
        end: i64,
        values: Vec<(usize, i64)>,
        purged: bool,
    }
    let mut sessions: Vec<S> = Vec::new();
    let mut late = 0;
    for (i, &(k, ts, v)) in events.iter().enumerate() {
        let wm = wm_before(events, i, ooo);
        for s in sessions.iter_mut() {
            if s.end - 1 + lateness <= wm {
                s.purged = true;
            }
        }
        let touching: Vec<usize> = (0..sessions.len())
            .filter(|&j| {
                let s = &sessions[j];
                !s.purged && s.key == k && s.start <= ts + gap && ts <= s.end
            })
            .collect();
        let start = touching.iter().map(|&j| sessions[j].start).chain([ts]).min().unwrap_or(ts);
        let end = touching.iter().map(|&j| sessions[j].end).chain([ts + gap]).max().unwrap_or(ts + gap);
        if end - 1 + lateness <= wm {
            late += 1;
            continue;
        }
        let mut values = vec![(i, v)];
        for &j in touching.iter().rev() {
            values.extend(sessions.remove(j).values);
        }
        values.sort();
        sessions.push(S { key: k, start, end, values, purged: false });
    }
    let contents = sessions
        .into_iter()
        .map(|s| ((format!("k{}", s.key), s.start, s.end), s.values.into_iter().map(|(_, v)| v).collect()))
        .collect();
    (summarize(&contents), late)
}

/// The contract, for count windows: per key, consecutive groups of `n` in arrival
/// order, emitted when full; partial groups at the end, oldest first.
fn oracle_count(n: u64, events: &[Event]) -> Vec<(String, i64, i64, Vec<i64>)> {
    let mut open: BTreeMap<u8, Vec<(usize, i64, i64)>> = BTreeMap::new();
    let mut emitted = Vec::new();
    let close = |k: u8, group: Vec<(usize, i64, i64)>| {
        let start = group.iter().map(|g| g.1).min().unwrap_or(0);
        let end = group.iter().map(|g| g.1).max().unwrap_or(0) + 1;
        (format!("k{k}"), start, end, group.into_iter().map(|g| g.2).collect())
    };
    for (i, &(k, ts, v)) in events.iter().enumerate() {
        let group = open.entry(k).or_default();
        group.push((i, ts, v));
        if group.len() as u64 == n {
            emitted.push(close(k, std::mem::take(group)));
        }
    }
    type Group = Vec<(usize, i64, i64)>;
    let mut partial: Vec<(u8, Group)> = open.into_iter().filter(|(_, g)| !g.is_empty()).collect();
    partial.sort_by_key(|(_, g)| g[0].0);
    emitted.extend(partial.into_iter().map(|(k, g)| close(k, g)));
    emitted
}

/// Every emission in order, as (key, start, end, values).
fn emissions(out: &[Record]) -> Vec<(String, i64, i64, Vec<i64>)> {
    out.iter()
        .map(|rec| {
            let v = rec.values();
            let (Value::Int(s), Value::Int(e), Value::List(items)) = (&v[1], &v[2], &v[5]) else { panic!("shape") };
            let vs = items.iter().map(|x| if let Value::Int(i) = x { *i } else { panic!("item") }).collect();
            (v[0].to_text(), *s, *e, vs)
        })
        .collect()
}

/// Session results without those a later emission of the same key merged away.
fn unmerged(mut results: Results) -> Results {
    let windows: Vec<(String, i64, i64)> = results.keys().cloned().collect();
    results
        .retain(|(k, s, e), _| !windows.iter().any(|(k2, s2, e2)| k2 == k && s2 <= s && e <= e2 && (s2, e2) != (s, e)));
    results
}

fn events_strategy() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((0u8..3, 0i64..400, -2000i64..2000, 1i64..10), 1..60).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (k, step, jitter, v))| (k, 1_000_000 + i as i64 * 100 + step + jitter, v))
            .collect()
    })
}

proptest! {
    #[test]
    fn tumbling_matches_oracle(events in events_strategy(), size in 200i64..5000, ooo in 0i64..3000, lateness in prop_oneof![Just(0i64), 0i64..3000], every in 1usize..8) {
        let (out, late) = run(WindowKind::Tumbling(D(size)), lateness, &events, ooo, every);
        let (expected, expected_late) = oracle_time(size, size, lateness, &events, ooo);
        prop_assert_eq!(last_emissions(&out), expected);
        prop_assert_eq!(late, expected_late);
        if lateness == 0 {
            prop_assert_eq!(out.len(), last_emissions(&out).len(), "each window fires once without lateness");
        }
    }

    #[test]
    fn sliding_matches_oracle(events in events_strategy(), slide in 100i64..2000, k in 1i64..4, extra in 0i64..500, ooo in 0i64..3000, lateness in prop_oneof![Just(0i64), 0i64..3000], every in 1usize..8) {
        let size = slide * k + extra;
        let kind = WindowKind::Sliding { size: D(size), slide: D(slide) };
        let (out, late) = run(kind, lateness, &events, ooo, every);
        let (expected, expected_late) = oracle_time(size, slide, lateness, &events, ooo);
        prop_assert_eq!(last_emissions(&out), expected);
        prop_assert_eq!(late, expected_late);
    }

    #[test]
    fn session_matches_oracle(events in events_strategy(), gap in 50i64..1500, ooo in 0i64..3000, lateness in prop_oneof![Just(0i64), 0i64..3000], every in 1usize..8) {
        let (out, late) = run(WindowKind::Session { gap: D(gap) }, lateness, &events, ooo, every);
        let (expected, expected_late) = oracle_session(gap, lateness, &events, ooo);
        prop_assert_eq!(unmerged(last_emissions(&out)), unmerged(expected));
        prop_assert_eq!(late, expected_late);
    }

    #[test]
    fn count_matches_oracle(events in events_strategy(), n in 1u64..6, ooo in 0i64..3000, every in 1usize..8) {
        let (out, late) = run(WindowKind::Count(n), 0, &events, ooo, every);
        prop_assert_eq!(emissions(&out), oracle_count(n, &events));
        prop_assert_eq!(late, 0);
    }

    #[test]
    fn output_does_not_depend_on_watermark_cadence(events in events_strategy(), size in 200i64..5000, ooo in 0i64..3000, lateness in 0i64..2000) {
        let kind = WindowKind::Tumbling(D(size));
        let (a, _) = run(kind.clone(), lateness, &events, ooo, 1);
        let (b, _) = run(kind, lateness, &events, ooo, 1000);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn every_event_is_in_one_tumbling_window_and_size_over_slide_sliding_windows(ts in -1_000_000i64..1_000_000, slide in 1i64..5000, k in 1i64..6) {
        let mut tumbling = Vec::new();
        assign(&Kind::Tumbling { size: slide }, ts, &mut tumbling);
        prop_assert_eq!(tumbling.len(), 1);
        prop_assert!(tumbling[0].0 <= ts && ts < tumbling[0].1);
        let mut sliding = Vec::new();
        assign(&Kind::Sliding { size: slide * k, slide }, ts, &mut sliding);
        prop_assert_eq!(sliding.len() as i64, k);
        for (start, end) in sliding {
            prop_assert!(start <= ts && ts < end && start.rem_euclid(slide) == 0);
        }
    }
}

#[test]
fn late_record_bridging_two_sessions_merges_them() {
    // Sessions [0,1000) and [1500,2500) fire at watermark 2600; a late-but-allowed
    // record at 1000 bridges them into one session [0,2500), emitted at once.
    let events = [(0, 0, 1), (0, 1500, 2), (0, 3600, 3), (0, 1000, 4)];
    let (out, late) = run(WindowKind::Session { gap: D(1000) }, 5000, &events, 1000, 1);
    assert_eq!(late, 0);
    let windows: Vec<(i64, i64, i64)> = out
        .iter()
        .map(|r| match (&r.values()[1], &r.values()[2], &r.values()[3]) {
            (Value::Int(s), Value::Int(e), Value::Int(n)) => (*s, *e, *n),
            _ => panic!("shape"),
        })
        .collect();
    assert_eq!(windows, vec![(0, 1000, 1), (1500, 2500, 1), (0, 2500, 3), (3600, 4600, 1)]);
}

/// One of the four window kinds, sized by `size`.
fn window_kind(pick: u8, size: i64) -> WindowKind {
    match pick {
        0 => WindowKind::Tumbling(D(size)),
        1 => WindowKind::Sliding { size: D(size * 2), slide: D(size) },
        2 => WindowKind::Session { gap: D(size) },
        _ => WindowKind::Count(3),
    }
}

/// Runs the operator over all events, but snapshots after `split` records and
/// continues in a fresh operator restored from the snapshot (through JSON text).
fn run_with_restart(kind: WindowKind, lateness: i64, events: &[Event], ooo: i64, split: usize) -> Vec<Record> {
    let key = compile("k", &Scope::open()).expect("compiles");
    let make = || WindowReduce::new(vec![Arc::from("k")], vec![key.clone()], aggregates(), &kind, D(lateness));
    let mut op = make();
    let mut out = Vec::new();
    let mut max_ts = i64::MIN;
    for (i, r) in records(events, ooo).into_iter().enumerate() {
        if i == split {
            let text = op.snapshot().to_string();
            op = make();
            op.restore(serde_json::from_str(&text).expect("JSON")).expect("restores");
        }
        max_ts = max_ts.max(r.event_time.unwrap_or(i64::MIN));
        op.process(r, &mut out).expect("no record errors");
        op.on_watermark(max_ts - ooo, &mut out);
        op.take_late();
    }
    op.on_watermark(i64::MAX, &mut out);
    op.on_end(&mut out);
    out
}

proptest! {
    #[test]
    fn restoring_a_snapshot_continues_exactly(events in events_strategy(), split in 0usize..60, kind_pick in 0u8..4, size in 200i64..3000, ooo in 0i64..2000, lateness in 0i64..2000) {
        let kind = window_kind(kind_pick, size);
        let split = split % (events.len() + 1);
        let (plain, _) = run(kind.clone(), lateness, &events, ooo, 1);
        prop_assert_eq!(run_with_restart(kind, lateness, &events, ooo, split), plain);
    }
}

/// Runs the events on one operator until `split`, re-splits its state for `n`
/// instances (each record then goes to the instance owning its key), and at `merge`
/// merges them back into one: the way runs at changing parallelism continue.
fn run_rescaled(
    kind: &WindowKind,
    lateness: i64,
    events: &[Event],
    ooo: i64,
    (split, n, merge): (usize, usize, usize),
) -> (Vec<String>, usize) {
    let key = compile("k", &Scope::open()).expect("compiles");
    let make = || WindowReduce::new(vec![Arc::from("k")], vec![key.clone()], aggregates(), kind, D(lateness));
    let rescale = |ops: Vec<WindowReduce>, to: usize| -> Vec<WindowReduce> {
        let parts = ops.iter().map(|o| serde_json::from_str(&o.snapshot().to_string()).expect("JSON")).collect();
        let states = make().rescale(parts, to).expect("rescales");
        states
            .into_iter()
            .map(|s| {
                let mut op = make();
                op.restore(s).expect("restores");
                op
            })
            .collect()
    };
    let mut ops = vec![make()];
    let (mut out, mut late) = (Vec::new(), 0);
    let mut max_ts = i64::MIN;
    for (i, r) in records(events, ooo).into_iter().enumerate() {
        if i == split {
            ops = rescale(ops, n);
        }
        if i == merge {
            ops = rescale(ops, 1);
        }
        max_ts = max_ts.max(r.event_time.unwrap_or(i64::MIN));
        let owner = crate::steps::key::instance_of(std::slice::from_ref(&key), &r, ops.len()).expect("key");
        ops[owner].process(r, &mut out).expect("no record errors");
        for op in &mut ops {
            op.on_watermark(max_ts - ooo, &mut out);
            late += op.take_late().len();
        }
    }
    for op in &mut ops {
        op.on_watermark(i64::MAX, &mut out);
        op.on_end(&mut out);
        late += op.take_late().len();
    }
    let mut lines: Vec<String> = out.iter().map(Record::to_json).collect();
    lines.sort();
    (lines, late)
}

proptest! {
    #[test]
    fn rescaling_state_between_instances_keeps_the_results(events in events_strategy(), split in 0usize..60, merge in 0usize..60, n in 2usize..4, kind_pick in 0u8..4, size in 200i64..3000, ooo in 0i64..2000, lateness in 0i64..2000) {
        let kind = window_kind(kind_pick, size);
        let split = split % (events.len() + 1);
        let merge = split + merge % (events.len() + 1 - split);
        let plain = run_rescaled(&kind, lateness, &events, ooo, (usize::MAX, 1, usize::MAX));
        prop_assert_eq!(run_rescaled(&kind, lateness, &events, ooo, (split, n, merge)), plain);
    }
}
