//! DKLs23 signing (Protocol 3.6 of ePrint 2023/765), on `dkls23`'s `Party::sign_phase1..4`, as a
//! [`Protocol`] state machine: [`EcdsaSigning`]. Exactly `threshold` signers take part; every one of them
//! ends with the same signature.
//!
//! Rounds (`EcdsaMessage::round`), for each signer:
//!
//! 1. **Round 1** ([`EcdsaSigning::start`](Protocol::start)): `sign_phase1` draws the instance key and
//!    inversion mask and starts the OT-based multiplication with every other signer: one
//!    [`EcdsaBody::Private`] `TransmitPhase1to2` to each (a commitment to the instance point and the OT
//!    extension's first message).
//! 2. **Round 2**, holding the round-1 messages of all others: `sign_phase2` runs the sender side of the
//!    multiplication with each (checking the counterparty's OT extension; a failure demands a ban):
//!    one [`EcdsaBody::Private`] `TransmitPhase2to3` to each (the opening of the commitment, the public
//!    share of the key, the multiplication's answer).
//! 3. **Round 3**, holding the round-2 messages of all others: `sign_phase3` checks the openings, finishes
//!    the multiplication (its consistency checks demand a ban on failure), checks that the public shares add
//!    up to the group key, and broadcasts ([`EcdsaBody::Broadcast`]) its `Broadcast3to4` (`u_i`, `w_i`).
//! 4. **Finish**, holding all broadcasts: `sign_phase4` computes `s = Σw / Σu`, normalised to low-S on
//!    secp256k1, and verifies the signature; we verify it once more with `k256` / `p256`
//!    ([`super::verify::verify_prehash`]) before outputting it.
//!
//! The `dkls23` sign id is `SHA-256(domain ‖ session id ‖ signers)`; `dkls23` binds every message further to
//! the key (its DKG session id, public key and chain code), the digest, the signer set and the phase.
//!
//! **Kept state.** Between phases the signer keeps `dkls23`'s `UniqueKeep*` / `KeepPhase*` values (the
//! instance key, the inversion mask, the Lagrange-weighted key share, the multiplication's receiver state):
//! in memory only, inside this state machine (held by the crate's generic runner, which wipes it on abort),
//! consumed by the next phase, zeroized on drop or abort, never `Clone` or `Serialize` (see [`super`] for why
//! it is never persisted).
//!
//! **Blame.** A payload that does not decode, or whose inner party indices do not match its authenticated
//! sender, names that sender. `dkls23` names the sender of a message bound to another session, of a wrong
//! opening, or of a trivial instance point ([`ProtocolError::Misbehaviour`]), and demands a ban
//! ([`ProtocolError::MustBan`]) for a failed OT-extension or multiplication check. A wrong round-3
//! broadcast is detected (the signature does not verify) but DKLs23 cannot say whose it was:
//! [`ProtocolError::State`], no culprit; retry with another signer set.
//!
//! **Cost.** About 14 ms (secp256k1) / 23 ms (P-256) of CPU in all signers together at 2-of-3, most of it in
//! phases 2 and 3 (the OT-based multiplication), and three message rounds of latency.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use dkls23::protocols::signing::{
    Broadcast3to4, KeepPhase1to2, KeepPhase2to3, SignData, TransmitPhase1to2, TransmitPhase2to3,
    UniqueKeep1to2, UniqueKeep2to3,
};
use dkls23::protocols::{Party, PartyIndex};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::ZeroizeOnDrop;

use super::curve::{on_curve, EcdsaCurve, EngineCurve, OnCurve, PartyOnCurve};
use super::inbox::{payload, Inbox, Kind};
use super::share::EcdsaKeyShare;
use super::verify::verify_prehash;
use super::{
    decode_all, encode, encode_secret, map_abort, EcdsaBody, EcdsaMessage, EcdsaSignature, IdMap,
    SignParams,
};
use crate::error::ProtocolError;
use crate::party::{Outgoing, ParticipantId, Protocol, Recipient, SessionId};
use crate::runner::{self, Machine, Runner};

/// Domain separation tag of the `dkls23` sign id.
pub const SIGN_ID_DOMAIN: &[u8] = b"vhsm/dkls23-sign/id/v1";

