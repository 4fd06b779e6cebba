//! # vhsm-protocols: the vHSM's threshold cryptography, sans-IO
//!
//! This crate holds the cryptographic protocols of the vHSM as **state machines without I/O**, in the manner
//! of `quinn-proto` or `raft-rs`: it opens no sockets, reads no clock, touches no disk and spawns no tasks.
//! A protocol party is driven by its caller through the [`Protocol`] trait:
//!
//! * [`Protocol::start`] returns the party's first messages;
//! * [`Protocol::handle`] feeds one message, together with its *authenticated* sender (as established by the
//!   transport, never as claimed by the message), and returns the messages to send in response;
//! * [`Protocol::is_done`] / [`Protocol::take_output`] hand over the result.
//!
//! Every outgoing message is addressed with a [`Recipient`]; how it travels (QUIC streams between nodes, or
//! the in-memory [`simulator`] in tests) is the caller's business. Randomness is injected (`R: RngCore +
//! CryptoRng`) so that runs are reproducible under a seeded RNG in tests.
//!
//! Every message carries a version byte and the [`SessionId`] it belongs to; both are checked. A party that
//! sends something invalid is **named**: [`ProtocolError::Misbehaviour`] carries the culprits. Messages decode
//! only from their canonical encoding: a map in a message must list its keys in strictly increasing order (a
//! repeated or out-of-order key is a decode error), so that one message has exactly one encoding.
//!
//! Every multi-round state machine runs on one crate-internal runner: after any error (other than a message
//! of another session or from a stranger, which is refused without touching the run) the run is aborted for
//! good, every later call is refused, and the run's secrets are wiped at once.
//!
//! Secrets are held in newtypes ([`SecretBytes`], [`frost::FrostKeyShare`], [`frost::FrostNonces`],
//! [`ecdsa::EcdsaKeyShare`]) that zeroize
//! on drop, print `<redacted>` in `Debug` and compare in constant time.
//!
//! ## Modules
//!
//! * [`party`] — participant and session identifiers, the [`Protocol`] trait.
//! * [`echo`] — echo broadcast: checks that every participant received the same broadcast payloads.
//! * [`simulator`] — an in-memory N-party driver with drop/corrupt hooks and reordering.
//! * [`frost`] — FROST(Ed25519, SHA-512) (RFC 9591) on the audited `frost-ed25519` crate: distributed key
//!   generation ([`frost::dkg`]), the two signing rounds ([`frost::round1`], [`frost::round2`]) and
//!   aggregation ([`mod@frost::aggregate`]).
//! * [`ecdsa`] — threshold ECDSA (secp256k1, P-256), DKLs23 on the `dkls23` crate behind the
//!   [`ecdsa::ThresholdEcdsa`] engine trait: key generation ([`ecdsa::dkg`]), signing ([`ecdsa::sign`]),
//!   key shares ([`ecdsa::share`]), digests ([`ecdsa::digest`]) and independent verification
//!   ([`ecdsa::verify`]).
//! * [`split_aes`] — threshold symmetric encryption (DiSE: a DDH-based distributed PRF on ristretto255 derives a
//!   fresh AES-256-GCM key per message): key generation, partial evaluation with DLEQ proofs, combination.
//! * [`reshare`] — verifiable resharing (Wong–Wang–Wing redistribution with Feldman commitments), generic over
//!   the group and used by every key type: refresh, change of committee or threshold, repair of a lost share;
//!   the public key never changes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

pub(crate) mod canonical;
pub mod ecdsa;
pub mod echo;
pub mod error;
pub mod frost;
pub mod pairwise;
pub mod party;
pub mod reshare;
pub(crate) mod runner;
/// Secret bytes (defined in `vhsm-core`).
pub use vhsm_core::secret;
pub mod simulator;
pub mod split_aes;

pub use error::ProtocolError;
pub use party::{Outgoing, ParticipantId, Protocol, Recipient, SessionId};
pub use secret::SecretBytes;
