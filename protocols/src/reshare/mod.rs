//! Verifiable resharing (Wong–Wang–Wing redistribution with Feldman commitments), generic over the group:
//! the same protocol refreshes the shares of a committee, moves a key to another committee (add or remove
//! holders, change the threshold), and repairs a holder that lost its share — and the key (its public key)
//! never changes.
//!
//! # Roles
//!
//! A run has **dealers** (holders of the key now, at least the old threshold `t` many) and a **new
//! committee** (the holders afterwards, threshold `t′`). The two may overlap or be equal:
//!
//! | operation | dealers | new committee |
//! |---|---|---|
//! | refresh | the committee (or any `t` of it) | the same committee, same `t` |
//! | add holder 4 to {1,2,3} | {1,2,3} (or any `t` of them) | {1,2,3,4} |
//! | remove holder 2 | any `t` of the holders | the holders without 2 |
//! | change the threshold | any `t` of the holders | the same ids, new `t′` |
//! | repair holder 2, who lost its share | `t` holders other than 2 | the same ids (2 is a receiver, not a dealer) |
//!
//! Every participant (dealer or new holder) is given the same [`ReshareParams`] and the same public part of
//! the key as it is now ([`SharedKey`]); each dealer also its share ([`DealerSecret`]).
//!
//! # Rounds ([`Reshare`], a [`crate::Protocol`])
//!
//! 1. **Deal.** Every participant broadcasts a [`DealPayload`]: the digest of the run's parameters as it was
//!    given them (group, evaluation points, old key and public shares, session, dealers, new committee, `t′`),
//!    and, from a dealer `i` with share `s_i`, the Feldman commitments `C_ik = g^{a_ik}` of a fresh random
//!    polynomial `g_i` of degree `t′−1` with `g_i(0) = a_i0 = s_i`. The dealer sends each new holder `j`,
//!    privately, its **sub-share** `g_i(x′_j)`.
//! 2. **Verdict.** Holding every round-1 payload and every sub-share meant for it, a participant broadcasts
//!    the echo of the round-1 payloads ([`crate::echo`]) and its **complaints**: the dealers whose sub-share
//!    does not satisfy `g^{g_i(x′_j)} = Π_k C_ik^{x′_j^k}`.
//! 3. **Answer** (the dispute round). Holding every verdict, it broadcasts the echo of the complaint lists
//!    and, if it is a dealer that someone complained about, its **answers**: for every accuser `j`, the
//!    sub-share `g_i(x′_j)` it dealt `j`, revealed to every participant ([`ReshareBody::Answer`]).
//! 4. **Echo.** Holding every answer, it broadcasts the echo of the answers ([`ReshareBody::Echo`]).
//! 5. **Finish.** Holding every echo, it checks the three echoes: a dealer that sent different commitments to
//!    different participants, a participant that told them different complaints, or a dealer that gave them
//!    different answers aborts the run, named. (All are checked only now, so that every participant still
//!    sends all its messages and reaches the check.) Now all honest participants hold the same payloads,
//!    complaint lists and answers and apply the same **agreement rule**:
//!    * a participant given other parameters, a non-dealer that dealt, a complaint that makes no sense
//!      (from outside the new committee, about a non-dealer or about oneself), or an answer that makes no
//!      sense (from a non-dealer, or to a complaint nobody made) aborts the run, naming the participant
//!      ([`crate::ProtocolError::Misbehaviour`]);
//!    * a dealer is **excluded** if its commitments are invalid (missing, not `t′` valid points, or
//!      `C_i0 ≠ Y_i`, its public share in the old key — so it dealt exactly its share)
//!      ([`ExclusionReason::InvalidCommitments`]), or if it **lost a dispute**: a new holder `j` complained
//!      and the dealer gave no answer for `j`, or revealed a value `v` with `g^v ≠ Π_k C_ik^{x′_j^k}`
//!      ([`ExclusionReason::ComplaintUpheld`]);
//!    * a complaint whose revealed sub-share does satisfy the commitments is **refuted**: the dealer stays,
//!      the accuser uses the revealed sub-share in place of the one it received, and the accuser is named
//!      ([`RefutedComplaint`]);
//!    * every dealer not excluded is in the agreed dealer set `D`. If fewer than `t` remain, the run fails
//!      naming everyone named; otherwise it completes and every output lists the exclusions and the refuted
//!      complaints ([`ReshareOutput::excluded`], [`ReshareOutput::refuted_complaints`],
//!      [`ReshareOutput::blame`]).
//!
//!    With `λ_i` the Lagrange coefficients at 0 of `D` at the **old** x-coordinates, the new polynomial is
//!    `f′ = Σ_{i∈D} λ_i·g_i`: its constant term is `Σ λ_i s_i = s`, the key. Each new holder's share is
//!    `s′_j = Σ λ_i g_i(x′_j)`; the new public shares are `Y′_m = Π_k A_k^{x′_m^k}` with `A_k = Π_i C_ik^{λ_i}`;
//!    the group key `A_0 = Π Y_i^{λ_i}` is checked to be the old one, and the new public key material is
//!    checked to lie on one polynomial of degree exactly `t′−1`.
//!
//! Dealing the share `s_i` and weighting by `λ_i` at the receivers is the same as dealing the Lagrange-
//! weighted share `λ_i s_i` (whose commitments are `C_ik^{λ_i}`, with constant term `Y_i^{λ_i}`), but lets
//! the dealer set be decided *after* the complaints, so that a bad dealer can be dropped without a new run.
//!
//! # The dispute round
//!
//! A complaint alone is a new holder's word against a dealer's: sub-shares travel privately, so nobody else
//! can tell which of the two lies. Before the dispute round a complaint excluded the dealer, which let **one**
//! malicious new holder drop any honest dealer — fail every refresh or committee change that uses exactly
//! `t` dealers, or choose which dealers are used — with the blame on the dealer. The project's rule is that
//! blame without evidence never excludes the accused alone, so complaints are now settled with evidence, as
//! in the complaint/answer step of Feldman-VSS-based key generation: Gennaro, Jarecki, Krawczyk and Rabin,
//! *Secure Distributed Key Generation for Discrete-Log Based Cryptosystems*, J. Cryptology 20(1), 2007, §4
//! (protocol New-DKG, step 1: (b) a party whose share fails the check broadcasts a complaint against the
//! dealer, (c) the dealer answers by broadcasting the disputed share, (d) a dealer that does not answer, or
//! whose answer fails the check, is disqualified). Broadcast here is the echo broadcast used for the other
//! rounds, so all honest participants judge the same answer against the same commitments.
//!
//! Two deliberate differences from New-DKG:
//!
//! * New-DKG also disqualifies a dealer with more than `t` complaints without looking at its answers. Under
//!   the threshold assumption such a dealer is corrupt, but the rule still acts on words alone; here every
//!   complaint is judged by its answer, so an honest dealer stays however many complain.
//! * New-DKG leaves a refuted complaint unremarked; here the accuser is **named** (the caller logs it, and
//!   may act on repeat offenders). See [`RefutedComplaint`] for the limit of that blame: a dealer can send a
//!   wrong sub-share privately and reveal the right one, which looks the same. Signed (or publicly encrypted)
//!   sub-shares would make a complaint itself verifiable; the transport authenticates senders but gives no
//!   transferable proof of what was sent.
//!
//! **Revealing the disputed sub-share does not weaken the new sharing** (the argument of GJKR for New-DKG).
//! A sub-share `g_i(x′_j)` is revealed only when `j` complained about `i`, and then `j` or `i` is corrupt:
//! an honest `j` complains only about a sub-share that fails the check, and an honest `i` deals only ones
//! that pass it, over an authenticated channel that nobody else can alter. If `j` is corrupt, the adversary
//! already held `g_i(x′_j)` (it was `j`'s); if `i` is corrupt, it already held all of `g_i`. So the adversary
//! learns nothing it did not know: it still holds fewer than `t′` points of every honest dealer's polynomial
//! and the secrecy argument below is unchanged. The value goes only to the run's participants (the channel
//! is confidential), is kept in the run's secrets and wiped with them; only the accuser's new share uses it.
//! Since the accuser is then (in the honest-dealer case) corrupt, its new share is the adversary's anyway.
//!
//! # Why it is secure
//!
//! * **Secrecy.** A dealer's polynomial is uniformly random but for its constant term, so fewer than `t′`
//!   sub-shares of it say nothing about `s_i`; the commitments reveal only `g^{s_i} = Y_i`, already public,
//!   and the dispute round reveals only sub-shares the adversary held already (above). The new shares are a
//!   fresh `t′`-of-`n′` sharing of `s`, independent of the old one given `s`: `D` holds at least `t` dealers,
//!   so at least one honest one, whose random coefficients (weighted by `λ_i ≠ 0`) randomize `f′`; old shares
//!   (of a holder that left, or stolen before) do not combine with new ones — proactive security.
//! * **Correctness.** Every sub-share an honest holder uses satisfies its dealer's commitments (it passed the
//!   holder's check, or it is a revealed sub-share that passed everyone's), all honest participants agree on
//!   the commitments (first echo), the complaints (second echo) and the answers (third echo), hence on `D`
//!   (a deterministic rule), and `C_i0 = Y_i` pins each dealer to its real share: no coalition of dealers can
//!   change the key or hand out inconsistent shares without being excluded. A dealer cannot lower the new
//!   polynomial's degree by choosing its commitments after seeing others', because it must then produce
//!   sub-shares that satisfy commitments whose discrete logs it does not know.
//! * **Availability.** An honest dealer is never excluded: its commitments are valid and it answers every
//!   complaint with a sub-share that satisfies them. So a corrupt new holder can no longer remove or choose
//!   dealers; like any participant it can still stop the run (by equivocating or staying silent), named or
//!   timed out, but never with the blame on an honest dealer.
//! * **Blame.** Every exclusion rests on bytes that every participant checked identically: invalid
//!   commitments, or a dispute the dealer lost. A refuted complaint names the accuser (with the caveat of
//!   [`RefutedComplaint`]). An echo mismatch names the equivocator (see [`crate::echo`] for what that is
//!   worth).
//!
//! # Per key type
//!
//! * FROST (Ed25519, [`EdwardsPoint`](curve25519_dalek::EdwardsPoint)): [`Reshare::frost`], then
//!   [`FrostKeyShare::from_reshare`](crate::frost::FrostKeyShare::from_reshare) /
//!   [`FrostPublicKeys::from_reshare`](crate::frost::FrostPublicKeys::from_reshare) ([`mod@frost`]).
//! * split-AES (ristretto255): [`Reshare::split_aes`], then
//!   [`SplitAesKeyShare::from_reshare`](crate::split_aes::SplitAesKeyShare::from_reshare) /
//!   [`SplitAesPublicKeys::from_reshare`](crate::split_aes::SplitAesPublicKeys::from_reshare)
//!   ([`mod@split_aes`]).
//! * ECDSA (DKLs23 on secp256k1 / P-256): [`EcdsaReshare`], then the new committee runs
//!   [`EcdsaDkg::after_reshare`](crate::ecdsa::EcdsaDkg::after_reshare) to rebuild DKLs23's pairwise state
//!   ([`mod@ecdsa`]).
//!
//! Crash safety (keeping the old share until the new one is confirmed everywhere), epochs and the transport
//! are the node's and the coordinator's business: this crate only computes. [`ReshareOutput`] is
//! self-describing (new threshold, committee, public shares, dealers used, exclusions) and has a versioned
//! encoding.

pub mod ecdsa;
pub mod frost;
pub mod group;
pub mod message;
pub mod output;
pub(crate) mod polynomial;
pub mod redistribution;
pub mod shared_key;
pub mod split_aes;

pub use ecdsa::{EcdsaReshare, EcdsaReshareOutput};
pub use group::ReshareGroup;
pub use message::{DealPayload, ReshareBody, ReshareMessage, RESHARE_MESSAGE_VERSION};
pub use output::{ExcludedDealer, ExclusionReason, RefutedComplaint, ReshareOutput};
pub use polynomial::EvaluationPoints;
pub use redistribution::{Reshare, ReshareParams};
pub use shared_key::{DealerSecret, SharedKey};