/// The (round, kind) pairs of signing.
const ROUNDS: &[(u8, Kind)] = &[(1, Kind::Private), (2, Kind::Private), (3, Kind::Broadcast)];

/// The phases of a started run (before, after and on failure: see [`runner::Status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Round-1 messages sent; waiting for those of the others.
    Round1,
    /// Round-2 messages sent; waiting for those of the others.
    Round2,
    /// Round-3 broadcast sent; waiting for those of the others.
    Round3,
}

/// One signer of a DKLs23 signing run. See the [module documentation](self).
pub struct EcdsaSigning {
    inner: SigningOnCurve,
}

type SigningOnCurve = OnCurve<Box<SigningRun<k256::Secp256k1>>, Box<SigningRun<p256::NistP256>>>;

impl EcdsaSigning {
    /// Checks `params` against `share` (`me` is the share's holder, the signers are exactly `threshold`
    /// distinct holders of the key, `me` among them) and prepares a run.
    pub fn new(share: Arc<EcdsaKeyShare>, params: SignParams) -> Result<Self, ProtocolError> {
        let inner = match share.party() {
            PartyOnCurve::Secp256k1(_) => {
                SigningOnCurve::Secp256k1(Box::new(SigningRun::new(share, params)?))
            }
            PartyOnCurve::P256(_) => {
                SigningOnCurve::P256(Box::new(SigningRun::new(share, params)?))
            }
        };
        Ok(EcdsaSigning { inner })
    }

    /// The curve of the key.
    pub fn curve(&self) -> EcdsaCurve {
        match &self.inner {
            SigningOnCurve::Secp256k1(_) => EcdsaCurve::Secp256k1,
            SigningOnCurve::P256(_) => EcdsaCurve::P256,
        }
    }

    /// The run's session id.
    pub fn session(&self) -> SessionId {
        on_curve!(&self.inner, run => run.session)
    }

    /// The signers, ascending.
    pub fn signers(&self) -> Vec<ParticipantId> {
        on_curve!(&self.inner, run => run.signers.iter().copied().collect())
    }

    /// True if the run failed; it cannot be resumed (start a new run with a new session id).
    pub fn is_aborted(&self) -> bool {
        on_curve!(&self.inner, run => run.runner.is_aborted())
    }
}

impl Protocol for EcdsaSigning {
    type Message = EcdsaMessage;
    type Output = EcdsaSignature;

    fn participant(&self) -> ParticipantId {
        on_curve!(&self.inner, run => run.me)
    }

    fn start<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<EcdsaMessage>>, ProtocolError> {
        on_curve!(&mut self.inner, run => runner::start(&mut **run, rng))
    }

    fn handle<R: RngCore + CryptoRng>(
        &mut self,
        from: ParticipantId,
        message: EcdsaMessage,
        _rng: &mut R,
    ) -> Result<Vec<Outgoing<EcdsaMessage>>, ProtocolError> {
        on_curve!(&mut self.inner, run => runner::handle(&mut **run, from, message))
    }

    fn is_done(&self) -> bool {
        on_curve!(&self.inner, run => run.runner.is_done())
    }

    fn take_output(&mut self) -> Option<EcdsaSignature> {
        on_curve!(&mut self.inner, run => run.runner.take_output())
    }
}

impl fmt::Debug for EcdsaSigning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (me, phase, reason) =
            on_curve!(&self.inner, r => (r.me, r.runner.status(), r.runner.abort_reason()));
        f.debug_struct("EcdsaSigning")
            .field("curve", &self.curve())
            .field("session", &self.session())
            .field("me", &me)
            .field("signers", &self.signers())
            .field("phase", phase)
            .field("abort_reason", &reason)
            .finish_non_exhaustive()
    }
}

/// What a signer keeps from phase 1 to phase 2 (secret, single use).
struct Kept1<C: EngineCurve> {
    unique: UniqueKeep1to2<C>,
    per_counterparty: BTreeMap<PartyIndex, KeepPhase1to2<C>>,
}

/// What a signer keeps from phase 2 to phase 3 (secret, single use).
struct Kept2<C: EngineCurve> {
    unique: UniqueKeep2to3<C>,
    per_counterparty: BTreeMap<PartyIndex, KeepPhase2to3<C>>,
}

