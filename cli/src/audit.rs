//! `vhsm audit verify` and `vhsm audit show`: the nodes' audit logs, read through the coordinator by the security
//! officer.
//!
//! The nodes send their logs as raw lines; this command verifies them itself (`vhsm_node::audit::verify_chain`),
//! so a node cannot hide a break by how it reads its own file.
//!
//! `verify` checks, for every member node: that the log can be read, that its chain verifies (naming the node and
//! the line/entry of every break), and that the nodes agree on the operations they took part in together: entries
//! with the same protocol session on different nodes must name the same key, and entries of the same operation in
//! a session must have the same input digest. It also reports **missing entries**: a node that lacks every entry
//! of a session in which, by its peers' entries, it took part. The `ok` entry of a protocol run over the mesh (key
//! generation, an ECDSA signature, a reshare) lists the session's `parties`; the run cannot complete without a
//! message from each of them, and each wrote its own `attempt` entry before sending one, so a member named there
//! must hold an entry of that session. One that holds none lost entries: its log was cut, replaced, or rolled
//! back with its whole data directory (which the node cannot detect on its own). FROST signature shares involve
//! no other node, so their sessions name no parties and are not checked. A session that its peers recorded
//! entirely before the node's log begins (more than [`CLOCK_MARGIN`] before its first entry) is shown as a note,
//! not a problem: that node's log was started anew (its data was lost and the node repaired, its old log kept
//! aside), which its peers' logs and `vhsm status` show for what it is; a log rolled back or cut keeps its
//! beginning, so what it lacks is after it. Any problem makes the command fail (non-zero exit).
//!
//! The MACs of the entries are not checked here (they need each node's storage key); every node checks its own
//! when it unseals.

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
#[derive(Clone, Debug, Serialize)]
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

/// A node that lacks the entries of a session its peers say it took part in.
#[derive(Debug, Serialize)]
struct MissingSession {
    /// The node whose log lacks them.
    node: NodeId,
    /// The session (hex).
    session: String,
    /// The operation the peers recorded (`generate`, `sign`, `reshare`).
    op: String,
    /// The key, if the entries name one.
    key: Option<String>,
    /// The nodes whose `ok` entries name `node` as a party, with the seq of each.
    held_by: Vec<(NodeId, u64)>,
    /// Whether every one of those entries is older than `node`'s log (a new chain): a note, not a problem.
    before_log: bool,
}

/// How far the nodes' clocks may disagree when a session is judged to precede a node's log.
const CLOCK_MARGIN: u64 = 300;

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

/// Sessions whose `ok` entries on some nodes name, as a party, a node whose (readable) log has no entry of that
/// session. Nodes whose log could not be read, or that are not members, are not judged here.
fn missing_sessions(logs: &[NodeLog]) -> Vec<MissingSession> {
    let readable: BTreeMap<NodeId, std::collections::BTreeSet<&str>> = logs
        .iter()
        .filter(|l| l.error.is_none())
        .map(|l| {
            (
                l.node,
                l.parsed
                    .iter()
                    .filter_map(|e| e.session.as_deref())
                    .collect(),
            )
        })
        .collect();
    // When each readable log begins (an empty one: it begins now, after every recorded session).
    let begins: BTreeMap<NodeId, u64> = logs
        .iter()
        .filter(|l| l.error.is_none())
        .map(|l| (l.node, l.parsed.first().map_or(u64::MAX, |e| e.time)))
        .collect();
    let mut claims: BTreeMap<(NodeId, &str), MissingSession> = BTreeMap::new();
    for log in logs {
        for entry in &log.parsed {
            let Some(session) = entry.session.as_deref() else {
                continue;
            };
            if entry.result != "ok" {
                continue;
            }
            for &party in entry.parties.iter().filter(|&&p| p != entry.node) {
                let Some(sessions) = readable.get(&party) else {
                    continue;
                };
                if sessions.contains(session) {
                    continue;
                }
                let claim = claims
                    .entry((party, session))
                    .or_insert_with(|| MissingSession {
                        node: party,
                        session: session.to_string(),
                        op: entry.op.clone(),
                        key: entry.key.clone(),
                        held_by: Vec::new(),
                        before_log: true,
                    });
                claim.held_by.push((entry.node, entry.seq));
                let begins = begins.get(&party).copied().unwrap_or(u64::MAX);
                claim.before_log &= entry.time.saturating_add(CLOCK_MARGIN) < begins;
            }
        }
    }
    claims.into_values().collect()
}

