//! DKLs23 distributed key generation (Protocol 9.1 of ePrint 2023/602 as instructed by DKLs23, with the
//! initialisation of the zero-sharing and two-party multiplication functionalities), on `dkls23`'s
//! `DkgSession`, as a [`Protocol`] state machine: [`EcdsaDkg`].
//!
//! Rounds (`EcdsaMessage::round`), for each participant:
//!
//! 1. **Round 1** ([`EcdsaDkg::start`](Protocol::start)): `phase1` draws a random polynomial; its value at
//!    every other participant's index goes to that participant, [`EcdsaBody::Private`] (a secret
//!    scalar).
//! 2. **Round 2**, holding all fragments: `phase2` sums them into this participant's share and commits to a
//!    proof of knowledge of it. [`EcdsaBody::Broadcast`]: `Round2Broadcast` (the commitment and the
//!    chain-code commitment); [`EcdsaBody::Private`] to each other: the zero-sharing seed commitment.
//! 3. **Round 3**, holding all of round 2 (and only then, so that nobody can choose its values after seeing
//!    others' openings): `phase3`. Broadcast: `Round3Broadcast` (the proof of knowledge, opening the
//!    round-2 commitment, and the chain-code opening); private to each other: `Round3Private` (the
//!    zero-sharing seed opening and the base-OT setup of the two-party multiplication, both secret).
//! 4. **Echo** (round [`ECHO_ROUND`]), holding all of round 3: a digest of every participant's round-2 and
//!    round-3 broadcasts as *this* participant received them ([`crate::echo`]). `dkls23` assumes a
//!    broadcast channel and does not check that everyone received the same broadcasts; without the echo, a
//!    participant could show different proofs to different parties (with t = n nothing else would notice)
//!    and leave them with different keys.
//! 5. **Finish**, holding all echoes and after agreement: every payload is decoded and checked against its
//!    authenticated sender, then `phase4` verifies every proof and commitment opening, checks that all
//!    shares lie on one polynomial of degree t−1, finishes the OT setup with every other participant, and
//!    outputs the [`EcdsaKeyShare`]. Every participant outputs a share of the same public key.
//!
//! Participant ids are mapped in ascending order to `dkls23` party indices `1..=n` (see [`super`]); the
//! `dkls23` session id is `SHA-256(domain ‖ curve ‖ session id ‖ threshold ‖ participants)`, so that the
//! proofs and OT setup are bound to this run, its curve and its participant set.
//!
//! Messages of a later round that arrive early are buffered. Broadcast payloads are decoded only after echo
//! agreement, so a malformed broadcast is blamed identically by all parties.
//!
//! **Blame.** A payload that does not decode, or whose inner `dkls23` party indices do not match its
//! authenticated sender, names that sender ([`ProtocolError::Misbehaviour`]). `phase4` names the sender of a
//! proof or opening that does not verify, and of an OT setup that fails its checks. Inconsistent round-1
//! fragments are detected (the shares do not lie on one polynomial, or the key share is trivial) but
//! DKLs23's DKG cannot say whose they were: [`ProtocolError::State`], no culprit. An echo mismatch names the
//! sender whose broadcast was seen differently (see [`crate::echo`] for what that blame is worth).
//!
//! **Cost.** `phase3` and `phase4` set up the base OTs of the two-party multiplication with every other
//! participant, which dominates: 512 base OTs per pair, 1.1–1.3 s of CPU per participant for secp256k1 and
//! 4.5–4.7 s for P-256 in a 2-of-3 run on our 2-core machine, growing linearly with the number of
//! participants, so a caller must not apply signing-sized timeouts to key generation. The messages of round
//! 3 (the OT set-up) are the largest. See
//! [what key generation costs](self#what-key-generation-costs-and-why-the-pairwise-setup-is-per-key) for the
//! figures per phase, and why this set-up is made afresh for every key.
//!
//! **Abort policy.** As in [`crate::frost::dkg`] (the crate's generic runner): after a failure the run is
//! aborted for good (secrets wiped: `dkls23`'s session state, the own fragment, every buffered message), except for messages that do not belong to it ([`ProtocolError::WrongSession`], or a sender
//! outside the participant set, reported as misbehaviour of that sender), which are refused without touching
//! its state.
//!
//! # After a reshare
//!
//! A `dkls23` key share is more than a Shamir share: each holder also keeps, for every other holder, the
//! base-OT setup of the two-party multiplication (both directions) and a zero-sharing seed, all made by the
//! DKG and tied to the party indices `1..=n`. A reshare ([`crate::reshare`]) gives the new committee new
//! Shamir shares of the same key but none of that pairwise state, and the old state cannot serve: the
//! committee, the indices and the threshold may have changed, and a holder that left still knows its side of
//! every old pair. [`EcdsaDkg::after_reshare`] rebuilds it all, fresh, by running this DKG **from round 2**:
//!
//! * round 1 (the exchange of polynomial fragments) is skipped, and `phase2` is given a single "fragment",
//!   this holder's new share `s′_j` from the reshare, so that its polynomial point is `p(j) = s′_j`, at the
//!   `dkls23` index `j` = rank of the holder in the new committee (the reshare evaluates the new polynomial
//!   at exactly these x-coordinates, [`crate::reshare::EvaluationPoints::Rank`]);
//! * rounds 2, 3, the echo and `phase4` are the crate's DKG unchanged: a committed, Fischlin-transformed
//!   proof of knowledge of `s′_j` bound to this run's `dkls23` session id, the check that all `P(j) = s′_j·G`
//!   lie on one polynomial of degree t′−1 (and the group key is its value at 0), a fresh zero-sharing seed
//!   for every pair and a fresh base-OT setup of the multiplication in both directions of every pair, each
//!   checked by `phase4` with its proofs;
//! * then we check that the group key is the reshare's (unchanged) key and that every `P(j)` is the public
//!   share the reshare agreed on; a holder whose proved point differs is named.
//!
//! Why this is sound: the DKG's security (Protocol 9.1 of ePrint 2023/602) rests on (a) the shares being a
//! degree-(t−1) Shamir sharing of the key with public verifying shares known to all, and (b) the
//! multiplication and zero-sharing set-ups being made fresh for each ordered pair by the crate's own code.
//! The fragment exchange of round 1 only serves (a), and the reshare provides (a) with more checks, not
//! fewer: every sub-share was checked against its dealer's Feldman commitments, every dealer's constant term
//! against its old public share, and all participants agreed on the commitments and the dealer set by echo
//! broadcast, so the new public shares are known and agreed. (b) is untouched: the set-up draws only fresh
//! randomness and never depends on the share, and it is bound to a `dkls23` session id under its own domain
//! ([`AFTER_RESHARE_SESSION_DOMAIN`]), the fresh session id, the curve, the threshold and the committee. The
//! proofs of knowledge additionally show that every holder really holds the share the reshare gave it. This
//! is the crate's own "complete refresh" generalised to a change of committee: it too re-runs the DKG with
//! the polynomial constrained so that the key stays the same, and re-does the whole pairwise set-up; here
//! the constraint is enforced by the reshare's checks instead of a zero constant term. Nothing of the old
//! pairwise state is reused, so what a removed holder (or an attacker who once read an old share) knows
//! about it is useless against the new committee. The `dkls23` chain code (BIP-32 data, unused by the vHSM)
//! is drawn afresh.
//!
//! # What key generation costs, and why the pairwise setup is per key
//!
//! **Measured** on 2026-11-30 on our 2-core development machine, an AMD EPYC virtual machine that other
//! builds kept busy the whole time (load average 4 to 6): hence CPU time of the measuring thread rather than
//! wall time, and ranges over three sessions. With `cargo bench -p vhsm-bench --bench ecdsa_keygen`
//! (`benches/benches/ecdsa_keygen.rs`): a 2-of-3 DKG, the three [`EcdsaDkg`]s in one process, no network,
//! every state-machine call attributed to the `dkls23` phase it ran; CPU time per participant, fastest of 3
//! runs in each session:
//!
//! | phase                                                              |       secp256k1 |           P-256 |
//! |--------------------------------------------------------------------|----------------:|----------------:|
//! | 1: polynomial, fragments                                           |        < 0.1 ms |        < 0.1 ms |
//! | 2: share, proof of knowledge (Fischlin), zero-sharing commitments  |        30–33 ms |        45–59 ms |
//! | 3: first half of the base OTs (256 per direction of every pair)    |      531–618 ms |    1.99–2.10 s  |
//! | echo                                                               |        < 0.1 ms |        < 0.1 ms |
//! | 4: every check, second half of the base OTs, output                |      526–674 ms |    2.45–2.57 s  |
//! | **total per participant**                                          | **1.09–1.32 s** | **4.49–4.72 s** |
//! | the three participants, CPU                                        |       3.3–4.0 s |     13.5–14.2 s |
//! | whole DKG, criterion (wall time on the loaded machine, 10 samples) |       4.4–6.2 s |     18.1–22.2 s |
//!
//! Round 3 puts 887 kB on the wire (148 kB per ordered pair, almost all of it the 256 encryption proofs of the
//! base OTs); rounds 1, 2 and the echo about 2 kB together.
//!
//! **What dominates: the base OTs, and in them scalar multiplications.** In `phase3`, for every other
//! participant, `MulSender::init_phase1` runs the endemic OT of Zhou et al. (ePrint 2022/1525) as receiver
//! `KAPPA` = 256 times (`OTReceiver::run_phase1_batch`: a hash to curve and an `EncProof::prove`, an
//! OR-composed Chaum–Pedersen proof, ten scalar multiplications), and `MulReceiver::init_phase1` makes one
//! Fischlin `DLogProof` (64 commitments); in `phase4`, `MulReceiver::init_phase2` checks the other side's 256
//! (`OTSender::run_phase2_batch`: a hash to curve, `EncProof::verify` with eight multiplications and two
//! more for the OT messages) and `MulSender::init_phase2` checks its `DLogProof` and finishes with one
//! multiplication per OT. That is 21 scalar multiplications and 2 hashes to curve per base OT, 2 × 256 base
//! OTs per pair, so about 11 000 multiplications per participant for n = 3. Measured one by one on the same
//! machine (a one-off program on `dkls23`'s public functions, CPU time, fastest batch): a multiplication
//! with `to_affine` costs 72–116 µs with `k256` and 380–406 µs with `p256`, a hash to curve 87–108 µs and
//! 46–64 µs, one base OT (both sides) 1.7–2.5 ms and 7.7–8.3 ms, and one participant's part of the set-up
//! with one other participant (its receiver side of one direction, its sender side of the other) 0.46–0.67 s
//! and 2.2–2.3 s. So the multiplication set-up is about 95 % of the DKG, the Fischlin proofs of knowledge of
//! the shares (one made, three checked per participant) most of the rest, about 4 %, and encoding, the
//! hashing of messages and our echo well under 1 %.
//!
//! **Why P-256 is about 4 times slower.** Because a `p256` 0.14 scalar multiplication costs about 4 times a
//! `k256` one (3.4 to 5.5 in our noisy measurements; the benchmark's baseline, on the loaded machine:
//! 104–145 µs and 573–575 µs): `p256`'s field is `primefield`'s Montgomery arithmetic on `crypto-bigint`'s
//! `U256` (a square is a general multiplication) and its group law `primeorder`'s generic complete formulas
//! with a radix-16 window, while `k256` has a secp256k1-specific 5×52-bit field with lazy reduction and uses
//! the GLV endomorphism. Neither is helped by precomputed base-point tables here: `dkls23` multiplies the
//! affine generator (`generator * k`), which takes the variable-base path. These are the dependencies'
//! choices; nothing in this crate makes P-256 slower.
//!
//! **Computation, not network.** Through the real cluster (3 nodes on the same 2 cores, QUIC) a 2-of-3 key
//! generation takes 1.4 s (secp256k1) and 5.7 s (P-256) of wall time. The nodes' driver
//! (`node/src/sessions/driver.rs`, used by `node/src/sessions/keygen.rs`) runs each step of a session in
//! turn with `block_in_place`, and the three nodes reach phases 3 and 4 together, so during those phases
//! three participants' CPU shares two cores: the wall time is at least 3 × (per-participant CPU) / 2. With
//! our figures that is 1.6–2.0 s and 6.7–7.1 s, more than the cluster's own wall time, because they were
//! taken under load: the cluster run had less competition, and its time is all computation, with no room
//! left for a measurable share of message rounds (the ratio P-256 / secp256k1 agrees: 3.6–4.3 in-process,
//! 4.1 in the cluster). The four rounds between the nodes (fragments; commitments; openings and OT set-up;
//! echo) are milliseconds on the mesh (one QUIC stream per message over connections kept open, 890 kB in
//! all, over loopback). On a deployment with one node per machine, a key generation takes about the
//! per-participant CPU time.
//!
//! **Decision: the pairwise set-up is made per key, by this DKG, and is not shared between keys.**
//! Sharing it, a base-OT set-up made once per pair of nodes and used by every key with the session ids
//! keeping keys apart, would save almost all of the cost above, and against a *static* adversary (fewer than
//! t nodes corrupted, for ever) it would be sound: the set-up draws only fresh randomness and never depends
//! on the key share; KOS OT extension is made for many extensions of one base-OT set-up (every signature of a
//! key already is one), each under `mul_session_id` (the DKG session id, the sign id, the public key and chain
//! code, the message hash, the signers and the roles) and a fresh receiver nonce; and `dkls23` itself shares
//! one set-up between keys derived from one share (BIP-32 children in `derivation.rs`, BOLT-3 keys),
//! separated by the public key in those ids. We do not, because of what the set-up protects:
//!
//! * In signing, each signer is the multiplication *sender* towards every co-signer, with input its instance
//!   key and its key share (`input = vec![instance_key, key_share]` in `dkls23`'s `signing.rs`). What hides
//!   that input from the co-signer is only the co-signer's ignorance of the sender's OT-extension
//!   correlation, `OTESender::correlation` (the 256 choice bits of the base OTs, in `Party::mul_senders`):
//!   a receiver that knows it computes both KOS pads, `q_j` and `q_j ⊕ Δ`, and unmasks the input, that is the
//!   sender's key share. Per key, that correlation lives in one key's sealed share and guards one key; shared,
//!   one correlation would guard node B's share of *every* key it holds with node A.
//! * **Compartments.** With a shared set-up, one stored share of node B read by an attacker (from a node
//!   backup, or a share of a destroyed key still in an old backup) plus one corrupted node A, which is within
//!   every key's threshold, gives B's share of every key A signs with B: with t = 2, every such key. Per key,
//!   it gives that one key only. And destroying a key (the lifecycle the nodes enforce) would no longer
//!   destroy its pairwise secrets, which would live on with the other keys.
//! * **Reshare.** [After a reshare](self#after-a-reshare) the pairwise state is rebuilt so that what a holder
//!   that left, or an attacker who once read a share, knows of the old state is useless. A mobile adversary
//!   that reads node B in one period and corrupts node A in the next, never holding more than t − 1 nodes at
//!   once, learns B's new share of every key whose set-up was not renewed. With one set-up per pair, the
//!   reshare of one key could not renew it without renewing it for every key (one key's reshare would become
//!   every key's, for all holders of the pair), and not renewing it would defeat the reshare. `dkls23`'s fast
//!   refresh (ePrint 2019/1328, §8) derives the new OT state from the old one and coins both parties know, so
//!   it does not help against that adversary.
//! * **Aborts.** A failed OT-extension consistency check in signing (`MultiplicationVerificationFailed`,
//!   which `dkls23` makes a ban) tells a cheating receiver that its guess of some bits of the correlation was
//!   wrong (KOS's selective failure), so that pair's set-up is spent: per key, for one key; shared, for every
//!   key of the pair at once.
//!
//! It is not feasible through `dkls23`'s public API either, without owning a copy of part of its DKG:
//! `DkgSession::phase3` and `phase4` (and `dkg::phase3`/`phase4`) always run the multiplication set-up
//! (`MulReceiver`/`MulSender::init_phase1`/`init_phase2`) with every other party, and the steps of the key
//! alone (`dkg::step2`, `step3`, `step5`, `check_own_point`) are `pub(crate)`: a DKG without the set-up means
//! re-implementing `step5` (checking every proof against its commitment and that the points lie on one
//! polynomial of degree t − 1) in this crate. A `Party` could be assembled from a stored pair set-up (all its
//! fields are public; `MulSender`/`MulReceiver` cannot be written as struct literals, their `_curve` marker is
//! `pub(crate)`, but come from `init_phase2`, `Clone` or serde), and the set-up would need a persisted,
//! sealed, backed-up per-pair state in the nodes, with its own lifecycle.
//!
//! **Instead, key generations run in parallel.** A DKG is CPU-bound and its sessions share no state: each
//! node runs every session's steps on tokio's worker threads (`block_in_place`), so K key generations on a
//! node with at least K free cores take about as long as one; the coordinator should start them together
//! rather than one after the other. Free cores are the condition: on this 2-core machine hosting all three
//! nodes, the cores are already busy during phases 3 and 4 of one generation, and several at once only fill
//! the gaps (the message rounds and the coordinator's steps), a bound of 2 cores ÷ (3 × per-participant CPU)
//! on the throughput. The benchmark prints two DKGs on two threads against the same two one after the
//! other; on our loaded machine, with no free core, they took as long (14.1 s against 14.2 s for
//! secp256k1, 43.0 s against 41.8 s for P-256).

