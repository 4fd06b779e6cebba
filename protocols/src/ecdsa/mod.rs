//! Threshold ECDSA on secp256k1 and NIST P-256: DKLs23 (Doerner, Kondi, Lee, shelat, IEEE S&P 2024), t-of-n
//! with a dishonest majority, on the `dkls23` crate, driven by our sans-IO state machines.
//!
//! # The engine trait
//!
//! [`ThresholdEcdsa`] names an interchangeable engine: a DKG [`Protocol`] that outputs an [`EcdsaKeyShare`]
//! and a signing [`Protocol`] that outputs an [`EcdsaSignature`]. [`Dkls23`] is the only engine today; a
//! faster honest-majority engine with presignatures can be added beside it (chosen per key) without changing
//! the callers, because both speak [`EcdsaMessage`] and produce the same share and signature types at this
//! level (the share records which curve it is on; a later engine would add its own share variant).
//!
//! # Curves
//!
//! [`EcdsaCurve::Secp256k1`] (`k256`) and [`EcdsaCurve::P256`] (`p256`), the `elliptic-curve` 0.14
//! generation that `dkls23` 0.6 is built on. Public keys are exchanged as uncompressed SEC1 points
//! ([`EcdsaKeyShare::public_key_sec1`]); signatures as fixed-width `r ‖ s` ([`EcdsaSignature::to_bytes`]),
//! low-S on secp256k1. Every signature is verified with the curve crate ([`verify::verify_prehash`]) before
//! any party outputs it.
//!
//! # Modules
//!
//! * [`curve`] — the two curves;
//! * [`digest`] — what gets signed: hashing and the SEC1 conversion of a digest to 32 bytes;
//! * [`dkg`] — distributed key generation ([`EcdsaDkg`]): four `dkls23` phases plus an echo round;
//! * [`sign`] — signing ([`EcdsaSigning`]): the four `dkls23` signing phases, three message rounds;
//! * [`share`] — the key share a node keeps ([`EcdsaKeyShare`]) and its public part ([`EcdsaPublicKeys`]);
//! * [`verify`] — independent verification with `k256` / `p256`.
//!
//! # Participant ids
//!
//! `dkls23` numbers parties `1..=n` (a `u8`) and needs the numbers contiguous. Our [`ParticipantId`]s are any
//! distinct nonzero `u16`; the DKG maps them, in ascending order, to `1..=n` (so at most 255 participants),
//! and the key share remembers the mapping, so that any t-subset can sign with the same key. Every message
//! names its sender only through the authenticated transport; the party indices inside `dkls23` messages
//! are checked against it, and a mismatch blames the transport-level sender.
//!
//! # What is kept between phases, and why it is never persisted
//!
//! Between its phases, a `dkls23` party keeps secret per-run state (the polynomial fragments and OT setup of
//! the DKG; the instance key, inversion mask, key share times Lagrange coefficient and the receiver side of
//! the OT-based multiplication while signing). Here it lives only in memory, inside the state machine: it
//! is not `Clone`, not `Serialize`, zeroized when the state machine is dropped or aborts, and consumed by
//! the next phase. It is deliberately never written to disk: DKLs23 signing runs each phase at most once per
//! attempt, and replaying a phase from a stored copy (after a crash, or by a second coordinator) would reuse
//! the per-run randomness against fresh counterparty messages, which can leak the key share. A node that
//! loses a run (crash, restart) simply starts a new signing session with a new [`SessionId`]; nothing is
//! lost but the attempt.
//!
//! # Randomness
//!
//! `dkls23` draws its randomness from its own generator (`dkls23::utilities::rng::get_rng`, i.e. `rand`'s
//! `ThreadRng`, a CSPRNG seeded from the operating system) and does not accept an injected one. The `rng`
//! argument of [`Protocol::start`] and [`Protocol::handle`] is therefore unused by this engine, and runs are
//! not reproducible from a seed (tests assert properties, not values).
//!
//! # Blame
//!
//! Every `dkls23` abort is mapped to a [`ProtocolError`]: an abort that names a counterparty becomes
//! [`ProtocolError::Misbehaviour`] naming it, an abort that demands a ban ([`dkls23::protocols::AbortKind`]
//! `BanCounterparty`: the OT-based multiplication's consistency checks while signing) becomes
//! [`ProtocolError::MustBan`], and aborts that name nobody become [`ProtocolError::State`] (or
//! [`ProtocolError::InvalidParameters`] for a bad signer set). Messages that do not decode, or whose inner
//! party indices do not match the authenticated sender, blame that sender. DKLs23 is not fully
//! identifiable: inconsistent DKG polynomial fragments and a wrong last-round signing broadcast are detected
//! (no key, no signature) but nobody is named.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use dkls23::protocols::{Abort, AbortKind, AbortReason, PartyIndex};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::party::{ParticipantId, Protocol, SessionId};
use crate::secret::SecretBytes;

