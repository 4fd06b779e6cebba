//! `vhsm node unseal|change-passphrase|backup|restore` (the security officer's), and reading a node's unseal
//! secret. While too few nodes are unsealed for the security officer to log in (the nodes check PINs; a sealed
//! node cannot), `vhsm node unseal` unseals with the node's unseal secret alone.
//!
//! A sealed node (`vhsm init --seal`) has its own unseal secret: `D/unseal/node-N.secret` as `vhsm init` wrote it
//! (or wherever its custodian keeps it). The CLI reads it from, in this order: `--secret-file F` (its first line),
//! the environment variable `VHSM_NODE_PASSPHRASE` (for automation), `D/unseal/node-N.secret`, or a prompt on the
//! terminal that does not echo. It is held in zeroizing memory and never logged.
//!
//! It never travels in the clear: the CLI asks the node (through the coordinator) for a fresh single-use
//! challenge, encrypts the secret to the node's unseal public key pinned at `vhsm init` (`D/unseal/node-N.pub`)
//! with HPKE bound to the node id and the challenge (`vhsm_node::unseal`, RFC 9180), and the coordinator relays
//! that ciphertext. A compromised coordinator sees no secret, cannot replay what it relayed (the challenge is used
//! up), and cannot redirect it to another node.
//!
//! `change-passphrase` keeps the secret in force until the node confirmed the new one: the new secret is written to
//! `FILE.new` (synced) before anything is sent and renamed over `FILE` only after the node answered that its
//! `sealed.key` was rewritten. If the outcome is unknown (the connection dropped), both files stay and the command
//! says how to find out which one the node takes.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use vhsm_client::ClientError;
use vhsm_core::SecretBytes;
use vhsm_node::{
    node::{trim_passphrase, PASSPHRASE_ENV},
    seal::{sync_parent, write_private_file},
    unseal::{generate_secret, UnsealPublicKey, MAX_SECRET_LEN},
};
use vhsm_wire::{ErrorKind, NodeId};
use zeroize::Zeroizing;

use vhsm_client::Client;

use super::{keys::connect, layout::Layout, membership::connect_security_officer};

/// Where a secret was read from, for the operator's messages.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Environment,
    Prompt,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Environment => write!(f, "{PASSPHRASE_ENV}"),
            Source::Prompt => f.write_str("the prompt"),
        }
    }
}

