//! An in-memory network of N parties, for testing any [`Protocol`] without I/O.
//!
//! Like quinn's test `Pair` or raft-rs's test `Network`: the [`Simulation`] owns every party, calls
//! [`Protocol::start`] on each (in ascending id order), then delivers queued messages one at a time until the
//! queue is empty. [`Recipient::All`] is fanned out into one copy per other party when the message is queued,
//! so that a test can treat every copy differently (e.g. make one party equivocate).
//!
//! * A **hook** `FnMut(from, to, &mut message) -> Delivery` sees every copy before delivery: it can corrupt it
//!   in place, or [`Delivery::Drop`] it.
//! * **Reordering**: [`DeliveryOrder::Shuffled`] picks the next message at random from the queue, with a
//!   deterministic seed, so a failing order can be replayed.
//! * **No hangs**: a run ends when the queue is empty (or after `max_deliveries`). Parties that neither
//!   finished nor failed are reported as `stalled`, which is what a dropped message leads to.
//!
//! A party whose [`Protocol::start`] or [`Protocol::handle`] fails is recorded with its (first) error and
//! receives nothing more; messages it sent before are still delivered.
//!
//! ```
//! use vhsm_protocols::frost::{DkgParams, FrostDkg};
//! use vhsm_protocols::simulator::Simulation;
//! use vhsm_protocols::SessionId;
//!
//! # fn main() -> Result<(), vhsm_protocols::ProtocolError> {
//! let session = SessionId([1; 32]);
//! let parties = [1, 2, 3]
//!     .into_iter()
//!     .map(|me| FrostDkg::new(DkgParams { session, me, participants: vec![1, 2, 3], threshold: 2 }))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let outcome = Simulation::new(parties).run(&mut rand_core::OsRng);
//! assert_eq!(outcome.outputs.len(), 3);
//! assert!(outcome.errors.is_empty() && outcome.stalled.is_empty());
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, VecDeque};

use rand_core::{CryptoRng, RngCore};

use crate::error::ProtocolError;
use crate::party::{Outgoing, ParticipantId, Protocol, Recipient};

/// What the hook decides for one message copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Deliver it (possibly modified by the hook).
    Deliver,
    /// Lose it.
    Drop,
}

/// The order in which queued messages are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeliveryOrder {
    /// First queued, first delivered.
    #[default]
    Fifo,
    /// Uniformly random among the queued messages, from a deterministic generator seeded with `seed`.
    Shuffled {
        /// Seed of the (non-cryptographic) order generator.
        seed: u64,
    },
}

/// A queued message copy.
#[derive(Clone, Debug)]
pub struct Envelope<M> {
    /// Sender.
    pub from: ParticipantId,
    /// Recipient.
    pub to: ParticipantId,
    /// The message.
    pub message: M,
}

/// The result of a [`Simulation`] run, per party.
#[derive(Debug)]
pub struct SimulationOutcome<O> {
    /// Outputs of the parties that finished.
    pub outputs: BTreeMap<ParticipantId, O>,
    /// The first error of every party that failed.
    pub errors: BTreeMap<ParticipantId, ProtocolError>,
    /// Parties that neither finished nor failed when the queue ran empty.
    pub stalled: Vec<ParticipantId>,
    /// Message copies delivered.
    pub delivered: usize,
    /// Message copies dropped by the hook or addressed to an unknown or failed party.
    pub dropped: usize,
}

/// N parties of one protocol run, connected by an in-memory network. See the [module documentation](self).
pub struct Simulation<P: Protocol> {
    parties: BTreeMap<ParticipantId, P>,
    order: DeliveryOrder,
    max_deliveries: usize,
}

impl<P: Protocol> Simulation<P> {
    /// A network of `parties` (keyed by [`Protocol::participant`]), FIFO delivery.
    pub fn new(parties: impl IntoIterator<Item = P>) -> Self {
        Simulation {
            parties: parties.into_iter().map(|p| (p.participant(), p)).collect(),
            order: DeliveryOrder::Fifo,
            max_deliveries: 1_000_000,
        }
    }

