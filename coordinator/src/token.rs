//! The token the coordinator presents to PKCS#11 applications: its label and serial number, and logins — whose
//! PINs the **nodes** check.
//!
//! The coordinator holds no PIN hash and counts no failure (issue 14, item 11). Every node has the token's
//! Argon2id PIN hashes in its own `node.toml` and keeps a failure counter per PIN in its sealed store (the node's
//! `pins` module: a check is counted before it is hashed, the right PIN resets the count, the wrong PIN that
//! reaches `max_pin_failures` locks the PIN on that node for good). So a restarted coordinator, or a second one,
//! sees the same counts, and a compromised coordinator has no hash to guess against offline: each of its guesses
//! is a check some node counts.
//!
//! A login ([`check_pin`]) asks every member node at once. With t the cluster's threshold (the membership's, that
//! of new keys):
//!
//! - it succeeds if at least t nodes accept the PIN;
//! - else it is `PinLocked` if at least t nodes say the PIN is locked, `PinIncorrect` if at least t nodes answered
//!   at all, and `Unavailable` (naming the nodes that did not answer) otherwise.
//!
//! Hence, while at most t − 1 nodes lie and t honest nodes are up, a liar can neither let a wrong PIN in (it would
//! need t acceptances, and honest nodes accept only the right PIN) nor keep the right PIN out (the t honest nodes
//! accept it). A node that accepts while t others refuse, or refuses while t others accept, is logged.
//!
//! The token's PIN state ([`Token::info`], for `C_GetTokenInfo`) is what t nodes support: the t-th highest failure
//! count reported (at least one honest node counts that many, and at most t − 1 liars cannot raise it above every
//! honest count), and a PIN is shown locked when t nodes say so — the same rule that refuses its logins. With fewer
//! than t nodes answering, the counts are shown as 0 (unknown) and the logins fail `Unavailable` anyway.
//!
//! Known limits: each node counts only the checks it is asked for, so a compromised coordinator asking each node
//! different guesses gets up to n × `max_pin_failures` guesses before every node has locked (not unlimited, and
//! every guess is in a node's audit log); and a coordinator sees every PIN a client logs in with.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use vhsm_core::{
    token::{MAX_PIN_LEN, MIN_PIN_LEN},
    NodeId, PinUser, SecretBytes, TokenInfo,
};
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse, PinState},
    ErrorKind,
};

use crate::error::Error;
use crate::nodes::{NodeCallError, NodePool};

/// How long a node may take to check a PIN (Argon2id and two store transactions).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node may take to report its PIN counters.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(2);

/// The `[token]` section of the coordinator's configuration: what the token is called. Its PINs are the nodes'.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The token's label (at most 32 characters, as PKCS#11 shows it).
    pub label: String,
    /// A serial number for this cluster (at most 16 characters).
    pub serial: String,
    /// Left by an earlier release (the coordinator checked PINs then): refused with what to do, see
    /// [`TokenConfig::check`].
    #[serde(default, skip_serializing)]
    user_pin_hash: Option<String>,
    /// As `user_pin_hash`.
    #[serde(default, skip_serializing)]
    so_pin_hash: Option<String>,
    /// As `user_pin_hash`.
    #[serde(default, skip_serializing)]
    max_pin_failures: Option<u32>,
}

impl TokenConfig {
    /// A token called `label`, with serial number `serial`.
    pub fn new(label: impl Into<String>, serial: impl Into<String>) -> Self {
        TokenConfig {
            label: label.into(),
            serial: serial.into(),
            user_pin_hash: None,
            so_pin_hash: None,
            max_pin_failures: None,
        }
    }

