//! DKLs23 2-of-3 distributed key generation, per curve, all parties in this process (no network), beside the
//! elementary operation that dominates it: one variable-base scalar multiplication on the same curve.
//!
//! * `<curve> variable-base scalar multiplication` — the baseline: `ProjectivePoint * Scalar` then `to_affine`
//!   with `k256` / `p256`, the operation the base OTs of the DKG are made of.
//! * `<curve> DKLs23 2-of-3 DKG (all parties, in-process)` — one key generation with the work of the three
//!   parties done one after the other on one thread: three `EcdsaDkg` state machines driven through every round
//!   by the in-memory simulator (postcard encoding of every `dkls23` payload and the echo round included).
//!
//! Before the measurements, one-off figures are printed to stderr (not measured by criterion):
//!
//! * the **time per phase** (fastest of three runs), each state-machine call timed, wall time with `Instant` and
//!   CPU time of the thread (Linux), and attributed to the `dkls23` phase it ran (`start` = phase 1,
//!   polynomial; the call completing round 1 = phase 2, share, proof of knowledge and zero-sharing commitments;
//!   completing round 2 = phase 3, the base-OT first messages of the multiplication set-up; completing round 3
//!   = our echo; completing the echo = phase 4, every check and the end of the base OTs), summed over the
//!   parties, with the bytes each round puts on the wire;
//! * **two key generations at once** on two threads against the same two one after the other: what running key
//!   generations in parallel gains when cores are free (this machine has two).
//!
//! See `protocols/src/ecdsa/dkg.rs`, "What key generation costs, and why the pairwise setup is per key".
#![allow(missing_docs)] // `criterion_group!` generates an undocumented public function.
#![allow(clippy::expect_used)] // Benchmark setup: a failure must stop the run.

use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use k256::elliptic_curve::PrimeField;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use vhsm_protocols::ecdsa::{DkgParams, EcdsaCurve, EcdsaDkg, EcdsaMessage};
use vhsm_protocols::simulator::Simulation;
use vhsm_protocols::{Outgoing, ParticipantId, Protocol, Recipient, SessionId};

const IDS: [ParticipantId; 3] = [1, 2, 3];
const THRESHOLD: u16 = 2;
/// A full-size scalar for the baseline (below both group orders).
const SCALAR: [u8; 32] = [0x5a; 32];

/// The three parties of one 2-of-3 DKG.
fn parties(curve: EcdsaCurve, session: SessionId) -> Vec<EcdsaDkg> {
    IDS.iter()
        .map(|me| {
            EcdsaDkg::new(
                curve,
                DkgParams {
                    session,
                    me: *me,
                    participants: IDS.to_vec(),
                    threshold: THRESHOLD,
                },
            )
            .expect("valid DKG parameters")
        })
        .collect()
}

/// One whole DKG, all parties in this process.
fn dkg(curve: EcdsaCurve, rng: &mut ChaCha20Rng) {
    let outcome = Simulation::new(parties(curve, SessionId::random(rng))).run(rng);
    assert!(outcome.errors.is_empty() && outcome.stalled.is_empty());
    assert_eq!(outcome.outputs.len(), IDS.len());
}

/// The steps a state-machine call is attributed to.
const STEPS: [&str; 6] = [
    "phase 1 (polynomial, fragments)",
    "phase 2 (share, proof of knowledge, zero-share commitments)",
    "phase 3 (base-OT first messages: 2 x 256 per pair)",
    "echo (digests of the broadcasts)",
    "phase 4 (checks, base-OT completion, output)",
    "buffering (messages that complete nothing)",
];

/// CPU time of this thread so far (Linux: `/proc/thread-self/schedstat`, nanoseconds on the CPU; the kernel
/// brings it up to date at every tick, so a reading can lag by one tick), or `None` elsewhere.
///
/// The machine the figures were taken on is shared with builds: wall time then counts the time the thread waited
/// for a core, CPU time does not.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// CPU time of this thread since `start`.
fn cpu_since(start: Option<Duration>) -> Option<Duration> {
    Some(thread_cpu()?.saturating_sub(start?))
}

/// Time per step summed over the parties (wall and CPU), and bytes put on the wire per round.
#[derive(Default)]
struct Breakdown {
    time: [Duration; STEPS.len()],
    cpu: [Duration; STEPS.len()],
    bytes_per_round: BTreeMap<u8, usize>,
}

impl Breakdown {
    /// Adds one call's wall and CPU time to `step`.
    fn add(&mut self, step: usize, wall: Duration, cpu: Option<Duration>) {
        if let Some(t) = self.time.get_mut(step) {
            *t += wall;
        }
        if let (Some(t), Some(cpu)) = (self.cpu.get_mut(step), cpu) {
            *t += cpu;
        }
    }

    /// Records what a call sent, copy by copy (a broadcast goes to every other party).
    fn sent(&mut self, out: &[Outgoing<EcdsaMessage>]) {
        for o in out {
            let copies = match o.to {
                Recipient::All => IDS.len() - 1,
                Recipient::One(_) => 1,
            };
            let len = o.message.to_bytes().expect("encodes").len();
            *self.bytes_per_round.entry(o.message.round).or_default() += copies * len;
        }
    }
}

/// The step a `handle` call ran, from what it sent and whether it finished.
fn step_of(out: &[Outgoing<EcdsaMessage>], done: bool) -> usize {
    if done {
        return 4;
    }
    match out.iter().map(|o| o.message.round).max() {
        Some(2) => 1,
        Some(3) => 2,
        Some(4) => 3,
        _ => 5,
    }
}

