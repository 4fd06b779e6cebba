//! A UDP proxy in front of every node, with faults per link: latency, loss, reordering, cuts.
//!
//! [`UdpProxy::install`] (before the members start) moves each node `j` to a new private port and binds, on the
//! address everyone else dials for it (the one `vhsm init` wrote), a proxy socket that forwards to it. Every
//! datagram to node `j` thus passes the proxy; the proxy tells the link it belongs to by its source: a node dials
//! from the port it listens on (its one QUIC endpoint serves and dials), so a datagram from node `i`'s private
//! address is on the link node `i` → node `j`, and any other source is the coordinator's (it dials from a port of
//! its own, chosen by the OS). For each source the proxy keeps an upstream socket of its own, connected to the node,
//! so the node's replies come back on it and are sent on to that source from the proxy socket: both directions of
//! a link take the same way and get the same faults.
//!
//! Per link ([`UdpProxy::set`], or every link at once with [`UdpProxy::set_all`]), each datagram, each way:
//! - is dropped while the link is cut ([`Partitions::cut`]);
//! - is dropped with probability `loss`;
//! - is otherwise sent after `latency`, in order (a FIFO delay line per direction), unless it is held back (with
//!   probability `reorder`) by `reorder_delay` more, on its own, so that datagrams sent after it overtake it.
//!
//! The proxy runs on a runtime of its own (one worker thread), so it serves whatever the test's runtime is doing,
//! and stops when dropped. What it did per link is counted ([`UdpProxy::counts`]).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context;
use tokio::{net::UdpSocket, sync::mpsc, time::Instant};

use super::{node_addresses, rewrite_addresses, Partitions, Side};
use crate::process::{free_port, ProcessCluster};

/// What a link does to the datagrams on it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Added to every datagram, each way.
    pub latency: Duration,
    /// The fraction of datagrams dropped (0.0 – 1.0), each way.
    pub loss: f64,
    /// The fraction of datagrams held back by `reorder_delay` more than the others.
    pub reorder: f64,
    /// How much longer a held-back datagram takes.
    pub reorder_delay: Duration,
}

impl LinkFaults {
    /// A perfect link.
    pub const NONE: LinkFaults = LinkFaults {
        latency: Duration::ZERO,
        loss: 0.0,
        reorder: 0.0,
        reorder_delay: Duration::ZERO,
    };

    /// `latency` on every datagram.
    pub fn latency(latency: Duration) -> Self {
        LinkFaults {
            latency,
            ..Self::NONE
        }
    }

    /// These faults, and a fraction `loss` of datagrams dropped.
    pub fn with_loss(self, loss: f64) -> Self {
        LinkFaults { loss, ..self }
    }

    /// These faults, and a fraction `reorder` of datagrams held back by `by` more.
    pub fn with_reorder(self, reorder: f64, by: Duration) -> Self {
        LinkFaults {
            reorder,
            reorder_delay: by,
            ..self
        }
    }
}

impl std::fmt::Display for LinkFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "latency {:?}, loss {:.1} %, reorder {:.1} % by {:?}",
            self.latency,
            self.loss * 100.0,
            self.reorder * 100.0,
            self.reorder_delay
        )
    }
}

/// What a link did with the datagrams it was given (both ways).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// Sent on (held back or not).
    pub forwarded: u64,
    /// Of those, held back (reordered).
    pub held_back: u64,
    /// Dropped as loss.
    pub lost: u64,
    /// Dropped because the link was cut.
    pub cut: u64,
}

impl LinkCounts {
    fn add(&mut self, other: &LinkCounts) {
        self.forwarded += other.forwarded;
        self.held_back += other.held_back;
        self.lost += other.lost;
        self.cut += other.cut;
    }
}

impl std::fmt::Display for LinkCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} datagrams forwarded ({} held back), {} lost, {} dropped by cuts",
            self.forwarded, self.held_back, self.lost, self.cut
        )
    }
}

/// A directed link: (the side that dials, the node it dials).
type Link = (Side, Side);

#[derive(Debug, Default)]
struct LinkState {
    /// `None`: the proxy's default faults.
    faults: Option<LinkFaults>,
    cut: bool,
    counts: LinkCounts,
}

#[derive(Debug, Default)]
struct Links {
    default: LinkFaults,
    links: HashMap<Link, LinkState>,
}

/// What to do with one datagram.
enum Verdict {
    Drop,
    /// Send after this long, in order with the others.
    InOrder(Duration),
    /// Send after this long, on its own.
    HeldBack(Duration),
}

