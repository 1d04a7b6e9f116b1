//! Token Pay payments per second and latency through the real merchant API, with every process
//! on this machine: the release `vault`, `simulator` and `authorizer` binaries (built first if
//! stale) on 127.0.0.1, started with the dev defaults on ephemeral ports, and this process as the
//! merchant's server, posting `/pay/tokenpay.cfm` (`TokenType=5`, `Format=5`) with the dev
//! merchant's credentials over HTTP/1.1 keep-alive connections (hyper).
//!
//! Each payment is a new order paid with a card saved through the vault's facade role: the
//! authorizer authenticates the merchant, runs the order engine (durable commits), asks the vault
//! for a grant and the card (two round trips) and authorizes it with the simulator over the ISO
//! 8583 link. Every answer is checked (HTTP 200, `orderstate` Approved); failures are counted and
//! printed, never dropped.
//!
//! - `max rate`: [`CONNECTIONS`] connections (`TOKENPAY_BENCH_CONNECTIONS`), each posting its next
//!   payment as soon as the last one is answered, for one second of warm-up and then
//!   `TOKENPAY_BENCH_SECS` (default 5) seconds measured; prints payments per second and failures.
//! - `fixed rate`: open loop at 1,000 payments per second for 10 s, one request due every
//!   millisecond whatever happened to the earlier ones, latency measured from when it was due
//!   (no coordinated omission); prints p50/p90/p99/p99.9/max, how late the schedule started
//!   them and failures.
//!
//! Not a criterion bench: each phase is one long run against one set of processes, bounded in
//! time (about 20 s with the binaries built), and the processes are stopped at the end.
#![allow(clippy::print_stderr)] // a bench reports on stderr

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::merchant::{Failure, MerchantApi, SavedCustomer, field, saved_customers};
use benches::{latency, pace};
use testkit::cards::PLAIN_APPROVED;
use testkit::processes::VaultProcess;
use testkit::stack::{Stack, StackOptions};

/// Customers with a saved card each, unless `TOKENPAY_BENCH_CUSTOMERS` says otherwise; payments
/// go round them. A shop taking 1,000 payments a second has far more customers than that, each
/// paying rarely; fewer here would make the engine's per-customer lock (turnover limits) a hot
/// spot no shop has (64 customers at 1,000/s is 16 payments a second each). The dev merchant's
/// daily limit (150,000.00 per customer) is far above what a run pays (1.00 each).
const CUSTOMERS: usize = 1_000;

/// Connections of the max-rate phase, unless `TOKENPAY_BENCH_CONNECTIONS` says otherwise. Enough
/// payments in flight to keep every stage busy on two cores (the engine's group commits, the
/// vault's pipelined requests and the link's pipelined authorizations all batch what is in flight:
/// at 10,000/s and a few milliseconds each, Little's law wants some 30–60 in flight), few enough
/// that the figure is the service's throughput, not a queue.
const CONNECTIONS: usize = 64;

/// The fixed rate, payments per second (one due every millisecond) ...
const RATE: u64 = 1_000;
/// ... for this long.
const FIXED_SECS: u64 = 10;

/// What posts payments: the merchant API's client and each customer's Token Pay form.
#[derive(Clone)]
struct Payer {
    api: MerchantApi,
    forms: Arc<Vec<String>>,
}

impl Payer {
    fn new(api: MerchantApi, customers: &[SavedCustomer]) -> Payer {
        let forms = customers
            .iter()
            .map(|c| c.token_pay_form("1.00", false))
            .collect();
        Payer {
            api,
            forms: Arc::new(forms),
        }
    }

    /// Token Pay for payment `n` (customer `n` modulo their number, OrderNumber `<run>-<n>`),
    /// checked: HTTP 200 and its one order Approved.
    async fn pay(&self, run: &str, n: u64) -> Result<(), Failure> {
        let form = &self.forms[(n % self.forms.len() as u64) as usize];
        let order = self
            .api
            .order(
                "/pay/tokenpay.cfm",
                &format!("{form}&OrderNumber={run}-{n}"),
            )
            .await?;
        match field(&order, "orderstate") {
            "Approved" => Ok(()),
            _ => Err(Failure::Unexpected(order.to_string())),
        }
    }
}

/// Failures of a run: how many, and the first few in full.
#[derive(Default)]
struct Failures {
    count: AtomicU64,
    first: std::sync::Mutex<Vec<Failure>>,
}

