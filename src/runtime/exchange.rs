//! The exchange: records partitioned by key to the instance owning it, and each
//! instance's inbox, which hands on what its senders sent in one agreed order.
//!
//! - [`Partitioner`] deals a batch's records into one part per owner by the hash of
//!   their key (`steps::key::instance_of`), sizing each part from the last one it
//!   made for that owner (memory about one batch, not N times the largest part). Keyed
//!   instances (`keyed.rs`, one sender) and the workers of a run split by data
//!   (`split.rs`, every worker a sender) deal records with it.
//! - [`Inbox`]: one channel per receiver, whatever the number of senders (channels
//!   linear in the parallelism, not one per pair of workers). Messages carry a
//!   sequence number; the inbox hands on the message numbered `seq` from the sender
//!   that owns it, keeping any that arrive early, so a receiver applies its senders'
//!   messages in one order that does not depend on thread timing. A sender that stops
//!   says from which number on it sends nothing ([`Mail::Ended`]), so its receivers
//!   do not wait for it. Keyed instances (one sender, bounded inboxes for
//!   backpressure) and split workers (every worker a sender) use the same inboxes;
//!   watermarks, barriers and the end travel in them, in order with the records.
//!
//! How far a sender may run ahead of a receiver is bounded by the protocol of its
//! user (in `split.rs` a worker reads its next block only after applying every block
//! before it, so an inbox holds at most about two pieces from each sender).

use crate::expr::Expr;
use crate::record::{Batch, Record};
use crate::steps::key::instance_of;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use std::collections::BTreeMap;

/// Deals records to the instance owning their key.
pub struct Partitioner {
    exprs: Vec<Expr>,
    /// Per owner: the records its last part held.
    capacity: Vec<usize>,
}

impl Partitioner {
    pub fn new(exprs: Vec<Expr>, owners: usize) -> Partitioner {
        Partitioner { exprs, capacity: vec![0; owners] }
    }

    /// How many owners records are dealt to.
    pub fn owners(&self) -> usize {
        self.capacity.len()
    }

    /// Empty parts, one per owner, each with room for about as many records as its
    /// last part held (plus an eighth); `spare` gives back batches to reuse.
    pub fn parts(&self, spare: &mut Vec<Batch>) -> Vec<Batch> {
        self.capacity
            .iter()
            .map(|&last| {
                let mut part = spare.pop().unwrap_or_default();
                part.reserve(last + last / 8);
                part
            })
            .collect()
    }

    /// The owner of a record's key. A key that cannot be evaluated goes to owner 0,
    /// whose step reports the error as it would on one thread.
    pub fn owner(&self, record: &Record) -> usize {
        instance_of(&self.exprs, record, self.owners()).unwrap_or(0)
    }

    /// Puts a record in its owner's part.
    pub fn deal(&self, record: Record, parts: &mut [Batch]) {
        let owner = self.owner(&record);
        parts[owner].push(record);
    }

    /// Remembers how large each part was, to size the next ones.
    pub fn dealt(&mut self, parts: &[Batch]) {
        for (last, part) in self.capacity.iter_mut().zip(parts) {
            *last = part.len();
        }
    }

    /// A whole batch dealt into fresh parts.
    pub fn split(&mut self, batch: Batch) -> Vec<Batch> {
        let mut parts = self.parts(&mut Vec::new());
        for record in batch {
            self.deal(record, &mut parts);
        }
        self.dealt(&parts);
        parts
    }
}

/// What arrives in an inbox.
pub enum Mail<T> {
    /// Message number `seq`.
    Message { seq: usize, message: T },
    /// Sender `sender` sends no message numbered `from` or later.
    Ended { sender: usize, from: usize },
}

/// The sending side of every inbox: one sender per receiver.
pub struct Outboxes<T> {
    to: Vec<Sender<Mail<T>>>,
}

impl<T> Clone for Outboxes<T> {
    fn clone(&self) -> Self {
        Outboxes { to: self.to.clone() }
    }
}

