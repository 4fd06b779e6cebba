//! Client commands: `vhsm status`, `vhsm key create|list|show`, `vhsm sign` (which hashes ECDSA input itself, so
//! that a file of any size signs).

use std::{path::Path, time::Instant};

use anyhow::Context;
use serde::Serialize;
use vhsm_client::Client;
use vhsm_core::{Algorithm, HashAlg, KeyId, KeyInfo};
use vhsm_wire::{client_api::ClusterStatus, NodeId};

use super::{
    export::{self, KeyFormat},
    layout::Layout,
};

/// Connects to the coordinator of the cluster at `layout`.
pub async fn connect(layout: &Layout) -> anyhow::Result<Client> {
    Ok(layout.client().connect().await?)
}

/// Connects and logs in as the token's user (PIN from `VHSM_PIN` or the cluster's `client/user.pin`).
pub async fn connect_user(layout: &Layout) -> anyhow::Result<Client> {
    Ok(layout.client().connect_user().await?)
}

/// A key as the CLI shows it.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub id: String,
    pub label: String,
    pub algorithm: String,
    pub state: String,
    pub threshold: u16,
    pub holders: Vec<u16>,
    pub created_unix: u64,
    pub public_key_hex: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_pem: Option<String>,
}

impl KeyView {
    pub fn new(key: &KeyInfo) -> anyhow::Result<Self> {
        Ok(KeyView {
            id: key.id.to_string(),
            label: key.label.clone(),
            algorithm: key.algorithm.to_string(),
            state: key.state.to_string(),
            threshold: key.threshold,
            holders: key.holders.clone(),
            created_unix: key.created_unix,
            public_key_hex: hex::encode(&key.public_key),
            public_key_pem: if key.algorithm.signs() {
                Some(export::spki_pem(key)?)
            } else {
                None
            },
        })
    }

    fn human(&self) -> String {
        format!(
            "key        {}\nlabel      {}\nalgorithm  {}\nstate      {}\nthreshold  {} of {} (holders {:?})\npublic key {}\n{}",
            self.id,
            self.label,
            self.algorithm,
            self.state,
            self.threshold,
            self.holders.len(),
            self.holders,
            self.public_key_hex,
            self.public_key_pem.as_deref().unwrap_or("(no PEM form: not a key pair)").trim_end()
        )
    }
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `vhsm status`: the coordinator's view of the nodes, and every holder whose share of a key is behind the key's
/// epoch (or missing): a node whose data was rolled back to before a refresh or reshare, or lost, which the node
/// cannot tell on its own. Like a node that is down or sealed, it is shown, not an error (exit status 0).
pub async fn status(layout: &Layout, json: bool) -> anyhow::Result<()> {
    let client = connect(layout).await?;
    let status: ClusterStatus = client.status().await?;
    let behind_of = |id: NodeId| {
        status
            .behind
            .iter()
            .filter(move |b| b.node == id)
            .collect::<Vec<_>>()
    };
    if json {
        #[derive(Serialize)]
        struct Behind {
            key: String,
            held: Option<u64>,
            epoch: u64,
        }
        #[derive(Serialize)]
        struct Node<'a> {
            id: u16,
            address: &'a str,
            reachable: bool,
            keys: Option<u32>,
            banned: Option<&'a [u16]>,
            sealed: Option<bool>,
            error: Option<&'a str>,
            /// Keys whose share on this node is behind the key's epoch (`held` null: no share at all).
            behind: Vec<Behind>,
        }
        let nodes: Vec<Node> = status
            .nodes
            .iter()
            .map(|n| Node {
                id: n.id,
                address: &n.address,
                reachable: n.reachable,
                keys: n.status.as_ref().map(|s| s.keys),
                banned: n.status.as_ref().map(|s| s.banned.as_slice()),
                sealed: n.status.as_ref().map(|s| s.sealed),
                error: n.error.as_deref(),
                behind: behind_of(n.id)
                    .into_iter()
                    .map(|b| Behind {
                        key: b.key_id.to_string(),
                        held: b.held,
                        epoch: b.epoch,
                    })
                    .collect(),
            })
            .collect();
        let behind: Vec<NodeId> = {
            let mut ids: Vec<NodeId> = status.behind.iter().map(|b| b.node).collect();
            ids.dedup();
            ids
        };
        return print_json(&serde_json::json!({
            "threshold": status.threshold,
            "nodes": nodes,
            "nodes_behind": behind,
        }));
    }
    let up = status.nodes.iter().filter(|n| n.reachable).count();
    println!(
        "{up} of {} nodes reachable; threshold {}",
        status.nodes.len(),
        status.threshold
    );
    for n in &status.nodes {
        let behind = behind_of(n.id);
        match (&n.status, &n.error) {
            (Some(s), _) if s.sealed => println!(
                "  node {:<3} {:<22} SEALED  serves nothing until `vhsm node unseal {}`",
                n.id, n.address, n.id
            ),
            (Some(s), _) if !behind.is_empty() => println!(
                "  node {:<3} {:<22} BEHIND {} keys (v{}): behind the cluster on {} key(s), its data was rolled \
                 back or lost; repair it: `vhsm node repair {}`",
                n.id,
                n.address,
                s.keys,
                s.version,
                behind.len(),
                n.id
            ),
            (Some(s), _) => println!(
                "  node {:<3} {:<22} up    {} keys (v{})",
                n.id, n.address, s.keys, s.version
            ),
            (None, Some(e)) => println!("  node {:<3} {:<22} DOWN  {e}", n.id, n.address),
            (None, None) => println!("  node {:<3} {:<22} ?", n.id, n.address),
        }
        for b in behind {
            match b.held {
                Some(held) => println!(
                    "      key {}: share of epoch {held}, the cluster is at epoch {}",
                    b.key_id, b.epoch
                ),
                None => println!(
                    "      key {}: no share, the cluster is at epoch {} (node {} is a holder)",
                    b.key_id, b.epoch, n.id
                ),
            }
        }
    }
    Ok(())
}

