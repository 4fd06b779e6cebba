//! Baselines measured in the same run, on this machine's cores:
//!
//! * **single key**: one process holding the whole key — ed25519-dalek, the p256/k256 crates (`sign_prehash`),
//!   AES-256-GCM (`aes-gcm`) — on as many threads as the client concurrency, capped at the core count;
//! * **in-process protocol**: the cluster's own threshold protocol, 2-of-3, with every party in this process and
//!   no network — FROST (commit, signing package, sign, aggregate), DKLs23 (both signers' state machines through
//!   the in-memory simulator), split-AES (`encrypt_in_process`) — on every core. This is what the protocol alone
//!   reaches; the cluster adds the network, the coordinator, storage and the audit log.
//!
//! Everything protocol-related comes from the `vhsm-protocols` crate's public API; the keys come from its DKGs run
//! through the in-memory simulator once, before the measurements.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use aes_gcm::{
    aead::{Aead, KeyInit},
    Aes256Gcm, Nonce,
};
use anyhow::{bail, Context};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use rand::{rngs::StdRng, RngCore, SeedableRng};
use vhsm_protocols::{
    ecdsa::{
        DkgParams as EcdsaDkgParams, Dkls23, EcdsaCurve, EcdsaKeyShare, SignParams, ThresholdEcdsa,
    },
    frost::{self, DkgParams, FrostDkg, FrostKeyShare, FrostPublicKeys},
    simulator::Simulation,
    split_aes::{
        decrypt_in_process, encrypt_in_process, SplitAesDkg, SplitAesKeyShare, SplitAesPublicKeys,
    },
    ParticipantId, SessionId,
};

use super::{
    cpu::CpuProbe,
    workload::{run_threads, verify_signature, CellPlan, KeyKind, Measurement, Operation},
};

/// The participants of the in-process keys, and the signers.
const PARTIES: [ParticipantId; 3] = [1, 2, 3];
const SIGNERS: [ParticipantId; 2] = [1, 3];
const THRESHOLD: u16 = 2;
/// The key id bound into in-process split-AES blobs.
const SPLIT_KEY_ID: [u8; 16] = [0x42; 16];

struct FrostKeys {
    signers: Vec<FrostKeyShare>,
    public: FrostPublicKeys,
}

struct EcdsaKeys {
    shares: BTreeMap<ParticipantId, Arc<EcdsaKeyShare>>,
    public: Vec<u8>,
}

struct SplitKeys {
    holders: Vec<SplitAesKeyShare>,
    public: SplitAesPublicKeys,
}

/// 2-of-3 keys of every kind asked for, made by the protocols' own DKGs in this process.
#[derive(Default)]
pub struct ProtocolKeys {
    frost: Option<FrostKeys>,
    p256: Option<EcdsaKeys>,
    secp256k1: Option<EcdsaKeys>,
    split: Option<SplitKeys>,
    /// How long each DKG took (in parallel with each other and with the cluster's key generation).
    pub keygen_seconds: BTreeMap<KeyKind, f64>,
}

/// Runs one in-process DKG of every party (no network) and returns the outputs, or what failed.
fn run_dkg<P: vhsm_protocols::Protocol>(
    parties: Vec<P>,
    what: &str,
    rng: &mut StdRng,
) -> anyhow::Result<BTreeMap<vhsm_protocols::ParticipantId, P::Output>> {
    let outcome = Simulation::new(parties).run(rng);
    if !outcome.errors.is_empty() || !outcome.stalled.is_empty() {
        bail!("the in-process {what} DKG failed: {:?}", outcome.errors);
    }
    Ok(outcome.outputs)
}