use std::collections::BTreeMap;
use std::fmt;

use dkls23::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, ProofCommitment,
    TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23::protocols::{Parameters, PartyIndex};
use dkls23::utilities::hashes::HashOutput;
use dkls23::utilities::proofs::DLogProof;
use dkls23::DkgSession;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::curve::{on_curve, EcdsaCurve, EngineCurve, OnCurve};
use super::inbox::{payload, Inbox, Kind};
use super::share::EcdsaKeyShare;
use super::{
    decode, decode_all, encode, encode_secret, map_abort, DkgParams, EcdsaBody, EcdsaMessage, IdMap,
};
use crate::canonical::StrictMap;
use crate::echo::EchoBroadcast;
use crate::error::ProtocolError;
use crate::party::{Outgoing, ParticipantId, Protocol, Recipient, SessionId};
use crate::reshare::{EvaluationPoints, ReshareGroup, ReshareOutput};
use crate::runner::{self, Machine, Runner};
use k256::elliptic_curve::group::Curve;

/// Domain separation tag of the `dkls23` session id of a DKG.
pub const DKG_SESSION_DOMAIN: &[u8] = b"vhsm/dkls23-dkg/session/v1";
/// Domain separation tag of the `dkls23` session id of the pairwise set-up after a reshare
/// ([`EcdsaDkg::after_reshare`]).
pub const AFTER_RESHARE_SESSION_DOMAIN: &[u8] = b"vhsm/dkls23-after-reshare/session/v1";
/// Domain separation tag of the DKG's echo digests.
pub const ECHO_DOMAIN: &[u8] = b"vhsm/dkls23-dkg/echo/v1";
/// The round number of the echo messages.
pub const ECHO_ROUND: u8 = 4;

