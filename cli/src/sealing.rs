//! `vhsm node unseal|backup|restore` (the security officer's), and reading an operator passphrase. While too few
//! nodes are unsealed for the security officer to log in (the nodes check PINs; a sealed node cannot), `vhsm node
//! unseal` unseals with the passphrase alone.
//!
//! A passphrase comes from, in this order: `--passphrase-file F` (its first line), the environment variable
//! `VHSM_NODE_PASSPHRASE` (for automation), or a prompt on the terminal that does not echo. It is held in
//! zeroizing memory, sent to the node over the coordinator's mutually authenticated TLS connections, and never
//! logged or written anywhere by the CLI.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::Path,
};

use anyhow::{bail, Context};
use vhsm_core::SecretBytes;
use vhsm_node::node::{trim_passphrase, PASSPHRASE_ENV};
use vhsm_wire::NodeId;
use zeroize::Zeroizing;

use vhsm_client::{Client, ClientError};
use vhsm_wire::ErrorKind;

use super::{keys::connect, layout::Layout, membership::connect_security_officer};

/// Reads the operator's passphrase (see the module documentation). `confirm`: on a terminal, ask twice (for a new
/// passphrase).
pub fn read_passphrase(file: Option<&Path>, confirm: bool) -> anyhow::Result<SecretBytes> {
    let passphrase = if let Some(path) = file {
        let bytes = Zeroizing::new(
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        );
        let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        SecretBytes::new(trim_passphrase(first_line).to_vec())
    } else if let Some(value) = std::env::var_os(PASSPHRASE_ENV).filter(|v| !v.is_empty()) {
        SecretBytes::new(value.as_encoded_bytes().to_vec())
    } else if std::io::stdin().is_terminal() {
        let first = prompt("Node passphrase: ")?;
        if confirm {
            let again = prompt("Again: ")?;
            if first != again {
                bail!("the two passphrases differ");
            }
        }
        first
    } else {
        bail!("no passphrase: give --passphrase-file F, set {PASSPHRASE_ENV}, or run on a terminal to be asked");
    };
    if passphrase.is_empty() {
        bail!("the passphrase is empty");
    }
    Ok(passphrase)
}

/// Asks on the terminal with echo off.
fn prompt(question: &str) -> anyhow::Result<SecretBytes> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("cannot turn the terminal's echo off")?;
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    // Echo back on whatever happened.
    let restored = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    read.context("cannot read the passphrase")?;
    restored.context("cannot restore the terminal's echo")?;
    Ok(SecretBytes::new(trim_passphrase(line.as_bytes()).to_vec()))
}

/// `vhsm node unseal ID`.
pub async fn unseal(
    layout: &Layout,
    node: NodeId,
    passphrase_file: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let passphrase = read_passphrase(passphrase_file, false)?;
    let client = connect_to_unseal(layout).await?;
    client
        .unseal_node(node, passphrase)
        .await
        .with_context(|| format!("node {node} not unsealed"))?;
    if json {
        println!("{}", serde_json::json!({ "node": node, "sealed": false }));
    } else {
        println!("node {node} unsealed: it serves again");
    }
    Ok(())
}

/// A connection to unseal a node with: logged in as the security officer; or, while too few nodes are unsealed to
/// check a PIN (the login is `Unavailable`: the nodes check PINs, and a sealed node cannot), not logged in — the
/// coordinator then takes the passphrase, which the node checks, as the only authorisation there can be.
async fn connect_to_unseal(layout: &Layout) -> anyhow::Result<Client> {
    match connect_security_officer(layout).await {
        Ok(client) => Ok(client),
        Err(e)
            if matches!(
                e.downcast_ref::<ClientError>(),
                Some(ClientError::Service(w)) if w.kind == ErrorKind::Unavailable
            ) =>
        {
            eprintln!(
                "note: the security officer cannot log in yet ({e:#}); too few nodes are unsealed to check a PIN, so \
                 the passphrase alone unseals this node"
            );
            connect(layout).await
        }
        Err(e) => Err(e),
    }
}

/// `vhsm node backup ID --out F`.
pub async fn backup(layout: &Layout, node: NodeId, out: &Path, json: bool) -> anyhow::Result<()> {
    let client = connect_security_officer(layout).await?;
    let file = client
        .backup_node(node)
        .await
        .with_context(|| format!("no backup of node {node}"))?;
    let (header, _) = vhsm_node::backup::read_header(&file)?;
    // Create the file new, private to its owner: it is sealed, but it is still every share this node has.
    vhsm_node::seal::write_private_file(out, &file).with_context(|| {
        format!(
            "cannot write {} (an existing file is never overwritten)",
            out.display()
        )
    })?;
    if json {
        let keys: Vec<_> = header
            .keys
            .iter()
            .map(|k| serde_json::json!({ "id": k.id.to_string(), "epoch": k.epoch, "state": k.state.to_string() }))
            .collect();
        println!(
            "{}",
            serde_json::json!({ "node": node, "file": out.display().to_string(), "bytes": file.len(), "keys": keys })
        );
    } else {
        println!(
            "backup of node {node} written to {} ({} bytes, {} keys); it opens only on node {node}, unsealed",
            out.display(),
            file.len(),
            header.keys.len()
        );
        for k in &header.keys {
            println!("  key {}  epoch {}  {}", k.id, k.epoch, k.state);
        }
    }
    Ok(())
}

/// `vhsm node restore ID F`.
pub async fn restore(layout: &Layout, node: NodeId, file: &Path, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let client = connect_security_officer(layout).await?;
    let (restored, skipped) = client
        .restore_node(node, bytes)
        .await
        .with_context(|| format!("node {node} not restored from {}", file.display()))?;
    if json {
        let skipped: Vec<_> = skipped
            .iter()
            .map(|(id, why)| serde_json::json!({ "id": id.to_string(), "reason": why }))
            .collect();
        let restored: Vec<String> = restored.iter().map(|k| k.to_string()).collect();
        println!(
            "{}",
            serde_json::json!({ "node": node, "restored": restored, "skipped": skipped })
        );
    } else {
        println!(
            "node {node} restored from {}: {} key(s)",
            file.display(),
            restored.len()
        );
        for id in &restored {
            println!("  restored  {id}");
        }
        for (id, why) in &skipped {
            println!("  left out  {id}: {why}");
        }
    }
    Ok(())
}
