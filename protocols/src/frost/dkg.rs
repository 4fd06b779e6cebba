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
//! **Abort policy** (the crate's generic runner, `runner.rs`). After [`FrostDkg::handle`](Protocol::handle) fails,
//! the run is aborted, its secrets (the round-1 and round-2 secret packages, the shares received) are wiped,
//! and every later call fails with [`ProtocolError::State`] — except for messages that do not belong to this
//! run, which are refused without touching its state: [`ProtocolError::WrongSession`], and a message from a
//! sender outside the participant set (reported as [`ProtocolError::Misbehaviour`] naming that sender).
//!
//! Note: `frost-ed25519`'s proof of knowledge binds the participant identifier but not our session id; the
//! session is bound by every message's session field and by the echo digests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use frost_ed25519::keys::dkg;
use frost_ed25519::Identifier;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::ZeroizeOnDrop;

use super::share::FrostKeyShare;
use super::{identifier, map_frost_error};
use crate::echo::EchoBroadcast;
use crate::error::ProtocolError;
use crate::party::{Outgoing, ParticipantId, Protocol, Recipient, SessionId};
use crate::runner::{self, Machine, Runner};
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
    /// Echo broadcast: digest of every round-1 package as the sender received it ([`Recipient::All`]). Decodes
    /// only with its keys strictly increasing: a repeated or out-of-order key is a decode error.
    Echo(#[serde(deserialize_with = "crate::canonical::map")] BTreeMap<ParticipantId, [u8; 32]>),
    /// `frost` round-2 package for one recipient ([`Recipient::One`]): a secret share.
    Round2(SecretBytes),
}

/// The phases of a started run (before, after and on failure: see [`runner::Status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the round-1 packages of the others.
    Round1,
    /// Echo sent; waiting for the echoes of the others.
    Echo,
    /// Round-2 shares sent; waiting for those of the others.
    Round2,
}

/// What a participant must forget when the run ends; held (and wiped on abort or finish) by its [`Runner`].
pub(crate) struct Secrets {
    /// From `part1`, consumed by `part2`.
    round1: Option<dkg::round1::SecretPackage>,
    /// From `part2`, consumed by `part3`.
    round2: Option<dkg::round2::SecretPackage>,
    /// Round-2 shares received, by sender (may arrive before this party sent its own).
    received: BTreeMap<ParticipantId, SecretBytes>,
}

// Every field zeroizes itself on drop: `frost-ed25519`'s secret packages are `ZeroizeOnDrop`, the shares are
// `SecretBytes`.
impl ZeroizeOnDrop for Secrets {}

