//! FROST distributed key generation without a dealer (RFC 9591 Appendix C's trusted dealer replaced by the
//! Pedersen DKG with proofs of knowledge, as in the FROST paper), on `frost_ed25519::keys::dkg::{part1, part2,
//! part3}`, as a [`Protocol`] state machine.
//!
//! Flow, for each participant:
//!
//! 1. **Round 1** ([`FrostDkg::start`](Protocol::start)): `part1` → [`DkgBody::Round1`] (the public
//!    commitment to a fresh random polynomial, with a proof of knowledge of its constant term) to
//!    [`Recipient::All`].
//! 2. **Echo**: holding the round-1 packages of all others, send [`DkgBody::Echo`] to all: the digest of every
//!    round-1 package (own included) as *this* party received it. See [`crate::echo`].
//! 3. **Round 2**: holding the echoes of all others, compare. If some sender's package was seen differently,
//!    abort with [`ProtocolError::Misbehaviour`] naming it (equivocation; see [`crate::echo`] for what that
//!    blame is worth without signed messages: a lying echoer can frame an honest sender, but either way the
//!    run aborts and no key is produced). Only after agreement: `part2`, which checks every proof of
//!    knowledge, and one [`DkgBody::Round2`] secret share to each [`Recipient::One`] — over a confidential
//!    channel only.
//! 4. **Finish**: holding all round-2 shares, `part3` checks each against its sender's commitment and outputs
//!    the [`FrostKeyShare`].
//!
//! Round-1 packages are decoded only after echo agreement, so a malformed package sent to everyone is blamed
//! identically by all parties. Messages of a later round that arrive early are buffered.
//!
//! Errors from `frost-ed25519` that name a culprit (`InvalidProofOfKnowledge`, `InvalidSecretShare`) become
//! [`ProtocolError::Misbehaviour`] with our participant ids.
//!
//! **Abort policy.** After [`FrostDkg::handle`](Protocol::handle) fails, the run is aborted and every later
//! call fails with [`ProtocolError::State`] — except for messages that do not belong to this run, which are
//! refused without touching its state: [`ProtocolError::WrongSession`], and a message from a sender outside
//! the participant set (reported as [`ProtocolError::Misbehaviour`] naming that sender).
//!
//! Note: `frost-ed25519`'s proof of knowledge binds the participant identifier but not our session id; the
//! session is bound by every message's session field and by the echo digests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use frost_ed25519::keys::dkg;
use frost_ed25519::Identifier;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::share::FrostKeyShare;
use super::{identifier, map_frost_error};
use crate::echo::EchoBroadcast;
use crate::error::ProtocolError;
use crate::party::{Outgoing, ParticipantId, Protocol, Recipient, SessionId};
use crate::secret::SecretBytes;

/// Version byte of [`DkgMessage`].
pub const DKG_MESSAGE_VERSION: u8 = 1;

/// Domain separation tag of the DKG's echo digests.
pub const ECHO_DOMAIN: &[u8] = b"vhsm/frost-dkg/echo/v1";

/// Parameters of one DKG run, identical at every participant except `me`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkgParams {
    /// The run's session id.
    pub session: SessionId,
    /// This participant.
    pub me: ParticipantId,
    /// All participants, `me` included; nonzero, no duplicates.
    pub participants: Vec<ParticipantId>,
    /// How many participants will be needed to sign: `2 <= threshold <= participants.len()`.
    pub threshold: u16,
}

/// A DKG message. The sender is not in it: it comes from the authenticated transport.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DkgMessage {
    /// [`DKG_MESSAGE_VERSION`].
    pub version: u8,
    /// The run it belongs to.
    pub session: SessionId,
    /// The round and its content.
    pub body: DkgBody,
}

impl DkgMessage {
    /// A current-version message.
    pub fn new(session: SessionId, body: DkgBody) -> Self {
        DkgMessage {
            version: DKG_MESSAGE_VERSION,
            session,
            body,
        }
    }