/// `vhsm audit verify`.
pub async fn verify(layout: &Layout, json: bool) -> anyhow::Result<()> {
    let logs = read_all(layout, None).await?;
    let disagreements = cross_check(&logs);
    let missing = missing_sessions(&logs);
    let problems = logs
        .iter()
        .map(|l| l.breaks.len() + usize::from(l.error.is_some()))
        .sum::<usize>()
        + disagreements.len()
        + missing.iter().filter(|m| !m.before_log).count();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": problems == 0,
                "nodes": logs,
                "disagreements": disagreements,
                "missing": missing,
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
        for m in missing.iter().filter(|m| !m.before_log) {
            let at: Vec<String> = m
                .held_by
                .iter()
                .map(|(n, s)| format!("node {n} seq {s}"))
                .collect();
            println!(
                "MISSING on node {}: session {} ({}{}): its peers recorded that node {} took part ({}), but its \
                 log has no entry of it (entries lost: a log cut or replaced, or a data directory rolled back)",
                m.node,
                m.session.get(..16).unwrap_or(&m.session),
                m.op,
                m.key
                    .as_deref()
                    .map(|k| format!(", key {k}"))
                    .unwrap_or_default(),
                m.node,
                at.join(", ")
            );
        }
        let mut earlier: BTreeMap<NodeId, usize> = BTreeMap::new();
        for m in missing.iter().filter(|m| m.before_log) {
            *earlier.entry(m.node).or_default() += 1;
        }
        for (node, count) in earlier {
            let begins = logs
                .iter()
                .find(|l| l.node == node)
                .and_then(|l| l.parsed.first())
                .map_or("(empty)".to_string(), |e| format_time(e.time));
            println!(
                "note: node {node}'s log begins at {begins}: {count} earlier session(s) it took part in are recorded \
                 only by its peers (a new chain: its data was lost and the node repaired, or its old log kept aside)"
            );
        }
    }
    if problems > 0 {
        anyhow::bail!("audit verification FAILED: {problems} problem(s) (see above)");
    }
    if !json {
        println!(
            "audit logs verified: {} node(s), every chain intact, the nodes agree on every shared session, and no \
             node lacks the entries of a session it took part in",
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
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn entry(node: NodeId, seq: u64, session: &str, result: &str, parties: &[NodeId]) -> Entry {
        Entry {
            v: 2,
            node,
            seq,
            time: 0,
            prev: String::new(),
            op: "generate".into(),
            requester: "coordinator".into(),
            purpose: String::new(),
            key: Some("k".into()),
            session: Some(session.into()),
            parties: parties.to_vec(),
            input: String::new(),
            result: result.into(),
            gen: Some(1),
            hash: String::new(),
            mac: None,
        }
    }

    fn log(node: NodeId, parsed: Vec<Entry>) -> NodeLog {
        NodeLog {
            node,
            error: None,
            entries: parsed.len(),
            head: String::new(),
            breaks: Vec::new(),
            parsed,
        }
    }

    /// Issue 14, item 8: a node that lacks the entries of a session its peers say it took part in is named, with
    /// the session and the peers that hold it; an attempt alone is enough to count as present, and nodes that are
    /// not read (not members, unreadable) are not judged.
    #[test]
    fn a_node_lacking_a_session_its_peers_hold_is_named() {
        let all = [1, 2, 3];
        let logs = vec![
            log(
                1,
                vec![
                    entry(1, 0, "s1", "attempt", &[]),
                    entry(1, 1, "s1", "ok", &all),
                ],
            ),
            log(
                2,
                vec![
                    entry(2, 0, "s1", "attempt", &[]),
                    entry(2, 1, "s1", "ok", &all),
                ],
            ),
            // Node 3's log (begun at the same time) holds another session only.
            log(3, vec![entry(3, 0, "s0", "attempt", &[])]),
        ];
        let missing = missing_sessions(&logs);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].node, 3);
        assert_eq!(missing[0].session, "s1");
        assert_eq!(missing[0].held_by, vec![(1, 1), (2, 1)]);
        assert!(!missing[0].before_log);
        // Recorded by the peers well before node 3's log begins (a new chain): a note, not a problem; within the
        // clock margin: a problem.
        let mut late = log(3, vec![entry(3, 0, "s9", "ok", &[])]);
        late.parsed[0].time = 10_000;
        let logs = vec![log(1, vec![entry(1, 1, "s1", "ok", &all)]), late.clone()];
        assert!(missing_sessions(&logs)[0].before_log);
        late.parsed[0].time = CLOCK_MARGIN;
        let logs = vec![log(1, vec![entry(1, 1, "s1", "ok", &all)]), late];
        assert!(!missing_sessions(&logs)[0].before_log);
        // An empty log begins now: a note.
        let logs = vec![log(1, vec![entry(1, 1, "s1", "ok", &all)]), log(3, vec![])];
        assert!(missing_sessions(&logs)[0].before_log);
        // Node 3 holds its attempt: nothing missing. Only `ok` entries are evidence.
        let logs = vec![
            log(1, vec![entry(1, 0, "s1", "ok", &all)]),
            log(3, vec![entry(3, 0, "s1", "attempt", &[])]),
            log(
                2,
                vec![
                    entry(2, 0, "s1", "attempt", &[]),
                    entry(2, 1, "s2", "error Internal: x", &all),
                ],
            ),
        ];
        assert!(missing_sessions(&logs).is_empty());
        // Node 3 unreadable or not a member: not judged here.
        let mut unreadable = log(3, vec![]);
        unreadable.error = Some("down".into());
        let logs = vec![log(1, vec![entry(1, 0, "s1", "ok", &all)]), unreadable];
        assert!(missing_sessions(&logs).is_empty());
        let logs = vec![log(1, vec![entry(1, 0, "s1", "ok", &all)])];
        assert!(missing_sessions(&logs).is_empty());
    }

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