pub mod curve;
/// What gets signed (defined in `vhsm-core`, where clients use it too).
pub use vhsm_core::digest;
pub mod dkg;
mod inbox;
pub mod share;
pub mod sign;
pub mod verify;

pub use crate::frost::dkg::DkgParams;
pub use curve::EcdsaCurve;
pub use digest::{signing_digest, HashAlg};
pub use dkg::EcdsaDkg;
pub use share::{EcdsaKeyShare, EcdsaPublicKeys};
pub use sign::EcdsaSigning;
pub use verify::verify_prehash;

/// Version byte of [`EcdsaMessage`].
pub const ECDSA_MESSAGE_VERSION: u8 = 1;

/// An interchangeable threshold-ECDSA engine (DKLs23 today; a presignature-based honest-majority engine later).
pub trait ThresholdEcdsa {
    /// Engine name for logs, e.g. "DKLs23".
    const NAME: &'static str;
    /// The key generation protocol.
    type Dkg: Protocol<Output = EcdsaKeyShare>;
    /// The signing protocol.
    type Signing: Protocol<Output = EcdsaSignature>;

    /// One participant of a key generation on `curve`.
    fn dkg(curve: EcdsaCurve, params: DkgParams) -> Result<Self::Dkg, ProtocolError>;

    /// One signer of a signing run with `share`.
    fn signing(
        share: Arc<EcdsaKeyShare>,
        params: SignParams,
    ) -> Result<Self::Signing, ProtocolError>;
}

/// The DKLs23 engine on the `dkls23` crate: [`EcdsaDkg`] and [`EcdsaSigning`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Dkls23;

impl ThresholdEcdsa for Dkls23 {
    const NAME: &'static str = "DKLs23";
    type Dkg = EcdsaDkg;
    type Signing = EcdsaSigning;

    fn dkg(curve: EcdsaCurve, params: DkgParams) -> Result<EcdsaDkg, ProtocolError> {
        EcdsaDkg::new(curve, params)
    }

    fn signing(
        share: Arc<EcdsaKeyShare>,
        params: SignParams,
    ) -> Result<EcdsaSigning, ProtocolError> {
        EcdsaSigning::new(share, params)
    }
}

/// Parameters of one signing run, identical at every signer except `me`.
#[derive(Clone, Debug)]
pub struct SignParams {
    /// The run's session id (fresh for every attempt).
    pub session: SessionId,
    /// This signer.
    pub me: ParticipantId,
    /// The signers, `me` included: exactly the key's threshold many holders of the key (DKLs23 signs with
    /// exactly t parties; choose another t-subset to retry without a failed or banned one).
    pub signers: Vec<ParticipantId>,
    /// The value to sign, from [`digest::signing_digest`].
    pub digest: [u8; 32],
}

/// An ECDSA signature `(r, s)`, as 32-byte big-endian integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcdsaSignature {
    /// `r`: the x-coordinate of the nonce point, reduced modulo the order.
    pub r: [u8; 32],
    /// `s` (low-S on secp256k1).
    pub s: [u8; 32],
}

impl EcdsaSignature {
    /// Fixed-width `r ‖ s` (64 bytes), as PKCS#11's `CKM_ECDSA` returns it.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        let (r, s) = out.split_at_mut(32);
        r.copy_from_slice(&self.r);
        s.copy_from_slice(&self.s);
        out
    }

    /// Parses [`EcdsaSignature::to_bytes`]: exactly 64 bytes (ranges are not checked here; verification does).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let bytes: &[u8; 64] = bytes.try_into().map_err(|_| {
            ProtocolError::Encoding(format!(
                "an ECDSA signature is 64 bytes, not {}",
                bytes.len()
            ))
        })?;
        let (r, s) = bytes.split_at(32);
        let mut sig = EcdsaSignature {
            r: [0; 32],
            s: [0; 32],
        };
        sig.r.copy_from_slice(r);
        sig.s.copy_from_slice(s);
        Ok(sig)
    }
}