fn frost_keys(rng: &mut StdRng) -> anyhow::Result<FrostKeys> {
    let session = SessionId::random(rng);
    let parties = PARTIES
        .iter()
        .map(|me| {
            FrostDkg::new(DkgParams {
                session,
                me: *me,
                participants: PARTIES.to_vec(),
                threshold: THRESHOLD,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut outputs = run_dkg(parties, "FROST", rng)?;
    let signers: Vec<FrostKeyShare> = SIGNERS.iter().filter_map(|id| outputs.remove(id)).collect();
    let public = signers
        .first()
        .context("the FROST DKG gave no share")?
        .public_keys();
    Ok(FrostKeys { signers, public })
}

fn ecdsa_keys(curve: EcdsaCurve, rng: &mut StdRng) -> anyhow::Result<EcdsaKeys> {
    let session = SessionId::random(rng);
    let parties = PARTIES
        .iter()
        .map(|me| {
            Dkls23::dkg(
                curve,
                EcdsaDkgParams {
                    session,
                    me: *me,
                    participants: PARTIES.to_vec(),
                    threshold: THRESHOLD,
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shares: BTreeMap<_, _> = run_dkg(parties, &format!("DKLs23 {curve}"), rng)?
        .into_iter()
        .map(|(id, share)| (id, Arc::new(share)))
        .collect();
    let public = shares
        .values()
        .next()
        .context("the DKLs23 DKG gave no share")?
        .public_key_sec1();
    Ok(EcdsaKeys { shares, public })
}

fn split_keys(rng: &mut StdRng) -> anyhow::Result<SplitKeys> {
    let session = SessionId::random(rng);
    let parties = PARTIES
        .iter()
        .map(|me| {
            SplitAesDkg::new(DkgParams {
                session,
                me: *me,
                participants: PARTIES.to_vec(),
                threshold: THRESHOLD,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut outputs = run_dkg(parties, "split-AES", rng)?;
    let holders: Vec<SplitAesKeyShare> =
        SIGNERS.iter().filter_map(|id| outputs.remove(id)).collect();
    let public = holders
        .first()
        .context("the split-AES DKG gave no share")?
        .public_keys();
    Ok(SplitKeys { holders, public })
}

/// Starts the in-process DKGs of `kinds` on threads of their own (one per key); join the handle for the keys.
pub fn generate_protocol_keys(
    kinds: Vec<KeyKind>,
) -> std::thread::JoinHandle<anyhow::Result<ProtocolKeys>> {
    std::thread::spawn(move || {
        let results: Vec<(KeyKind, f64, anyhow::Result<ProtocolKeys>)> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = kinds
                    .iter()
                    .map(|kind| {
                        let kind = *kind;
                        scope.spawn(move || {
                            let started = Instant::now();
                            let mut rng = StdRng::from_entropy();
                            let mut keys = ProtocolKeys::default();
                            let made = match kind {
                                KeyKind::Ed25519 => {
                                    frost_keys(&mut rng).map(|k| keys.frost = Some(k))
                                }
                                KeyKind::P256 => ecdsa_keys(EcdsaCurve::P256, &mut rng)
                                    .map(|k| keys.p256 = Some(k)),
                                KeyKind::Secp256k1 => ecdsa_keys(EcdsaCurve::Secp256k1, &mut rng)
                                    .map(|k| keys.secp256k1 = Some(k)),
                                KeyKind::Aes => split_keys(&mut rng).map(|k| keys.split = Some(k)),
                            };
                            (kind, started.elapsed().as_secs_f64(), made.map(|()| keys))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            (
                                KeyKind::Aes,
                                0.0,
                                Err(anyhow::anyhow!("a key generation thread panicked")),
                            )
                        })
                    })
                    .collect()
            });
        let mut all = ProtocolKeys::default();
        for (kind, seconds, keys) in results {
            let keys = keys?;
            all.frost = all.frost.or(keys.frost);
            all.p256 = all.p256.or(keys.p256);
            all.secp256k1 = all.secp256k1.or(keys.secp256k1);
            all.split = all.split.or(keys.split);
            all.keygen_seconds.insert(kind, seconds);
        }
        Ok(all)
    })
}

/// One FROST 2-of-3 signature, every party in this process: both signers commit, the signing package, both
/// signature shares, the aggregation (which verifies the result).
fn frost_sign(keys: &FrostKeys, message: &[u8], rng: &mut StdRng) -> anyhow::Result<Vec<u8>> {
    let mut nonces = Vec::with_capacity(keys.signers.len());
    let mut commitments = BTreeMap::new();
    for share in &keys.signers {
        let (n, c) = frost::commit(share, rng);
        nonces.push(n);
        commitments.insert(share.participant(), c);
    }
    let package = frost::signing_package(&commitments, message)?;
    let mut shares = BTreeMap::new();
    for (share, n) in keys.signers.iter().zip(nonces) {
        shares.insert(share.participant(), frost::sign(share, n, &package)?);
    }
    Ok(frost::aggregate(&keys.public, &package, &shares)?.to_vec())
}

/// One DKLs23 2-of-3 signature: both signers' state machines through the in-memory simulator.
fn dkls_sign(keys: &EcdsaKeys, digest: [u8; 32], rng: &mut StdRng) -> anyhow::Result<Vec<u8>> {
    let session = SessionId::random(rng);
    let parties = SIGNERS
        .iter()
        .map(|me| {
            let share = keys.shares.get(me).context("no share of a signer")?;
            Ok(Dkls23::signing(
                Arc::clone(share),
                SignParams {
                    session,
                    me: *me,
                    signers: SIGNERS.to_vec(),
                    digest,
                },
            )?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let outcome = Simulation::new(parties).run(rng);
    if let Some((id, e)) = outcome.errors.into_iter().next() {
        bail!("signer {id} failed: {e}");
    }
    let signature = outcome
        .outputs
        .into_values()
        .next()
        .context("no signature")?;
    Ok(signature.to_bytes().to_vec())
}

impl ProtocolKeys {
    /// Runs the in-process protocol of `op` for one cell (`plan.workers` threads).
    pub fn run_cell(&self, op: Operation, plan: &CellPlan, cpu: &CpuProbe) -> Measurement {
        let input = op.input();
        let digest: [u8; 32] = input.as_slice().try_into().unwrap_or([0; 32]);
        let missing = || Measurement::failed(format!("no in-process key for {}", op.name()));
        match op {
            Operation::Ed25519 => {
                let Some(keys) = &self.frost else {
                    return missing();
                };
                let public = keys.public.group_public_key();
                let (mut m, samples) = run_threads(plan, cpu, |_| {
                    let mut rng = StdRng::from_entropy();
                    let input = &input;
                    anyhow::Ok(move || {
                        frost_sign(keys, input, &mut rng).map_err(|e| format!("{e:#}"))
                    })
                });
                m.check_samples(&samples, |s| verify_signature(op, &public, s));
                m
            }
            Operation::EcdsaP256 | Operation::EcdsaSecp256k1 => {
                let keys = if op == Operation::EcdsaP256 {
                    &self.p256
                } else {
                    &self.secp256k1
                };
                let Some(keys) = keys else { return missing() };
                let (mut m, samples) = run_threads(plan, cpu, |_| {
                    let mut rng = StdRng::from_entropy();
                    anyhow::Ok(move || {
                        dkls_sign(keys, digest, &mut rng).map_err(|e| format!("{e:#}"))
                    })
                });
                m.check_samples(&samples, |s| verify_signature(op, &keys.public, s));
                m
            }
            Operation::Aes32 | Operation::Aes1k => {
                let Some(keys) = &self.split else {
                    return missing();
                };
                let holders: Vec<&SplitAesKeyShare> = keys.holders.iter().collect();
                let (mut m, samples) = run_threads(plan, cpu, |_| {
                    let mut rng = StdRng::from_entropy();
                    let (input, holders) = (&input, &holders);
                    anyhow::Ok(move || {
                        encrypt_in_process(
                            holders,
                            &keys.public,
                            SPLIT_KEY_ID,
                            b"",
                            input,
                            &mut rng,
                        )
                        .map_err(|e| e.to_string())
                    })
                });
                let mut rng = StdRng::from_entropy();
                m.check_samples(&samples, |blob| {
                    let plain = decrypt_in_process(&holders, &keys.public, b"", blob, &mut rng)?;
                    if plain.as_slice() != input.as_slice() {
                        bail!("decrypts to something else");
                    }
                    Ok(())
                });
                m
            }
        }
    }
}

/// A fresh 32-byte secret.
fn random_secret() -> zeroize::Zeroizing<[u8; 32]> {
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(secret.as_mut_slice());
    secret
}

/// Runs one cell of `op` with one whole key in this process (`plan.workers` threads).
pub fn run_single_key_cell(op: Operation, plan: &CellPlan, cpu: &CpuProbe) -> Measurement {
    let input = op.input();
    match op {
        Operation::Ed25519 => {
            use ed25519_dalek::Signer;
            let key = ed25519_dalek::SigningKey::from_bytes(&random_secret());
            let public = key.verifying_key().to_bytes();
            let (mut m, samples) = run_threads(plan, cpu, |_| {
                let (key, input) = (&key, &input);
                anyhow::Ok(move || Ok::<_, String>(key.sign(input).to_bytes().to_vec()))
            });
            m.check_samples(&samples, |s| verify_signature(op, &public, s));
            m
        }
        Operation::EcdsaP256 => {
            let key = loop {
                if let Ok(k) = p256::ecdsa::SigningKey::from_slice(random_secret().as_slice()) {
                    break k;
                }
            };
            let (mut m, samples) = run_threads(plan, cpu, |_| {
                let (key, input) = (&key, &input);
                anyhow::Ok(move || {
                    let sig: p256::ecdsa::Signature =
                        key.sign_prehash(input).map_err(|e| e.to_string())?;
                    Ok(sig)
                })
            });
            m.check_samples(&samples, |s| {
                Ok(key.verifying_key().verify_prehash(&input, s)?)
            });
            m
        }
        Operation::EcdsaSecp256k1 => {
            let key = loop {
                if let Ok(k) = k256::ecdsa::SigningKey::from_slice(random_secret().as_slice()) {
                    break k;
                }
            };
            let (mut m, samples) = run_threads(plan, cpu, |_| {
                let (key, input) = (&key, &input);
                anyhow::Ok(move || {
                    let sig: k256::ecdsa::Signature =
                        key.sign_prehash(input).map_err(|e| e.to_string())?;
                    Ok(sig)
                })
            });
            m.check_samples(&samples, |s| {
                Ok(key.verifying_key().verify_prehash(&input, s)?)
            });
            m
        }
        Operation::Aes32 | Operation::Aes1k => {
            let cipher = Aes256Gcm::new(random_secret().as_slice().into());
            let (mut m, samples) = run_threads(plan, cpu, |_| {
                let mut rng = StdRng::from_entropy();
                let (cipher, input) = (&cipher, &input);
                anyhow::Ok(move || {
                    let mut nonce = [0u8; 12];
                    rng.fill_bytes(&mut nonce);
                    let sealed = cipher
                        .encrypt(&Nonce::from(nonce), input.as_slice())
                        .map_err(|e| e.to_string())?;
                    Ok((nonce, sealed))
                })
            });
            m.check_samples(&samples, |(nonce, sealed)| {
                let plain = cipher
                    .decrypt(&Nonce::from(*nonce), sealed.as_slice())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if plain != input {
                    bail!("decrypts to something else");
                }
                Ok(())
            });
            m
        }
    }
}
