//! The windows of a `window` step waiting for the watermark (to fire, or to be freed
//! after their allowed lateness), grouped by end: adding one is a push onto its end's
//! list, and a whole end is taken at once in the contract's firing order.

use std::collections::BTreeMap;

/// A window as queued: `(end, start, key id)`.
pub type WindowId = (i64, i64, u64);

#[derive(Default)]
pub struct WindowQueue {
    /// Windows by end; each end's `(start, key id)` pairs in insertion order.
    by_end: BTreeMap<i64, Vec<(i64, u64)>>,
}

impl WindowQueue {
    pub fn insert(&mut self, (end, start, key): WindowId) {
        self.by_end.entry(end).or_default().push((start, key));
    }

    pub fn remove(&mut self, (end, start, key): WindowId) {
        if let Some(list) = self.by_end.get_mut(&end) {
            if let Some(i) = list.iter().position(|w| *w == (start, key)) {
                list.swap_remove(i);
            }
            if list.is_empty() {
                self.by_end.remove(&end);
            }
        }
    }

    /// Takes every window of the earliest end when `due(end)`, ordered by (start,
    /// key id): with the ends taken in order, that is the (end, start, key) order.
    pub fn pop_due(&mut self, due: impl Fn(i64) -> bool) -> Option<(i64, Vec<(i64, u64)>)> {
        let first = self.by_end.first_entry()?;
        if !due(*first.key()) {
            return None;
        }
        let (end, mut windows) = first.remove_entry();
        windows.sort_unstable();
        Some((end, windows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_come_in_order_and_each_end_sorted_by_start_then_key() {
        let mut q = WindowQueue::default();
        for w in [(20, 10, 5), (10, 0, 7), (20, 10, 2), (20, 5, 9), (10, 0, 1), (30, 20, 0)] {
            q.insert(w);
        }
        q.remove((20, 5, 9));
        q.remove((30, 20, 0));
        assert_eq!(q.pop_due(|end| end <= 20), Some((10, vec![(0, 1), (0, 7)])));
        assert_eq!(q.pop_due(|end| end <= 20), Some((20, vec![(10, 2), (10, 5)])));
        assert_eq!(q.pop_due(|_| true), None);
    }
}
