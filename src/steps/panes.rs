//! The open windows of a time-based `window` step (tumbling, sliding), as panes: a
//! pane is every key's window of the same bounds, its keys' values and accumulators
//! kept in two flat vectors (a fixed number of each per key) with a hash index. A
//! record costs one hash of its key and one probe per window it falls into; a key new
//! to a window allocates nothing of its own; a pane fires by one scan in the order its
//! keys arrived, and is freed (and its vectors kept for the next pane) at once.

use super::aggregate::{Acc, Accumulators};
use super::key::key_hash;
use crate::record::Value;
use crate::steps::aggregate::Aggregate;
use hashbrown::HashTable;
use std::collections::BTreeMap;

/// A window's bounds as panes are ordered: `(end, start)`, the contract's firing order.
pub type Bounds = (i64, i64);

/// Emptied panes kept for reuse; more are simply freed.
const SPARE_PANES: usize = 16;

#[derive(Default)]
struct Pane {
    /// Entry numbers by key hash.
    index: HashTable<u32>,
    /// `key_len` values per entry, in arrival order.
    keys: Vec<Value>,
    /// One accumulator per aggregate per entry.
    accs: Vec<Acc>,
}

impl Pane {
    /// Its windows (one per key).
    fn len(&self) -> usize {
        self.index.len()
    }
}

/// One key's window in a pane.
pub struct Entry<'a> {
    pub key: &'a [Value],
    pub accs: &'a [Acc],
}

pub struct Panes {
    key_len: usize,
    /// The accumulators a key starts a window with.
    fresh: Vec<Acc>,
    /// Panes that have not fired.
    pending: BTreeMap<Bounds, Pane>,
    /// Panes that fired, kept for their allowed lateness.
    retained: BTreeMap<Bounds, Pane>,
    spare: Vec<Pane>,
    entries: usize,
    peak: usize,
}

impl Panes {
    pub fn new(key_len: usize, aggregates: &[Aggregate]) -> Panes {
        Panes {
            key_len,
            fresh: Accumulators::new(aggregates).0,
            pending: BTreeMap::new(),
            retained: BTreeMap::new(),
            spare: Vec::new(),
            entries: 0,
            peak: 0,
        }
    }

    /// Adds a record's `arguments` to the window `bounds` of the key `key` (whose
    /// [`key_hash`] is `hash`), opening it if new. `fired` says whether the window is
    /// due (`end - 1 <= watermark`): its pane then has fired, and the window is given
    /// back (its updated result is due at once). Pending panes are exactly those not due.
    pub fn add(
        &mut self,
        bounds: Bounds,
        fired: bool,
        hash: u64,
        key: &[Value],
        arguments: &[Option<Value>],
        seq: u64,
    ) -> Option<Entry<'_>> {
        let (k, a) = (self.key_len, self.fresh.len());
        let (pane, i) = self.window(bounds, fired, hash, key);
        super::aggregate::add_arguments(&mut pane.accs[i * a..][..a], arguments.iter().map(Option::as_ref), seq);
        fired.then(|| entry(pane, i, k, a))
    }

    /// The pane of `bounds` (in `retained` when `fired`) and the number of the key's
    /// window in it, opened with fresh accumulators if new.
    fn window(&mut self, bounds: Bounds, fired: bool, hash: u64, key: &[Value]) -> (&mut Pane, usize) {
        let panes = if fired { &mut self.retained } else { &mut self.pending };
        let pane = panes.entry(bounds).or_insert_with(|| self.spare.pop().unwrap_or_default());
        let k = self.key_len;
        let i = match pane.index.find(hash, |&i| pane.keys[i as usize * k..][..k] == *key) {
            Some(&i) => i as usize,
            None => {
                let (n, keys) = (pane.len(), &pane.keys);
                pane.index.insert_unique(hash, n as u32, |&i| key_hash(&keys[i as usize * k..][..k]));
                pane.keys.extend_from_slice(key);
                pane.accs.extend_from_slice(&self.fresh);
                self.entries += 1;
                self.peak = self.peak.max(self.entries);
                n
            }
        };
        (pane, i)
    }

    /// Fires every pending pane with `due(bounds)`, in order, calling `emit` for each
    /// window in arrival order; a pane `gone(bounds)` by then is freed, others kept.
    pub fn fire(
        &mut self,
        due: impl Fn(Bounds) -> bool,
        gone: impl Fn(Bounds) -> bool,
        mut emit: impl FnMut(Bounds, Entry),
    ) {
        while let Some(first) = self.pending.first_entry() {
            if !due(*first.key()) {
                break;
            }
            let (bounds, pane) = first.remove_entry();
            for i in 0..pane.len() {
                emit(bounds, entry(&pane, i, self.key_len, self.fresh.len()));
            }
            if gone(bounds) {
                self.free(pane);
            } else {
                self.retained.insert(bounds, pane);
            }
        }
    }

    /// Frees the fired panes with `gone(bounds)`.
    pub fn expire(&mut self, gone: impl Fn(Bounds) -> bool) {
        while let Some(first) = self.retained.first_entry() {
            if !gone(*first.key()) {
                break;
            }
            let pane = first.remove();
            self.free(pane);
        }
    }

    fn free(&mut self, mut pane: Pane) {
        self.entries -= pane.len();
        if self.spare.len() < SPARE_PANES {
            pane.index.clear();
            pane.keys.clear();
            pane.accs.clear();
            self.spare.push(pane);
        }
    }

    /// Every window with its bounds and whether its pane fired, panes in firing order
    /// and each pane's windows in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (Bounds, bool, Entry<'_>)> {
        let (k, a) = (self.key_len, self.fresh.len());
        let fired = self.retained.iter().map(|(b, p)| (b, p, true));
        let pending = self.pending.iter().map(|(b, p)| (b, p, false));
        fired
            .chain(pending)
            .flat_map(move |(&bounds, pane, fired)| (0..pane.len()).map(move |i| (bounds, fired, entry(pane, i, k, a))))
    }

    /// Puts back a window from a checkpoint (windows of a pane in arrival order).
    pub fn restore(&mut self, bounds: Bounds, fired: bool, key: &[Value], accs: Accumulators) {
        let a = self.fresh.len();
        let (pane, i) = self.window(bounds, fired, key_hash(key), key);
        for (slot, acc) in pane.accs[i * a..][..a].iter_mut().zip(accs.0) {
            *slot = acc;
        }
    }

    /// Open windows.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// The most windows open at once.
    pub fn peak(&self) -> usize {
        self.peak
    }
}