/// The (round, kind) pairs of the DKG other than the echo.
const ROUNDS: &[(u8, Kind)] = &[
    (1, Kind::Private),
    (2, Kind::Broadcast),
    (2, Kind::Private),
    (3, Kind::Broadcast),
    (3, Kind::Private),
];

/// The (round, kind) pairs of the set-up after a reshare: no round 1, the shares come from the reshare.
const AFTER_RESHARE_ROUNDS: &[(u8, Kind)] = &[
    (2, Kind::Broadcast),
    (2, Kind::Private),
    (3, Kind::Broadcast),
    (3, Kind::Private),
];

/// Round-2 broadcast: the commitment to this participant's proof of knowledge of its share, and the
/// commitment to its chain-code contribution.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Round2Broadcast {
    /// Commitment to the [`DLogProof`] sent in round 3.
    pub(crate) proof_commitment: HashOutput,
    /// Commitment to the chain-code contribution (BIP-32 derivation data; unused by the vHSM but part of the
    /// `dkls23` key).
    pub(crate) derivation: BroadcastDerivationPhase2to4,
}

/// Round-3 broadcast: the proof of knowledge (opening the round-2 commitment) and the chain-code opening.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct Round3Broadcast<C: EngineCurve> {
    /// Proof of knowledge of the discrete logarithm of this participant's verifying share.
    pub(crate) proof: DLogProof<C>,
    /// The chain-code contribution and its salt.
    pub(crate) derivation: BroadcastDerivationPhase3to4,
}