    /// Sets the delivery order.
    pub fn order(mut self, order: DeliveryOrder) -> Self {
        self.order = order;
        self
    }

    /// Shorthand for [`DeliveryOrder::Shuffled`] with `seed`.
    pub fn shuffled(self, seed: u64) -> Self {
        self.order(DeliveryOrder::Shuffled { seed })
    }

    /// Stops after this many deliveries (a guard against protocols that never stop talking).
    pub fn max_deliveries(mut self, max: usize) -> Self {
        self.max_deliveries = max;
        self
    }

    /// Runs to quiescence, delivering everything.
    pub fn run<R: RngCore + CryptoRng>(self, rng: &mut R) -> SimulationOutcome<P::Output> {
        self.run_with_hook(rng, |_, _, _| Delivery::Deliver)
    }

    /// Runs to quiescence; `hook(from, to, &mut message)` sees (and may modify or drop) every message copy
    /// before it is delivered. `rng` is the parties' randomness.
    pub fn run_with_hook<R, H>(mut self, rng: &mut R, mut hook: H) -> SimulationOutcome<P::Output>
    where
        R: RngCore + CryptoRng,
        H: FnMut(ParticipantId, ParticipantId, &mut P::Message) -> Delivery,
    {
        let mut queue: VecDeque<Envelope<P::Message>> = VecDeque::new();
        let mut errors = BTreeMap::new();
        let mut delivered = 0usize;
        let mut dropped = 0usize;
        let ids: Vec<ParticipantId> = self.parties.keys().copied().collect();
        let mut order_state = match self.order {
            DeliveryOrder::Fifo => None,
            DeliveryOrder::Shuffled { seed } => Some(SplitMix64(seed)),
        };

        for (id, party) in self.parties.iter_mut() {
            match party.start(rng) {
                Ok(out) => enqueue(&mut queue, &ids, *id, out),
                Err(e) => {
                    errors.insert(*id, e);
                }
            }
        }

        while delivered < self.max_deliveries {
            let next = match order_state.as_mut() {
                None => queue.pop_front(),
                Some(gen) if !queue.is_empty() => {
                    let len = u64::try_from(queue.len()).unwrap_or(u64::MAX);
                    let index = usize::try_from(gen.next() % len).unwrap_or(0);
                    queue.swap_remove_back(index)
                }
                Some(_) => None,
            };
            let Some(Envelope {
                from,
                to,
                mut message,
            }) = next
            else {
                break;
            };
            if hook(from, to, &mut message) == Delivery::Drop || errors.contains_key(&to) {
                dropped += 1;
                continue;
            }
            let Some(party) = self.parties.get_mut(&to) else {
                dropped += 1;
                continue;
            };
            delivered += 1;
            match party.handle(from, message, rng) {
                Ok(out) => enqueue(&mut queue, &ids, to, out),
                Err(e) => {
                    errors.insert(to, e);
                }
            }
        }

        let mut outputs = BTreeMap::new();
        let mut stalled = Vec::new();
        for (id, party) in self.parties.iter_mut() {
            if errors.contains_key(id) {
                continue;
            }
            match party.take_output() {
                Some(o) if party.is_done() => {
                    outputs.insert(*id, o);
                }
                _ => stalled.push(*id),
            }
        }
        SimulationOutcome {
            outputs,
            errors,
            stalled,
            delivered,
            dropped,
        }
    }
}

/// Queues `out` from `from`, fanning [`Recipient::All`] out to every other party.
fn enqueue<M: Clone>(
    queue: &mut VecDeque<Envelope<M>>,
    ids: &[ParticipantId],
    from: ParticipantId,
    out: Vec<Outgoing<M>>,
) {
    for Outgoing { to, message } in out {
        match to {
            Recipient::One(to) => queue.push_back(Envelope { from, to, message }),
            Recipient::All => {
                for to in ids.iter().copied().filter(|id| *id != from) {
                    queue.push_back(Envelope {
                        from,
                        to,
                        message: message.clone(),
                    });
                }
            }
        }
    }
}

/// SplitMix64: a tiny deterministic generator for delivery order only (not for cryptography).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