/// One inbox per receiver, and the senders to them (clone one per sender). With a
/// capacity, a send waits while the receiver's inbox holds that many messages
/// (backpressure; only for a single sender, which cannot then wait on itself).
pub fn inboxes<T>(receivers: usize, capacity: Option<usize>) -> (Outboxes<T>, Vec<Receiver<Mail<T>>>) {
    let channel = || match capacity {
        Some(n) => bounded(n),
        None => unbounded(),
    };
    let (to, from) = (0..receivers).map(|_| channel()).unzip();
    (Outboxes { to }, from)
}

impl<T> Outboxes<T> {
    /// Sends message `seq` to receiver `to`; false when it has gone.
    pub fn send(&self, to: usize, seq: usize, message: T) -> bool {
        self.to[to].send(Mail::Message { seq, message }).is_ok()
    }

    /// The messages waiting in receiver `to`'s inbox.
    pub fn queued(&self, to: usize) -> usize {
        self.to[to].len()
    }

    /// How many receivers there are.
    pub fn receivers(&self) -> usize {
        self.to.len()
    }

    /// Tells every receiver but `sender` itself that `sender` sends nothing numbered
    /// `from` or later.
    pub fn end(&self, sender: usize, from: usize) {
        for (i, to) in self.to.iter().enumerate() {
            if i != sender {
                let _ = to.send(Mail::Ended { sender, from });
            }
        }
    }
}

/// A receiver's inbox, handing on messages in sequence order.
pub struct Inbox<T> {
    rx: Receiver<Mail<T>>,
    /// Messages that came before their turn, by number.
    early: BTreeMap<usize, T>,
    /// Per sender: the first number it will not send (None: it goes on).
    ended: Vec<Option<usize>>,
}

impl<T> Inbox<T> {
    pub fn new(rx: Receiver<Mail<T>>, senders: usize) -> Inbox<T> {
        Inbox { rx, early: BTreeMap::new(), ended: vec![None; senders] }
    }

    /// Whether nothing is waiting (neither in the channel nor kept early).
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty() && self.early.is_empty()
    }

    /// Message `seq` from `sender`, waiting for it; None when that sender has ended
    /// before it (or every sender has gone).
    pub fn take(&mut self, seq: usize, sender: usize) -> Option<T> {
        loop {
            if let Some(message) = self.early.remove(&seq) {
                return Some(message);
            }
            if self.ended[sender].is_some_and(|from| seq >= from) {
                return None;
            }
            match self.rx.recv().ok()? {
                Mail::Message { seq: got, message } if got == seq => return Some(message),
                Mail::Message { seq, message } => {
                    self.early.insert(seq, message);
                }
                Mail::Ended { sender, from } => {
                    let ended = &mut self.ended[sender];
                    *ended = Some(ended.map_or(from, |e| e.min(from)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inbox_hands_on_in_sequence_order_whatever_the_arrival() {
        let (out, mut rx) = inboxes::<&str>(3, None);
        let mut inbox = Inbox::new(rx.remove(2), 3);
        // Senders 0 and 1 take turns (seq % 2); 1 sends first.
        out.send(2, 1, "b");
        out.send(2, 3, "d");
        out.send(2, 0, "a");
        out.send(2, 2, "c");
        out.end(1, 5);
        out.end(0, 4);
        let got: Vec<_> = (0..).map_while(|seq| inbox.take(seq, seq % 2)).collect();
        assert_eq!(got, ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_sender_that_ended_is_not_waited_for() {
        let (out, mut rx) = inboxes::<u32>(2, None);
        let mut inbox = Inbox::new(rx.remove(1), 2);
        out.end(0, 0);
        assert_eq!(inbox.take(0, 0), None);
    }

    #[test]
    fn parts_are_sized_from_the_last_ones() {
        let mut p = Partitioner::new(Vec::new(), 3);
        let parts = p.split(vec![Record::from_pairs(vec![("a", crate::record::Value::Int(1))]); 16]);
        // No key expressions: every record has the same (empty) key, so one owner.
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 16);
        assert_eq!(parts.iter().filter(|p| !p.is_empty()).count(), 1);
        let next = p.parts(&mut Vec::new());
        assert!(next.iter().zip(&parts).all(|(n, last)| n.capacity() >= last.len()));
    }
}