/// A message of the ECDSA DKG or signing protocol, for either curve. The sender is not in it: it comes from
/// the authenticated transport.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EcdsaMessage {
    /// [`ECDSA_MESSAGE_VERSION`].
    pub version: u8,
    /// The run it belongs to.
    pub session: SessionId,
    /// The protocol round (see [`dkg`] and [`sign`] for what each round carries).
    pub round: u8,
    /// The payload.
    pub body: EcdsaBody,
}

impl EcdsaMessage {
    /// A current-version message.
    pub fn new(session: SessionId, round: u8, body: EcdsaBody) -> Self {
        EcdsaMessage {
            version: ECDSA_MESSAGE_VERSION,
            session,
            round,
            body,
        }
    }

    /// Encodes with postcard; the first byte is the version.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        postcard::to_allocvec(self)
            .map_err(|e| ProtocolError::Encoding(format!("ECDSA message: {e}")))
    }

    /// Decodes [`EcdsaMessage::to_bytes`]; checks the version byte before anything else and refuses trailing
    /// bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        match bytes.first() {
            None => return Err(ProtocolError::Encoding("empty ECDSA message".into())),
            Some(&ECDSA_MESSAGE_VERSION) => {}
            Some(&v) => return Err(ProtocolError::UnsupportedVersion(v)),
        }
        let (message, rest) = postcard::take_from_bytes::<EcdsaMessage>(bytes)
            .map_err(|e| ProtocolError::Encoding(format!("ECDSA message: {e}")))?;
        if !rest.is_empty() {
            return Err(ProtocolError::Encoding(
                "trailing bytes after ECDSA message".into(),
            ));
        }
        Ok(message)
    }
}

/// The payload of an [`EcdsaMessage`]: postcard encodings of `dkls23` message types.
#[derive(Clone, Serialize, Deserialize)]
pub enum EcdsaBody {
    /// Sent to every other participant ([`crate::Recipient::All`]); public.
    Broadcast(Vec<u8>),
    /// Sent to one participant ([`crate::Recipient::One`]) over a confidential channel: may carry secret
    /// material (DKG polynomial fragments and seeds, OT messages). Redacted in `Debug`.
    Private(SecretBytes),
}

impl EcdsaBody {
    /// Length of the payload in bytes.
    pub fn len(&self) -> usize {
        match self {
            EcdsaBody::Broadcast(b) => b.len(),
            EcdsaBody::Private(b) => b.len(),
        }
    }

    /// True if the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for EcdsaBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EcdsaBody::Broadcast(b) => write!(f, "Broadcast({} bytes)", b.len()),
            EcdsaBody::Private(b) => write!(f, "Private(<redacted>, {} bytes)", b.len()),
        }
    }
}

/// The mapping between our participant ids (ascending) and `dkls23`'s party indices `1..=n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdMap {
    ids: Vec<ParticipantId>,
}

impl IdMap {
    /// Checks `participants` (nonzero, distinct, at most 255) and sorts them.
    pub(crate) fn new(participants: &[ParticipantId]) -> Result<Self, ProtocolError> {
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
        if set.len() > usize::from(u8::MAX) {
            return Err(ProtocolError::InvalidParameters(format!(
                "DKLs23 supports at most {} participants, not {}",
                u8::MAX,
                set.len()
            )));
        }
        Ok(IdMap {
            ids: set.into_iter().collect(),
        })
    }

    /// The participants, ascending.
    pub(crate) fn ids(&self) -> &[ParticipantId] {
        &self.ids
    }

    /// Number of participants (`n`, at most 255).
    pub(crate) fn len(&self) -> u8 {
        u8::try_from(self.ids.len()).unwrap_or(u8::MAX)
    }

    /// The `dkls23` index of `participant`.
    pub(crate) fn index_of(&self, participant: ParticipantId) -> Option<PartyIndex> {
        let position = self.ids.binary_search(&participant).ok()?;
        let index = u8::try_from(position.checked_add(1)?).ok()?;
        PartyIndex::new(index).ok()
    }

