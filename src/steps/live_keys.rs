//! The live keys of a `window` step: each key that has a window open, with its
//! arrival number (its id, given in arrival order and never reused, which orders
//! simultaneous firings) and how many windows it holds open. Keys live in slots, so
//! windows refer to their key by slot: the key is hashed once when a record arrives
//! and once when its last window closes, not on every open and close.

use super::key::{Key, KeyMap, KeyRef};
use crate::record::Value;
use hashbrown::hash_map::EntryRef;

/// Where a live key is kept; valid while the key has a window open.
pub type Slot = u32;

struct Entry {
    key: Key,
    id: u64,
    open: usize,
}

#[derive(Default)]
pub struct LiveKeys {
    slots_by_key: KeyMap<Slot>,
    slots: Vec<Entry>,
    free: Vec<Slot>,
    next_id: u64,
}

impl LiveKeys {
    /// The slot of the key with these values, adding it (with the next id) if new.
    pub fn find_or_add(&mut self, values: &[Value]) -> Slot {
        match self.slots_by_key.entry_ref(&KeyRef(values)) {
            EntryRef::Occupied(entry) => *entry.get(),
            EntryRef::Vacant(entry) => {
                let id = self.next_id;
                self.next_id += 1;
                let key = Key::from(&KeyRef(values));
                let slot = store(&mut self.slots, &mut self.free, Entry { key: key.clone(), id, open: 0 });
                entry.insert_with_key(key, slot);
                slot
            }
        }
    }

    /// Adds a key with a known id (restoring a checkpoint).
    pub fn restore(&mut self, key: Key, id: u64) -> Slot {
        let slot = store(&mut self.slots, &mut self.free, Entry { key: key.clone(), id, open: 0 });
        self.slots_by_key.insert(key, slot);
        slot
    }

    pub fn key(&self, slot: Slot) -> &Key {
        &self.slots[slot as usize].key
    }

    pub fn id(&self, slot: Slot) -> u64 {
        self.slots[slot as usize].id
    }

    /// The key holds one more window.
    pub fn opened(&mut self, slot: Slot) {
        self.slots[slot as usize].open += 1;
    }

    /// The key holds one window less (it stays live until `release_if_unused`).
    pub fn closed(&mut self, slot: Slot) {
        self.slots[slot as usize].open -= 1;
    }

    /// Forgets the key if it holds no window; gives its id when it did.
    pub fn release_if_unused(&mut self, slot: Slot) -> Option<u64> {
        let entry = &self.slots[slot as usize];
        if entry.open > 0 {
            return None;
        }
        let id = entry.id;
        self.slots_by_key.remove(&entry.key);
        self.free.push(slot);
        Some(id)
    }

    /// The next id to give (saved in checkpoints so ids stay in arrival order).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn set_next_id(&mut self, next: u64) {
        self.next_id = next;
    }

    /// Every live key with its id.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Key)> {
        self.slots_by_key.values().map(|&slot| (self.slots[slot as usize].id, &self.slots[slot as usize].key))
    }
}

fn store(slots: &mut Vec<Entry>, free: &mut Vec<Slot>, entry: Entry) -> Slot {
    match free.pop() {
        Some(slot) => {
            slots[slot as usize] = entry;
            slot
        }
        None => {
            slots.push(entry);
            (slots.len() - 1) as Slot
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_id_while_live_and_get_a_new_one_after_release() {
        let mut keys = LiveKeys::default();
        let a = keys.find_or_add(&[Value::str("a")]);
        let b = keys.find_or_add(&[Value::str("b")]);
        assert_eq!((keys.id(a), keys.id(b)), (0, 1));
        keys.opened(a);
        assert_eq!(keys.find_or_add(&[Value::str("a")]), a);
        assert_eq!(keys.release_if_unused(a), None);
        keys.closed(a);
        assert_eq!(keys.release_if_unused(a), Some(0));
        let again = keys.find_or_add(&[Value::str("a")]);
        assert_eq!(keys.id(again), 2);
        assert_eq!(keys.key(again), &Key(std::sync::Arc::from(vec![Value::str("a")])));
        let mut live: Vec<u64> = keys.iter().map(|(id, _)| id).collect();
        live.sort();
        assert_eq!(live, vec![1, 2]);
    }
}
