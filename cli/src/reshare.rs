//! `vhsm key refresh` and `vhsm node repair`: keys are reshared one by one through the coordinator, with a progress
//! bar, and each key's result is reported (also the table of the keys a membership change reshared).
//!
//! These are the security officer's: the SO PIN comes from `VHSM_SO_PIN` or the cluster's `client/so.pin`.

use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;
use vhsm_client::{approval::ApprovalKey, Client};
use vhsm_core::{ChangeApproval, KeyId, KeyInfo};
use vhsm_wire::NodeId;

use super::{layout::Layout, membership::connect_security_officer, progress};

/// One key's result.
#[derive(Debug, Serialize)]
pub struct KeyResult {
    pub id: String,
    pub label: String,
    pub algorithm: String,
    pub from_epoch: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_epoch: Option<u64>,
    pub holders: Vec<NodeId>,
    pub threshold: u16,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Something the operator should know about a key that was reshared (the answer was lost, the key read back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl From<&vhsm_client::KeyMoved> for KeyResult {
    fn from(k: &vhsm_client::KeyMoved) -> Self {
        KeyResult {
            id: k.key_id.to_string(),
            label: k.label.clone(),
            algorithm: k.algorithm.to_string(),
            from_epoch: k.from_epoch,
            to_epoch: k.to_epoch,
            holders: k.holders.clone(),
            threshold: k.threshold,
            seconds: k.millis as f64 / 1000.0,
            error: k.error.clone(),
            note: None,
        }
    }
}

/// Reshares `keys` one by one to the cluster's current membership (less `leave_out`) and threshold, avoiding
/// `avoid` as dealers, with the security officer's `approval` of that committee and threshold (needed for every
/// key not held there already, and to repair a node). Every key is tried; the results say which failed (a failed
/// key is unchanged and usable: run again).
pub async fn reshare_keys(
    client: &Client,
    keys: &[KeyInfo],
    (avoid, leave_out): (&[NodeId], &[NodeId]),
    approval: Option<&ChangeApproval>,
    what: &str,
    json: bool,
) -> Vec<KeyResult> {
    let bar = (!json).then(|| progress::bar(keys.len() as u64, what));
    let mut results = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(b) = &bar {
            b.set_message(format!("{what}: {} ({})", key.id, key.algorithm));
        }
        let started = Instant::now();
        let outcome = client
            .reshare_key(
                key.id,
                avoid.to_vec(),
                leave_out.to_vec(),
                approval.cloned(),
            )
            .await;
        let seconds = started.elapsed().as_secs_f64();
        results.push(match outcome {
            Ok(new) => KeyResult {
                id: key.id.to_string(),
                label: key.label.clone(),
                algorithm: key.algorithm.to_string(),
                from_epoch: key.epoch,
                to_epoch: Some(new.epoch),
                holders: new.holders,
                threshold: new.threshold,
                seconds,
                error: None,
                note: None,
            },
            Err(e) => read_back(client, key, e.to_string(), seconds).await,
        });
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    results
}

/// The result of a reshare of `key` whose request failed with `error`: what the key is now, read back from the
/// cluster. The failure may have come after the commit (the coordinator's answer lost, a holder late to confirm):
/// a key read back at a later epoch was reshared, and is reported so — never "unchanged" unless it is.
async fn read_back(client: &Client, key: &KeyInfo, error: String, seconds: f64) -> KeyResult {
    let failed = |error: String| KeyResult {
        id: key.id.to_string(),
        label: key.label.clone(),
        algorithm: key.algorithm.to_string(),
        from_epoch: key.epoch,
        to_epoch: None,
        holders: key.holders.clone(),
        threshold: key.threshold,
        seconds,
        error: Some(error),
        note: None,
    };
    match client.get_key(key.id).await {
        Ok(now) if now.epoch > key.epoch => KeyResult {
            id: key.id.to_string(),
            label: key.label.clone(),
            algorithm: key.algorithm.to_string(),
            from_epoch: key.epoch,
            to_epoch: Some(now.epoch),
            holders: now.holders,
            threshold: now.threshold,
            seconds,
            error: None,
            note: Some(format!(
                "the request reported a failure ({error}), but the key reads back at epoch {}: it was reshared",
                now.epoch
            )),
        },
        Ok(_) => failed(format!("unchanged at epoch {}: {error}", key.epoch)),
        Err(read) => failed(format!(
            "{error}; the key could not be read back ({read}): run `vhsm key list` to see its epoch"
        )),
    }
}

/// Prints the results (a table, or JSON) and fails if any key failed.
pub fn report(results: &[KeyResult], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(results)?);
    } else {
        print_table(results);
    }
    all_reshared(results)
}