pub async fn create(
    layout: &Layout,
    algorithm: Algorithm,
    label: &str,
    pre_active: bool,
    json: bool,
) -> anyhow::Result<()> {
    let client = connect_user(layout).await?;
    let spinner = (!json)
        .then(|| super::progress::spinner(&format!("generating {algorithm} key '{label}' by DKG")));
    let started = Instant::now();
    let key = client
        .create_key_in_state(algorithm, label, Vec::new(), pre_active)
        .await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let key = key?;
    let view = KeyView::new(&key)?;
    if json {
        return print_json(&view);
    }
    println!(
        "created in {:.2} s\n{}",
        started.elapsed().as_secs_f64(),
        view.human()
    );
    Ok(())
}

pub async fn list(layout: &Layout, json: bool) -> anyhow::Result<()> {
    let client = connect(layout).await?;
    let keys = client.list_keys().await?;
    let views = keys
        .iter()
        .map(KeyView::new)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        return print_json(&views);
    }
    if views.is_empty() {
        println!("no keys (create one with `vhsm key create --algorithm ed25519 --label NAME`)");
    }
    for v in &views {
        println!(
            "{}  {:<8} {:<7} {}-of-{}  {}",
            v.id,
            v.algorithm,
            v.state,
            v.threshold,
            v.holders.len(),
            v.label
        );
    }
    Ok(())
}

pub async fn show(
    layout: &Layout,
    id: KeyId,
    format: Option<KeyFormat>,
    out: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let client = connect(layout).await?;
    let key = client.get_key(id).await?;
    let Some(format) = format else {
        let view = KeyView::new(&key)?;
        if json {
            return print_json(&view);
        }
        println!("{}", view.human());
        return Ok(());
    };
    let bytes = match format {
        KeyFormat::Pem => export::spki_pem(&key)?.into_bytes(),
        KeyFormat::Der => export::spki_der(&key)?,
        KeyFormat::Raw => key.public_key.clone(),
    };
    match out {
        Some(path) => {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if !json {
                println!(
                    "public key of {id} ({format:?}) written to {}",
                    path.display()
                );
            }
        }
        None if format == KeyFormat::Pem => print!("{}", String::from_utf8_lossy(&bytes)),
        // Binary formats go to a terminal as hex; --out writes the bytes.
        None => println!("{}", hex::encode(&bytes)),
    }
    Ok(())
}

/// Parses `--hash`.
pub fn parse_hash(s: &str) -> Result<HashAlg, String> {
    [
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Prehashed,
    ]
    .into_iter()
    .find(|h| h.name() == s)
    .ok_or_else(|| {
        format!(
            "unknown hash '{s}' (sha256, sha384, sha512, or none: the input is already a digest)"
        )
    })
}