/// The first line of `path`, without its newline.
fn read_secret_file(path: &Path) -> anyhow::Result<SecretBytes> {
    let bytes = Zeroizing::new(
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let secret = SecretBytes::new(trim_passphrase(first_line).to_vec());
    if secret.is_empty() {
        bail!(
            "{} holds no secret (its first line is empty)",
            path.display()
        );
    }
    if secret.len() > MAX_SECRET_LEN {
        bail!(
            "{}: a secret may have at most {MAX_SECRET_LEN} bytes",
            path.display()
        );
    }
    Ok(secret)
}

/// Node `node`'s secret in force (see the module documentation for the order of the sources).
fn read_secret(
    layout: &Layout,
    node: NodeId,
    file: Option<&Path>,
) -> anyhow::Result<(SecretBytes, Source)> {
    if let Some(path) = file {
        return Ok((read_secret_file(path)?, Source::File(path.to_path_buf())));
    }
    if let Some(value) = std::env::var_os(PASSPHRASE_ENV).filter(|v| !v.is_empty()) {
        return Ok((
            SecretBytes::new(value.as_encoded_bytes().to_vec()),
            Source::Environment,
        ));
    }
    let default = layout.unseal_secret(node);
    if default.exists() {
        return Ok((read_secret_file(&default)?, Source::File(default)));
    }
    if std::io::stdin().is_terminal() {
        let secret = prompt(&format!("Unseal secret of node {node}: "))?;
        if secret.is_empty() {
            bail!("the secret is empty");
        }
        return Ok((secret, Source::Prompt));
    }
    bail!(
        "no unseal secret for node {node}: give --secret-file F, set {PASSPHRASE_ENV}, put it in {}, or run on a \
         terminal to be asked",
        default.display()
    )
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
    read.context("cannot read the secret")?;
    restored.context("cannot restore the terminal's echo")?;
    Ok(SecretBytes::new(trim_passphrase(line.as_bytes()).to_vec()))
}

/// Node `node`'s unseal public key, as `vhsm init --seal` pinned it.
fn pinned_key(layout: &Layout, node: NodeId) -> anyhow::Result<UnsealPublicKey> {
    let path = layout.unseal_public_key(node);
    if !path.exists() {
        bail!(
            "no pinned unseal key for node {node} ({} is missing): the secret is sent only encrypted to the key \
             `vhsm init --seal` pinned there. A node sealed by an older vHSM has none: unseal it on its own machine \
             (passphrase_file in its node.toml, or {PASSPHRASE_ENV})",
            path.display()
        );
    }
    Ok(UnsealPublicKey::load(&path)?)
}

/// Whether a failed request certainly left the node as it was: the node (or the coordinator) refused it in words,
/// rather than an answer that never came.
fn refused(error: &ClientError) -> bool {
    match error {
        ClientError::Service(e) => !matches!(
            e.kind,
            ErrorKind::Internal | ErrorKind::Unavailable | ErrorKind::Misbehaviour
        ),
        _ => false,
    }
}

/// What to do about a refusal, in the operator's words.
fn advice(error: &ClientError, node: NodeId, source: &Source) -> String {
    let ClientError::Service(e) = error else {
        return String::new();
    };
    match e.kind {
        ErrorKind::PinIncorrect => format!(
            " (the secret from {source} is not node {node}'s: each node has its own, D/unseal/node-{node}.secret as \
             `vhsm init --seal` wrote it, or the one set by `vhsm node change-passphrase {node}`)"
        ),
        ErrorKind::Stale => " (the node's single-use challenge was used by another request before this one \
                              arrived, or lapsed: run the command again)"
            .into(),
        ErrorKind::InvalidCiphertext => format!(
            " (the node cannot open what was sent: is D/unseal/node-{node}.pub the key `vhsm init --seal` pinned \
             for this node, and did the node keep its unseal.key?)"
        ),
        _ => String::new(),
    }
}

/// `vhsm node unseal ID [--secret-file F]`.
pub async fn unseal(
    layout: &Layout,
    node: NodeId,
    secret_file: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let public = pinned_key(layout, node)?;
    let (secret, source) = read_secret(layout, node, secret_file)?;
    let client = connect_to_unseal(layout).await?;
    let (challenge, sealed) = client
        .unseal_challenge(node)
        .await
        .with_context(|| format!("node {node} not unsealed: no challenge from it"))?;
    if !sealed {
        if json {
            println!(
                "{}",
                serde_json::json!({ "node": node, "sealed": false, "was_sealed": false })
            );
        } else {
            println!("node {node} is not sealed: nothing to do (no secret was sent)");
        }
        return Ok(());
    }
    let envelope = public.seal_unseal(node, &challenge, &secret)?;
    drop(secret);
    if let Err(e) = client.unseal_node(node, envelope).await {
        let advice = advice(&e, node, &source);
        return Err(anyhow::Error::new(e).context(format!("node {node} not unsealed{advice}")));
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "node": node, "sealed": false, "was_sealed": true })
        );
    } else {
        println!("node {node} unsealed with the secret from {source}: it serves again");
    }
    Ok(())
}

/// `PATH.new`: where `change-passphrase` keeps the new secret until the node confirmed it.
fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".new");
    PathBuf::from(name)
}