    /// The participant with `dkls23` index `index`.
    pub(crate) fn participant_of(&self, index: PartyIndex) -> Option<ParticipantId> {
        let position = usize::from(index.as_u8()).checked_sub(1)?;
        self.ids.get(position).copied()
    }

    /// The participant with `dkls23` index `index`, or a state error (for indices we produced ourselves).
    pub(crate) fn require_participant(
        &self,
        index: PartyIndex,
    ) -> Result<ParticipantId, ProtocolError> {
        self.participant_of(index).ok_or_else(|| {
            ProtocolError::State(format!("dkls23 party index {index} has no participant"))
        })
    }
}

/// Converts a `dkls23` abort (raised by the party with index `me`) into our error, with our participant ids.
///
/// * `AbortKind::BanCounterparty(p)` → [`ProtocolError::MustBan`] naming `p`;
/// * a reason naming a counterparty other than `me` → [`ProtocolError::Misbehaviour`] naming it;
/// * bad signer sets → [`ProtocolError::InvalidParameters`]; everything else → [`ProtocolError::State`].
pub(crate) fn map_abort(abort: Abort, ids: &IdMap, context: &str) -> ProtocolError {
    let me = abort.index;
    let description = format!("{context}: {}", abort.description());
    let name = |p: PartyIndex| ids.participant_of(p);
    if let AbortKind::BanCounterparty(p) = abort.kind {
        return match name(p) {
            Some(id) => ProtocolError::must_ban([id], description),
            None => ProtocolError::State(format!("{description} (ban of unknown party index {p})")),
        };
    }
    let blamed = match &abort.reason {
        AbortReason::UnexpectedSender { sender: p }
        | AbortReason::DuplicateSender { sender: p }
        | AbortReason::MissingMessageFromParty { party: p }
        | AbortReason::SessionBindingMismatch { counterparty: p }
        | AbortReason::ProofVerificationFailed { counterparty: p }
        | AbortReason::CommitmentMismatch { counterparty: p }
        | AbortReason::TrivialInstancePoint { counterparty: p }
        | AbortReason::MissingCommittedPoint { party: p }
        | AbortReason::OtConsistencyCheckFailed { counterparty: p }
        | AbortReason::MultiplicationVerificationFailed {
            counterparty: p, ..
        }
        | AbortReason::GammaUInconsistency { counterparty: p }
        | AbortReason::ZeroShareDecommitFailed { counterparty: p }
        | AbortReason::ChainCodeCommitmentFailed { party: p } => Some(*p),
        _ => None,
    };
    if let Some(p) = blamed.filter(|p| *p != me) {
        if let Some(id) = name(p) {
            return ProtocolError::misbehaviour([id], description);
        }
    }
    match abort.reason {
        AbortReason::InvalidPartyIndex { .. }
        | AbortReason::WrongCounterpartyCount { .. }
        | AbortReason::DuplicateCounterparty { .. }
        | AbortReason::SelfInCounterparties
        | AbortReason::MissingMulState { .. } => ProtocolError::InvalidParameters(description),
        _ => ProtocolError::State(description),
    }
}

/// Postcard-encodes a `dkls23` value for the wire.
pub(crate) fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, ProtocolError> {
    postcard::to_allocvec(value).map_err(|e| ProtocolError::Encoding(format!("{what}: {e}")))
}

/// Postcard-encodes a secret `dkls23` value straight into [`SecretBytes`] (sized first, so that no partial
/// copy is left behind by a growing buffer).
pub(crate) fn encode_secret<T: Serialize>(
    value: &T,
    what: &str,
) -> Result<SecretBytes, ProtocolError> {
    let size = postcard::serialize_with_flavor::<T, postcard::ser_flavors::Size, usize>(
        value,
        postcard::ser_flavors::Size::default(),
    )
    .map_err(|e| ProtocolError::Encoding(format!("{what}: {e}")))?;
    let buffer = Vec::with_capacity(size);
    let bytes = postcard::to_extend(value, buffer)
        .map_err(|e| ProtocolError::Encoding(format!("{what}: {e}")))?;
    Ok(SecretBytes::new(bytes))
}