/// Round-3 private message to one participant: secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct Round3Private<C: EngineCurve> {
    /// Opening of the round-2 zero-sharing seed commitment.
    pub(crate) zero: TransmitInitZeroSharePhase3to4,
    /// Base-OT setup of the two-party multiplication with the recipient.
    pub(crate) mul: TransmitInitMulPhase3to4<C>,
}

/// The phases of a started run (before, after and on failure: see [`runner::Status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the round-1 fragments.
    Round1,
    /// Waiting for the round-2 messages.
    Round2,
    /// Waiting for the round-3 messages.
    Round3,
    /// Echo sent; waiting for the echoes of the others.
    Echo,
}

/// What a participant must forget when the run ends; held (and wiped on abort or finish) by its [`Runner`].
pub(crate) struct Secrets<C: EngineCurve> {
    /// `dkls23`'s per-run secret state; consumed by `phase4`.
    dkls: Option<DkgSession<C>>,
    /// This participant's own round-1 fragment (after a reshare: its new share); consumed by `phase2`.
    own_fragment: Zeroizing<Vec<C::Scalar>>,
    /// The messages received and not consumed yet (private ones carry fragments, seeds and OT setup).
    inbox: Inbox,
}

// Every field zeroizes itself on drop: `DkgSession` zeroizes itself, the fragment is `Zeroizing`, the private
// payloads in the inbox are `SecretBytes`.
impl<C: EngineCurve> ZeroizeOnDrop for Secrets<C> {}

/// One participant of a DKLs23 key generation. See the [module documentation](self).
pub struct EcdsaDkg {
    inner: DkgOnCurve,
}

type DkgOnCurve = OnCurve<Box<DkgRun<k256::Secp256k1>>, Box<DkgRun<p256::NistP256>>>;

impl EcdsaDkg {
    /// Checks `params` (`2 <= threshold <= n <= 255`, `me` in the set, ids nonzero and distinct) and prepares
    /// a run on `curve`.
    pub fn new(curve: EcdsaCurve, params: DkgParams) -> Result<Self, ProtocolError> {
        let inner = match curve {
            EcdsaCurve::Secp256k1 => DkgOnCurve::Secp256k1(Box::new(DkgRun::new(params)?)),
            EcdsaCurve::P256 => DkgOnCurve::P256(Box::new(DkgRun::new(params)?)),
        };
        Ok(EcdsaDkg { inner })
    }

    /// The pairwise set-up of a new committee after a reshare ([`crate::reshare::EcdsaReshare`]): this
    /// participant's `output` of the reshare gives its new share, the committee, the threshold, the group
    /// key and every public share; this run (with a fresh `session`, the same committee) rebuilds what
    /// DKLs23 signing needs between every pair of holders and outputs the [`EcdsaKeyShare`].
    ///
    /// It is the DKG from round 2 on, with this participant's polynomial point taken from the reshare instead
    /// of round 1: see [the module documentation](self#after-a-reshare) for the rounds and why it is sound.
    /// Every member of the new committee must run it; a participant that left the committee has no part
    /// in it (and fails here).
    pub fn after_reshare(
        session: SessionId,
        output: &crate::reshare::EcdsaReshareOutput,
    ) -> Result<Self, ProtocolError> {
        let inner = match output.inner() {
            OnCurve::Secp256k1(out) => {
                DkgOnCurve::Secp256k1(Box::new(DkgRun::after_reshare(session, out)?))
            }
            OnCurve::P256(out) => DkgOnCurve::P256(Box::new(DkgRun::after_reshare(session, out)?)),
        };
        Ok(EcdsaDkg { inner })
    }

