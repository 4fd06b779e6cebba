//! Split-AES: threshold symmetric encryption with a key that no node holds whole — DiSE (Agrawal, Mohassel,
//! Mukherjee, Rindal, CCS 2018) with the DDH-based distributed PRF on ristretto255.
//!
//! # Construction
//!
//! * **Key**: a scalar `k`, Shamir-shared `t`-of-`n` as `k_i = f(i)` by a DKG without dealer ([`dkg`]).
//!   Public: `K = g^k` and every public share `g^{k_i}` ([`share`]).
//! * **DPRF**: `F_k(x) = H2G(x)^k`. Node `i` returns `H^{k_i}` for `H = H2G(key_id ‖ α)` with a
//!   Chaum–Pedersen proof that it used the `k_i` behind `g^{k_i}` ([`partial`], [`dleq`]). The coordinator
//!   checks every proof, interpolates `H^k = Π (H^{k_i})^{λ_i}` over `t` of them, and derives the message key
//!   `HKDF-SHA256(H^k; salt, key_id ‖ α)` ([`mod@combine`]).
//! * **Encrypt** (key, plaintext, aad): random ρ (32 bytes), `α = SHA-256(tag ‖ key_id ‖ aad ‖ plaintext ‖ ρ)`
//!   ([`message_input`]), message key from the DPRF on `(key_id, α)`, AES-256-GCM of `plaintext ‖ ρ` with a
//!   random nonce ([`blob`]). **Decrypt**: derive the key from the blob's `(key_id, α)`, open, recompute α from
//!   the opened plaintext, ρ and the aad, and refuse unless it equals the blob's.
//!
//! # Why it is secure (in a few lines)
//!
//! Under DDH in the random-oracle model, `H2G(x)^k` is a PRF, and given fewer than `t` shares plus any number
//! of partial evaluations on other inputs it stays pseudorandom (DiSE, Thm. 8.1): so a message key is a fresh
//! random key for anyone who has not obtained `t` evaluations on that very `(key_id, α)`. α is a hiding,
//! binding commitment to `(key_id, aad, plaintext)`, and GCM authenticates the ciphertext under the key
//! derived from α, so a blob cannot be modified or re-targeted without failing either GCM or the α check
//! (DiSE's authenticated-encryption argument). The DLEQ proofs make a wrong partial detectable and
//! attributable (Fiat–Shamir bound to key id, α and node id, so no replay), and the proofs of knowledge and
//! echo round of the DKG stop rogue-key and equivocation attacks on key generation. As with every DKG of this
//! family (PedPoP), a rushing adversary may bias the distribution of `K`; that does not help against the PRF.
//!
//! # Encryption receipts
//!
//! A node cannot tell an encryption from a decryption (both evaluate the DPRF at an opaque α). So that a key
//! that has left the Active state decrypts only what was really encrypted, every encryption evaluation also
//! yields a publicly checkable receipt partial on a second, domain-separated input, the blob carries the receipt,
//! and a node decrypting with a non-active key checks it first ([`receipt`], with the argument).
//!
//! # Blob (version 2)
//!
//! `version (2) ‖ key_id (16) ‖ α (32) ‖ u16 len ‖ receipt ‖ nonce (12) ‖ AES-256-GCM(plaintext ‖ ρ) ‖ tag (16)`,
//! AEAD associated data everything before the nonce `‖ u64 len(aad) ‖ aad`. Version 1 (no receipt) is still
//! read. See [`blob`].
//!
//! # Who holds what
//!
//! * A **node** holds its [`SplitAesKeyShare`] (secret, never sent) and runs [`evaluate`] on request.
//! * The **coordinator** holds only [`SplitAesPublicKeys`]; it runs [`message_input`], [`combine()`] (or
//!   [`verify_partial`] per answer), [`seal`] and [`open`]; it sees the per-message key, never `k` or a `k_i`.
//! * **Nobody computes `k`**: no code of this crate outside tests reconstructs the DPRF key; only the test
//!   suite interpolates `k` from shares, to check the DKG. Keep it so: `combine` interpolates in the exponent
//!   only.

pub mod blob;
pub mod combine;
pub mod dkg;
pub mod dleq;
pub mod partial;
mod polynomial;
pub mod receipt;
pub mod share;

pub use blob::{decrypt_in_process, encrypt_in_process, open, seal, CiphertextBlob};
pub use combine::{combine, message_input, verify_partial, DerivedKey};
pub use dkg::{DkgRound1Payload, SplitAesDkg, SplitAesDkgBody, SplitAesDkgMessage};
pub use dleq::{DleqProof, DleqStatement};
pub use partial::{evaluate, input_point, PartialEvaluation};
pub use receipt::{evaluate_receipt, receipt_point, EncryptionReceipt, ReceiptPartial};
pub use share::{SplitAesKeyShare, SplitAesPublicKeys};