/// Decodes one postcard value that must fill `bytes` exactly; `None` if it does not decode.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Some(value),
        _ => None,
    }
}

/// Decodes the payload of every sender in `payloads` as `T`; every payload that does not decode (or that
/// `check` refuses) names its sender in one [`ProtocolError::Misbehaviour`].
pub(crate) fn decode_all<T: DeserializeOwned>(
    payloads: impl IntoIterator<Item = (ParticipantId, impl AsRef<[u8]>)>,
    what: &str,
    mut check: impl FnMut(ParticipantId, &T) -> bool,
) -> Result<BTreeMap<ParticipantId, T>, ProtocolError> {
    let mut decoded = BTreeMap::new();
    let mut culprits = Vec::new();
    for (sender, bytes) in payloads {
        match decode::<T>(bytes.as_ref()) {
            Some(value) if check(sender, &value) => {
                decoded.insert(sender, value);
            }
            _ => culprits.push(sender),
        }
    }
    if culprits.is_empty() {
        Ok(decoded)
    } else {
        Err(ProtocolError::misbehaviour(
            culprits,
            format!("malformed {what} (or one naming another sender or recipient)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn id_map() {
        let m = IdMap::new(&[30, 7, 300]).unwrap();
        assert_eq!(m.ids(), &[7, 30, 300]);
        assert_eq!(m.index_of(30).unwrap().as_u8(), 2);
        assert_eq!(m.participant_of(PartyIndex::new(3).unwrap()), Some(300));
        assert_eq!(m.participant_of(PartyIndex::new(4).unwrap()), None);
        assert!(m.index_of(8).is_none());
        assert!(IdMap::new(&[1, 1]).is_err());
        assert!(IdMap::new(&[0, 1]).is_err());
        assert!(IdMap::new(&(1..=256).collect::<Vec<_>>()).is_err());
    }

    #[test]
    fn aborts_are_mapped() {
        let m = IdMap::new(&[10, 20, 30]).unwrap();
        let i = |x| PartyIndex::new(x).unwrap();
        let ban = map_abort(
            Abort::ban(
                i(1),
                i(2),
                AbortReason::OtConsistencyCheckFailed { counterparty: i(2) },
            ),
            &m,
            "t",
        );
        assert!(matches!(ban, ProtocolError::MustBan { .. }));
        assert_eq!(ban.culprits(), &[20]);
        let bad = map_abort(
            Abort::recoverable(i(1), AbortReason::CommitmentMismatch { counterparty: i(3) }),
            &m,
            "t",
        );
        assert!(matches!(bad, ProtocolError::Misbehaviour { .. }));
        assert_eq!(bad.culprits(), &[30]);
        let own = map_abort(
            Abort::recoverable(
                i(1),
                AbortReason::ProofVerificationFailed { counterparty: i(1) },
            ),
            &m,
            "t",
        );
        assert!(matches!(own, ProtocolError::State(_)));
        let none = map_abort(
            Abort::recoverable(i(1), AbortReason::SignatureVerificationFailed),
            &m,
            "t",
        );
        assert!(matches!(none, ProtocolError::State(_)));
        let params = map_abort(
            Abort::recoverable(i(1), AbortReason::SelfInCounterparties),
            &m,
            "t",
        );
        assert!(matches!(params, ProtocolError::InvalidParameters(_)));
    }

    #[test]
    fn signature_bytes() {
        let sig = EcdsaSignature {
            r: [1; 32],
            s: [2; 32],
        };
        let b = sig.to_bytes();
        assert_eq!(EcdsaSignature::from_bytes(&b).unwrap(), sig);
        assert!(EcdsaSignature::from_bytes(&b[..63]).is_err());
    }

    #[test]
    fn private_body_is_redacted() {
        let m = EcdsaMessage::new(
            SessionId([1; 32]),
            1,
            EcdsaBody::Private(SecretBytes::new(vec![0x42; 3])),
        );
        let s = format!("{m:?}");
        assert!(s.contains("<redacted>") && !s.contains("66"), "{s}");
        let bytes = m.to_bytes().unwrap();
        assert_eq!(bytes[0], ECDSA_MESSAGE_VERSION);
        assert_eq!(
            EcdsaMessage::from_bytes(&bytes)
                .unwrap()
                .to_bytes()
                .unwrap(),
            bytes
        );
    }
}