    /// The curve of the key being generated.
    pub fn curve(&self) -> EcdsaCurve {
        match &self.inner {
            DkgOnCurve::Secp256k1(_) => EcdsaCurve::Secp256k1,
            DkgOnCurve::P256(_) => EcdsaCurve::P256,
        }
    }

    /// The run's session id.
    pub fn session(&self) -> SessionId {
        on_curve!(&self.inner, run => run.session)
    }

    /// True if the run failed; it cannot be resumed.
    pub fn is_aborted(&self) -> bool {
        on_curve!(&self.inner, run => run.runner.is_aborted())
    }
}

impl Protocol for EcdsaDkg {
    type Message = EcdsaMessage;
    type Output = EcdsaKeyShare;

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

    fn take_output(&mut self) -> Option<EcdsaKeyShare> {
        on_curve!(&mut self.inner, run => run.runner.take_output())
    }
}

impl fmt::Debug for EcdsaDkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (me, ids, threshold, phase, reason) = on_curve!(&self.inner, r => (
            r.me,
            &r.ids,
            r.threshold,
            r.runner.status(),
            r.runner.abort_reason()
        ));
        f.debug_struct("EcdsaDkg")
            .field("curve", &self.curve())
            .field("session", &self.session())
            .field("me", &me)
            .field("participants", &ids.ids())
            .field("threshold", &threshold)
            .field("phase", phase)
            .field("abort_reason", &reason)
            .finish_non_exhaustive()
    }
}

/// The DKG state machine for one curve.
struct DkgRun<C: EngineCurve> {
    session: SessionId,
    me: ParticipantId,
    my_index: PartyIndex,
    threshold: u16,
    ids: IdMap,
    /// Status, secrets and output.
    runner: Runner<Phase, Secrets<C>, EcdsaKeyShare>,
    echo: EchoBroadcast,
    /// This participant's proof of knowledge, from `phase2`, sent in round 3.
    own_proof: Option<DLogProof<C>>,
    /// This participant's own broadcasts (rounds 2 and 3), as sent.
    own_broadcasts: BTreeMap<u8, Vec<u8>>,
    /// After a reshare: the key the run must end with (and round 1 is skipped).
    expected: Option<Expected<C>>,
}

/// What the set-up after a reshare must end with: the reshare's group key and public shares.
struct Expected<C: EngineCurve> {
    group_key: C::AffinePoint,
    shares: BTreeMap<PartyIndex, C::AffinePoint>,
}

impl<C: EngineCurve> DkgRun<C> {
    fn new(params: DkgParams) -> Result<Self, ProtocolError> {
        Self::build(params, DKG_SESSION_DOMAIN, ROUNDS)
    }

    /// The set-up after a reshare: `output` must be this participant's, in the new committee, at rank
    /// x-coordinates (the `dkls23` party indices).
    fn after_reshare(
        session: SessionId,
        output: &ReshareOutput<C::ProjectivePoint>,
    ) -> Result<Self, ProtocolError>
    where
        C::ProjectivePoint: ReshareGroup<Scalar = C::Scalar>,
    {
        let key = output.public();
        if key.evaluation_points() != EvaluationPoints::Rank {
            return Err(ProtocolError::InvalidParameters(
                "DKLs23 shares live at x = rank in the committee".into(),
            ));
        }
        let me = output.participant();
        let share = output
            .secret()
            .copied()
            .map(Zeroizing::new)
            .ok_or_else(|| {
                ProtocolError::InvalidParameters(format!(
                    "participant {me} is not in the new committee"
                ))
            })?;
        let params = DkgParams {
            session,
            me,
            participants: key.participants(),
            threshold: key.threshold(),
        };
        let mut run = Self::build(params, AFTER_RESHARE_SESSION_DOMAIN, AFTER_RESHARE_ROUNDS)?;
        let mut shares = BTreeMap::new();
        for (id, point) in key.public_shares() {
            let index = run
                .ids
                .index_of(*id)
                .ok_or_else(|| ProtocolError::State(format!("no party index for {id}")))?;
            shares.insert(index, point.to_affine());
        }
        run.expected = Some(Expected {
            group_key: key.group_key().to_affine(),
            shares,
        });
        run.runner.secrets_mut()?.own_fragment.push(*share);
        Ok(run)
    }

    fn build(
        params: DkgParams,
        domain: &[u8],
        rounds: &'static [(u8, Kind)],
    ) -> Result<Self, ProtocolError> {
        let DkgParams {
            session,
            me,
            participants,
            threshold,
        } = params;
        let ids = IdMap::new(&participants)?;
        let my_index = ids.index_of(me).ok_or_else(|| {
            ProtocolError::InvalidParameters(format!(
                "participant {me} is not in the participant set"
            ))
        })?;
        let n = ids.len();
        let t = u8::try_from(threshold)
            .ok()
            .filter(|t| (2..=n).contains(t))
            .ok_or_else(|| {
                ProtocolError::InvalidParameters(format!(
                    "threshold {threshold} must be between 2 and the number of participants ({n})"
                ))
            })?;
        let parameters =
            Parameters::new(t, n).map_err(|e| ProtocolError::InvalidParameters(e.to_string()))?;
        let echo = EchoBroadcast::new(ECHO_DOMAIN, session, me, ids.ids().iter().copied())?;
        let session_id = dkls_session_id(domain, C::CURVE, &session, threshold, ids.ids());
        Ok(DkgRun {
            session,
            me,
            my_index,
            threshold,
            ids,
            runner: Runner::new(
                "DKG",
                Secrets {
                    dkls: Some(DkgSession::new(parameters, my_index, session_id)),
                    own_fragment: Zeroizing::new(Vec::new()),
                    inbox: Inbox::new(rounds),
                },
            ),
            echo,
            own_proof: None,
            own_broadcasts: BTreeMap::new(),
            expected: None,
        })
    }

    fn others(&self) -> usize {
        self.ids.ids().len().saturating_sub(1)
    }

    fn message(&self, to: Recipient, round: u8, body: EcdsaBody) -> Outgoing<EcdsaMessage> {
        Outgoing {
            to,
            message: EcdsaMessage::new(self.session, round, body),
        }
    }

