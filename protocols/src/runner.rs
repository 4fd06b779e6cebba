//! The generic runner of the crate's round-based state machines: where a run stands (not started, in one of
//! the protocol's own phases, finished, aborted), admission of incoming messages, and **abort with wipe**.
//!
//! Every multi-round protocol of this crate ([`crate::frost::FrostDkg`], [`crate::split_aes::SplitAesDkg`],
//! [`crate::reshare::Reshare`], [`crate::ecdsa::EcdsaDkg`], [`crate::ecdsa::EcdsaSigning`]) is a [`Machine`]:
//! it says how to begin, how to record one received message and how to move through the phases whose
//! inputs are complete. Everything else is here, written once:
//!
//! * [`start`] refuses a run that finished, aborted or already started, enters the machine's first phase,
//!   runs [`Machine::begin`] and then [`Machine::advance`];
//! * [`handle`] refuses any call after the run finished or aborted, then **admits** the message
//!   ([`crate::party::admit`]: a message of another session is refused with
//!   [`ProtocolError::WrongSession`], a sender outside the run is named; neither touches the run), records it
//!   ([`Machine::receive`]; before [`start`] messages are only buffered) and advances;
//! * any error of a step after admission **aborts the run for good**: every later call fails with
//!   [`ProtocolError::State`] (`"<what> aborted: <first error>"`, or `"<what> already finished"` after the
//!   output was produced).
//!
//! # Why the wipe lives here
//!
//! Wiping the secrets of a failed run is security-relevant (a run that aborted because of a cheating peer must
//! not keep its polynomial, its share or the peers' shares around), and five hand-written copies of "clear
//! these fields on abort" drift apart as fields are added. So a machine keeps everything secret of a run (its
//! polynomial or share, the shares received from others, the secret state of the wrapped library between
//! phases, buffered private messages) in **one** value, its [`Machine::Secrets`], and that value lives inside
//! the [`Runner`], not among the machine's own fields. The runner drops it — and since every part of it
//! zeroizes itself on drop, wipes it — the moment the run aborts, and also when it finishes (by then the
//! output holds what is kept). There is no per-machine wipe code left to forget: a secret added later goes
//! into the machine's `Secrets` and is wiped with the rest, and while the run lives the secrets are reached
//! only through the runner ([`Runner::secrets`], [`Runner::secrets_mut`]), which refuses once they are gone.
//! The [`ZeroizeOnDrop`] bound on `Secrets` is a marker: each machine states next to its `Secrets` type why
//! every field wipes itself. Each abort wipes exactly once, because after it nothing but a refusal runs.
//!
//! The runner is crate-internal; the machines expose the same [`crate::Protocol`] API as always.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use zeroize::ZeroizeOnDrop;

use crate::error::ProtocolError;
use crate::party::{admit, Outgoing, ParticipantId, SessionId};

/// Where a run stands. `P` is the machine's own phase while it runs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Status<P> {
    /// [`start`] not called yet (messages are buffered).
    NotStarted,
    /// Started; in this phase of the protocol.
    Running(P),
    /// Output produced.
    Done,
    /// Failed, for this reason (the first error); every later call is refused.
    Aborted(String),
}

impl<P: fmt::Debug> fmt::Debug for Status<P> {
    /// The bare name of the status, or of the running phase (`NotStarted`, `Round1`, `Done`, `Aborted`); the
    /// abort reason is printed apart ([`Runner::abort_reason`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::NotStarted => f.write_str("NotStarted"),
            Status::Running(phase) => phase.fmt(f),
            Status::Done => f.write_str("Done"),
            Status::Aborted(_) => f.write_str("Aborted"),
        }
    }
}

/// The bookkeeping of one run: its [`Status`], its secret state `S` (until the run finishes or aborts) and
/// its output `O` (from when it finishes until it is taken). See the [module documentation](self).
pub(crate) struct Runner<P, S: ZeroizeOnDrop, O> {
    /// What the run is called in errors: `"DKG"`, `"signing"`, …
    what: &'static str,
    status: Status<P>,
    secrets: Option<S>,
    output: Option<O>,
}