/// What a signer keeps from phase 3 to phase 4.
struct Kept3<C: EngineCurve> {
    /// Hex of the x-coordinate of the nonce point (`r`), as `dkls23` returns it.
    x_coord: String,
    /// This signer's own broadcast, which phase 4 needs too.
    own: Broadcast3to4<C>,
}

/// What a signer must forget when the run ends; held (and wiped on abort or finish) by its [`Runner`].
pub(crate) struct Secrets<C: EngineCurve> {
    kept1: Option<Kept1<C>>,
    kept2: Option<Kept2<C>>,
    kept3: Option<Kept3<C>>,
    /// The messages received and not consumed yet (the private ones carry the multiplication's messages).
    inbox: Inbox,
}

// Every field zeroizes itself on drop: the kept `dkls23` values are `ZeroizeOnDrop`, the private payloads in the
// inbox are `SecretBytes`.
impl<C: EngineCurve> ZeroizeOnDrop for Secrets<C> {}

/// The signing state machine for one curve.
struct SigningRun<C: EngineCurve> {
    share: Arc<EcdsaKeyShare>,
    session: SessionId,
    me: ParticipantId,
    /// The signers, me included.
    signers: BTreeSet<ParticipantId>,
    ids: IdMap,
    digest: [u8; 32],
    data: SignData,
    /// Status, secrets and output.
    runner: Runner<Phase, Secrets<C>, EcdsaSignature>,
}

impl<C: EngineCurve> SigningRun<C> {
    fn new(share: Arc<EcdsaKeyShare>, params: SignParams) -> Result<Self, ProtocolError> {
        let SignParams {
            session,
            me,
            signers,
            digest,
        } = params;
        if C::party(share.party()).is_none() {
            return Err(ProtocolError::InvalidParameters(
                "key share is for another curve".into(),
            ));
        }
        if me != share.participant() {
            return Err(ProtocolError::InvalidParameters(format!(
                "participant {me} cannot sign with the share of participant {}",
                share.participant()
            )));
        }
        let set: BTreeSet<ParticipantId> = signers.iter().copied().collect();
        if set.len() != signers.len() {
            return Err(ProtocolError::InvalidParameters("duplicate signers".into()));
        }
        if !set.contains(&me) {
            return Err(ProtocolError::InvalidParameters(format!(
                "participant {me} is not among the signers"
            )));
        }
        let ids = share.id_map().clone();
        if let Some(stranger) = set.iter().find(|s| ids.index_of(**s).is_none()) {
            return Err(ProtocolError::InvalidParameters(format!(
                "signer {stranger} holds no share of this key"
            )));
        }
        if set.len() != usize::from(share.threshold()) {
            return Err(ProtocolError::InvalidParameters(format!(
                "DKLs23 signs with exactly {} signers, not {}",
                share.threshold(),
                set.len()
            )));
        }
        let counterparties = set
            .iter()
            .filter(|s| **s != me)
            .filter_map(|s| ids.index_of(*s))
            .collect();
        let data = SignData {
            sign_id: sign_id(&session, &set),
            counterparties,
            message_hash: digest,
        };
        Ok(SigningRun {
            share,
            session,
            me,
            signers: set,
            ids,
            digest,
            data,
            runner: Runner::new(
                "signing",
                Secrets {
                    kept1: None,
                    kept2: None,
                    kept3: None,
                    inbox: Inbox::new(ROUNDS),
                },
            ),
        })
    }

    fn others(&self) -> usize {
        self.signers.len().saturating_sub(1)
    }

    fn my_index(&self) -> Result<PartyIndex, ProtocolError> {
        self.ids
            .index_of(self.me)
            .ok_or_else(|| ProtocolError::State("no party index for myself".into()))
    }

    fn message(&self, to: Recipient, round: u8, body: EcdsaBody) -> Outgoing<EcdsaMessage> {
        Outgoing {
            to,
            message: EcdsaMessage::new(self.session, round, body),
        }
    }

    fn has_all(&self, round: u8, kind: Kind) -> bool {
        self.runner
            .secrets()
            .is_ok_and(|s| s.inbox.count(round, kind) == self.others())
    }