    fn dkls(&mut self) -> Result<&mut DkgSession<C>, ProtocolError> {
        self.runner
            .secrets_mut()?
            .dkls
            .as_mut()
            .ok_or_else(|| ProtocolError::State("DKG session state missing".into()))
    }

    fn has_all(&self, round: u8, kind: Kind) -> bool {
        self.runner
            .secrets()
            .is_ok_and(|s| s.inbox.count(round, kind) == self.others())
    }

    /// All fragments in: `phase2`; broadcast the commitments, send the zero-sharing seed commitments.
    fn round2(&mut self) -> Result<Vec<Outgoing<EcdsaMessage>>, ProtocolError> {
        let secrets = self.runner.secrets_mut()?;
        let received = secrets.inbox.take(1, Kind::Private);
        let mut decoded = decode_all::<C::Scalar>(
            received
                .iter()
                .map(|(sender, body)| (*sender, payload(body))),
            "round-1 polynomial fragment",
            |_, _| true,
        )?;
        let mut fragments: Zeroizing<Vec<C::Scalar>> =
            Zeroizing::new(Vec::with_capacity(decoded.len().saturating_add(1)));
        fragments.extend(secrets.own_fragment.iter().copied());
        fragments.extend(decoded.values().copied());
        for fragment in decoded.values_mut() {
            zeroize::Zeroize::zeroize(fragment);
        }
        secrets.own_fragment = Zeroizing::new(Vec::new());
        let ids = self.ids.clone();
        let (proof_commitment, zero_transmit, derivation) = self
            .dkls()?
            .phase2(&fragments)
            .map_err(|a| map_abort(a, &ids, "DKG phase 2"))?;
        let ProofCommitment {
            proof, commitment, ..
        } = proof_commitment;
        self.own_proof = Some(proof);
        let broadcast = encode(
            &Round2Broadcast {
                proof_commitment: commitment,
                derivation,
            },
            "round-2 broadcast",
        )?;
        self.own_broadcasts.insert(2, broadcast.clone());
        let mut out = vec![self.message(Recipient::All, 2, EcdsaBody::Broadcast(broadcast))];
        for transmit in &zero_transmit {
            let to = self.ids.require_participant(transmit.parties.receiver)?;
            let body = EcdsaBody::Private(encode_secret(transmit, "round-2 private message")?);
            out.push(self.message(Recipient::One(to), 2, body));
        }
        Ok(out)
    }

    /// All of round 2 in: `phase3`; broadcast the proof and chain-code opening, send the seed openings and
    /// the OT setup.
    fn round3(&mut self) -> Result<Vec<Outgoing<EcdsaMessage>>, ProtocolError> {
        let ids = self.ids.clone();
        let (zero_transmit, mul_transmit, derivation) = self
            .dkls()?
            .phase3()
            .map_err(|a| map_abort(a, &ids, "DKG phase 3"))?;
        let proof = self
            .own_proof
            .clone()
            .ok_or_else(|| ProtocolError::State("own proof missing".into()))?;
        let broadcast = encode(
            &Round3Broadcast::<C> { proof, derivation },
            "round-3 broadcast",
        )?;
        self.own_broadcasts.insert(3, broadcast.clone());
        let mut out = vec![self.message(Recipient::All, 3, EcdsaBody::Broadcast(broadcast))];
        let mut mul_by_receiver: BTreeMap<PartyIndex, TransmitInitMulPhase3to4<C>> = mul_transmit
            .into_iter()
            .map(|m| (m.parties.receiver, m))
            .collect();
        for zero in zero_transmit {
            let receiver = zero.parties.receiver;
            let to = self.ids.require_participant(receiver)?;
            let mul = mul_by_receiver.remove(&receiver).ok_or_else(|| {
                ProtocolError::State(format!("no OT setup message for party {receiver}"))
            })?;
            let body = EcdsaBody::Private(encode_secret(
                &Round3Private::<C> { zero, mul },
                "round-3 private message",
            )?);
            out.push(self.message(Recipient::One(to), 3, body));
        }
        Ok(out)
    }

    /// All of round 3 in: echo the digests of every participant's round-2 and round-3 broadcasts.
    fn echo_round(&mut self) -> Result<Outgoing<EcdsaMessage>, ProtocolError> {
        let inbox = &self.runner.secrets()?.inbox;
        let r2 = inbox.peek(2, Kind::Broadcast).cloned().unwrap_or_default();
        let r3 = inbox.peek(3, Kind::Broadcast).cloned().unwrap_or_default();
        for participant in self.ids.ids().to_vec() {
            let (first, second) = if participant == self.me {
                (
                    self.own_broadcasts.get(&2).cloned(),
                    self.own_broadcasts.get(&3).cloned(),
                )
            } else {
                (
                    r2.get(&participant).map(|b| payload(b).to_vec()),
                    r3.get(&participant).map(|b| payload(b).to_vec()),
                )
            };
            let (Some(first), Some(second)) = (first, second) else {
                return Err(ProtocolError::State(format!(
                    "broadcasts of {participant} missing"
                )));
            };
            self.echo
                .record_payload(participant, echo_payload(&first, &second)?)?;
        }
        let echo = self
            .echo
            .echo()
            .ok_or_else(|| ProtocolError::State("echo unavailable with all payloads".into()))?;
        let bytes = encode(&echo, "echo")?;
        Ok(self.message(Recipient::All, ECHO_ROUND, EcdsaBody::Broadcast(bytes)))
    }