impl<P: Copy, S: ZeroizeOnDrop, O> Runner<P, S, O> {
    /// A run not started yet, called `what` in errors, holding `secrets` (possibly empty until the run
    /// gets some).
    pub(crate) fn new(what: &'static str, secrets: S) -> Self {
        Runner {
            what,
            status: Status::NotStarted,
            secrets: Some(secrets),
            output: None,
        }
    }

    /// Refuses every call once the run finished or aborted.
    pub(crate) fn check_usable(&self) -> Result<(), ProtocolError> {
        match &self.status {
            Status::Aborted(reason) => Err(ProtocolError::State(format!(
                "{} aborted: {reason}",
                self.what
            ))),
            Status::Done => Err(ProtocolError::State(format!(
                "{} already finished",
                self.what
            ))),
            Status::NotStarted | Status::Running(_) => Ok(()),
        }
    }

    /// Where the run stands.
    pub(crate) fn status(&self) -> &Status<P> {
        &self.status
    }

    /// True once [`start`] was called (also after the run finished or aborted).
    pub(crate) fn is_started(&self) -> bool {
        !matches!(self.status, Status::NotStarted)
    }

    /// The machine's phase, while the run is running.
    pub(crate) fn phase(&self) -> Option<P> {
        match self.status {
            Status::Running(phase) => Some(phase),
            Status::NotStarted | Status::Done | Status::Aborted(_) => None,
        }
    }

    /// Moves a running run to `phase`. A run that is not running stays as it is: nothing leaves
    /// [`Status::Aborted`] or [`Status::Done`].
    pub(crate) fn set_phase(&mut self, phase: P) {
        if let Status::Running(current) = &mut self.status {
            *current = phase;
        }
    }

    /// True once the output was produced (also after it was taken).
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.status, Status::Done)
    }

    /// True if the run failed; it cannot be resumed.
    pub(crate) fn is_aborted(&self) -> bool {
        matches!(self.status, Status::Aborted(_))
    }

    /// Why the run aborted (its first error), if it did.
    pub(crate) fn abort_reason(&self) -> Option<&str> {
        match &self.status {
            Status::Aborted(reason) => Some(reason),
            Status::NotStarted | Status::Running(_) | Status::Done => None,
        }
    }

    /// The secret state, until the run finishes or aborts; a [`ProtocolError::State`] afterwards.
    pub(crate) fn secrets(&self) -> Result<&S, ProtocolError> {
        self.secrets.as_ref().ok_or_else(|| wiped(self.what))
    }

    /// The secret state, mutably, until the run finishes or aborts; a [`ProtocolError::State`] afterwards.
    pub(crate) fn secrets_mut(&mut self) -> Result<&mut S, ProtocolError> {
        let what = self.what;
        self.secrets.as_mut().ok_or_else(|| wiped(what))
    }

    /// Ends the run with `output`: the secret state is dropped (wiped), the output kept for
    /// [`Runner::take_output`].
    pub(crate) fn finish(&mut self, output: O) {
        self.status = Status::Done;
        self.secrets = None;
        self.output = Some(output);
    }

    /// The output, once; `None` before the run is done or after it was taken.
    pub(crate) fn take_output(&mut self) -> Option<O> {
        self.output.take()
    }

    /// Aborts the run because of `error`: the secret state is dropped (wiped) and every later call refused.
    /// A run aborts once; a second call changes nothing (it cannot happen through [`start`] and [`handle`],
    /// which refuse every call after an abort).
    pub(crate) fn abort(&mut self, error: &ProtocolError) {
        if self.is_aborted() {
            return;
        }
        self.status = Status::Aborted(error.to_string());
        self.secrets = None;
        self.output = None;
    }
}

/// The error of a call that needs the secrets of a run that finished or aborted.
fn wiped(what: &str) -> ProtocolError {
    ProtocolError::State(format!("{what}: secret state already wiped"))
}

