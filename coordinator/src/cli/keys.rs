//! Client commands: `vhsm status`, `vhsm key create|list|show`, `vhsm sign`.

use std::{path::Path, time::Instant};

use anyhow::{bail, Context};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePublicKey};
use serde::Serialize;
use vhsm_wire::{
    client::{Client, ClientConfig},
    messages::ClusterStatus,
    Algorithm, KeyId, KeyInfo,
};

use super::layout::Layout;

/// Connects to the coordinator of the cluster at `layout`.
pub async fn connect(layout: &Layout) -> anyhow::Result<Client> {
    let path = layout.client_config();
    if !path.exists() {
        bail!(
            "no client configuration at {}: is {} a cluster directory? (`vhsm init --dir D` makes one; \
             `--cluster D` or VHSM_CLUSTER names it)",
            path.display(),
            layout.root().display()
        );
    }
    let config = ClientConfig::load(&path)?;
    Ok(Client::connect(&config).await?)
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
    pub public_key_pem: String,
}

/// The SubjectPublicKeyInfo PEM of an Ed25519 public key.
pub fn public_key_pem(key: &KeyInfo) -> anyhow::Result<String> {
    match key.algorithm {
        Algorithm::Ed25519 => {
            let bytes: [u8; 32] = key
                .public_key
                .as_slice()
                .try_into()
                .context("the key's public key is not 32 bytes")?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .context("the key's public key is not valid")?;
            Ok(vk
                .to_public_key_pem(LineEnding::LF)
                .context("cannot encode PEM")?)
        }
    }
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
            public_key_pem: public_key_pem(key)?,
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
            self.public_key_pem.trim_end()
        )
    }
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn status(layout: &Layout, json: bool) -> anyhow::Result<()> {
    let client = connect(layout).await?;
    let status: ClusterStatus = client.status().await?;
    if json {
        #[derive(Serialize)]
        struct Node<'a> {
            id: u16,
            address: &'a str,
            reachable: bool,
            keys: Option<u32>,
            error: Option<&'a str>,
        }
        let nodes: Vec<Node> = status
            .nodes
            .iter()
            .map(|n| Node {
                id: n.id,
                address: &n.address,
                reachable: n.reachable,
                keys: n.status.as_ref().map(|s| s.keys),
                error: n.error.as_deref(),
            })
            .collect();
        return print_json(&serde_json::json!({ "threshold": status.threshold, "nodes": nodes }));
    }
    let up = status.nodes.iter().filter(|n| n.reachable).count();
    println!(
        "{up} of {} nodes reachable; threshold {}",
        status.nodes.len(),
        status.threshold
    );
    for n in &status.nodes {
        match (&n.status, &n.error) {
            (Some(s), _) => println!(
                "  node {:<3} {:<22} up    {} keys (v{})",
                n.id, n.address, s.keys, s.version
            ),
            (None, Some(e)) => println!("  node {:<3} {:<22} DOWN  {e}", n.id, n.address),
            (None, None) => println!("  node {:<3} {:<22} ?", n.id, n.address),
        }
    }
    Ok(())
}

pub async fn create(
    layout: &Layout,
    algorithm: Algorithm,
    label: &str,
    json: bool,
) -> anyhow::Result<()> {
    let client = connect(layout).await?;
    let spinner = (!json)
        .then(|| super::progress::spinner(&format!("generating {algorithm} key '{label}' by DKG")));
    let started = Instant::now();
    let key = client.create_key(algorithm, label).await;
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

pub async fn show(layout: &Layout, id: KeyId, json: bool) -> anyhow::Result<()> {
    let client = connect(layout).await?;
    let view = KeyView::new(&client.get_key(id).await?)?;
    if json {
        return print_json(&view);
    }
    println!("{}", view.human());
    Ok(())
}

pub async fn sign(
    layout: &Layout,
    id: KeyId,
    input: &Path,
    output: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let message =
        std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let client = connect(layout).await?;
    let (signature, signers) = client.sign(id, &message).await?;
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
