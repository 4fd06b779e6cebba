//! The nemesis's plan: a seeded random sequence of disturbances, each followed by a calm gap.
//!
//! The kinds come in rounds: each round is every [`EventKind`] once, in an order drawn from the seed, so that a
//! run of at least [`EventKind::ALL`]`.len()` events has every kind; the node each one disturbs, how long it holds
//! and the calm gap after it are drawn from the same seed. The same seed gives the same sequence (a run that lasts
//! longer sees more of it).

use std::time::Duration;

use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// What the nemesis does to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// SIGKILL a node, keep it down for a while, start it again.
    Kill,
    /// SIGSTOP a node for a few seconds, then SIGCONT.
    Pause,
    /// SIGTERM a node (wait for it to exit), keep it down for a while, start it again.
    Terminate,
    /// Cut a node off from its peers (through the UDP proxy; it still reaches the coordinator), then heal.
    Partition,
    /// SIGKILL or SIGTERM the coordinator and start it again.
    RestartCoordinator,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 5] = [
        EventKind::Kill,
        EventKind::Pause,
        EventKind::Terminate,
        EventKind::Partition,
        EventKind::RestartCoordinator,
    ];

    /// A short name (for tables).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Kill => "kill",
            EventKind::Pause => "pause",
            EventKind::Terminate => "terminate",
            EventKind::Partition => "partition",
            EventKind::RestartCoordinator => "coordinator restart",
        }
    }

    /// How long this kind of disturbance holds, at least and at most.
    fn hold(self) -> (Duration, Duration) {
        match self {
            EventKind::Kill | EventKind::Terminate => {
                (Duration::from_secs(2), Duration::from_secs(6))
            }
            EventKind::Pause => (Duration::from_secs(2), Duration::from_secs(5)),
            EventKind::Partition => (Duration::from_secs(3), Duration::from_secs(8)),
            EventKind::RestartCoordinator => (Duration::ZERO, Duration::from_secs(2)),
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One planned disturbance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// What.
    pub kind: EventKind,
    /// The node disturbed (for [`EventKind::RestartCoordinator`]: none).
    pub node: Option<u16>,
    /// How long it holds before it is undone (a node down, paused or cut off; the coordinator down).
    pub hold: Duration,
    /// For a coordinator restart: SIGKILL (else SIGTERM).
    pub hard: bool,
    /// The calm before the next disturbance (counted from when the cluster has recovered).
    pub calm_after: Duration,
}

/// The seeded sequence of disturbances.
#[derive(Debug)]
pub struct Schedule {
    rng: ChaCha8Rng,
    round: Vec<EventKind>,
    nodes: u16,
    calm: (Duration, Duration),
}

impl Schedule {
    /// The sequence of `seed` for a cluster of `nodes` nodes, with calm gaps between `calm.0` and `calm.1`.
    pub fn new(seed: u64, nodes: u16, calm: (Duration, Duration)) -> Self {
        Schedule {
            rng: ChaCha8Rng::seed_from_u64(seed),
            round: Vec::new(),
            nodes: nodes.max(1),
            calm,
        }
    }

    fn between(&mut self, (low, high): (Duration, Duration)) -> Duration {
        if high <= low {
            return low;
        }
        Duration::from_millis(
            self.rng
                .gen_range(low.as_millis() as u64..=high.as_millis() as u64),
        )
    }
}

impl Iterator for Schedule {
    type Item = Planned;

    fn next(&mut self) -> Option<Planned> {
        if self.round.is_empty() {
            let mut round = EventKind::ALL.to_vec();
            round.shuffle(&mut self.rng);
            // Popped from the end: reverse so the round runs in the order drawn.
            round.reverse();
            self.round = round;
        }
        let kind = self.round.pop()?;
        let node = match kind {
            EventKind::RestartCoordinator => None,
            _ => Some(self.rng.gen_range(1..=self.nodes)),
        };
        let hold = self.between(kind.hold());
        let hard = self.rng.gen_bool(0.5);
        let calm_after = self.between(self.calm);
        Some(Planned {
            kind,
            node,
            hold,
            hard,
            calm_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_comes_in_each_round_and_the_seed_decides() {
        let calm = (Duration::from_secs(1), Duration::from_secs(2));
        let first: Vec<Planned> = Schedule::new(7, 3, calm).take(10).collect();
        let again: Vec<Planned> = Schedule::new(7, 3, calm).take(10).collect();
        assert_eq!(first, again);
        for round in first.chunks(EventKind::ALL.len()) {
            let mut kinds: Vec<EventKind> = round.iter().map(|p| p.kind).collect();
            kinds.sort();
            assert_eq!(kinds, EventKind::ALL.to_vec());
        }
        for p in &first {
            assert_eq!(p.node.is_none(), p.kind == EventKind::RestartCoordinator);
            assert!(p.node.is_none_or(|n| (1..=3).contains(&n)));
            assert!(p.calm_after >= calm.0 && p.calm_after <= calm.1);
        }
        let other: Vec<Planned> = Schedule::new(8, 3, calm).take(10).collect();
        assert_ne!(first, other);
    }
}