/// `vhsm node change-passphrase ID [--secret-file F] [--new-secret-file G]`.
pub async fn change_passphrase(
    layout: &Layout,
    node: NodeId,
    secret_file: Option<&Path>,
    new_secret_file: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let public = pinned_key(layout, node)?;
    let target = secret_file.map_or_else(|| layout.unseal_secret(node), Path::to_path_buf);
    let pending = pending_path(&target);
    if pending.exists() {
        bail!(
            "{pending} exists: an earlier change of node {node}'s secret did not finish, and the node may have \
             taken the secret in {pending} or kept the one in {target}. Find out which opens it (e.g. `vhsm node \
             change-passphrase {node} --secret-file {pending}` succeeds only if the node took it, and then leaves \
             a fresh secret in {pending_file}), keep that one as {target} and delete the other; then run this \
             command again",
            pending = pending.display(),
            target = target.display(),
            pending_file = pending.display(),
        );
    }
    let (old, source) = read_secret(layout, node, secret_file)?;
    let (new, chosen) = match new_secret_file {
        Some(path) => (read_secret_file(path)?, true),
        None => (generate_secret(), false),
    };
    if new == old {
        bail!("the new secret is the secret in force: nothing to change");
    }

    // Connect and check before anything is written: a refusal here leaves no file behind. A sealed node is said so
    // first, from the cluster's status (no login needed): the security officer may not even be able to log in
    // while it is sealed (too few nodes to check the PIN).
    let anonymous = connect(layout).await?;
    if anonymous.status().await.is_ok_and(|s| {
        s.nodes
            .iter()
            .any(|n| n.id == node && n.status.as_ref().is_some_and(|st| st.sealed))
    }) {
        bail!(
            "node {node} is sealed: unseal it first (vhsm node unseal {node}), then change its secret (a sealed node \
             cannot record the change in its audit log)"
        );
    }
    let client = connect_security_officer(layout).await?;
    let (challenge, sealed) = client
        .unseal_challenge(node)
        .await
        .with_context(|| format!("node {node}'s secret not changed: no challenge from it"))?;
    if sealed {
        bail!(
            "node {node} is sealed: unseal it first (vhsm node unseal {node}), then change its secret (a sealed node \
             cannot record the change in its audit log)"
        );
    }
    let envelope = public.seal_change(node, &challenge, &old, &new)?;
    drop(old);

    // The new secret goes to disk, synced, before it is sent: whatever happens next, it is not lost.
    if let Some(parent) = pending.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut text = Zeroizing::new(new.expose().to_vec());
    text.push(b'\n');
    write_private_file(&pending, &text)
        .with_context(|| format!("cannot write {} (nothing was sent)", pending.display()))?;
    sync_parent(&pending).with_context(|| format!("cannot sync {}", pending.display()))?;
    drop(new);

    match client.change_unseal_secret(node, envelope).await {
        Ok(()) => {}
        Err(e) if refused(&e) => {
            let advice = advice(&e, node, &source);
            std::fs::remove_file(&pending).with_context(|| {
                format!(
                    "node {node} refused the change; remove {} (it never opened the node)",
                    pending.display()
                )
            })?;
            return Err(
                anyhow::Error::new(e).context(format!("node {node}'s secret not changed{advice}"))
            );
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "the outcome is unknown: node {node} may have taken the new secret ({pending}) or kept the old \
                 one ({source}). Both are kept. Find out which opens it — `vhsm node change-passphrase {node} \
                 --secret-file {pending}` works only if the node took it — then keep that one as {target} and \
                 delete the other",
                pending = pending.display(),
                target = target.display(),
            )));
        }
    }
    std::fs::rename(&pending, &target).with_context(|| {
        format!(
            "node {node} took the new secret, which is in {}: move it over {} yourself (the old one no longer \
             opens the node)",
            pending.display(),
            target.display()
        )
    })?;
    sync_parent(&target).with_context(|| format!("cannot sync {}", target.display()))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "node": node,
                "changed": true,
                "secret_file": target.display().to_string(),
                "chosen": chosen,
            })
        );
    } else {
        println!(
            "node {node}'s unseal secret changed: {} holds the new one (mode 0600); the old one no longer opens \
             the node. Move it offline or to the node's custodian. If node {node} starts unattended \
             (passphrase_file in its node.toml, or {PASSPHRASE_ENV}), give it the new secret there before it \
             restarts.",
            target.display()
        );
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
                 the node's unseal secret alone unseals it"
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
