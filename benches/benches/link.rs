//! Authorizations per second and latency through the real link and the real simulator over
//! mutual TLS 1.3 on this machine, the simulator applying its issuer rules to every message.
//! The simulator runs on its own tokio runtime (its own threads) in this process, or as the real
//! binary in a process of its own.
//!
//! - `link/pipelined/{1,4}conn`: many authorizations in flight (512 concurrent callers) through
//!   one and through four connections; the figure is elements (authorizations) per second.
//! - `link/pipelined_to_process/1conn`: the same through one connection to the release
//!   `simulator` binary running as a process of its own (built first if stale).
//! - `link/one_in_flight`: one caller, one request at a time (round-trip latency).
//! - `fixed_rate_20k`: not a criterion measurement but an open-loop run at 20,000/s for 3 s,
//!   latency measured from each request's scheduled start (no coordinated omission); prints
//!   p50/p90/p99/p99.9/max to stderr, through one and through four connections, with the
//!   simulator in this process and as a process of its own.
// criterion_group! generates a public `benches` function its macro gives no place to document.
#![allow(missing_docs)]
#![allow(clippy::print_stderr)] // a bench reports on stderr

use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::latency;
use card::{CustomerNumber, Cvc, MerchantId, Pan, Token};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use link::{CardRef, Link};
use testkit::cards::{PLAIN_APPROVED, TEST_CVC};
use testkit::network::{MERCHANT, Sim, TestVault, link_config, purchase};
use testkit::processes::{Binaries, SimulatorProcess};

struct Bench {
    link: Link,
    _network: Network,
    _dir: tempfile::TempDir,
}

/// Where the simulator runs.
#[derive(Debug, Clone, Copy)]
enum Where {
    /// On a runtime of its own in this process.
    InProcess,
    /// The release `simulator` binary in a process of its own, as deployed.
    Process,
}

enum Network {
    InProcess {
        _sim: Box<Sim>,
        _rt: tokio::runtime::Runtime,
    },
    /// The runtime drains the child's stdout; the child is killed when this drops.
    Process {
        _process: Box<SimulatorProcess>,
        _rt: tokio::runtime::Runtime,
    },
}

fn start(rt: &tokio::runtime::Runtime, connections: usize, at: Where) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let sim_rt = runtime();
    let (network, iso_addr, pki) = match at {
        Where::InProcess => {
            let sim = sim_rt.block_on(Sim::start(simulator::Faults::default()));
            let (iso, pki) = (sim.handle.iso_addr, sim.pki.clone());
            let network = Network::InProcess {
                _sim: Box::new(sim),
                _rt: sim_rt,
            };
            (network, iso, pki)
        }
        Where::Process => {
            let bins = Binaries::locate().unwrap();
            let process = sim_rt
                .block_on(SimulatorProcess::start(
                    &bins.simulator,
                    &dir.path().join("simulator"),
                ))
                .unwrap();
            let pki = process.pki().unwrap();
            let iso = process.iso_addr;
            let network = Network::Process {
                _process: Box::new(process),
                _rt: sim_rt,
            };
            (network, iso, pki)
        }
    };
    let mut config = link_config(&pki, &[iso_addr]).unwrap();
    config.connections = connections;
    config.max_in_flight = 512;
    let link = rt.block_on(async {
        let store =
            store::Store::open(store::EngineKind::Redb, &dir.path().join("a.redb")).unwrap();
        // An empty vault: every authorization is expected approved, so no reversal needs a card.
        let link = Link::start(config, store, Arc::new(TestVault::default())).unwrap();
        assert!(link.wait_ready(Duration::from_secs(10)).await);
        // Let every connection of the pool sign on before measuring.
        let m = link.metrics();
        testkit::eventually("every connection up", async || {
            (0..connections).all(|s| m.state(s) == link::ConnectionState::Up)
        })
        .await;
        link
    });
    Bench {
        link,
        _network: network,
        _dir: dir,
    }
}