    /// Encodes with postcard; the first byte is the version.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        postcard::to_allocvec(self)
            .map_err(|e| ProtocolError::Encoding(format!("DKG message: {e}")))
    }

    /// Decodes [`DkgMessage::to_bytes`]; checks the version byte before anything else and refuses trailing
    /// bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        match bytes.first() {
            None => return Err(ProtocolError::Encoding("empty DKG message".into())),
            Some(&DKG_MESSAGE_VERSION) => {}
            Some(&v) => return Err(ProtocolError::UnsupportedVersion(v)),
        }
        let (message, rest) = postcard::take_from_bytes::<DkgMessage>(bytes)
            .map_err(|e| ProtocolError::Encoding(format!("DKG message: {e}")))?;
        if !rest.is_empty() {
            return Err(ProtocolError::Encoding(
                "trailing bytes after DKG message".into(),
            ));
        }
        Ok(message)
    }
}

/// The rounds of the DKG.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum DkgBody {
    /// `frost` round-1 package, serialized; broadcast ([`Recipient::All`]).
    Round1(Vec<u8>),
    /// Echo broadcast: digest of every round-1 package as the sender received it ([`Recipient::All`]).
    Echo(BTreeMap<ParticipantId, [u8; 32]>),
    /// `frost` round-2 package for one recipient ([`Recipient::One`]): a secret share.
    Round2(SecretBytes),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// `start` not called yet (messages are buffered).
    NotStarted,
    /// Waiting for the round-1 packages of the others.
    Round1,
    /// Echo sent; waiting for the echoes of the others.
    Echo,
    /// Round-2 shares sent; waiting for those of the others.
    Round2,
    /// Output produced.
    Done,
    /// Failed; see `FrostDkg::abort_reason`.
    Aborted,
}

/// One participant of a FROST DKG run. See the [module documentation](self).
pub struct FrostDkg {
    session: SessionId,
    me: ParticipantId,
    threshold: u16,
    /// All participants (me included), with their FROST identifiers.
    ids: BTreeMap<ParticipantId, Identifier>,
    phase: Phase,
    abort_reason: Option<String>,
    /// Round-1 payloads and echoes received so far (early ones included).
    echo: EchoBroadcast,
    round1_secret: Option<dkg::round1::SecretPackage>,
    /// The others' round-1 packages, decoded after echo agreement.
    round1_packages: BTreeMap<Identifier, dkg::round1::Package>,
    round2_secret: Option<dkg::round2::SecretPackage>,
    /// Round-2 shares received, by sender (may arrive before this party sent its own).
    round2_received: BTreeMap<ParticipantId, SecretBytes>,
    output: Option<FrostKeyShare>,
}

impl FrostDkg {
    /// Checks `params` (`2 <= threshold <= n`, `me` in the set, ids nonzero and distinct) and prepares a run.
    pub fn new(params: DkgParams) -> Result<Self, ProtocolError> {
        let DkgParams {
            session,
            me,
            participants,
            threshold,
        } = params;
        let set: BTreeSet<ParticipantId> = participants.iter().copied().collect();
        if set.len() != participants.len() {
            return Err(ProtocolError::InvalidParameters(
                "duplicate participant ids".into(),
            ));
        }
        if !set.contains(&me) {
            return Err(ProtocolError::InvalidParameters(format!(
                "participant {me} is not in the participant set"
            )));
        }
        let n = u16::try_from(set.len())
            .map_err(|_| ProtocolError::InvalidParameters("too many participants".into()))?;
        if threshold < 2 || threshold > n {
            return Err(ProtocolError::InvalidParameters(format!(
                "threshold {threshold} must be between 2 and the number of participants ({n})"
            )));
        }
        let ids = set
            .iter()
            .map(|p| Ok((*p, identifier(*p)?)))
            .collect::<Result<BTreeMap<_, _>, ProtocolError>>()?;
        let echo = EchoBroadcast::new(ECHO_DOMAIN, session, me, set.iter().copied())?;
        Ok(FrostDkg {
            session,
            me,
            threshold,
            ids,
            phase: Phase::NotStarted,
            abort_reason: None,
            echo,
            round1_secret: None,
            round1_packages: BTreeMap::new(),
            round2_secret: None,
            round2_received: BTreeMap::new(),
            output: None,
        })
    }

    /// The run's session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// True if the run failed; it cannot be resumed.
    pub fn is_aborted(&self) -> bool {
        self.phase == Phase::Aborted
    }