/// Fails, saying how many, if any key was not reshared.
pub fn all_reshared(results: &[KeyResult]) -> anyhow::Result<()> {
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} key(s) were not reshared; they are unchanged and usable — run the command again",
            results.len()
        );
    }
    Ok(())
}

/// One line per key.
pub fn print_table(results: &[KeyResult]) {
    {
        for r in results {
            match (&r.error, r.to_epoch) {
                (None, Some(to)) => {
                    println!(
                        "{}  {:<16} epoch {} -> {}  {}-of-{:?}  {:.2} s  {}",
                        r.id,
                        r.algorithm,
                        r.from_epoch,
                        to,
                        r.threshold,
                        r.holders,
                        r.seconds,
                        r.label
                    );
                    if let Some(note) = &r.note {
                        println!("    note: {note}");
                    }
                }
                (error, _) => println!(
                    "{}  {:<16} FAILED: {}",
                    r.id,
                    r.algorithm,
                    error.as_deref().unwrap_or("unknown error")
                ),
            }
        }
    }
}

/// `vhsm key refresh ID` / `--all`: every holder of the key gets a new share of the same key; shares from before
/// (stolen, or kept by a node that left) no longer combine with the new ones.
pub async fn refresh(layout: &Layout, id: Option<KeyId>, json: bool) -> anyhow::Result<()> {
    let client = connect_security_officer(layout).await?;
    let all = client.list_keys().await?;
    let keys: Vec<KeyInfo> = match id {
        Some(id) => {
            let key = all
                .into_iter()
                .find(|k| k.id == id)
                .with_context(|| format!("no key {id}"))?;
            vec![key]
        }
        None => all,
    };
    if keys.is_empty() {
        if !json {
            println!("no keys to refresh");
        }
        return Ok(());
    }
    // A refresh keeps each key's holders and threshold and needs no approval; a key not held where the
    // membership says moves there, which does (signed here if the approval key is at hand).
    let membership = client.membership().await?;
    let approval = ApprovalKey::of_cluster(&layout.client())
        .ok()
        .map(|key| key.approve(&membership.ids(), membership.threshold));
    let results = reshare_keys(
        &client,
        &keys,
        (&[], &[]),
        approval.as_ref(),
        "refreshing",
        json,
    )
    .await;
    report(&results, json)
}

/// `vhsm node repair ID`: a node that lost its data gets a share of every key it holds again, dealt by the others
/// (every holder gets a new share: old shares stop combining with new ones).
pub async fn repair(layout: &Layout, node: NodeId, json: bool) -> anyhow::Result<()> {
    let client = connect_security_officer(layout).await?;
    let members = client.membership().await?.ids();
    if !members.contains(&node) {
        bail!("node {node} is not a member of the cluster (members {members:?}): there is nothing to repair on it");
    }
    let keys: Vec<KeyInfo> = client
        .list_keys()
        .await?
        .into_iter()
        .filter(|k| k.holders.contains(&node))
        .collect();
    if keys.is_empty() {
        if !json {
            println!("node {node} holds no key: nothing to repair");
        }
        return Ok(());
    }
    // The node being repaired holds no record of the keys any more: it takes a new share only with the
    // security officer's approval.
    let membership = client.membership().await?;
    let approval = super::membership::approve(layout, &membership.ids(), membership.threshold)?;
    let results = reshare_keys(
        &client,
        &keys,
        (&[node], &[]),
        Some(&approval),
        &format!("repairing node {node}"),
        json,
    )
    .await;
    report(&results, json)
}