impl<P: fmt::Debug, S: ZeroizeOnDrop, O> fmt::Debug for Runner<P, S, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("what", &self.what)
            .field("status", &self.status)
            .field(
                "secrets",
                &if self.secrets.is_some() {
                    "<redacted>"
                } else {
                    "wiped"
                },
            )
            .finish_non_exhaustive()
    }
}

/// A round-based protocol state machine whose bookkeeping is a [`Runner`]: it provides the protocol's
/// steps, [`start`] and [`handle`] drive them.
pub(crate) trait Machine {
    /// The protocol's own phases while it runs (waiting for round 1, for the echoes, …).
    type Phase: Copy;
    /// Everything secret the run holds, wiped (dropped) when the run aborts or finishes.
    type Secrets: ZeroizeOnDrop;
    /// What a successful run produces.
    type Output;
    /// The messages of the protocol.
    type Message;

    /// The phase [`start`] enters, before [`Machine::begin`].
    const FIRST_PHASE: Self::Phase;

    /// The run's bookkeeping.
    fn runner(&self) -> &Runner<Self::Phase, Self::Secrets, Self::Output>;
    /// The run's bookkeeping, mutably.
    fn runner_mut(&mut self) -> &mut Runner<Self::Phase, Self::Secrets, Self::Output>;

    /// The run's session id.
    fn session(&self) -> SessionId;
    /// This participant.
    fn me(&self) -> ParticipantId;
    /// True if `participant` takes part in the run (this participant included).
    fn takes_part(&self, participant: ParticipantId) -> bool;
    /// The session a message says it belongs to.
    fn session_of(message: &Self::Message) -> SessionId;

    /// The first step (in [`Machine::FIRST_PHASE`]): returns the first messages to send.
    fn begin<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<Self::Message>>, ProtocolError>;
    /// Records one admitted message (from a participant other than this one); may run before [`start`].
    fn receive(&mut self, from: ParticipantId, message: Self::Message)
        -> Result<(), ProtocolError>;
    /// Moves through every phase whose inputs are complete (calling [`Runner::finish`] at the end); returns
    /// what to send.
    fn advance(&mut self) -> Result<Vec<Outgoing<Self::Message>>, ProtocolError>;
}

/// [`crate::Protocol::start`] for a [`Machine`]: refuses a finished, aborted or started run, then begins and
/// advances, aborting the run on any error.
pub(crate) fn start<M: Machine, R: RngCore + CryptoRng>(
    machine: &mut M,
    rng: &mut R,
) -> Result<Vec<Outgoing<M::Message>>, ProtocolError> {
    let runner = machine.runner();
    runner.check_usable()?;
    if runner.is_started() {
        return Err(ProtocolError::State(format!(
            "{} already started",
            runner.what
        )));
    }
    machine.runner_mut().status = Status::Running(M::FIRST_PHASE);
    abort_on_error(machine, |m| {
        let mut out = m.begin(rng)?;
        out.extend(m.advance()?);
        Ok(out)
    })
}

/// [`crate::Protocol::handle`] for a [`Machine`]: refuses any call after the run finished or aborted, and
/// messages that are not part of the run (without touching it); records the message and advances, aborting
/// the run on any error.
pub(crate) fn handle<M: Machine>(
    machine: &mut M,
    from: ParticipantId,
    message: M::Message,
) -> Result<Vec<Outgoing<M::Message>>, ProtocolError> {
    machine.runner().check_usable()?;
    // Messages that are not part of this run are refused without aborting it.
    admit(
        M::session_of(&message),
        machine.session(),
        from,
        machine.me(),
        machine.takes_part(from),
    )?;
    abort_on_error(machine, |m| {
        m.receive(from, message)?;
        if !m.runner().is_started() {
            return Ok(Vec::new());
        }
        m.advance()
    })
}

