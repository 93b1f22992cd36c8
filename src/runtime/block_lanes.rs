//! One source lane made on several cores: N workers each read every N-th block of
//! the source (`Source::block_shares`: a file cut on record boundaries), and do what
//! a source thread does to each block's records (`source_thread::LaneWork`: event
//! time, the head steps, encoding for the one sink); a forwarder hands the blocks'
//! messages on in block order. The executor so receives exactly the messages of one
//! thread reading the whole source (the same records and lines in the same order,
//! with the same origins, watermarks and checkpoint positions), made on N cores.
//! Used where the lane encodes for its one sink: a stateless pipeline reading one
//! file, which otherwise runs on one source thread.

use super::source_thread::{spawn, LaneWork, Pumped};
use super::Message;
use crate::error::Result;
use crate::sources::BlockShare;
use crossbeam_channel::{bounded, Receiver, Sender};

/// Starts a worker per share, each with its lane work, and the forwarder sending their
/// messages, block by block in turn, to `tx`. `name` names the threads.
pub fn start(shares: Vec<Box<dyn BlockShare>>, works: Vec<LaneWork>, tx: Sender<Message>, name: &str) -> Result<()> {
    let mut outputs = Vec::with_capacity(shares.len());
    for (k, (share, work)) in shares.into_iter().zip(works).enumerate() {
        // One block's messages waiting per worker: memory stays a few blocks.
        let (out_tx, out_rx) = bounded::<Vec<Message>>(1);
        spawn(format!("{name}-{k}"), move || work_blocks(share, work, out_tx))?;
        outputs.push(out_rx);
    }
    spawn(name.to_string(), move || forward(outputs, tx))
}

/// A worker: each block's messages as one list, the last one ending with `End` or
/// `Failed`. Returns when stopped or when the forwarder has gone.
fn work_blocks(mut share: Box<dyn BlockShare>, mut work: LaneWork, out: Sender<Vec<Message>>) {
    loop {
        let mut messages = Vec::new();
        let last = match share.next_block() {
            Ok(true) => match work.pump(|max, records, bad| share.read(max, records, bad), &mut messages) {
                Pumped::Done => None,
                Pumped::Failed(e) => Some(Message::Failed(e)),
                Pumped::Stopped => return,
            },
            Ok(false) => Some(Message::End),
            Err(e) => Some(Message::Failed(e)),
        };
        let ended = last.is_some();
        messages.extend(last);
        if out.send(messages).is_err() || ended {
            return;
        }
    }
}

/// Hands on the workers' blocks in turn until one ends the input.
fn forward(outputs: Vec<Receiver<Vec<Message>>>, tx: Sender<Message>) {
    for output in outputs.iter().cycle() {
        let Ok(messages) = output.recv() else { return };
        for message in messages {
            let last = matches!(message, Message::End | Message::Failed(_));
            if tx.send(message).is_err() || last {
                return;
            }
        }
    }
}
