//! RFC 9591 Appendix E test vectors for FROST(Ed25519, SHA-512), reproduced exactly: participant shares
//! from the group secret and polynomial coefficients, nonces and commitments from the given nonce randomness,
//! binding factor inputs and binding factors, signature shares and the final signature. Signing runs through
//! this crate's public API (`commit`, `signing_package`, `sign`, `aggregate`); `frost-core`'s `internals`
//! feature (dev-dependency only) exposes the intermediate values to compare.
//!
//! Source: `tests/data/rfc9591/SOURCE.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, VecDeque};

use frost_ed25519::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare};
use frost_ed25519::round1::SigningNonces;
use frost_ed25519::{
    Ed25519ScalarField, Field, Identifier, SigningKey, SigningPackage, VerifyingKey,
};
use rand_core::{CryptoRng, RngCore};
use serde_json::Value;
use vhsm_protocols::frost::{aggregate, commit, sign, signing_package, FrostKeyShare};

const VECTORS: &str = include_str!("data/rfc9591/frost-ed25519-sha512.json");

/// An "RNG" that returns the given bytes, in order: feeds the vectors' nonce randomness to `commit`.
struct Replay(VecDeque<u8>);

impl RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        unimplemented!("only fill_bytes is used")
    }
    fn next_u64(&mut self) -> u64 {
        unimplemented!("only fill_bytes is used")
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0.pop_front().expect("replayed randomness exhausted");
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Replay {}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn scalar(v: &Value) -> <Ed25519ScalarField as Field>::Scalar {
    let bytes: [u8; 32] = unhex(v).try_into().unwrap();
    <Ed25519ScalarField as Field>::deserialize(&bytes).unwrap()
}

fn id(v: &Value) -> Identifier {
    Identifier::try_from(u16::try_from(v.as_u64().unwrap()).unwrap()).unwrap()
}

#[test]
fn rfc9591_frost_ed25519_sha512_vectors() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(v["config"]["name"], "FROST(Ed25519, SHA-512)");
    let inputs = &v["inputs"];
    let min_signers: u16 = v["config"]["MIN_PARTICIPANTS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let message = unhex(&inputs["message"]);

    // Group key from the group secret.
    let group_secret = unhex(&inputs["group_secret_key"]);
    let signing_key = SigningKey::deserialize(&group_secret).unwrap();
    let verifying_key = VerifyingKey::from(&signing_key);
    assert_eq!(
        verifying_key.serialize().unwrap(),
        unhex(&inputs["group_public_key"])
    );

    // Participant shares: f(i) for f(x) = secret + a1·x.
    let mut coefficients = vec![scalar(&inputs["group_secret_key"])];
    coefficients.extend(
        inputs["share_polynomial_coefficients"]
            .as_array()
            .unwrap()
            .iter()
            .map(scalar),
    );
    assert_eq!(coefficients.len(), usize::from(min_signers));
    let mut signing_shares = BTreeMap::new();
    for p in inputs["participant_shares"].as_array().unwrap() {
        let share = SigningShare::from_coefficients(&coefficients, id(&p["identifier"]));
        assert_eq!(
            share.serialize(),
            unhex(&p["participant_share"]),
            "share of {}",
            p["identifier"]
        );
        signing_shares.insert(id(&p["identifier"]), share);
    }
    let verifying_shares: BTreeMap<Identifier, VerifyingShare> = signing_shares
        .iter()
        .map(|(i, s)| (*i, VerifyingShare::from(*s)))
        .collect();
    let public_package =
        PublicKeyPackage::new(verifying_shares.clone(), verifying_key, Some(min_signers));
    let key_shares: BTreeMap<u16, FrostKeyShare> = signing_shares
        .iter()
        .map(|(i, s)| {
            let kp = KeyPackage::new(*i, *s, verifying_shares[i], verifying_key, min_signers);
            let share = FrostKeyShare::from_frost(kp, public_package.clone()).unwrap();
            (share.participant(), share)
        })
        .collect();
    let public = key_shares[&1].public_keys();
    assert_eq!(
        public.group_public_key().to_vec(),
        unhex(&inputs["group_public_key"])
    );

    // Round one, through our `commit`, with the vectors' randomness.
    let signers: Vec<u16> = inputs["participant_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| u16::try_from(x.as_u64().unwrap()).unwrap())
        .collect();
    let round_one = v["round_one_outputs"]["outputs"].as_array().unwrap();
    assert_eq!(round_one.len(), signers.len());
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for out in round_one {
        let participant = u16::try_from(out["identifier"].as_u64().unwrap()).unwrap();
        let randomness = || {
            let mut r = unhex(&out["hiding_nonce_randomness"]);
            r.extend(unhex(&out["binding_nonce_randomness"]));
            Replay(r.into())
        };
        // The nonces themselves, compared through frost (ours are opaque by design).
        let frost_nonces =
            SigningNonces::new(&signing_shares[&id(&out["identifier"])], &mut randomness());
        assert_eq!(
            frost_nonces.hiding().serialize(),
            unhex(&out["hiding_nonce"])
        );
        assert_eq!(
            frost_nonces.binding().serialize(),
            unhex(&out["binding_nonce"])
        );
        let c = frost_nonces.commitments();
        assert_eq!(
            c.hiding().serialize().unwrap(),
            unhex(&out["hiding_nonce_commitment"])
        );
        assert_eq!(
            c.binding().serialize().unwrap(),
            unhex(&out["binding_nonce_commitment"])
        );

        let (n, fc) = commit(&key_shares[&participant], &mut randomness());
        assert_eq!(
            fc.0,
            c.serialize().unwrap(),
            "our commitments equal frost's for {participant}"
        );
        nonces.insert(participant, n);
        commitments.insert(participant, fc);
    }
    assert_eq!(commitments.keys().copied().collect::<Vec<_>>(), signers);

    // Binding factors.
    let package = signing_package(&commitments, &message).unwrap();
    let frost_package = SigningPackage::deserialize(&package.0).unwrap();
    let preimages: BTreeMap<Identifier, Vec<u8>> = frost_package
        .binding_factor_preimages(&verifying_key, &[])
        .unwrap()
        .into_iter()
        .collect();
    let binding_factors =
        frost_core::compute_binding_factor_list(&frost_package, &verifying_key, &[]).unwrap();
    for out in round_one {
        let i = id(&out["identifier"]);
        assert_eq!(preimages[&i], unhex(&out["binding_factor_input"]));
        assert_eq!(
            binding_factors.get(&i).unwrap().serialize(),
            unhex(&out["binding_factor"])
        );
    }

    // Round two, through our `sign`.
    let mut sig_shares = BTreeMap::new();
    for out in v["round_two_outputs"]["outputs"].as_array().unwrap() {
        let participant = u16::try_from(out["identifier"].as_u64().unwrap()).unwrap();
        let nonce = nonces.remove(&participant).unwrap();
        let share = sign(&key_shares[&participant], nonce, &package).unwrap();
        assert_eq!(
            share.0,
            unhex(&out["sig_share"]),
            "signature share of {participant}"
        );
        sig_shares.insert(participant, share);
    }

    // Aggregation, through our `aggregate`.
    let signature = aggregate(&public, &package, &sig_shares).unwrap();
    assert_eq!(signature.to_vec(), unhex(&v["final_output"]["sig"]));
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&public.group_public_key()).unwrap();
    vk.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .unwrap();
}