/// Runs `step`; on failure, aborts the run (wiping its secrets) and returns the error.
fn abort_on_error<M: Machine, T>(
    machine: &mut M,
    step: impl FnOnce(&mut M) -> Result<T, ProtocolError>,
) -> Result<T, ProtocolError> {
    let result = step(machine);
    if let Err(e) = &result {
        machine.runner_mut().abort(e);
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::rc::Rc;

    use rand_core::OsRng;

    use super::*;
    use crate::party::Recipient;

    /// Secret bytes, shared with the test so that it can watch them being zeroized.
    type Bytes = Rc<RefCell<[u8; 4]>>;

    /// A secret whose wiping can be watched from outside: dropping it zeroizes a shared buffer and counts.
    struct Watched {
        bytes: Bytes,
        drops: Rc<Cell<usize>>,
    }

    impl Drop for Watched {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut *self.bytes.borrow_mut());
            self.drops.set(self.drops.get() + 1);
        }
    }

    impl ZeroizeOnDrop for Watched {}

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Phase {
        Collecting,
    }

    #[derive(Clone, Debug)]
    struct Msg {
        session: SessionId,
        value: u8,
    }

    /// A toy protocol: every participant sends a nonzero byte to all; the output is their sum. A zero byte is
    /// misbehaviour.
    struct Toy {
        me: ParticipantId,
        run: Runner<Phase, Watched, u32>,
        received: BTreeMap<ParticipantId, u8>,
    }

    const SESSION: SessionId = SessionId([9; 32]);

    impl Machine for Toy {
        type Phase = Phase;
        type Secrets = Watched;
        type Output = u32;
        type Message = Msg;
        const FIRST_PHASE: Phase = Phase::Collecting;

        fn runner(&self) -> &Runner<Phase, Watched, u32> {
            &self.run
        }
        fn runner_mut(&mut self) -> &mut Runner<Phase, Watched, u32> {
            &mut self.run
        }
        fn session(&self) -> SessionId {
            SESSION
        }
        fn me(&self) -> ParticipantId {
            self.me
        }
        fn takes_part(&self, participant: ParticipantId) -> bool {
            (1..=3).contains(&participant)
        }
        fn session_of(message: &Msg) -> SessionId {
            message.session
        }
        fn begin<R: RngCore + CryptoRng>(
            &mut self,
            _rng: &mut R,
        ) -> Result<Vec<Outgoing<Msg>>, ProtocolError> {
            Ok(vec![Outgoing {
                to: Recipient::All,
                message: Msg {
                    session: SESSION,
                    value: 1,
                },
            }])
        }
        fn receive(&mut self, from: ParticipantId, message: Msg) -> Result<(), ProtocolError> {
            if message.value == 0 {
                return Err(ProtocolError::misbehaviour([from], "sent zero"));
            }
            self.received.insert(from, message.value);
            Ok(())
        }
        fn advance(&mut self) -> Result<Vec<Outgoing<Msg>>, ProtocolError> {
            if self.run.phase() == Some(Phase::Collecting) && self.received.len() == 2 {
                let secret = self.run.secrets_mut()?.bytes.borrow()[0];
                let sum = self.received.values().map(|v| u32::from(*v)).sum::<u32>();
                self.run.finish(sum + u32::from(secret));
            }
            Ok(Vec::new())
        }
    }

    fn toy() -> (Toy, Bytes, Rc<Cell<usize>>) {
        let bytes = Rc::new(RefCell::new([7u8; 4]));
        let drops = Rc::new(Cell::new(0));
        let secrets = Watched {
            bytes: Rc::clone(&bytes),
            drops: Rc::clone(&drops),
        };
        let machine = Toy {
            me: 1,
            run: Runner::new("toy", secrets),
            received: BTreeMap::new(),
        };
        (machine, bytes, drops)
    }

    fn msg(value: u8) -> Msg {
        Msg {
            session: SESSION,
            value,
        }
    }

    #[test]
    fn an_abort_wipes_the_secrets_exactly_once_and_refuses_every_later_call() {
        let (mut toy, bytes, drops) = toy();
        start(&mut toy, &mut OsRng).unwrap();
        assert_eq!(*bytes.borrow(), [7; 4]);
        let err = handle(&mut toy, 2, msg(0)).unwrap_err();
        assert_eq!(err.culprits(), &[2]);
        // Wiped at the abort, not later (e.g. when the machine is dropped).
        assert!(toy.run.is_aborted());
        assert_eq!(*bytes.borrow(), [0; 4], "the secret was not zeroized");
        assert_eq!(drops.get(), 1);
        assert!(toy.run.secrets().is_err());
        assert!(toy.run.secrets_mut().is_err());
        assert_eq!(toy.run.abort_reason(), Some(err.to_string().as_str()));
        // Every later call is refused, naming the first error, and wipes nothing more.
        for refused in [handle(&mut toy, 3, msg(1)), start(&mut toy, &mut OsRng)] {
            match refused {
                Err(ProtocolError::State(s)) => {
                    assert_eq!(s, format!("toy aborted: {err}"));
                }
                other => panic!("not refused: {other:?}"),
            }
        }
        toy.run.abort(&ProtocolError::State("again".into()));
        assert_eq!(toy.run.abort_reason(), Some(err.to_string().as_str()));
        assert!(toy.run.take_output().is_none());
        drop(toy);
        assert_eq!(drops.get(), 1, "wiped more than once");
    }

    #[test]
    fn a_finished_run_has_wiped_its_secrets_and_refuses_every_call() {
        let (mut toy, bytes, drops) = toy();
        // A message before `start` is buffered, not processed.
        handle(&mut toy, 2, msg(3)).unwrap();
        assert!(!toy.run.is_started() && !toy.run.is_done());
        start(&mut toy, &mut OsRng).unwrap();
        assert!(!toy.run.is_done());
        handle(&mut toy, 3, msg(4)).unwrap();
        assert!(toy.run.is_done() && !toy.run.is_aborted());
        assert_eq!(drops.get(), 1);
        assert_eq!(*bytes.borrow(), [0; 4]);
        assert_eq!(toy.run.take_output(), Some(3 + 4 + 7));
        assert_eq!(toy.run.take_output(), None);
        assert!(toy.run.is_done());
        for refused in [handle(&mut toy, 3, msg(1)), start(&mut toy, &mut OsRng)] {
            assert!(
                matches!(&refused, Err(ProtocolError::State(s)) if s == "toy already finished"),
                "{refused:?}"
            );
        }
        drop(toy);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn foreign_messages_and_a_second_start_are_refused_without_aborting() {
        let (mut toy, bytes, drops) = toy();
        start(&mut toy, &mut OsRng).unwrap();
        assert!(matches!(
            start(&mut toy, &mut OsRng),
            Err(ProtocolError::State(s)) if s == "toy already started"
        ));
        let other_session = Msg {
            session: SessionId([1; 32]),
            value: 0,
        };
        assert!(matches!(
            handle(&mut toy, 2, other_session),
            Err(ProtocolError::WrongSession)
        ));
        assert_eq!(handle(&mut toy, 7, msg(0)).unwrap_err().culprits(), &[7]);
        assert!(matches!(
            handle(&mut toy, 1, msg(1)),
            Err(ProtocolError::State(_))
        ));
        assert!(!toy.run.is_aborted());
        assert_eq!(drops.get(), 0);
        assert_eq!(*bytes.borrow(), [7; 4]);
        assert_eq!(toy.run.phase(), Some(Phase::Collecting));
    }

    #[test]
    fn debug_shows_the_status_but_never_the_secrets() {
        let (mut toy, _bytes, _drops) = toy();
        let shown = format!("{:?}", toy.run);
        assert!(
            shown.contains("NotStarted") && shown.contains("<redacted>"),
            "{shown}"
        );
        start(&mut toy, &mut OsRng).unwrap();
        assert_eq!(format!("{:?}", toy.run.status()), "Collecting");
        handle(&mut toy, 2, msg(0)).unwrap_err();
        let shown = format!("{:?}", toy.run);
        assert!(
            shown.contains("Aborted") && shown.contains("wiped"),
            "{shown}"
        );
    }
}
