//! Split-AES key generation without a dealer: Feldman-verifiable secret sharing by every participant, with a
//! Schnorr proof of knowledge of each constant term (the "PedPoP" DKG of FROST, on ristretto255), over an
//! [echo broadcast](crate::echo), as a [`Protocol`] state machine ([`SplitAesDkg`]).
//!
//! Flow, for participant `j` among `n`, threshold `t`:
//!
//! 1. **Round 1** ([`SplitAesDkg::start`](Protocol::start)): pick a random polynomial `f_j` of degree
//!    `t − 1`; send to [`Recipient::All`] a [`SplitAesDkgBody::Round1`] payload ([`DkgRound1Payload`]): the
//!    Feldman commitments `C_j = [g^{a_j0}, …, g^{a_j,t−1}]` and a Schnorr proof of knowledge of `a_j0`
//!    bound to the session and to `j` (against rogue-key attacks). Send to each other participant `m`
//!    **privately** ([`Recipient::One`], confidential channel only) its share `f_j(m)`
//!    ([`SplitAesDkgBody::Share`]). The polynomial is then wiped; only `f_j(j)` is kept.
//! 2. **Echo**: holding every round-1 payload, send [`SplitAesDkgBody::Echo`] to all: the digest of every
//!    payload as received (see [`crate::echo`]).
//! 3. **Check**: holding every echo, compare (an equivocating sender is named); decode every payload and
//!    check every proof of knowledge (a malformed payload or a bad proof names its sender — identically at
//!    every honest party, since all now hold the same payloads).
//! 4. **Finish**: holding every share, check each one against its sender's commitments,
//!    `g^{f_i(j)} == Π_k C_ik^{j^k}` (a bad share names its sender), and output the [`SplitAesKeyShare`]:
//!    `k_j = Σ_i f_i(j)`, `K = Π_i C_i0`, and every participant's public share
//!    `g^{k_m} = Π_k (Π_i C_ik)^{m^k}`, computed from the commitments, so all parties hold the same public
//!    keys.
//!
//! The DPRF key `k = Σ_i a_i0` is never computed.
//!
//! Messages of a later round that arrive early are buffered. **Abort policy**, as in [`crate::frost::dkg`]
//! (the crate's generic runner): after a failure the secrets (`f_j(j)`, the shares received) are wiped and
//! every later call fails with [`ProtocolError::State`], except messages that do not belong to the run
//! ([`ProtocolError::WrongSession`], unknown sender), which are refused without touching it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::polynomial::{evaluate, evaluate_in_exponent, x_of};
use super::share::{decode_point, take, SplitAesKeyShare, SplitAesPublicKeys};
use crate::echo::EchoBroadcast;
use crate::error::ProtocolError;
use crate::frost::dkg::DkgParams;
use crate::party::{Outgoing, ParticipantId, Protocol, Recipient, SessionId};
use crate::runner::{self, Machine, Runner};
use crate::secret::SecretBytes;

/// Version byte of [`SplitAesDkgMessage`].
pub const DKG_MESSAGE_VERSION: u8 = 1;
/// Domain separation tag of the DKG's echo digests.
pub const ECHO_DOMAIN: &[u8] = b"vhsm/split-aes-dkg/echo/v1";
/// Domain separation tag of the proof of knowledge.
pub const POK_DOMAIN: &[u8] = b"vhsm/split-aes/dkg-pok/v1";

/// A DKG message. The sender is not in it: it comes from the authenticated transport.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SplitAesDkgMessage {
    /// [`DKG_MESSAGE_VERSION`].
    pub version: u8,
    /// The run it belongs to.
    pub session: SessionId,
    /// The round and its content.
    pub body: SplitAesDkgBody,
}

impl SplitAesDkgMessage {
    /// A current-version message.
    pub fn new(session: SessionId, body: SplitAesDkgBody) -> Self {
        SplitAesDkgMessage {
            version: DKG_MESSAGE_VERSION,
            session,
            body,
        }
    }