    /// Decodes the private messages of `round`, checking their inner sender and receiver indices.
    fn take_private<T: serde::de::DeserializeOwned>(
        &mut self,
        round: u8,
        what: &str,
        parties: impl Fn(&T) -> (PartyIndex, PartyIndex),
    ) -> Result<Vec<T>, ProtocolError> {
        let me = self.my_index()?;
        let received = self.runner.secrets_mut()?.inbox.take(round, Kind::Private);
        let ids = &self.ids;
        let decoded = decode_all::<T>(
            received.iter().map(|(s, b)| (*s, payload(b))),
            what,
            |sender, m| {
                let (from, to) = parties(m);
                ids.index_of(sender) == Some(from) && to == me
            },
        )?;
        Ok(decoded.into_values().collect())
    }

    /// Round-1 messages of all others in: `sign_phase2`, one private round-2 message to each.
    fn round2(&mut self) -> Result<Vec<Outgoing<EcdsaMessage>>, ProtocolError> {
        let received =
            self.take_private::<TransmitPhase1to2>(1, "signing round-1 message", |m| {
                (m.parties.sender, m.parties.receiver)
            })?;
        let Kept1 {
            unique,
            per_counterparty,
        } = self
            .runner
            .secrets_mut()?
            .kept1
            .take()
            .ok_or_else(|| ProtocolError::State("phase-1 state missing".into()))?;
        let share = Arc::clone(&self.share);
        let party = party_of::<C>(&share)?;
        let (unique, per_counterparty, transmit) = party
            .sign_phase2(&self.data, unique, per_counterparty, &received)
            .map_err(|a| map_abort(a, &self.ids, "signing phase 2"))?;
        self.runner.secrets_mut()?.kept2 = Some(Kept2 {
            unique,
            per_counterparty,
        });
        let mut out = Vec::with_capacity(transmit.len());
        for message in &transmit {
            let to = self.ids.require_participant(message.parties.receiver)?;
            let body = EcdsaBody::Private(encode_secret(message, "signing round-2 message")?);
            out.push(self.message(Recipient::One(to), 2, body));
        }
        Ok(out)
    }

    /// Round-2 messages of all others in: `sign_phase3`, broadcast `(u_i, w_i)`.
    fn round3(&mut self) -> Result<Outgoing<EcdsaMessage>, ProtocolError> {
        let received =
            self.take_private::<TransmitPhase2to3<C>>(2, "signing round-2 message", |m| {
                (m.parties.sender, m.parties.receiver)
            })?;
        let Kept2 {
            unique,
            per_counterparty,
        } = self
            .runner
            .secrets_mut()?
            .kept2
            .take()
            .ok_or_else(|| ProtocolError::State("phase-2 state missing".into()))?;
        let share = Arc::clone(&self.share);
        let party = party_of::<C>(&share)?;
        let (x_coord, own) = party
            .sign_phase3(&self.data, unique, per_counterparty, &received)
            .map_err(|a| map_abort(a, &self.ids, "signing phase 3"))?;
        let bytes = encode(&own, "signing round-3 broadcast")?;
        self.runner.secrets_mut()?.kept3 = Some(Kept3 { x_coord, own });
        Ok(self.message(Recipient::All, 3, EcdsaBody::Broadcast(bytes)))
    }

    /// All broadcasts in: `sign_phase4`, verify, the output.
    fn finish(&mut self) -> Result<EcdsaSignature, ProtocolError> {
        let secrets = self.runner.secrets_mut()?;
        let received = secrets.inbox.take(3, Kind::Broadcast);
        let decoded = decode_all::<Broadcast3to4<C>>(
            received.iter().map(|(s, b)| (*s, payload(b))),
            "signing round-3 broadcast",
            |_, _| true,
        )?;
        let Kept3 { x_coord, own } = secrets
            .kept3
            .take()
            .ok_or_else(|| ProtocolError::State("phase-3 state missing".into()))?;
        let mut broadcasts: Vec<Broadcast3to4<C>> = decoded.into_values().collect();
        broadcasts.push(own);
        let share = Arc::clone(&self.share);
        let party = party_of::<C>(&share)?;
        let (s_hex, _recovery_id) = party
            .sign_phase4(&self.data, &x_coord, &broadcasts, C::NORMALIZE_S)
            .map_err(|a| {
                map_abort(
                    a,
                    &self.ids,
                    "signing phase 4 (a signer's round-3 broadcast was wrong; DKLs23 cannot say whose)",
                )
            })?;
        let mut signature = EcdsaSignature {
            r: [0; 32],
            s: [0; 32],
        };
        hex::decode_to_slice(&x_coord, &mut signature.r)
            .and_then(|()| hex::decode_to_slice(&s_hex, &mut signature.s))
            .map_err(|e| ProtocolError::State(format!("signature from dkls23: {e}")))?;
        if !verify_prehash(
            C::CURVE,
            &self.share.public_key_sec1(),
            &self.digest,
            &signature.to_bytes(),
        ) {
            return Err(ProtocolError::State(format!(
                "the {} signature does not verify under the group key",
                C::CURVE
            )));
        }
        Ok(signature)
    }
}