async fn authorize_one(link: &Link, pan: &Pan, cvc: &Cvc, n: u64) {
    let outcome = link
        .authorize(purchase(
            pan,
            cvc,
            CardRef {
                merchant: MerchantId::parse(MERCHANT).unwrap(),
                customer: CustomerNumber::parse("bench").unwrap(),
                token: Token::from_bytes([7; 16]),
                payment: None,
            },
            100 + n % 1000,
        ))
        .await
        .expect("authorization");
    assert!(
        matches!(outcome, link::LinkOutcome::Approved { .. }),
        "{outcome:?}"
    );
}

/// `total` authorizations by `callers` concurrent callers; returns the wall time.
async fn run(link: &Link, callers: u64, total: u64) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let link = link.clone();
            let share = total / callers + u64::from(c < total % callers);
            tokio::spawn(async move {
                let pan = Pan::parse(PLAIN_APPROVED).unwrap();
                let cvc = Cvc::from_ascii(TEST_CVC).unwrap();
                for i in 0..share {
                    authorize_one(&link, &pan, &cvc, i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

/// Worker threads of each side's runtime (`LINK_BENCH_WORKERS`, default 2). On a 2-core
/// machine, 1 gives the link and the simulator a core each instead of four threads taking turns.
fn workers() -> usize {
    std::env::var("LINK_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_all()
        .build()
        .unwrap()
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("link");
    group.throughput(Throughput::Elements(1));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));
    for connections in [1, 4] {
        let bench = start(&rt, connections, Where::InProcess);
        group.bench_function(format!("pipelined/{connections}conn"), |b| {
            b.iter_custom(|iters| rt.block_on(run(&bench.link, 512, iters)))
        });
    }
    let bench = start(&rt, 1, Where::Process);
    group.bench_function("pipelined_to_process/1conn", |b| {
        b.iter_custom(|iters| rt.block_on(run(&bench.link, 512, iters)))
    });
    drop(bench);
    let bench = start(&rt, 1, Where::InProcess);
    group.bench_function("one_in_flight", |b| {
        b.iter_custom(|iters| rt.block_on(run(&bench.link, 1, iters)))
    });
    group.finish();
}

/// Open loop at `rate` per second for `secs`: every millisecond the due requests start,
/// whatever happened to the earlier ones.
fn fixed_rate(c: &mut Criterion) {
    let _ = c;
    for at in [Where::InProcess, Where::Process] {
        for connections in [1, 4] {
            fixed_rate_over(connections, at);
        }
    }
}

fn fixed_rate_over(connections: usize, at: Where) {
    let rate: u64 = 20_000;
    let secs: u64 = 3;
    let rt = runtime();
    let bench = start(&rt, connections, at);
    let (latencies, lags) = rt.block_on(async {
        // The schedule: `rate / 1000` requests due at every millisecond tick (tokio's timer
        // granularity). Latency runs from when the tick actually fired; how late ticks fired
        // (tokio rounds timer deadlines up to the next millisecond, and a saturated machine delays
        // the driver) is reported separately as driver lag, so it cannot hide a backlog.
        let per_tick = rate / 1000;
        let mut tasks = Vec::with_capacity((rate * secs) as usize);
        let mut lags = latency::histogram();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for t in 0..secs * 1000 {
            let due = tick.tick().await;
            let fired = tokio::time::Instant::now();
            lags.saturating_record(latency::micros(fired - due));
            for i in 0..per_tick {
                let link = bench.link.clone();
                let n = t * per_tick + i;
                tasks.push(tokio::spawn(async move {
                    let pan = Pan::parse(PLAIN_APPROVED).unwrap();
                    let cvc = Cvc::from_ascii(TEST_CVC).unwrap();
                    authorize_one(&link, &pan, &cvc, n).await;
                    fired.elapsed()
                }));
            }
        }
        let mut latencies = latency::histogram();
        for t in tasks {
            latencies.saturating_record(latency::micros(t.await.unwrap()));
        }
        (latencies, lags)
    });
    eprintln!(
        "fixed_rate_20k: {} authorizations at {rate}/s over {connections} connection(s), simulator {at:?}: {}",
        latencies.len(),
        latency::summary(&latencies),
    );
    eprintln!(
        "fixed_rate_20k: driver lag (tick fired after due) {}",
        latency::summary(&lags),
    );
}

criterion_group!(benches, throughput, fixed_rate);
criterion_main!(benches);
