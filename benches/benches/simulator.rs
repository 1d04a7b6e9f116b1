//! The simulator's own capacity: pipelined purchases over mutual TLS, answered by the issuer
//! rules and booked in the ledger, through one and through four connections, with a plain
//! in-bench ISO client (no link), so the link bench can tell whether the simulator is its limit.
//!
//! `cargo bench -p benches --bench simulator` — criterion reports time per batch and
//! elements (authorizations) per second; then a fixed-rate run (20,000 purchases per second for
//! 3 s on one connection) prints latency percentiles measured at the client.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use futures::{SinkExt, StreamExt};
use iso8583::{FrameCodec, Mti, Stan, tag};
use simulator::{DevPki, SimConfig, SimulatorHandle};
use testkit::cards::{MC_FRICTIONLESS, TEST_CVC};
use testkit::iso::{payment, tls_connect};
use testkit::network::Sim;
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite};

const BATCH: u64 = 4_000;

/// The body of a 0200 purchase on the frictionless Mastercard with a fresh STAN and the current
/// second in DE 7 (the testkit's builder, as the link builds it), so that no two are duplicates.
fn purchase() -> Bytes {
    payment(
        Mti::FINANCIAL_REQUEST,
        MC_FRICTIONLESS,
        1_000,
        &[(tag::CVC2, TEST_CVC)],
    )
    .as_bytes()
    .clone()
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;
type Reader = FramedRead<tokio::io::ReadHalf<Tls>, FrameCodec>;
type Writer = FramedWrite<tokio::io::WriteHalf<Tls>, FrameCodec>;

async fn connect(sim: &SimulatorHandle, pki: &DevPki) -> (Reader, Writer) {
    let tls = tls_connect(sim.iso_addr, pki).await.unwrap();
    let (r, w) = tokio::io::split(tls);
    (
        FramedRead::new(r, FrameCodec),
        FramedWrite::new(w, FrameCodec),
    )
}

/// A simulator on `rt` that keeps a ledger big enough for a run in memory.
fn simulator(rt: &tokio::runtime::Runtime) -> Sim {
    let pki = DevPki::generate();
    let mut config = SimConfig::with_pki(&pki);
    config.ledger_in_memory = 10_000;
    rt.block_on(Sim::start_with(config, pki))
}

/// Sends `frames` pipelined on one connection while reading the same number of responses.
async fn exchange(reader: &mut Reader, writer: &mut Writer, frames: Vec<Bytes>) {
    let count = frames.len();
    let send = async {
        for frame in frames {
            writer.feed(frame).await.unwrap();
        }
        SinkExt::<Bytes>::flush(writer).await.unwrap();
    };
    let receive = async {
        for _ in 0..count {
            reader.next().await.unwrap().unwrap();
        }
    };
    tokio::join!(send, receive);
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Sim { handle: sim, pki } = simulator(&rt);
    let mut group = c.benchmark_group("simulator");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for connections in [1usize, 4] {
        let mut conns = rt.block_on(async {
            let mut out = Vec::new();
            for _ in 0..connections {
                out.push(connect(&sim, &pki).await);
            }
            out
        });
        group.bench_function(
            format!("pipelined_purchases/{connections}_connections"),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let per = BATCH as usize / connections;
                        let batches: Vec<Vec<Bytes>> = (0..connections)
                            .map(|_| (0..per).map(|_| purchase()).collect())
                            .collect();
                        let started = Instant::now();
                        rt.block_on(async {
                            let runs = conns
                                .iter_mut()
                                .zip(batches)
                                .map(|((r, w), frames)| exchange(r, w, frames));
                            futures::future::join_all(runs).await;
                        });
                        total += started.elapsed();
                    }
                    total
                });
            },
        );
    }
    group.finish();
    rt.block_on(sim.shutdown());
}

const RATE_PER_SEC: u64 = 20_000;
const RATE_SECONDS: u64 = 3;
/// Requests are sent in a burst every tick: 20 per millisecond.
const TICK: Duration = Duration::from_millis(1);

/// Sends purchases at a fixed rate on one connection and returns every round-trip time, in
/// microseconds, sorted.
async fn fixed_rate(sim: &SimulatorHandle, pki: &DevPki) -> Vec<u64> {
    let (mut reader, mut writer) = connect(sim, pki).await;
    let total = RATE_PER_SEC * RATE_SECONDS;
    let per_tick = RATE_PER_SEC / 1_000;
    // Send time per STAN, in nanoseconds since `origin`; STANs are below 1,000,000.
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..=Stan::MAX).map(|_| AtomicU64::new(0)).collect());
    let origin = Instant::now();
    let send = {
        let sent = sent.clone();
        async move {
            let mut ticks = tokio::time::interval(TICK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut remaining = total;
            while remaining > 0 {
                ticks.tick().await;
                for _ in 0..per_tick.min(remaining) {
                    let frame = purchase();
                    let stan = stan_of(&frame);
                    sent[stan].store(nanos_since(origin), Ordering::Relaxed);
                    writer.feed(frame).await.unwrap();
                }
                SinkExt::<Bytes>::flush(&mut writer).await.unwrap();
                remaining -= per_tick.min(remaining);
            }
            writer
        }
    };
    let receive = async {
        let mut rtts = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let frame = reader.next().await.unwrap().unwrap();
            let stan = iso8583::Message::decode(frame)
                .unwrap()
                .stan()
                .unwrap()
                .value() as usize;
            let at = nanos_since(origin);
            rtts.push((at - sent[stan].load(Ordering::Relaxed)) / 1_000);
        }
        rtts
    };
    let (_writer, mut rtts) = tokio::join!(send, receive);
    rtts.sort_unstable();
    rtts
}

fn stan_of(frame: &Bytes) -> usize {
    iso8583::Message::decode(frame.clone())
        .unwrap()
        .stan()
        .unwrap()
        .value() as usize
}

fn nanos_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Sim { handle: sim, pki } = simulator(&rt);
    rt.block_on(async {
        let rtts = fixed_rate(&sim, &pki).await;
        println!(
            "simulator fixed rate {RATE_PER_SEC}/s for {RATE_SECONDS} s, 1 connection, {} answers: \
             p50 {} us, p90 {} us, p99 {} us, p99.9 {} us, max {} us",
            rtts.len(),
            percentile(&rtts, 50.0),
            percentile(&rtts, 90.0),
            percentile(&rtts, 99.0),
            percentile(&rtts, 99.9),
            rtts.last().copied().unwrap_or(0),
        );
        sim.shutdown().await;
    });
}