    /// After echo agreement: decode and check everything, `phase4`, the output.
    fn finish(&mut self) -> Result<EcdsaKeyShare, ProtocolError> {
        let ids = self.ids.clone();
        let me = self.my_index;
        let my_id = self.me;
        let index_of = |p: ParticipantId| ids.index_of(p);
        let all = |round: u8, inbox: &mut Inbox, own: Option<Vec<u8>>| {
            let mut payloads: BTreeMap<ParticipantId, Vec<u8>> = inbox
                .take(round, Kind::Broadcast)
                .iter()
                .map(|(s, b)| (*s, payload(b).to_vec()))
                .collect();
            if let Some(own) = own {
                payloads.insert(my_id, own);
            }
            payloads
        };
        let secrets = self.runner.secrets_mut()?;
        let r2 = all(2, &mut secrets.inbox, self.own_broadcasts.get(&2).cloned());
        let r3 = all(3, &mut secrets.inbox, self.own_broadcasts.get(&3).cloned());
        let round2 = decode_all::<Round2Broadcast>(r2, "round-2 broadcast", |s, b| {
            index_of(s) == Some(b.derivation.sender_index)
        })?;
        let round3 = decode_all::<Round3Broadcast<C>>(r3, "round-3 broadcast", |s, b| {
            index_of(s) == Some(b.derivation.sender_index)
        })?;
        let private2 = secrets.inbox.take(2, Kind::Private);
        let private3 = secrets.inbox.take(3, Kind::Private);
        let zero2 = decode_all::<TransmitInitZeroSharePhase2to4>(
            private2.iter().map(|(s, b)| (*s, payload(b))),
            "round-2 private message",
            |s, m| index_of(s) == Some(m.parties.sender) && m.parties.receiver == me,
        )?;
        let round3_private = decode_all::<Round3Private<C>>(
            private3.iter().map(|(s, b)| (*s, payload(b))),
            "round-3 private message",
            |s, m| {
                let from = index_of(s);
                from == Some(m.zero.parties.sender)
                    && from == Some(m.mul.parties.sender)
                    && m.zero.parties.receiver == me
                    && m.mul.parties.receiver == me
            },
        )?;
        let mut proofs = Vec::with_capacity(round3.len());
        let mut derivation2 = BTreeMap::new();
        let mut derivation3 = BTreeMap::new();
        for (sender, broadcast3) in round3 {
            let index = ids
                .index_of(sender)
                .ok_or_else(|| ProtocolError::State(format!("no party index for {sender}")))?;
            let broadcast2 = round2.get(&sender).ok_or_else(|| {
                ProtocolError::State(format!("round-2 broadcast of {sender} missing"))
            })?;
            proofs.push(ProofCommitment {
                index,
                proof: broadcast3.proof,
                commitment: broadcast2.proof_commitment,
            });
            derivation2.insert(index, broadcast2.derivation.clone());
            derivation3.insert(index, broadcast3.derivation);
        }
        let (zero3, mul): (Vec<_>, Vec<_>) = round3_private
            .into_values()
            .map(|m| (m.zero, m.mul))
            .unzip();
        let zero2: Vec<_> = zero2.into_values().collect();
        let session = secrets
            .dkls
            .take()
            .ok_or_else(|| ProtocolError::State("DKG session state missing".into()))?;
        let (party, package) = session
            .phase4(
                &proofs,
                &zero2,
                &zero3,
                &mul,
                &derivation2,
                &derivation3,
                |_| String::new(),
            )
            .map_err(|a| map_abort(a, &ids, "DKG phase 4"))?;
        if let Some(expected) = &self.expected {
            // After a reshare: every participant proved knowledge of the discrete log of its point, and
            // the points lie on one polynomial of degree t − 1; they must also be the public shares the
            // reshare agreed on, so that the key is the old one and every holder holds the share it was
            // dealt.
            let culprits: Vec<ParticipantId> = ids
                .ids()
                .iter()
                .copied()
                .filter(|id| {
                    let index = ids.index_of(*id);
                    let proved = index.and_then(|i| package.verifying_share(i));
                    let agreed = index.and_then(|i| expected.shares.get(&i));
                    proved.is_none() || proved != agreed
                })
                .collect();
            if !culprits.is_empty() {
                return Err(ProtocolError::misbehaviour(
                    culprits,
                    "proved knowledge of a share other than the one the reshare gave it",
                ));
            }
            if *package.verifying_key() != expected.group_key {
                return Err(ProtocolError::State(
                    "the set-up after the reshare ended with another group key".into(),
                ));
            }
        }
        let share = EcdsaKeyShare::from_dkls(ids.ids(), party, &package)?;
        if share.threshold() != self.threshold || share.participant() != self.me {
            return Err(ProtocolError::State(
                "DKG produced a share of another threshold or participant".into(),
            ));
        }
        Ok(share)
    }
}

impl<C: EngineCurve> Machine for DkgRun<C> {
    type Phase = Phase;
    type Secrets = Secrets<C>;
    type Output = EcdsaKeyShare;
    type Message = EcdsaMessage;
    const FIRST_PHASE: Phase = Phase::Round1;

    fn runner(&self) -> &Runner<Phase, Secrets<C>, EcdsaKeyShare> {
        &self.runner
    }

    fn runner_mut(&mut self) -> &mut Runner<Phase, Secrets<C>, EcdsaKeyShare> {
        &mut self.runner
    }

    fn session(&self) -> SessionId {
        self.session
    }

    fn me(&self) -> ParticipantId {
        self.me
    }

    fn takes_part(&self, participant: ParticipantId) -> bool {
        self.ids.index_of(participant).is_some()
    }

    fn session_of(message: &EcdsaMessage) -> SessionId {
        message.session
    }

    /// Round 1: `phase1`, one polynomial fragment to each other participant. After a reshare the polynomial
    /// point is already known: nothing to send, straight to round 2.
    fn begin<R: RngCore + CryptoRng>(
        &mut self,
        _rng: &mut R,
    ) -> Result<Vec<Outgoing<EcdsaMessage>>, ProtocolError> {
        if self.expected.is_some() {
            return Ok(Vec::new());
        }
        let fragments = Zeroizing::new(self.dkls()?.phase1());
        let mut out = Vec::with_capacity(fragments.len());
        for (position, fragment) in fragments.iter().enumerate() {
            let index = u8::try_from(position + 1)
                .ok()
                .and_then(|i| PartyIndex::new(i).ok())
                .ok_or_else(|| ProtocolError::State("too many fragments".into()))?;
            if index == self.my_index {
                self.runner.secrets_mut()?.own_fragment.push(*fragment);
                continue;
            }
            let to = self.ids.require_participant(index)?;
            let body = EcdsaBody::Private(encode_secret(fragment, "polynomial fragment")?);
            out.push(self.message(Recipient::One(to), 1, body));
        }
        Ok(out)
    }