    /// Encodes with postcard; the first byte is the version.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        postcard::to_allocvec(self)
            .map_err(|e| ProtocolError::Encoding(format!("split-AES DKG message: {e}")))
    }

    /// Decodes [`SplitAesDkgMessage::to_bytes`]; checks the version byte first and refuses trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        match bytes.first() {
            None => {
                return Err(ProtocolError::Encoding(
                    "empty split-AES DKG message".into(),
                ))
            }
            Some(&DKG_MESSAGE_VERSION) => {}
            Some(&v) => return Err(ProtocolError::UnsupportedVersion(v)),
        }
        let (message, rest) = postcard::take_from_bytes::<SplitAesDkgMessage>(bytes)
            .map_err(|e| ProtocolError::Encoding(format!("split-AES DKG message: {e}")))?;
        if !rest.is_empty() {
            return Err(ProtocolError::Encoding(
                "trailing bytes after split-AES DKG message".into(),
            ));
        }
        Ok(message)
    }
}

/// The rounds of the DKG.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SplitAesDkgBody {
    /// A [`DkgRound1Payload`], encoded; broadcast ([`Recipient::All`]).
    Round1(Vec<u8>),
    /// Echo broadcast: digest of every round-1 payload as the sender received it ([`Recipient::All`]). Decodes
    /// only with its keys strictly increasing: a repeated or out-of-order key is a decode error.
    Echo(#[serde(deserialize_with = "crate::canonical::map")] BTreeMap<ParticipantId, [u8; 32]>),
    /// The sender's polynomial at the recipient, a 32-byte scalar ([`Recipient::One`]): a secret share.
    Share(SecretBytes),
}

/// A Schnorr proof of knowledge of the discrete log of `C_0`: `R = g^r`, `z = r + c·a_0` with
/// `c = SHA-512("vhsm/split-aes/dkg-pok/v1" ‖ session ‖ sender u16 ‖ t u16 ‖ C_0 ‖ … ‖ C_{t−1} ‖ R)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnowledgeProof {
    /// `R`, compressed.
    pub commitment: [u8; 32],
    /// `z`, a canonical scalar.
    pub response: [u8; 32],
}

/// What a participant broadcasts in round 1: its Feldman commitments and the proof of knowledge.
///
/// Encoding: `t u16 (big-endian) ‖ t × 32-byte commitment ‖ R (32) ‖ z (32)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkgRound1Payload {
    /// `g^{a_k}` for the sender's polynomial coefficients, compressed, `a_0` first.
    pub commitments: Vec<[u8; 32]>,
    /// Proof of knowledge of `a_0`.
    pub proof: KnowledgeProof,
}

impl DkgRound1Payload {
    /// The encoding (see the type documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 32 * self.commitments.len() + 64);
        let t = u16::try_from(self.commitments.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&t.to_be_bytes());
        for c in &self.commitments {
            out.extend_from_slice(c);
        }
        out.extend_from_slice(&self.proof.commitment);
        out.extend_from_slice(&self.proof.response);
        out
    }

    /// Decodes [`DkgRound1Payload::to_bytes`] (structure only: points are checked by the DKG).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        const WHAT: &str = "split-AES DKG round-1 payload";
        let mut input = bytes;
        let t = u16::from_be_bytes(*take::<2>(&mut input, WHAT)?);
        let mut commitments = Vec::with_capacity(usize::from(t).min(input.len() / 32));
        for _ in 0..t {
            commitments.push(*take::<32>(&mut input, WHAT)?);
        }
        let commitment = *take::<32>(&mut input, WHAT)?;
        let response = *take::<32>(&mut input, WHAT)?;
        if !input.is_empty() {
            return Err(ProtocolError::Encoding(format!("{WHAT}: trailing bytes")));
        }
        Ok(DkgRound1Payload {
            commitments,
            proof: KnowledgeProof {
                commitment,
                response,
            },
        })
    }
}

fn pok_challenge(
    session: &SessionId,
    sender: ParticipantId,
    commitments: &[RistrettoPoint],
    r: &RistrettoPoint,
) -> Scalar {
    let t = u16::try_from(commitments.len()).unwrap_or(u16::MAX);
    let mut hash = Sha512::new()
        .chain_update(POK_DOMAIN)
        .chain_update(session.0)
        .chain_update(sender.to_be_bytes())
        .chain_update(t.to_be_bytes());
    for c in commitments {
        hash.update(c.compress().as_bytes());
    }
    hash.update(r.compress().as_bytes());
    Scalar::from_hash(hash)
}

