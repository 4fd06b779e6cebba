//! `vhsm audit verify` and `vhsm audit show`: the nodes' audit logs, read through the coordinator by the security
//! officer.
//!
//! The nodes send their logs as raw lines; this command verifies them itself (`vhsm_node::audit::verify_chain`),
//! so a node cannot hide a break by how it reads its own file.
//!
//! `verify` checks, for every member node: that the log can be read, that its chain verifies (naming the node and
//! the line/entry of every break), and that the nodes agree on the operations they took part in together: entries
//! with the same protocol session on different nodes must name the same key, and entries of the same operation in
//! a session must have the same input digest. Any problem makes the command fail (non-zero exit).

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;
use vhsm_client::Client;
use vhsm_core::KeyId;
use vhsm_node::audit::{verify_chain, ChainBreak, Entry};
use vhsm_wire::NodeId;

use super::{layout::Layout, membership::connect_security_officer};

/// What `vhsm audit show` lists.
#[derive(Debug, Clone, Default)]
pub struct ShowOptions {
    /// Only entries of this key.
    pub key: Option<KeyId>,
    /// Only entries at or after this time (seconds since the Unix epoch).
    pub since: Option<u64>,
    /// Only this node's entries.
    pub node: Option<NodeId>,
}

/// One node's log as read and verified.
#[derive(Debug, Serialize)]
struct NodeLog {
    node: NodeId,
    /// Why it could not be read.
    error: Option<String>,
    entries: usize,
    head: String,
    breaks: Vec<ChainBreak>,
    #[serde(skip)]
    parsed: Vec<Entry>,
}

/// Nodes that disagree about one session.
#[derive(Debug, Serialize)]
struct Disagreement {
    session: String,
    what: String,
    /// (node, seq) of the entries concerned.
    entries: Vec<(NodeId, u64)>,
}

async fn read_log(client: &Client, node: NodeId) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let page = client
            .audit_page(node, lines.len() as u64)
            .await
            .with_context(|| format!("cannot read node {node}'s audit log"))?;
        let end = page.end || page.lines.is_empty();
        lines.extend(page.lines);
        if end {
            return Ok(lines);
        }
    }
}

async fn read_all(layout: &Layout, only: Option<NodeId>) -> anyhow::Result<Vec<NodeLog>> {
    let client = connect_security_officer(layout).await?;
    let mut nodes = client.membership().await?.ids();
    if let Some(only) = only {
        nodes.retain(|n| *n == only);
        if nodes.is_empty() {
            anyhow::bail!("node {only} is not a member of the cluster");
        }
    }
    let mut logs = Vec::new();
    for node in nodes {
        match read_log(&client, node).await {
            Ok(lines) => {
                let report = verify_chain(node, &lines);
                logs.push(NodeLog {
                    node,
                    error: None,
                    entries: lines.len(),
                    head: report.head,
                    breaks: report.breaks,
                    parsed: report.entries,
                });
            }
            Err(e) => logs.push(NodeLog {
                node,
                error: Some(format!("{e:#}")),
                entries: 0,
                head: String::new(),
                breaks: Vec::new(),
                parsed: Vec::new(),
            }),
        }
    }
    Ok(logs)
}