#[derive(Debug, Default)]
struct Shared {
    links: Mutex<Links>,
}

impl Shared {
    fn verdict(&self, link: Link) -> Verdict {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let default = links.default;
        let state = links.links.entry(link).or_default();
        let faults = state.faults.unwrap_or(default);
        if state.cut {
            state.counts.cut += 1;
            return Verdict::Drop;
        }
        if faults.loss > 0.0 && rand::random::<f64>() < faults.loss {
            state.counts.lost += 1;
            return Verdict::Drop;
        }
        state.counts.forwarded += 1;
        if faults.reorder > 0.0 && rand::random::<f64>() < faults.reorder {
            state.counts.held_back += 1;
            return Verdict::HeldBack(faults.latency + faults.reorder_delay);
        }
        Verdict::InOrder(faults.latency)
    }

    fn set_cut(&self, link: Link, cut: bool) {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        links.links.entry(link).or_default().cut = cut;
    }
}

/// Where a direction of a link delivers: the node (an upstream socket connected to it), or a source (from the
/// proxy socket).
#[derive(Clone)]
enum Sink {
    Upstream(Arc<UdpSocket>),
    Back(Arc<UdpSocket>, SocketAddr),
}

impl Sink {
    async fn send(&self, datagram: &[u8]) {
        // A datagram that cannot be sent is lost, as on a real network (e.g. the node is down).
        let _ = match self {
            Sink::Upstream(socket) => socket.send(datagram).await,
            Sink::Back(socket, to) => socket.send_to(datagram, to).await,
        };
    }
}

/// One direction of a link: datagrams in, each sent when its time comes, in order.
struct DelayLine {
    queue: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    sink: Sink,
}

impl DelayLine {
    fn new(sink: Sink) -> Self {
        let (queue, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        let out = sink.clone();
        tokio::spawn(async move {
            while let Some((at, datagram)) = rx.recv().await {
                tokio::time::sleep_until(at).await;
                out.send(&datagram).await;
            }
        });
        DelayLine { queue, sink }
    }

    fn pass(&self, verdict: Verdict, datagram: Vec<u8>) {
        match verdict {
            Verdict::Drop => {}
            Verdict::InOrder(delay) => {
                let _ = self.queue.send((Instant::now() + delay, datagram));
            }
            Verdict::HeldBack(delay) => {
                let sink = self.sink.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    sink.send(&datagram).await;
                });
            }
        }
    }
}

/// Every node behind a proxy socket; see the module docs.
pub struct UdpProxy {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    nodes: u16,
}

impl std::fmt::Debug for UdpProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpProxy")
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

/// The largest datagram the proxy carries (QUIC's are at most about 1.5 kB on loopback unless MTU discovery grows
/// them; 64 kB is every UDP datagram).
const MAX_DATAGRAM: usize = 65_536;

impl UdpProxy {
    /// Puts every node of `cluster` (not started yet) behind a proxy socket on the address the others dial for it,
    /// moving the node to a new private port; every link starts perfect.
    pub fn install(cluster: &ProcessCluster) -> anyhow::Result<Self> {
        let public = node_addresses(cluster)?;
        let private: HashMap<u16, SocketAddr> = public
            .iter()
            .map(|&(id, addr)| (id, SocketAddr::new(addr.ip(), free_port())))
            .collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("udp-proxy")
            .enable_all()
            .build()
            .context("cannot start the proxy's runtime")?;
        let shared = Arc::new(Shared::default());
        let senders: Arc<HashMap<SocketAddr, u16>> =
            Arc::new(private.iter().map(|(&id, &addr)| (addr, id)).collect());
        for &(id, addr) in &public {
            let target = *private.get(&id).context("a node without a private port")?;
            let socket = std::net::UdpSocket::bind(addr)
                .with_context(|| format!("cannot bind the proxy for node {id} on {addr}"))?;
            socket.set_nonblocking(true)?;
            let socket = {
                let _entered = runtime.enter();
                Arc::new(UdpSocket::from_std(socket)?)
            };
            runtime.spawn(serve(shared.clone(), socket, id, target, senders.clone()));
        }
        let listen = |id: u16| {
            private
                .get(&id)
                .copied()
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
        };
        let dial = |id: u16| {
            public
                .iter()
                .find(|(n, _)| *n == id)
                .map(|(_, a)| *a)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
        };
        rewrite_addresses(cluster, listen, dial)?;
        Ok(UdpProxy {
            shared,
            runtime: Some(runtime),
            nodes: cluster.nodes,
        })
    }