/// Decodes and checks one round-1 payload: `t` commitments that decompress, and a valid proof.
fn check_round1(
    session: &SessionId,
    sender: ParticipantId,
    threshold: u16,
    bytes: &[u8],
) -> Result<Vec<RistrettoPoint>, String> {
    let payload = DkgRound1Payload::from_bytes(bytes).map_err(|e| e.to_string())?;
    if payload.commitments.len() != usize::from(threshold) {
        return Err(format!(
            "{} commitments for threshold {threshold}",
            payload.commitments.len()
        ));
    }
    let commitments = payload
        .commitments
        .iter()
        .map(|c| decode_point(c, "commitment"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let r =
        decode_point(&payload.proof.commitment, "proof commitment").map_err(|e| e.to_string())?;
    let z: Option<Scalar> = Scalar::from_canonical_bytes(payload.proof.response).into();
    let z = z.ok_or("proof response is not a canonical scalar")?;
    let c0 = commitments.first().ok_or("no commitments")?;
    let c = pok_challenge(session, sender, &commitments, &r);
    if RistrettoPoint::vartime_double_scalar_mul_basepoint(&-c, c0, &z) != r {
        return Err("proof of knowledge does not verify".into());
    }
    Ok(commitments)
}

/// The phases of a started run (before, after and on failure: see [`runner::Status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the round-1 payloads of the others.
    Round1,
    /// Echo sent; waiting for the echoes of the others.
    Echo,
    /// Payloads agreed and checked; waiting for the shares of the others.
    Shares,
}

/// What a participant must forget when the run ends; held (and wiped on abort or finish) by its [`Runner`].
pub(crate) struct Secrets {
    /// `f_me(me)`: this party's share of its own polynomial.
    own_share: Option<Zeroizing<Scalar>>,
    /// Shares received, by sender (may arrive before agreement, or before `start`).
    received: BTreeMap<ParticipantId, SecretBytes>,
}

// Every field zeroizes itself on drop (`Zeroizing`, `SecretBytes`).
impl ZeroizeOnDrop for Secrets {}

/// One participant of a split-AES DKG run. See the [module documentation](self).
pub struct SplitAesDkg {
    session: SessionId,
    me: ParticipantId,
    threshold: u16,
    participants: BTreeSet<ParticipantId>,
    /// Status, secrets and output.
    runner: Runner<Phase, Secrets, SplitAesKeyShare>,
    /// Round-1 payloads and echoes received so far.
    echo: EchoBroadcast,
    /// Everyone's commitments (own included), decoded and checked after echo agreement.
    commitments: BTreeMap<ParticipantId, Vec<RistrettoPoint>>,
}

impl SplitAesDkg {
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
        if set.contains(&0) {
            return Err(ProtocolError::InvalidParameters(
                "participant id 0 is not allowed".into(),
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
        let echo = EchoBroadcast::new(ECHO_DOMAIN, session, me, set.iter().copied())?;
        Ok(SplitAesDkg {
            session,
            me,
            threshold,
            participants: set,
            runner: Runner::new(
                "split-AES DKG",
                Secrets {
                    own_share: None,
                    received: BTreeMap::new(),
                },
            ),
            echo,
            commitments: BTreeMap::new(),
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

    fn message(&self, to: Recipient, body: SplitAesDkgBody) -> Outgoing<SplitAesDkgMessage> {
        Outgoing {
            to,
            message: SplitAesDkgMessage::new(self.session, body),
        }
    }

    /// After echo agreement: decode every payload and check every proof of knowledge.
    fn check_payloads(&mut self) -> Result<(), ProtocolError> {
        let mut commitments = BTreeMap::new();
        let mut failures = Vec::new();
        for (sender, bytes) in self.echo.payloads() {
            match check_round1(&self.session, *sender, self.threshold, bytes) {
                Ok(c) => {
                    commitments.insert(*sender, c);
                }
                Err(reason) => failures.push((*sender, reason)),
            }
        }
        if !failures.is_empty() {
            let reason = failures
                .iter()
                .map(|(id, reason)| format!("{id}: {reason}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ProtocolError::misbehaviour(
                failures.iter().map(|(id, _)| *id),
                format!("invalid round-1 payload(s): {reason}"),
            ));
        }
        self.commitments = commitments;
        Ok(())
    }

    /// True once the shares of all others are in.
    fn has_all_shares(&self) -> bool {
        self.runner
            .secrets()
            .is_ok_and(|s| s.received.len() + 1 == self.participants.len())
    }

    /// All shares in: check each against its sender's commitments, sum, the output.
    fn finish(&mut self) -> Result<SplitAesKeyShare, ProtocolError> {
        let x_me = x_of(self.me);
        let secrets = self.runner.secrets()?;
        let mut secret = Zeroizing::new(
            **secrets
                .own_share
                .as_ref()
                .ok_or_else(|| ProtocolError::State("own share missing".into()))?,
        );
        let mut culprits = Vec::new();
        for (sender, bytes) in &secrets.received {
            let commitments = self
                .commitments
                .get(sender)
                .ok_or_else(|| ProtocolError::State(format!("no commitments of {sender}")))?;
            let share: Option<Scalar> = <[u8; 32]>::try_from(bytes.expose())
                .ok()
                .and_then(|b| Option::from(Scalar::from_canonical_bytes(b)));
            let share = share.map(Zeroizing::new);
            match share {
                // Point equality is constant-time in curve25519-dalek.
                Some(s)
                    if RistrettoPoint::mul_base(&s) == evaluate_in_exponent(commitments, x_me) =>
                {
                    *secret += *s;
                }
                _ => culprits.push(*sender),
            }
        }
        if !culprits.is_empty() {
            return Err(ProtocolError::misbehaviour(
                culprits,
                "secret share does not match its sender's commitments",
            ));
        }
        // The group polynomial's commitments: A_k = Π_i C_ik.
        let t = usize::from(self.threshold);
        let mut group_commitments = vec![RistrettoPoint::default(); t];
        for commitments in self.commitments.values() {
            for (sum, c) in group_commitments.iter_mut().zip(commitments) {
                *sum += c;
            }
        }
        let group_key = group_commitments
            .first()
            .copied()
            .ok_or_else(|| ProtocolError::State("no group commitments".into()))?;
        let shares = self
            .participants
            .iter()
            .map(|m| (*m, evaluate_in_exponent(&group_commitments, x_of(*m))))
            .collect();
        let public = SplitAesPublicKeys::new(self.threshold, group_key, shares)?;
        SplitAesKeyShare::new(self.me, secret, public)
    }
}

impl Machine for SplitAesDkg {
    type Phase = Phase;
    type Secrets = Secrets;
    type Output = SplitAesKeyShare;
    type Message = SplitAesDkgMessage;
    const FIRST_PHASE: Phase = Phase::Round1;

    fn runner(&self) -> &Runner<Phase, Secrets, SplitAesKeyShare> {
        &self.runner
    }

    fn runner_mut(&mut self) -> &mut Runner<Phase, Secrets, SplitAesKeyShare> {
        &mut self.runner
    }

    fn session(&self) -> SessionId {
        self.session
    }

    fn me(&self) -> ParticipantId {
        self.me
    }

    fn takes_part(&self, participant: ParticipantId) -> bool {
        self.participants.contains(&participant)
    }

    fn session_of(message: &SplitAesDkgMessage) -> SessionId {
        message.session
    }

    /// Round 1: a random polynomial, its commitments and proof of knowledge to all, its value at every other
    /// participant to that participant.
    fn begin<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<SplitAesDkgMessage>>, ProtocolError> {
        let coefficients: Zeroizing<Vec<Scalar>> = Zeroizing::new(
            (0..self.threshold)
                .map(|_| Scalar::random(&mut *rng))
                .collect(),
        );
        let commitments: Vec<RistrettoPoint> =
            coefficients.iter().map(RistrettoPoint::mul_base).collect();
        let a0 = coefficients
            .first()
            .ok_or_else(|| ProtocolError::State("empty polynomial".into()))?;
        let r = Zeroizing::new(Scalar::random(&mut *rng));
        let big_r = RistrettoPoint::mul_base(&r);
        let c = pok_challenge(&self.session, self.me, &commitments, &big_r);
        let z = Zeroizing::new(*r + c * a0);
        let payload = DkgRound1Payload {
            commitments: commitments
                .iter()
                .map(|c| c.compress().to_bytes())
                .collect(),
            proof: KnowledgeProof {
                commitment: big_r.compress().to_bytes(),
                response: z.to_bytes(),
            },
        }
        .to_bytes();
        self.echo.record_payload(self.me, payload.clone())?;
        let mut out = vec![self.message(Recipient::All, SplitAesDkgBody::Round1(payload))];
        for m in self.participants.iter().copied() {
            let value = Zeroizing::new(evaluate(&coefficients, x_of(m)));
            if m == self.me {
                self.runner.secrets_mut()?.own_share = Some(value);
            } else {
                let bytes = Zeroizing::new(value.to_bytes());
                out.push(self.message(
                    Recipient::One(m),
                    SplitAesDkgBody::Share(SecretBytes::new(bytes.to_vec())),
                ));
            }
        }
        Ok(out)
    }

    /// Records one message from a known participant other than me.
    fn receive(
        &mut self,
        from: ParticipantId,
        message: SplitAesDkgMessage,
    ) -> Result<(), ProtocolError> {
        if message.version != DKG_MESSAGE_VERSION {
            return Err(ProtocolError::UnsupportedVersion(message.version));
        }
        match message.body {
            SplitAesDkgBody::Round1(payload) => self.echo.record_payload(from, payload),
            SplitAesDkgBody::Echo(echo) => self.echo.record_echo(from, echo),
            SplitAesDkgBody::Share(share) => {
                let received = &mut self.runner.secrets_mut()?.received;
                if received.contains_key(&from) {
                    return Err(ProtocolError::misbehaviour([from], "sent a second share"));
                }
                received.insert(from, share);
                Ok(())
            }
        }
    }

    /// Moves through every phase whose inputs are complete; returns what to send.
    fn advance(&mut self) -> Result<Vec<Outgoing<SplitAesDkgMessage>>, ProtocolError> {
        let mut out = Vec::new();
        loop {
            match self.runner.phase() {
                Some(Phase::Round1) if self.echo.has_all_payloads() => {
                    let echo = self.echo.echo().ok_or_else(|| {
                        ProtocolError::State("echo unavailable with all payloads".into())
                    })?;
                    out.push(self.message(Recipient::All, SplitAesDkgBody::Echo(echo)));
                    self.runner.set_phase(Phase::Echo);
                }
                Some(Phase::Echo) if self.echo.has_all_echoes() => {
                    self.echo.check_agreement()?;
                    self.check_payloads()?;
                    self.runner.set_phase(Phase::Shares);
                }
                Some(Phase::Shares) if self.has_all_shares() => {
                    let share = self.finish()?;
                    self.runner.finish(share);
                }
                _ => return Ok(out),
            }
        }
    }
}

impl Protocol for SplitAesDkg {
    type Message = SplitAesDkgMessage;
    type Output = SplitAesKeyShare;

    fn participant(&self) -> ParticipantId {
        self.me
    }

    fn start<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<SplitAesDkgMessage>>, ProtocolError> {
        runner::start(self, rng)
    }

    fn handle<R: RngCore + CryptoRng>(
        &mut self,
        from: ParticipantId,
        message: SplitAesDkgMessage,
        _rng: &mut R,
    ) -> Result<Vec<Outgoing<SplitAesDkgMessage>>, ProtocolError> {
        runner::handle(self, from, message)
    }

    fn is_done(&self) -> bool {
        self.runner.is_done()
    }

    fn take_output(&mut self) -> Option<SplitAesKeyShare> {
        self.runner.take_output()
    }
}

impl fmt::Debug for SplitAesDkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplitAesDkg")
            .field("session", &self.session)
            .field("me", &self.me)
            .field("participants", &self.participants)
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
    fn an_echo_decodes_only_with_its_keys_strictly_increasing() {
        let empty =
            SplitAesDkgMessage::new(SessionId([5; 32]), SplitAesDkgBody::Echo(BTreeMap::new()))
                .to_bytes()
                .unwrap();
        // The empty map is the last byte.
        let prefix = &empty[..empty.len() - 1];
        check_message_map(
            SplitAesDkgMessage::from_bytes,
            SplitAesDkgMessage::to_bytes,
            |entries| [prefix, &map_bytes(entries)].concat(),
        );
    }
}