/// Queues what `from` sent, one copy per recipient.
fn enqueue(
    queue: &mut VecDeque<(ParticipantId, ParticipantId, EcdsaMessage)>,
    from: ParticipantId,
    out: Vec<Outgoing<EcdsaMessage>>,
) {
    for o in out {
        match o.to {
            Recipient::All => {
                for to in IDS.iter().filter(|to| **to != from) {
                    queue.push_back((from, *to, o.message.clone()));
                }
            }
            Recipient::One(to) => queue.push_back((from, to, o.message)),
        }
    }
}

/// One DKG driven by hand (first in, first out), every call timed.
fn breakdown(curve: EcdsaCurve, rng: &mut ChaCha20Rng) -> Breakdown {
    let mut result = Breakdown::default();
    let mut parties: BTreeMap<ParticipantId, EcdsaDkg> = parties(curve, SessionId::random(rng))
        .into_iter()
        .map(|p| (p.participant(), p))
        .collect();
    let mut queue: VecDeque<(ParticipantId, ParticipantId, EcdsaMessage)> = VecDeque::new();
    for (id, party) in parties.iter_mut() {
        let (started, cpu) = (Instant::now(), thread_cpu());
        let out = party.start(rng).expect("starts");
        result.add(0, started.elapsed(), cpu_since(cpu));
        result.sent(&out);
        enqueue(&mut queue, *id, out);
    }
    while let Some((from, to, message)) = queue.pop_front() {
        let party = parties.get_mut(&to).expect("known party");
        let (started, cpu) = (Instant::now(), thread_cpu());
        let out = party.handle(from, message, rng).expect("handles");
        let (wall, cpu) = (started.elapsed(), cpu_since(cpu));
        result.add(step_of(&out, party.is_done()), wall, cpu);
        result.sent(&out);
        enqueue(&mut queue, to, out);
    }
    for party in parties.values_mut() {
        assert!(party.is_done() && party.take_output().is_some());
    }
    result
}

/// Prints the time per phase of `runs` DKGs (the fastest run of each phase), and the bytes per round.
fn print_breakdown(curve: EcdsaCurve, runs: usize, rng: &mut ChaCha20Rng) {
    let all: Vec<Breakdown> = (0..runs).map(|_| breakdown(curve, rng)).collect();
    let first = all.first().expect("at least one run");
    eprintln!(
        "DKLs23 2-of-3 {curve} DKG, in-process, time per phase summed over the 3 parties (fastest of {runs} runs):"
    );
    let fastest = |pick: fn(&Breakdown) -> &[Duration; STEPS.len()], step: usize| {
        all.iter()
            .filter_map(|b| pick(b).get(step).copied())
            .min()
            .unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
    eprintln!(
        "  {:<62} {:>10} {:>10} {:>14}",
        "", "wall ms", "CPU ms", "CPU ms/party"
    );
    for (step, name) in STEPS.iter().enumerate() {
        let (w, c) = (fastest(|b| &b.time, step), fastest(|b| &b.cpu, step));
        wall += w;
        cpu += c;
        eprintln!(
            "  {name:<62} {:>10.1} {:>10.1} {:>14.1}",
            ms(w),
            ms(c),
            ms(c) / IDS.len() as f64
        );
    }
    eprintln!(
        "  {:<62} {:>10.1} {:>10.1} {:>14.1}",
        "total",
        ms(wall),
        ms(cpu),
        ms(cpu) / IDS.len() as f64
    );
    for (round, bytes) in &first.bytes_per_round {
        eprintln!("  round {round}: {bytes} bytes on the wire (all copies)");
    }
}

/// Prints the wall time of two DKGs one after the other and of two at once on two threads.
fn print_parallel(curve: EcdsaCurve, rng: &mut ChaCha20Rng) {
    let seeds: [u64; 2] = [rand::Rng::gen(rng), rand::Rng::gen(rng)];
    let started = Instant::now();
    for seed in seeds {
        dkg(curve, &mut ChaCha20Rng::seed_from_u64(seed));
    }
    let sequential = started.elapsed();
    let started = Instant::now();
    std::thread::scope(|s| {
        for seed in seeds {
            s.spawn(move || dkg(curve, &mut ChaCha20Rng::seed_from_u64(seed)));
        }
    });
    let parallel = started.elapsed();
    eprintln!(
        "DKLs23 2-of-3 {curve}: two DKGs one after the other {:.2} s, two at once on two threads {:.2} s",
        sequential.as_secs_f64(),
        parallel.as_secs_f64()
    );
}

fn keygen(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    for curve in [EcdsaCurve::Secp256k1, EcdsaCurve::P256] {
        print_breakdown(curve, 3, &mut rng);
        print_parallel(curve, &mut rng);

        let mut group = c.benchmark_group(format!("ecdsa_keygen/{curve}"));
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
        match curve {
            EcdsaCurve::Secp256k1 => {
                let scalar = Option::<k256::Scalar>::from(k256::Scalar::from_repr(SCALAR.into()))
                    .expect("a scalar below the order");
                let point = k256::ProjectivePoint::GENERATOR * scalar;
                group.bench_function("variable-base scalar multiplication (k256)", |b| {
                    b.iter(|| (black_box(point) * black_box(scalar)).to_affine())
                });
            }
            EcdsaCurve::P256 => {
                let scalar = Option::<p256::Scalar>::from(p256::Scalar::from_repr(SCALAR.into()))
                    .expect("a scalar below the order");
                let point = p256::ProjectivePoint::GENERATOR * scalar;
                group.bench_function("variable-base scalar multiplication (p256)", |b| {
                    b.iter(|| (black_box(point) * black_box(scalar)).to_affine())
                });
            }
        }
        group.bench_function("DKLs23 2-of-3 DKG (all parties, in-process)", |b| {
            b.iter(|| dkg(curve, &mut rng))
        });
        group.finish();
    }
}

criterion_group!(benches, keygen);
criterion_main!(benches);