/// `vhsm sign`: signs the file `input` with key `id` (see [`signing_input`] for what is sent).
pub async fn sign(
    layout: &Layout,
    id: KeyId,
    input: &Path,
    output: Option<&Path>,
    hash: Option<HashAlg>,
    json: bool,
) -> anyhow::Result<()> {
    let client = connect_user(layout).await?;
    let key = client.get_key(id).await?;
    let (message, hash) = signing_input(&key, input, hash)?;
    let (signature, signers) = client.sign(id, &message, hash).await?;
    if let Some(out) = output {
        std::fs::write(out, &signature)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if json {
        return print_json(&serde_json::json!({
            "key": id.to_string(),
            "signature_hex": hex::encode(&signature),
            "signers": signers,
            "out": output.map(|p| p.display().to_string()),
        }));
    }
    match output {
        Some(out) => println!(
            "signature ({} bytes, by nodes {signers:?}) written to {}",
            signature.len(),
            out.display()
        ),
        None => println!("{}", hex::encode(&signature)),
    }
    Ok(())
}

/// What `vhsm sign` sends to sign `input` with `key`: for ECDSA, the file's digest with `hash` (SHA-256 if `None`),
/// computed here from the file read piece by piece, so that a file of any size signs and the signature is that of
/// the whole file (ECDSA signs only a digest: `openssl dgst -sha256 -verify` checks it against the file); with
/// `--hash none` the file itself is the digest. For Ed25519 the whole file, which PureEdDSA needs in one request:
/// a file over the limit is refused before anything is sent, saying the limit.
fn signing_input(
    key: &KeyInfo,
    input: &Path,
    hash: Option<HashAlg>,
) -> anyhow::Result<(Vec<u8>, Option<HashAlg>)> {
    use vhsm_core::{
        digest::MAX_PREHASHED_LEN,
        limits::{mib, MAX_SIGN_INPUT},
    };
    let read = || std::fs::read(input).with_context(|| format!("cannot read {}", input.display()));
    let size = std::fs::metadata(input)
        .with_context(|| format!("cannot read {}", input.display()))?
        .len();
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if key.algorithm.ecdsa_curve().is_some() {
        let digest = match hash.unwrap_or(HashAlg::Sha256) {
            HashAlg::Prehashed if (1..=MAX_PREHASHED_LEN).contains(&size) => read()?,
            HashAlg::Prehashed => anyhow::bail!(
                "with --hash none the file is the digest to sign, 1 to {MAX_PREHASHED_LEN} bytes, but {} is {size} \
                 bytes; leave --hash out to have the file hashed with SHA-256",
                input.display()
            ),
            alg => hash_file(alg, input)?,
        };
        return Ok((digest, Some(HashAlg::Prehashed)));
    }
    if !key.algorithm.signs() {
        anyhow::bail!(
            "key {} is a {} key: it encrypts and decrypts (`vhsm encrypt`, `vhsm decrypt`), it does not sign",
            key.id,
            key.algorithm
        );
    }
    if size > MAX_SIGN_INPUT {
        anyhow::bail!(
            "the input {} is {}; the limit for {} signing is {}: {} (PureEdDSA) signs the whole message, which must \
             reach the cluster in one request; sign a smaller file, or use an ECDSA key (for which `vhsm sign` \
             hashes a file of any size)",
            input.display(),
            mib(size),
            key.algorithm,
            mib(MAX_SIGN_INPUT),
            key.algorithm
        );
    }
    Ok((read()?, hash))
}

/// The digest of the file at `path` with `alg` (not `Prehashed`), read piece by piece.
fn hash_file(alg: HashAlg, path: &Path) -> anyhow::Result<Vec<u8>> {
    use sha2::{Digest, Sha256, Sha384, Sha512};
    fn digest<D: Digest + std::io::Write>(path: &Path) -> anyhow::Result<Vec<u8>> {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut hasher = D::new();
        std::io::copy(&mut file, &mut hasher)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(hasher.finalize().to_vec())
    }
    match alg {
        HashAlg::Sha256 => digest::<Sha256>(path),
        HashAlg::Sha384 => digest::<Sha384>(path),
        HashAlg::Sha512 => digest::<Sha512>(path),
        HashAlg::Prehashed => anyhow::bail!("a prehashed input is not hashed again"),
    }
}

pub async fn unban(layout: &Layout, node: NodeId, json: bool) -> anyhow::Result<()> {
    let client = super::membership::connect_security_officer(layout).await?;
    client.unban(node).await?;
    if json {
        return print_json(&serde_json::json!({ "unbanned": node }));
    }
    println!("node {node} may take part in ECDSA signing again (ban cleared on every node)");
    Ok(())
}

/// `vhsm key activate|deactivate|mark-compromised ID`.
pub async fn set_state(
    layout: &Layout,
    id: KeyId,
    state: vhsm_core::KeyState,
    json: bool,
) -> anyhow::Result<()> {
    let client = connect_user(layout).await?;
    let key = client.set_key_state(id, state).await?;
    let view = KeyView::new(&key)?;
    if json {
        return print_json(&view);
    }
    println!("key {id} is {} now\n{}", key.state, view.human());
    Ok(())
}

pub async fn destroy(layout: &Layout, id: KeyId, json: bool) -> anyhow::Result<()> {
    let client = connect_user(layout).await?;
    client.destroy_key(id).await?;
    if json {
        return print_json(&serde_json::json!({ "destroyed": id.to_string() }));
    }
    println!("key {id} destroyed: every holder deleted its share");
    Ok(())
}