impl<C: EngineCurve> Machine for SigningRun<C> {
    type Phase = Phase;
    type Secrets = Secrets<C>;
    type Output = EcdsaSignature;
    type Message = EcdsaMessage;
    const FIRST_PHASE: Phase = Phase::Round1;

    fn runner(&self) -> &Runner<Phase, Secrets<C>, EcdsaSignature> {
        &self.runner
    }

    fn runner_mut(&mut self) -> &mut Runner<Phase, Secrets<C>, EcdsaSignature> {
        &mut self.runner
    }

    fn session(&self) -> SessionId {
        self.session
    }

    fn me(&self) -> ParticipantId {
        self.me
    }

    fn takes_part(&self, participant: ParticipantId) -> bool {
        self.signers.contains(&participant)
    }

    fn session_of(message: &EcdsaMessage) -> SessionId {
        message.session
    }

    /// Round 1: `sign_phase1`, one private message to each other signer.
    fn begin<R: RngCore + CryptoRng>(
        &mut self,
        _rng: &mut R,
    ) -> Result<Vec<Outgoing<EcdsaMessage>>, ProtocolError> {
        let share = Arc::clone(&self.share);
        let party = party_of::<C>(&share)?;
        let (unique, per_counterparty, transmit) = party
            .sign_phase1(&self.data)
            .map_err(|a| map_abort(a, &self.ids, "signing phase 1"))?;
        self.runner.secrets_mut()?.kept1 = Some(Kept1 {
            unique,
            per_counterparty,
        });
        let mut out = Vec::with_capacity(transmit.len());
        for message in &transmit {
            let to = self.ids.require_participant(message.parties.receiver)?;
            let body = EcdsaBody::Private(encode_secret(message, "signing round-1 message")?);
            out.push(self.message(Recipient::One(to), 1, body));
        }
        Ok(out)
    }

    /// Records one message from a signer other than me.
    fn receive(&mut self, from: ParticipantId, message: EcdsaMessage) -> Result<(), ProtocolError> {
        if message.version != super::ECDSA_MESSAGE_VERSION {
            return Err(ProtocolError::UnsupportedVersion(message.version));
        }
        self.runner
            .secrets_mut()?
            .inbox
            .insert(from, message.round, message.body)
    }

    /// Moves through every phase whose inputs are complete; returns what to send.
    fn advance(&mut self) -> Result<Vec<Outgoing<EcdsaMessage>>, ProtocolError> {
        let mut out = Vec::new();
        loop {
            match self.runner.phase() {
                Some(Phase::Round1) if self.has_all(1, Kind::Private) => {
                    out.extend(self.round2()?);
                    self.runner.set_phase(Phase::Round2);
                }
                Some(Phase::Round2) if self.has_all(2, Kind::Private) => {
                    out.push(self.round3()?);
                    self.runner.set_phase(Phase::Round3);
                }
                Some(Phase::Round3) if self.has_all(3, Kind::Broadcast) => {
                    let signature = self.finish()?;
                    self.runner.finish(signature);
                }
                _ => return Ok(out),
            }
        }
    }
}

/// The `dkls23` party of `share` on curve `C`.
fn party_of<C: EngineCurve>(share: &EcdsaKeyShare) -> Result<&Party<C>, ProtocolError> {
    C::party(share.party())
        .ok_or_else(|| ProtocolError::State("key share is for another curve".into()))
}

/// The `dkls23` sign id: `SHA-256(domain ‖ session id ‖ signers (u16, big-endian, ascending))`.
fn sign_id(session: &SessionId, signers: &BTreeSet<ParticipantId>) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(SIGN_ID_DOMAIN);
    h.update(session.0);
    for s in signers {
        h.update(s.to_be_bytes());
    }
    h.finalize().to_vec()
}