    /// Records one message from a known participant other than me.
    fn receive(&mut self, from: ParticipantId, message: EcdsaMessage) -> Result<(), ProtocolError> {
        if message.version != super::ECDSA_MESSAGE_VERSION {
            return Err(ProtocolError::UnsupportedVersion(message.version));
        }
        if message.round == ECHO_ROUND {
            let EcdsaBody::Broadcast(bytes) = &message.body else {
                return Err(ProtocolError::misbehaviour(
                    [from],
                    "sent a private echo message",
                ));
            };
            // A map decoded canonically: keys strictly increasing, none repeated.
            let StrictMap(echo) = decode::<StrictMap<ParticipantId, [u8; 32]>>(bytes)
                .ok_or_else(|| ProtocolError::misbehaviour([from], "malformed echo"))?;
            return self.echo.record_echo(from, echo);
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
                Some(Phase::Round1)
                    if self.expected.is_some() || self.has_all(1, Kind::Private) =>
                {
                    out.extend(self.round2()?);
                    self.runner.set_phase(Phase::Round2);
                }
                Some(Phase::Round2)
                    if self.has_all(2, Kind::Broadcast) && self.has_all(2, Kind::Private) =>
                {
                    out.extend(self.round3()?);
                    self.runner.set_phase(Phase::Round3);
                }
                Some(Phase::Round3)
                    if self.has_all(3, Kind::Broadcast) && self.has_all(3, Kind::Private) =>
                {
                    out.push(self.echo_round()?);
                    self.runner.set_phase(Phase::Echo);
                }
                Some(Phase::Echo) if self.echo.has_all_echoes() => {
                    self.echo.check_agreement()?;
                    let share = self.finish()?;
                    self.runner.finish(share);
                }
                _ => return Ok(out),
            }
        }
    }
}

/// The `dkls23` session id of a DKG: `SHA-256(domain ‖ curve tag ‖ session id ‖ threshold ‖ participants)`,
/// integers big-endian.
fn dkls_session_id(
    domain: &[u8],
    curve: EcdsaCurve,
    session: &SessionId,
    threshold: u16,
    participants: &[ParticipantId],
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(domain);
    h.update([curve.tag()]);
    h.update(session.0);
    h.update(threshold.to_be_bytes());
    for p in participants {
        h.update(p.to_be_bytes());
    }
    h.finalize().to_vec()
}

/// What the echo covers for one sender: `u32 length of the round-2 broadcast ‖ round-2 broadcast ‖ round-3
/// broadcast`.
fn echo_payload(round2: &[u8], round3: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let len = u32::try_from(round2.len())
        .map_err(|_| ProtocolError::Encoding("round-2 broadcast too long".into()))?;
    let mut out = Vec::with_capacity(4 + round2.len() + round3.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(round2);
    out.extend_from_slice(round3);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params(me: ParticipantId, participants: Vec<ParticipantId>, threshold: u16) -> DkgParams {
        DkgParams {
            session: SessionId([1; 32]),
            me,
            participants,
            threshold,
        }
    }

    #[test]
    fn parameters_are_checked() {
        let curve = EcdsaCurve::Secp256k1;
        assert!(EcdsaDkg::new(curve, params(1, vec![1, 2, 3], 2)).is_ok());
        for bad in [
            params(4, vec![1, 2, 3], 2),
            params(1, vec![1, 2, 3], 1),
            params(1, vec![1, 2, 3], 4),
            params(1, vec![1, 1, 3], 2),
            params(0, vec![0, 1, 3], 2),
            params(1, (1..=256).collect(), 2),
        ] {
            assert!(matches!(
                EcdsaDkg::new(curve, bad),
                Err(ProtocolError::InvalidParameters(_))
            ));
        }
    }

    #[test]
    fn an_echo_decodes_only_with_its_keys_strictly_increasing() {
        use crate::canonical::tests::map_bytes;
        let echo = |entries: &[(ParticipantId, [u8; 32])]| {
            let mut dkg =
                EcdsaDkg::new(EcdsaCurve::Secp256k1, params(1, vec![1, 2, 3], 2)).unwrap();
            let message = EcdsaMessage::new(
                SessionId([1; 32]),
                ECHO_ROUND,
                EcdsaBody::Broadcast(map_bytes(entries)),
            );
            dkg.handle(2, message, &mut rand_core::OsRng)
        };
        // Before `start`, a well-formed echo is recorded and nothing is sent.
        assert!(echo(&[(1, [1; 32]), (2, [2; 32]), (3, [3; 32])])
            .unwrap()
            .is_empty());
        for bad in [
            [(2, [2; 32]), (1, [1; 32]), (3, [3; 32])],
            [(1, [1; 32]), (3, [3; 32]), (2, [2; 32])],
            [(1, [1; 32]), (1, [1; 32]), (3, [3; 32])],
        ] {
            let error = echo(&bad).unwrap_err();
            assert!(
                matches!(&error, ProtocolError::Misbehaviour { reason, .. } if reason == "malformed echo")
            );
            assert_eq!(error.culprits(), &[2]);
        }
    }

    #[test]
    fn session_id_binds_everything() {
        let s = SessionId([1; 32]);
        let base = dkls_session_id(DKG_SESSION_DOMAIN, EcdsaCurve::Secp256k1, &s, 2, &[1, 2, 3]);
        assert_ne!(
            base,
            dkls_session_id(DKG_SESSION_DOMAIN, EcdsaCurve::P256, &s, 2, &[1, 2, 3])
        );
        assert_ne!(
            base,
            dkls_session_id(
                DKG_SESSION_DOMAIN,
                EcdsaCurve::Secp256k1,
                &SessionId([2; 32]),
                2,
                &[1, 2, 3]
            )
        );
        assert_ne!(
            base,
            dkls_session_id(DKG_SESSION_DOMAIN, EcdsaCurve::Secp256k1, &s, 3, &[1, 2, 3])
        );
        assert_ne!(
            base,
            dkls_session_id(DKG_SESSION_DOMAIN, EcdsaCurve::Secp256k1, &s, 2, &[1, 2, 4])
        );
    }
}