    fn max_signers(&self) -> Result<u16, ProtocolError> {
        u16::try_from(self.ids.len())
            .map_err(|_| ProtocolError::InvalidParameters("too many participants".into()))
    }

    fn message(&self, to: Recipient, body: DkgBody) -> Outgoing<DkgMessage> {
        Outgoing {
            to,
            message: DkgMessage::new(self.session, body),
        }
    }

    /// Runs `step`; on failure, aborts the run (wiping secrets) and returns the error.
    fn abort_on_error<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<T, ProtocolError>,
    ) -> Result<T, ProtocolError> {
        let result = step(self);
        if let Err(e) = &result {
            self.phase = Phase::Aborted;
            self.abort_reason = Some(e.to_string());
            self.round1_secret = None;
            self.round2_secret = None;
            self.round2_received.clear();
        }
        result
    }

    fn check_usable(&self) -> Result<(), ProtocolError> {
        match self.phase {
            Phase::Aborted => Err(ProtocolError::State(format!(
                "DKG aborted: {}",
                self.abort_reason.as_deref().unwrap_or("unknown reason")
            ))),
            Phase::Done => Err(ProtocolError::State("DKG already finished".into())),
            Phase::NotStarted | Phase::Round1 | Phase::Echo | Phase::Round2 => Ok(()),
        }
    }

    /// Records one message from a known participant other than me.
    fn receive(&mut self, from: ParticipantId, message: DkgMessage) -> Result<(), ProtocolError> {
        if message.version != DKG_MESSAGE_VERSION {
            return Err(ProtocolError::UnsupportedVersion(message.version));
        }
        match message.body {
            DkgBody::Round1(package) => self.echo.record_payload(from, package),
            DkgBody::Echo(echo) => self.echo.record_echo(from, echo),
            DkgBody::Round2(share) => {
                if self.round2_received.contains_key(&from) {
                    return Err(ProtocolError::misbehaviour(
                        [from],
                        "sent a second round-2 share",
                    ));
                }
                self.round2_received.insert(from, share);
                Ok(())
            }
        }
    }

    /// Moves through every phase whose inputs are complete; returns what to send.
    fn advance(&mut self) -> Result<Vec<Outgoing<DkgMessage>>, ProtocolError> {
        let mut out = Vec::new();
        loop {
            match self.phase {
                Phase::Round1 if self.echo.has_all_payloads() => {
                    let echo = self.echo.echo().ok_or_else(|| {
                        ProtocolError::State("echo unavailable with all payloads".into())
                    })?;
                    out.push(self.message(Recipient::All, DkgBody::Echo(echo)));
                    self.phase = Phase::Echo;
                }
                Phase::Echo if self.echo.has_all_echoes() => {
                    self.echo.check_agreement()?;
                    out.extend(self.round2()?);
                    self.phase = Phase::Round2;
                }
                Phase::Round2 if self.round2_received.len() + 1 == self.ids.len() => {
                    self.finish()?;
                    self.phase = Phase::Done;
                }
                _ => return Ok(out),
            }
        }
    }

    /// After echo agreement: decode the round-1 packages, `part2`, one share per other participant.
    fn round2(&mut self) -> Result<Vec<Outgoing<DkgMessage>>, ProtocolError> {
        let mut packages = BTreeMap::new();
        let mut malformed = Vec::new();
        for (sender, bytes) in self.echo.payloads() {
            if *sender == self.me {
                continue;
            }
            let id = self.id_of(*sender)?;
            match dkg::round1::Package::deserialize(bytes) {
                Ok(p) => {
                    packages.insert(id, p);
                }
                Err(_) => malformed.push(*sender),
            }
        }
        if !malformed.is_empty() {
            return Err(ProtocolError::misbehaviour(
                malformed,
                "malformed round-1 package",
            ));
        }
        let secret = self
            .round1_secret
            .take()
            .ok_or_else(|| ProtocolError::State("round-1 secret missing".into()))?;
        let (round2_secret, shares) =
            dkg::part2(secret, &packages).map_err(|e| map_frost_error(e, "DKG round 2"))?;
        self.round1_packages = packages;
        self.round2_secret = Some(round2_secret);
        let mut out = Vec::with_capacity(shares.len());
        for (participant, id) in &self.ids {
            if *participant == self.me {
                continue;
            }
            let share = shares.get(id).ok_or_else(|| {
                ProtocolError::State(format!("no round-2 share for {participant}"))
            })?;
            let bytes = share
                .serialize()
                .map_err(|e| map_frost_error(e, "round-2 package"))?;
            out.push(self.message(
                Recipient::One(*participant),
                DkgBody::Round2(SecretBytes::new(bytes)),
            ));
        }
        Ok(out)
    }

    /// All shares in: `part3`, output.
    fn finish(&mut self) -> Result<(), ProtocolError> {
        let mut shares = BTreeMap::new();
        let mut malformed = Vec::new();
        for (sender, bytes) in &self.round2_received {
            match dkg::round2::Package::deserialize(bytes.expose()) {
                Ok(p) => {
                    shares.insert(self.id_of(*sender)?, p);
                }
                Err(_) => malformed.push(*sender),
            }
        }
        if !malformed.is_empty() {
            return Err(ProtocolError::misbehaviour(
                malformed,
                "malformed round-2 share",
            ));
        }
        let secret = self
            .round2_secret
            .take()
            .ok_or_else(|| ProtocolError::State("round-2 secret missing".into()))?;
        let (key_package, public_package) = dkg::part3(&secret, &self.round1_packages, &shares)
            .map_err(|e| map_frost_error(e, "DKG round 3"))?;
        self.round2_received.clear();
        let share = FrostKeyShare::from_frost(key_package, public_package)?;
        if share.threshold() != self.threshold {
            return Err(ProtocolError::State(
                "DKG produced a share of another threshold".into(),
            ));
        }
        self.output = Some(share);
        Ok(())
    }

    fn id_of(&self, participant: ParticipantId) -> Result<Identifier, ProtocolError> {
        self.ids
            .get(&participant)
            .copied()
            .ok_or_else(|| ProtocolError::misbehaviour([participant], "not a participant"))
    }
}