/// Entries of the same session on different nodes must agree on the key, and per operation on the input.
fn cross_check(logs: &[NodeLog]) -> Vec<Disagreement> {
    let mut sessions: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for log in logs {
        for entry in &log.parsed {
            if let Some(session) = &entry.session {
                sessions.entry(session).or_default().push(entry);
            }
        }
    }
    let mut out = Vec::new();
    for (session, entries) in sessions {
        let keys: std::collections::BTreeSet<_> = entries.iter().map(|e| &e.key).collect();
        if keys.len() > 1 {
            out.push(Disagreement {
                session: session.to_string(),
                what: format!(
                    "the nodes name different keys for one session: {}",
                    keys.iter()
                        .map(|k| k.as_deref().unwrap_or("none"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                entries: entries.iter().map(|e| (e.node, e.seq)).collect(),
            });
        }
        let mut by_op: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
        for e in &entries {
            by_op.entry(&e.op).or_default().push(e);
        }
        for (op, entries) in by_op {
            let inputs: std::collections::BTreeSet<_> = entries.iter().map(|e| &e.input).collect();
            // Only a disagreement between nodes: one node's entries of one request share the input anyway.
            let nodes: std::collections::BTreeSet<_> = entries.iter().map(|e| e.node).collect();
            if inputs.len() > 1 && nodes.len() > 1 {
                out.push(Disagreement {
                    session: session.to_string(),
                    what: format!("the nodes recorded different inputs for '{op}'"),
                    entries: entries.iter().map(|e| (e.node, e.seq)).collect(),
                });
            }
        }
    }
    out
}

/// `vhsm audit verify`.
pub async fn verify(layout: &Layout, json: bool) -> anyhow::Result<()> {
    let logs = read_all(layout, None).await?;
    let disagreements = cross_check(&logs);
    let problems = logs
        .iter()
        .map(|l| l.breaks.len() + usize::from(l.error.is_some()))
        .sum::<usize>()
        + disagreements.len();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": problems == 0,
                "nodes": logs,
                "disagreements": disagreements,
            }))?
        );
    } else {
        for log in &logs {
            match (&log.error, log.breaks.is_empty()) {
                (Some(e), _) => println!("node {}: NOT VERIFIED: {e}", log.node),
                (None, true) => println!(
                    "node {}: {} entries, chain intact (head {})",
                    log.node,
                    log.entries,
                    log.head.get(..16).unwrap_or(&log.head)
                ),
                (None, false) => {
                    println!(
                        "node {}: CHAIN BROKEN ({} of {} entries)",
                        log.node,
                        log.breaks.len(),
                        log.entries
                    );
                    for b in &log.breaks {
                        println!("  node {} entry at {b}", log.node);
                    }
                }
            }
        }
        for d in &disagreements {
            let at: Vec<String> = d
                .entries
                .iter()
                .map(|(n, s)| format!("node {n} seq {s}"))
                .collect();
            println!(
                "DISAGREEMENT in session {}: {} ({})",
                d.session.get(..16).unwrap_or(&d.session),
                d.what,
                at.join(", ")
            );
        }
    }
    if problems > 0 {
        anyhow::bail!("audit verification FAILED: {problems} problem(s) (see above)");
    }
    if !json {
        println!(
            "audit logs verified: {} node(s), every chain intact, the nodes agree on every shared session",
            logs.len()
        );
    }
    Ok(())
}

/// `vhsm audit show`.
pub async fn show(layout: &Layout, options: &ShowOptions, json: bool) -> anyhow::Result<()> {
    let logs = read_all(layout, options.node).await?;
    let key = options.key.map(|k| k.to_string());
    let mut selected: Vec<&Entry> = logs
        .iter()
        .flat_map(|l| l.parsed.iter())
        .filter(|e| key.is_none() || e.key == key)
        .filter(|e| options.since.is_none_or(|t| e.time >= t))
        .collect();
    selected.sort_by_key(|e| (e.time, e.node, e.seq));
    for log in &logs {
        if let Some(e) = &log.error {
            eprintln!("warning: node {}: {e}", log.node);
        }
        if !log.breaks.is_empty() {
            eprintln!(
                "warning: node {}'s audit chain is BROKEN (run vhsm audit verify)",
                log.node
            );
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&selected)?);
        return Ok(());
    }
    for e in selected {
        println!(
            "{} node {} seq {:>5}  {:<14} {:<10} key {} by {}{}{}  input {}",
            format_time(e.time),
            e.node,
            e.seq,
            e.op,
            e.result,
            e.key.as_deref().unwrap_or("-"),
            e.requester,
            if e.purpose.is_empty() { "" } else { " for " },
            e.purpose,
            e.input.get(..16).unwrap_or(&e.input),
        );
    }
    Ok(())
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub use vhsm_core::time::format_unix as format_time;

/// Parses `--since`: seconds since the Unix epoch, or RFC 3339 (`2024-05-01T12:00:00Z`, `…+02:00`, fractions
/// ignored, a date alone is midnight UTC).
pub fn parse_time(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "'{text}' is not a time: give seconds since 1970 or RFC 3339 (2024-05-01T12:00:00Z)"
        )
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let (date, time) = match text.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (
        num(parts.next().unwrap_or(""))?,
        num(parts.next().unwrap_or(""))?,
        num(parts.next().unwrap_or(""))?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(time) = time {
        let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (c, o) = time.split_at(i);
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o.get(1..).unwrap_or("").split_once(':').ok_or_else(bad)?;
            (c, sign * (num(oh)? * 3600 + num(om)? * 60))
        } else {
            return Err(bad());
        };
        let clock = clock.split('.').next().unwrap_or("");
        let mut hms = clock.splitn(3, ':');
        let (h, mi, s) = (
            num(hms.next().unwrap_or(""))?,
            num(hms.next().unwrap_or(""))?,
            num(hms.next().unwrap_or("0"))?,
        );
        secs += h * 3600 + mi * 60 + s - offset;
    }
    u64::try_from(secs).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("0").unwrap(), 0);
        assert_eq!(parse_time("1714564800").unwrap(), 1_714_564_800);
        assert_eq!(parse_time("2024-05-01T12:00:00Z").unwrap(), 1_714_564_800);
        assert_eq!(
            parse_time("2024-05-01T14:00:00.5+02:00").unwrap(),
            1_714_564_800
        );
        assert_eq!(parse_time("2024-05-01").unwrap(), 1_714_521_600);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(format_time(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }
}
