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
//! 3. **Echo.** Holding every verdict, it broadcasts the echo of the complaint lists.
//! 4. **Finish.** Holding every echo, it checks both echoes: a dealer that sent different commitments to
//!    different participants, or a participant that told them different complaints, aborts the run, named.
//!    (Both are checked only now, so that every participant still sends all its messages and reaches the
//!    check.) Now all honest participants hold the same payloads and complaint lists and apply the same
//!    **agreement rule**:
//!    * a participant given other parameters, a non-dealer that dealt, or a complaint that makes no sense
//!      aborts the run, naming the participant ([`crate::ProtocolError::Misbehaviour`]);
//!    * a dealer is **excluded** if its commitments are invalid (missing, not `t′` valid points, or
//!      `C_i0 ≠ Y_i`, its public share in the old key — so it dealt exactly its share) or if any new holder
//!      complained about it; every other dealer is in the agreed dealer set `D`;
//!    * if fewer than `t` dealers remain, the run fails naming the excluded dealers; otherwise it completes
//!      and every output lists the exclusions ([`ReshareOutput::excluded`], [`ReshareOutput::blame`]).
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
//! # Why it is secure
//!
//! * **Secrecy.** A dealer's polynomial is uniformly random but for its constant term, so fewer than `t′`
//!   sub-shares of it say nothing about `s_i`; the commitments reveal only `g^{s_i} = Y_i`, already public.
//!   The new shares are a fresh `t′`-of-`n′` sharing of `s`, independent of the old one given `s`: old
//!   shares (of a holder that left, or stolen before) do not combine with new ones — proactive security.
//! * **Correctness.** Every sub-share an honest holder accepts satisfies its dealer's commitments, all
//!   honest participants agree on the commitments (first echo) and on `D` (second echo and a deterministic
//!   rule), and `C_i0 = Y_i` pins each dealer to its real share: no coalition of dealers can change the key
//!   or hand out inconsistent shares without being excluded. A dealer cannot lower the new polynomial's
//!   degree by choosing its commitments after seeing others', because it must then produce sub-shares that
//!   satisfy commitments whose discrete logs it does not know.
//! * **Blame.** Invalid commitments are proof (everyone checks the same bytes). A complaint is the accuser's
//!   word (sub-shares are private): the accused dealer is dropped and the exclusion records the accusers
//!   ([`ExclusionReason::Accused`]); a false accuser can thereby only stop the run, which it can anyway by
//!   staying silent. An echo mismatch names the equivocator (see [`crate::echo`] for what that is worth).
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
pub use output::{ExcludedDealer, ExclusionReason, ReshareOutput};
pub use polynomial::EvaluationPoints;
pub use redistribution::{Reshare, ReshareParams};
pub use shared_key::{DealerSecret, SharedKey};