fn entry(pane: &Pane, i: usize, k: usize, a: usize) -> Entry<'_> {
    Entry { key: &pane.keys[i * k..][..k], accs: &pane.accs[i * a..][..a] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::aggregate::AggFunc;
    use std::sync::Arc;

    fn add(panes: &mut Panes, bounds: Bounds, key: &str, fired: bool) -> Option<Value> {
        let key = [Value::str(key)];
        let window = panes.add(bounds, fired, key_hash(&key), &key, &[None], 0)?;
        Some(window.accs[0].value())
    }

    fn fired(panes: &mut Panes, watermark: i64) -> Vec<(Bounds, Value, Value)> {
        let mut out = Vec::new();
        panes.fire(
            |(end, _)| end - 1 <= watermark,
            |(end, _)| end - 1 <= watermark,
            |bounds, w| out.push((bounds, w.key[0].clone(), w.accs[0].value())),
        );
        out
    }

    #[test]
    fn panes_fire_in_bounds_order_and_keys_in_their_arrival_order_in_each_pane() {
        let count = [Aggregate { name: Arc::from("n"), func: AggFunc::Count, arg: None }];
        let mut panes = Panes::new(1, &count);
        for (bounds, key) in [((20, 10), "b"), ((10, 0), "a"), ((20, 10), "a"), ((10, 0), "b"), ((20, 10), "b")] {
            assert_eq!(add(&mut panes, bounds, key, false), None);
        }
        assert_eq!((panes.len(), panes.peak()), (4, 4));
        assert_eq!(
            fired(&mut panes, 9),
            vec![((10, 0), Value::str("a"), Value::Int(1)), ((10, 0), Value::str("b"), Value::Int(1))]
        );
        assert_eq!(
            fired(&mut panes, 19),
            vec![((20, 10), Value::str("b"), Value::Int(2)), ((20, 10), Value::str("a"), Value::Int(1))]
        );
        // A freed pane's vectors serve the next pane, empty.
        assert_eq!(panes.len(), 0);
        assert_eq!(add(&mut panes, (30, 20), "c", false), None);
        assert_eq!(fired(&mut panes, 29), vec![((30, 20), Value::str("c"), Value::Int(1))]);
        // A window of a fired pane is given back at once.
        assert_eq!(add(&mut panes, (40, 30), "d", true), Some(Value::Int(1)));
        assert_eq!(panes.iter().count(), 1);
        panes.expire(|(end, _)| end - 1 <= 39);
        assert_eq!(panes.iter().count(), 0);
    }
}