impl Failures {
    fn record(&self, f: Failure) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap();
        if first.len() < 3 {
            first.push(f);
        }
    }

    fn report(&self, phase: &str) {
        let count = self.count.load(Ordering::Relaxed);
        eprintln!("tokenpay {phase}: {count} failed");
        for f in self.first.lock().unwrap().iter() {
            eprintln!("tokenpay {phase}: failure {f}");
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The processes whose CPU a payment costs: the three children and this one (the merchant's
/// server, whose HTTP client shares the two cores).
fn processes(stack: &Stack) -> Vec<(&'static str, u32)> {
    let mut named = vec![("bench", std::process::id())];
    for (name, pid) in [
        ("authorizer", stack.authorizer().pid()),
        ("vault", stack.vault.as_ref().and_then(VaultProcess::pid)),
        ("simulator", stack.sim.pid()),
    ] {
        named.push((name, pid.expect("a running child has a pid")));
    }
    named
}

/// Each process's CPU time so far.
fn cpu_times(processes: &[(&'static str, u32)]) -> Vec<Duration> {
    processes
        .iter()
        .map(|&(_, pid)| testkit::procstat::usage(pid).expect("/proc").cpu)
        .collect()
}

/// CPU per payment of each process between two readings: unlike payments per second, it hardly
/// moves when other jobs share the machine, so it is the figure to compare code by.
fn report_cpu(processes: &[(&'static str, u32)], before: &[Duration], payments: u64) {
    let after = cpu_times(processes);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / payments.max(1) as f64;
    let mut total = 0.0;
    let parts: Vec<String> = processes
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(&(name, _), (b, a))| {
            let us = per(a.saturating_sub(*b));
            total += us;
            format!("{name} {us:.0} µs")
        })
        .collect();
    eprintln!(
        "tokenpay max rate: CPU per payment {total:.0} µs ({}); two cores allow {:.0} payments/s at that cost",
        parts.join(", "),
        2e6 / total
    );
}

/// `connections` payers, each posting its next payment when the last one is answered, for one
/// second of warm-up (not counted) and `secs` seconds measured.
async fn max_rate(payer: &Payer, connections: u64, secs: u64, processes: &[(&'static str, u32)]) {
    let failures = Arc::new(Failures::default());
    let approved = Arc::new(AtomicU64::new(0));
    // CPU is read from the end of the warm-up (the authenticator's first hash, the connections'
    // set-up) and divided by the payments answered since.
    let answered = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let measured_from = started + Duration::from_secs(1);
    let cpu_before = {
        let processes = processes.to_vec();
        tokio::spawn(async move {
            tokio::time::sleep_until(measured_from.into()).await;
            cpu_times(&processes)
        })
    };
    let end = measured_from + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (payer, failures) = (payer.clone(), failures.clone());
            let (approved, answered) = (approved.clone(), answered.clone());
            tokio::spawn(async move {
                let mut n = c;
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let counted = now >= measured_from;
                    match payer.pay("max", n).await {
                        Ok(()) if counted => {
                            approved.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(()) => {}
                        Err(f) => failures.record(f),
                    }
                    if Instant::now() >= measured_from {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    n += connections;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Payments started in the window and answered after it count too: the window runs to when
    // the last one came back.
    let elapsed = measured_from.elapsed();
    let approved = approved.load(Ordering::Relaxed);
    eprintln!(
        "tokenpay max rate: {approved} payments approved in {elapsed:.2?} over {connections} connections: {:.0} payments/s",
        approved as f64 / elapsed.as_secs_f64()
    );
    let cpu_before = cpu_before.await.unwrap();
    report_cpu(processes, &cpu_before, answered.load(Ordering::Relaxed));
    failures.report("max rate");
}

/// Open loop: one payment due every millisecond for [`FIXED_SECS`], each started as its own task
/// by the schedule's thread (`benches::pace`), its latency measured from when it was due.
async fn fixed_rate(payer: &Payer) {
    let failures = Arc::new(Failures::default());
    let total = (RATE * FIXED_SECS) as usize;
    let runtime = tokio::runtime::Handle::current();
    let end = Instant::now() + Duration::from_secs(FIXED_SECS);
    let schedule = {
        let (payer, failures) = (payer.clone(), failures.clone());
        move || {
            let mut tasks = Vec::with_capacity(total);
            let mut lags = latency::histogram();
            pace::open_loop(RATE, end, |n, due| {
                lags.saturating_record(latency::micros(due.elapsed()));
                let (payer, failures) = (payer.clone(), failures.clone());
                tasks.push(runtime.spawn(async move {
                    if let Err(f) = payer.pay("fixed", n).await {
                        failures.record(f);
                    }
                    due.elapsed()
                }));
            });
            (tasks, lags)
        }
    };
    let (tasks, lags) = tokio::task::spawn_blocking(schedule).await.unwrap();
    let mut latencies = latency::histogram();
    for t in tasks {
        latencies.saturating_record(latency::micros(t.await.unwrap()));
    }
    eprintln!(
        "tokenpay fixed rate: {} payments at {RATE}/s for {FIXED_SECS} s: {}",
        latencies.len(),
        latency::summary(&latencies),
    );
    eprintln!(
        "tokenpay fixed rate: schedule lag (started after due) {}",
        latency::summary(&lags),
    );
    failures.report("fixed rate");
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument (a filter) is ignored: one bench here.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack = Stack::start(StackOptions::default()).await;
        let count = env_or("TOKENPAY_BENCH_CUSTOMERS", CUSTOMERS as u64) as usize;
        let customers = saved_customers(&stack.setup, "bench", count, PLAIN_APPROVED)
            .await
            .expect("cards saved");
        let api = stack.authorizer().api_addr;
        eprintln!(
            "tokenpay: vault, simulator and authorizer up (authorizer API {api}), {count} cards saved"
        );
        let payer = Payer::new(MerchantApi::new(api), &customers);
        let connections = env_or("TOKENPAY_BENCH_CONNECTIONS", CONNECTIONS as u64);
        let processes = processes(&stack);
        max_rate(
            &payer,
            connections,
            env_or("TOKENPAY_BENCH_SECS", 5),
            &processes,
        )
        .await;
        fixed_rate(&payer).await;
        drop(payer);
        stack.stop().await.expect("the processes stop");
    });
}