    /// Refuses a section that still holds the PIN settings of an earlier release: the PINs are checked by the nodes
    /// now, and a coordinator must not keep the hashes (they would allow guessing the PINs offline).
    pub fn check(&self) -> Result<(), String> {
        let left: Vec<&str> = [
            ("user_pin_hash", self.user_pin_hash.is_some()),
            ("so_pin_hash", self.so_pin_hash.is_some()),
            ("max_pin_failures", self.max_pin_failures.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        if left.is_empty() {
            return Ok(());
        }
        Err(format!(
            "[token] still has {}: PINs are checked by the nodes now, each counting its own failures, and the \
             coordinator must not hold the PIN hashes. Move user_pin_hash, so_pin_hash and max_pin_failures into a \
             [token] section of every node's node.toml (the same on every node), restart the nodes, then delete \
             them from this file",
            left.join(", ")
        ))
    }
}

/// The token: its description; its PIN state comes from the nodes.
#[derive(Debug)]
pub struct Token {
    config: TokenConfig,
}

impl Token {
    /// The token described by `config` (refused if it still holds PIN settings: [`TokenConfig::check`]).
    pub fn new(config: TokenConfig) -> Result<Self, String> {
        config.check()?;
        Ok(Token { config })
    }

    /// The token's description, and its PIN state as t nodes support it (see the module docs).
    pub async fn info(&self, nodes: &NodePool) -> TokenInfo {
        let state = pin_state(nodes).await;
        TokenInfo {
            label: self.config.label.clone(),
            serial: self.config.serial.clone(),
            user_pin_failures: state.user_failures,
            user_pin_locked: state.user_locked,
            so_pin_locked: state.so_locked,
            max_pin_failures: state.max_failures,
            min_pin_len: u32::try_from(MIN_PIN_LEN).unwrap_or(u32::MAX),
            max_pin_len: u32::try_from(MAX_PIN_LEN).unwrap_or(u32::MAX),
        }
    }
}

/// The PIN state of the cluster, as t nodes support it (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterPinState {
    /// The t-th highest user-PIN failure count the nodes reported (0 with fewer than t reports).
    pub user_failures: u32,
    /// Whether at least t nodes say the user PIN is locked.
    pub user_locked: bool,
    /// Whether at least t nodes say the security officer's PIN is locked.
    pub so_locked: bool,
    /// The t-th highest limit the nodes reported (0 with fewer than t reports).
    pub max_failures: u32,
    /// How many nodes reported.
    pub reports: usize,
}

/// The t-th highest of `values` (`None` with fewer than t).
fn supported(mut values: Vec<u32>, t: usize) -> Option<u32> {
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.get(t.checked_sub(1)?).copied()
}

/// Asks the member nodes for their PIN counters and combines them as t nodes support (see the module docs). Nodes
/// that failed a moment ago are passed over while at least t others remain (so that a node that is down does not
/// slow every `C_GetTokenInfo` down by a timeout).
pub async fn pin_state(nodes: &NodePool) -> ClusterPinState {
    let t = usize::from(nodes.membership().threshold).max(1);
    let all = nodes.ids();
    let up: Vec<NodeId> = all
        .iter()
        .copied()
        .filter(|&node| !nodes.recently_failed(node))
        .collect();
    let asked = if up.len() >= t { up } else { all };
    let answers = nodes
        .call_each(&asked, |_| NodeRequest::PinState, STATE_TIMEOUT)
        .await;
    let mut reports: Vec<PinState> = Vec::new();
    for (node, answer) in answers {
        match answer {
            Ok(NodeResponse::PinState(state)) => reports.push(state),
            Ok(_) => tracing::warn!(node, "a node answered its PIN counters with something else"),
            Err(e) => tracing::debug!(node, error = %e, "no PIN counters from a node"),
        }
    }
    if reports.len() < t {
        tracing::warn!(
            reports = reports.len(),
            threshold = t,
            "too few nodes report their PIN counters: the token's PIN state is unknown (shown as 0)"
        );
    }
    let locked = |user: PinUser| reports.iter().filter(|s| s.of(user).locked).count() >= t;
    ClusterPinState {
        user_failures: supported(reports.iter().map(|s| s.user.failures).collect(), t).unwrap_or(0),
        user_locked: locked(PinUser::User),
        so_locked: locked(PinUser::SecurityOfficer),
        max_failures: supported(reports.iter().map(|s| s.max_failures).collect(), t).unwrap_or(0),
        reports: reports.len(),
    }
}

/// What one node said to a PIN check.
enum Answer {
    Accepted,
    Incorrect,
    Locked,
    /// No usable answer: unreachable, sealed, another error, or an answer of the wrong kind (why, in words).
    Silent(String),
}

fn classify(
    node: NodeId,
    joined: Result<Result<NodeResponse, NodeCallError>, tokio::task::JoinError>,
) -> Answer {
    match joined {
        Ok(Ok(NodeResponse::Ok)) => Answer::Accepted,
        Ok(Err(NodeCallError::Refused { error, .. })) if error.kind == ErrorKind::PinIncorrect => {
            Answer::Incorrect
        }
        Ok(Err(NodeCallError::Refused { error, .. })) if error.kind == ErrorKind::PinLocked => {
            Answer::Locked
        }
        Ok(Ok(_)) => Answer::Silent(format!(
            "node {node} answered something other than a PIN check"
        )),
        Ok(Err(e)) => Answer::Silent(e.to_string()),
        Err(e) => Answer::Silent(format!("node {node}: the PIN check task failed: {e}")),
    }
}

/// Checks a login's PIN on every member node and decides by the threshold (see the module docs). Each node counts
/// its own failures; the PIN is never logged.
///
/// The checks run as tasks of their own: the login succeeds as soon as t nodes accepted, without waiting for a node
/// that is down to time out, and the other nodes still get their check (which resets their counters; a node that
/// refuses it is logged when its answer comes). A refusal waits for every answer (each bounded by
/// [`CHECK_TIMEOUT`]), to say why.
pub async fn check_pin(nodes: &NodePool, user: PinUser, pin: &SecretBytes) -> Result<(), Error> {
    use futures_util::StreamExt;
    let t = usize::from(nodes.membership().threshold).max(1);
    let mut checks: futures_util::stream::FuturesUnordered<_> = nodes
        .ids()
        .into_iter()
        .map(|node| {
            let (pool, request) = (
                nodes.clone(),
                NodeRequest::CheckPin {
                    user,
                    pin: pin.clone(),
                },
            );
            let task = tokio::spawn(async move { pool.call(node, &request, CHECK_TIMEOUT).await });
            async move { (node, task.await) }
        })
        .collect();
    let (mut accepted, mut incorrect, mut locked, mut silent): (
        Vec<NodeId>,
        Vec<NodeId>,
        Vec<NodeId>,
        Vec<NodeId>,
    ) = Default::default();
    let mut problems = Vec::new();
    while accepted.len() < t {
        let Some((node, joined)) = checks.next().await else {
            break;
        };
        match classify(node, joined) {
            Answer::Accepted => accepted.push(node),
            Answer::Incorrect => incorrect.push(node),
            Answer::Locked => locked.push(node),
            Answer::Silent(problem) => {
                silent.push(node);
                problems.push(problem);
            }
        }
    }
    if accepted.len() >= t {
        // Logged in. The nodes still checking are heard out in the background: one that refuses the PIN the
        // threshold accepted is worth a line (its PIN is locked, its hashes differ, or it lies).
        let mut refused: Vec<NodeId> = incorrect.into_iter().chain(locked).collect();
        tokio::spawn(async move {
            while let Some((node, joined)) = checks.next().await {
                if matches!(classify(node, joined), Answer::Incorrect | Answer::Locked) {
                    refused.push(node);
                }
            }
            if !refused.is_empty() {
                refused.sort_unstable();
                tracing::warn!(?user, ?refused, ?accepted, "nodes refused a PIN that the threshold of nodes accepted (a node whose PIN is locked, whose hashes differ, or that lies)");
            }
        });
        return Ok(());
    }
    let outcome = format!(
        "accepted by nodes {accepted:?}, wrong PIN on {incorrect:?}, locked on {locked:?}, no answer from \
         {silent:?}; {t} must accept"
    );
    if !accepted.is_empty() {
        tracing::warn!(?user, %outcome, "nodes accepted a PIN that too few others accepted (a node whose hashes differ, or that lies)");
    }
    if locked.len() >= t {
        return Err(Error::PinLocked(format!(
            "the PIN is locked after too many wrong PINs ({outcome})"
        )));
    }
    if accepted.len() + incorrect.len() + locked.len() >= t {
        return Err(Error::PinIncorrect(format!("wrong PIN ({outcome})")));
    }
    Err(Error::Unavailable {
        message: format!(
            "the PIN could not be checked: too few nodes answered ({outcome}): {}",
            problems.join("; ")
        ),
        nodes: silent,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_supported_value_is_the_t_th_highest() {
        assert_eq!(supported(vec![2, 9, 2], 2), Some(2));
        assert_eq!(supported(vec![0, 2, 2], 2), Some(2));
        assert_eq!(supported(vec![9, 9, 1], 2), Some(9));
        assert_eq!(supported(vec![3], 2), None);
        assert_eq!(supported(vec![3, 1], 1), Some(3));
    }

    #[test]
    fn a_config_with_the_old_pin_settings_is_refused_with_what_to_do() {
        let old: TokenConfig = toml::from_str(
            "label = \"vHSM\"\nserial = \"01\"\nuser_pin_hash = \"$argon2id$v=19$m=19456,t=2,p=1$x$y\"\n\
             so_pin_hash = \"$argon2id$v=19$m=19456,t=2,p=1$x$y\"\nmax_pin_failures = 5\n",
        )
        .unwrap();
        let e = Token::new(old).unwrap_err();
        assert!(
            e.contains("user_pin_hash, so_pin_hash, max_pin_failures")
                && e.contains("node.toml")
                && e.contains("checked by the nodes"),
            "{e}"
        );
        // Other unknown fields are refused as before.
        assert!(
            toml::from_str::<TokenConfig>("label = \"a\"\nserial = \"b\"\npin = \"1\"\n").is_err()
        );
        // A config without them is taken, and written without them.
        let new: TokenConfig = toml::from_str("label = \"vHSM\"\nserial = \"01\"\n").unwrap();
        Token::new(new.clone()).unwrap();
        let text = toml::to_string(&new).unwrap();
        assert!(!text.contains("pin"), "{text}");
    }
}