/// One participant of a FROST DKG run. See the [module documentation](self).
pub struct FrostDkg {
    session: SessionId,
    me: ParticipantId,
    threshold: u16,
    /// All participants (me included), with their FROST identifiers.
    ids: BTreeMap<ParticipantId, Identifier>,
    /// Status, secrets and output.
    runner: Runner<Phase, Secrets, FrostKeyShare>,
    /// Round-1 payloads and echoes received so far (early ones included).
    echo: EchoBroadcast,
    /// The others' round-1 packages, decoded after echo agreement.
    round1_packages: BTreeMap<Identifier, dkg::round1::Package>,
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
            runner: Runner::new(
                "DKG",
                Secrets {
                    round1: None,
                    round2: None,
                    received: BTreeMap::new(),
                },
            ),
            echo,
            round1_packages: BTreeMap::new(),
        })
    }

    /// The run's session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// True if the run failed; it cannot be resumed.
    pub fn is_aborted(&self) -> bool {
        self.runner.is_aborted()
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
        let secrets = self.runner.secrets_mut()?;
        let secret = secrets
            .round1
            .take()
            .ok_or_else(|| ProtocolError::State("round-1 secret missing".into()))?;
        let (round2_secret, shares) =
            dkg::part2(secret, &packages).map_err(|e| map_frost_error(e, "DKG round 2"))?;
        secrets.round2 = Some(round2_secret);
        self.round1_packages = packages;
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

    /// True once the round-2 shares of all others are in.
    fn has_all_shares(&self) -> bool {
        self.runner
            .secrets()
            .is_ok_and(|s| s.received.len() + 1 == self.ids.len())
    }

    /// All shares in: `part3`, the output.
    fn finish(&mut self) -> Result<FrostKeyShare, ProtocolError> {
        let mut shares = BTreeMap::new();
        let mut malformed = Vec::new();
        for (sender, bytes) in &self.runner.secrets()?.received {
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
            .runner
            .secrets_mut()?
            .round2
            .take()
            .ok_or_else(|| ProtocolError::State("round-2 secret missing".into()))?;
        let (key_package, public_package) = dkg::part3(&secret, &self.round1_packages, &shares)
            .map_err(|e| map_frost_error(e, "DKG round 3"))?;
        let share = FrostKeyShare::from_frost(key_package, public_package)?;
        if share.threshold() != self.threshold {
            return Err(ProtocolError::State(
                "DKG produced a share of another threshold".into(),
            ));
        }
        Ok(share)
    }

    fn id_of(&self, participant: ParticipantId) -> Result<Identifier, ProtocolError> {
        self.ids
            .get(&participant)
            .copied()
            .ok_or_else(|| ProtocolError::misbehaviour([participant], "not a participant"))
    }
}

impl Machine for FrostDkg {
    type Phase = Phase;
    type Secrets = Secrets;
    type Output = FrostKeyShare;
    type Message = DkgMessage;
    const FIRST_PHASE: Phase = Phase::Round1;

    fn runner(&self) -> &Runner<Phase, Secrets, FrostKeyShare> {
        &self.runner
    }

    fn runner_mut(&mut self) -> &mut Runner<Phase, Secrets, FrostKeyShare> {
        &mut self.runner
    }

    fn session(&self) -> SessionId {
        self.session
    }

    fn me(&self) -> ParticipantId {
        self.me
    }

    fn takes_part(&self, participant: ParticipantId) -> bool {
        self.ids.contains_key(&participant)
    }

    fn session_of(message: &DkgMessage) -> SessionId {
        message.session
    }

    /// Round 1: `part1`, the round-1 package to all.
    fn begin<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<DkgMessage>>, ProtocolError> {
        let me = self.id_of(self.me)?;
        let (secret, package) = dkg::part1(me, self.max_signers()?, self.threshold, &mut *rng)
            .map_err(|e| map_frost_error(e, "DKG round 1"))?;
        let bytes = package
            .serialize()
            .map_err(|e| map_frost_error(e, "round-1 package"))?;
        self.runner.secrets_mut()?.round1 = Some(secret);
        self.echo.record_payload(self.me, bytes.clone())?;
        Ok(vec![self.message(Recipient::All, DkgBody::Round1(bytes))])
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
                let received = &mut self.runner.secrets_mut()?.received;
                if received.contains_key(&from) {
                    return Err(ProtocolError::misbehaviour(
                        [from],
                        "sent a second round-2 share",
                    ));
                }
                received.insert(from, share);
                Ok(())
            }
        }
    }

    /// Moves through every phase whose inputs are complete; returns what to send.
    fn advance(&mut self) -> Result<Vec<Outgoing<DkgMessage>>, ProtocolError> {
        let mut out = Vec::new();
        loop {
            match self.runner.phase() {
                Some(Phase::Round1) if self.echo.has_all_payloads() => {
                    let echo = self.echo.echo().ok_or_else(|| {
                        ProtocolError::State("echo unavailable with all payloads".into())
                    })?;
                    out.push(self.message(Recipient::All, DkgBody::Echo(echo)));
                    self.runner.set_phase(Phase::Echo);
                }
                Some(Phase::Echo) if self.echo.has_all_echoes() => {
                    self.echo.check_agreement()?;
                    out.extend(self.round2()?);
                    self.runner.set_phase(Phase::Round2);
                }
                Some(Phase::Round2) if self.has_all_shares() => {
                    let share = self.finish()?;
                    self.runner.finish(share);
                }
                _ => return Ok(out),
            }
        }
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
        runner::start(self, rng)
    }

    fn handle<R: RngCore + CryptoRng>(
        &mut self,
        from: ParticipantId,
        message: DkgMessage,
        _rng: &mut R,
    ) -> Result<Vec<Outgoing<DkgMessage>>, ProtocolError> {
        runner::handle(self, from, message)
    }

    fn is_done(&self) -> bool {
        self.runner.is_done()
    }

    fn take_output(&mut self) -> Option<FrostKeyShare> {
        self.runner.take_output()
    }
}

impl fmt::Debug for FrostDkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrostDkg")
            .field("session", &self.session)
            .field("me", &self.me)
            .field("participants", &self.ids.keys().collect::<Vec<_>>())
            .field("threshold", &self.threshold)
            .field("phase", self.runner.status())
            .field("abort_reason", &self.runner.abort_reason())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::canonical::tests::{check_message_map, map_bytes};

    #[test]
    fn an_abort_wipes_the_round_secrets_and_refuses_every_later_call() {
        let session = SessionId([5; 32]);
        let mut dkg = FrostDkg::new(DkgParams {
            session,
            me: 1,
            participants: vec![1, 2, 3],
            threshold: 2,
        })
        .unwrap();
        let mut rng = rand_core::OsRng;
        dkg.start(&mut rng).unwrap();
        assert!(dkg.runner.secrets().unwrap().round1.is_some());
        let round1 = |bytes: Vec<u8>| DkgMessage::new(session, DkgBody::Round1(bytes));
        dkg.handle(2, round1(vec![1]), &mut rng).unwrap();
        let error = dkg.handle(2, round1(vec![2]), &mut rng).unwrap_err();
        assert_eq!(error.culprits(), &[2]);
        assert!(dkg.is_aborted() && dkg.runner.secrets().is_err());
        assert!(format!("{dkg:?}").contains("phase: Aborted"));
        assert!(matches!(
            dkg.handle(3, round1(vec![3]), &mut rng),
            Err(ProtocolError::State(s)) if s == format!("DKG aborted: {error}")
        ));
    }

    #[test]
    fn an_echo_decodes_only_with_its_keys_strictly_increasing() {
        let empty = DkgMessage::new(SessionId([5; 32]), DkgBody::Echo(BTreeMap::new()))
            .to_bytes()
            .unwrap();
        // The empty map is the last byte.
        let prefix = &empty[..empty.len() - 1];
        check_message_map(DkgMessage::from_bytes, DkgMessage::to_bytes, |entries| {
            [prefix, &map_bytes(entries)].concat()
        });
    }
}