impl Protocol for FrostDkg {
    type Message = DkgMessage;
    type Output = FrostKeyShare;

    fn participant(&self) -> ParticipantId {
        self.me
    }

    fn start<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<DkgMessage>>, ProtocolError> {
        self.check_usable()?;
        if self.phase != Phase::NotStarted {
            return Err(ProtocolError::State("DKG already started".into()));
        }
        self.abort_on_error(|dkg| {
            let me = dkg.id_of(dkg.me)?;
            let (secret, package) = dkg::part1(me, dkg.max_signers()?, dkg.threshold, &mut *rng)
                .map_err(|e| map_frost_error(e, "DKG round 1"))?;
            let bytes = package
                .serialize()
                .map_err(|e| map_frost_error(e, "round-1 package"))?;
            dkg.round1_secret = Some(secret);
            dkg.echo.record_payload(dkg.me, bytes.clone())?;
            dkg.phase = Phase::Round1;
            let mut out = vec![dkg.message(Recipient::All, DkgBody::Round1(bytes))];
            out.extend(dkg.advance()?);
            Ok(out)
        })
    }

    fn handle<R: RngCore + CryptoRng>(
        &mut self,
        from: ParticipantId,
        message: DkgMessage,
        _rng: &mut R,
    ) -> Result<Vec<Outgoing<DkgMessage>>, ProtocolError> {
        self.check_usable()?;
        // Messages that are not part of this run are refused without aborting it.
        crate::party::admit(
            message.session,
            self.session,
            from,
            self.me,
            self.ids.contains_key(&from),
        )?;
        self.abort_on_error(|dkg| {
            dkg.receive(from, message)?;
            if dkg.phase == Phase::NotStarted {
                return Ok(Vec::new());
            }
            dkg.advance()
        })
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn take_output(&mut self) -> Option<FrostKeyShare> {
        self.output.take()
    }
}

impl fmt::Debug for FrostDkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrostDkg")
            .field("session", &self.session)
            .field("me", &self.me)
            .field("participants", &self.ids.keys().collect::<Vec<_>>())
            .field("threshold", &self.threshold)
            .field("phase", &self.phase)
            .field("abort_reason", &self.abort_reason)
            .finish_non_exhaustive()
    }
}