    /// Sets the faults of the link `from` → `to` (`to` a node), both ways.
    pub fn set(&self, from: Side, to: Side, faults: LinkFaults) {
        let mut links = self
            .shared
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        links.links.entry((from, to)).or_default().faults = Some(faults);
    }

    /// Sets the faults of every link (cuts stay as they are).
    pub fn set_all(&self, faults: LinkFaults) {
        let mut links = self
            .shared
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        links.default = faults;
        for state in links.links.values_mut() {
            state.faults = None;
        }
    }

    /// What each link did so far (links that carried nothing are left out).
    pub fn counts(&self) -> Vec<(Side, Side, LinkCounts)> {
        let links = self
            .shared
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut counts: Vec<_> = links
            .links
            .iter()
            .filter(|(_, s)| s.counts != LinkCounts::default())
            .map(|(&(from, to), s)| (from, to, s.counts))
            .collect();
        counts.sort_by_key(|&(from, to, _)| (from, to));
        counts
    }

    /// What every link did so far, added up.
    pub fn total(&self) -> LinkCounts {
        let mut total = LinkCounts::default();
        for (_, _, counts) in self.counts() {
            total.add(&counts);
        }
        total
    }

    fn links_between(&self, a: Side, b: Side) -> Vec<Link> {
        [(a, b), (b, a)]
            .into_iter()
            .filter(|&(from, to)| matches!(to, Side::Node(_)) && from != to)
            .collect()
    }
}

impl Partitions for UdpProxy {
    fn kind(&self) -> &'static str {
        "udp-proxy"
    }

    fn cut(&self, a: Side, b: Side) -> anyhow::Result<()> {
        for link in self.links_between(a, b) {
            self.shared.set_cut(link, true);
        }
        Ok(())
    }

    fn heal(&self, a: Side, b: Side) -> anyhow::Result<()> {
        for link in self.links_between(a, b) {
            self.shared.set_cut(link, false);
        }
        Ok(())
    }

    fn heal_all(&self) -> anyhow::Result<()> {
        let mut links = self
            .shared
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for state in links.links.values_mut() {
            state.cut = false;
        }
        Ok(())
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Serves node `node`'s proxy socket: each source gets an upstream socket connected to the node (`target`) and
/// a delay line each way; `senders` names the nodes by the private address they send from.
async fn serve(
    shared: Arc<Shared>,
    public: Arc<UdpSocket>,
    node: u16,
    target: SocketAddr,
    senders: Arc<HashMap<SocketAddr, u16>>,
) {
    let mut sources: HashMap<SocketAddr, DelayLine> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = match public.recv_from(&mut buf).await {
            Ok(received) => received,
            // E.g. an ICMP error for an earlier send_to: nothing to do with this socket's next datagram.
            Err(_) => continue,
        };
        let Some(datagram) = buf.get(..len).map(<[u8]>::to_vec) else {
            continue;
        };
        let link = (
            senders
                .get(&from)
                .map_or(Side::Coordinator, |&i| Side::Node(i)),
            Side::Node(node),
        );
        let line = match sources.entry(from) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                match upstream(&shared, &public, from, target, link).await {
                    Ok(line) => e.insert(line),
                    Err(_) => continue,
                }
            }
        };
        line.pass(shared.verdict(link), datagram);
    }
}

/// A new upstream socket for `from`, connected to the node at `target`, with its reader that sends the node's
/// replies back to `from` through `public`; returns the delay line towards the node.
async fn upstream(
    shared: &Arc<Shared>,
    public: &Arc<UdpSocket>,
    from: SocketAddr,
    target: SocketAddr,
    link: Link,
) -> std::io::Result<DelayLine> {
    let socket = Arc::new(UdpSocket::bind(SocketAddr::new(target.ip(), 0)).await?);
    socket.connect(target).await?;
    let back = DelayLine::new(Sink::Back(public.clone(), from));
    let reader = socket.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match reader.recv(&mut buf).await {
                Ok(len) => {
                    if let Some(datagram) = buf.get(..len) {
                        back.pass(shared.verdict(link), datagram.to_vec());
                    }
                }
                // A connected socket reports an ICMP "port unreachable" (the node is down) as an error here.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    Ok(DelayLine::new(Sink::Upstream(socket)))
}
