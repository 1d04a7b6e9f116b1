//! Vault throughput and latency over a real Unix socket: a real vault server (in this process)
//! with its keys in a SoftHSM2 token under a temp dir, redb on disk, and the client library with
//! many requests in flight. Prints requests per second, p99 latency and HSM calls per request.
//!
//! PKCS#11 reads `SOFTHSM2_CONF` once per process, so the bench re-runs itself with the variable
//! pointing at its own token.
#![allow(clippy::print_stderr)]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::StreamExt;
use vault::config::Config;
use vault::model::*;
use vault::server::{self, Listeners};
use vault::service::{self, CardVault};
use vault::{ClientOptions, Credentials, VaultClient, VaultEndpoint};

const IN_FLIGHT: usize = 1024;
const CHILD: &str = "VAULT_BENCH_DIR";

fn main() {
    let Some(dir) = std::env::var_os(CHILD) else {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("softhsm2.conf");
        hsm::softhsm::write_conf(&conf, &dir.path().join("tokens")).expect("softhsm conf");
        let status = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(std::env::args_os().skip(1))
            .env("SOFTHSM2_CONF", &conf)
            .env(CHILD, dir.path())
            .env("VAULT_BENCH_PIN", "pin-bench")
            .env("VAULT_BENCH_SECRET", "bench-secret-0123456")
            .status()
            .expect("re-run bench");
        // `exit` skips destructors: remove the token and database first.
        drop(dir);
        #[allow(clippy::disallowed_methods)]
        // the child's status is the bench's; nothing else is held
        std::process::exit(status.code().unwrap_or(1));
    };
    // Here, where SOFTHSM2_CONF points at the bench's token store: PKCS#11 reads it once per
    // process.
    hsm::softhsm::init_token(
        &Path::new(&dir).join("softhsm2.conf"),
        "bench",
        &hsm::Pin::new("so-bench".into()),
        &hsm::Pin::new("pin-bench".into()),
    )
    .expect("softhsm token (apt-get install softhsm2)");
    run(Path::new(&dir));
}

/// CPU time of this process (all threads) from /proc: on a machine shared with other work, CPU per
/// request says more about the vault than wall-clock throughput does.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn pan(i: u64) -> card::Pan {
    let body = format!("5{:014}", 55_000_000_000_000 + i % 9_000_000_000_000);
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find_map(|p| card::Pan::parse_checked(&p).ok())
        .expect("a Luhn digit exists")
}

fn run(dir: &Path) {
    let config = Config::from_toml(&format!(
        r#"data_dir = "{}"
[hsm]
token_label = "bench"
pin_env = "VAULT_BENCH_PIN"
sessions = 4
# The bench measures throughput, not the per-client limit (default 20,000/s).
[detokenize]
rate_per_sec = 10000000
burst = 10000000
alert_per_sec = 10000000
[[merchants]]
id = "452739"
[[clients]]
id = "facade"
role = "facade"
secret_env = "VAULT_BENCH_SECRET"
[[clients]]
id = "authorizer"
role = "authorizer"
secret_env = "VAULT_BENCH_SECRET"
"#,
        dir.join("data").display()
    ))
    .expect("config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let hsm = hsm::Hsm::open(&config.hsm).expect("hsm");
    std::fs::create_dir_all(&config.data_dir).expect("data dir");
    let store = store::Store::open(config.engine, &config.database_path()).expect("store");
    service::init(&store, &hsm).expect("keys");
    let socket = config.data_dir.join("vault.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (facade, authorizer, server) = rt.block_on(async {
        let vault = CardVault::open(&config, store, hsm).expect("vault");
        let listeners = Listeners {
            unix: server::bind_unix(&socket).expect("socket"),
            tls: None,
        };
        let server = tokio::spawn(server::serve(config.clone(), vault, listeners, async {
            let _ = stopped.await;
        }));
        let opts = ClientOptions {
            connections: 4,
            timeout: Duration::from_secs(30),
            ..ClientOptions::default()
        };
        let connect = |id: &str| {
            let creds = Credentials::Secret {
                client: id.into(),
                secret: ClientSecret::new(b"bench-secret-0123456".to_vec()),
            };
            VaultClient::connect_with(VaultEndpoint::Unix(socket.clone()), creds, opts)
        };
        (
            connect("facade").await.expect("facade"),
            connect("authorizer").await.expect("authorizer"),
            server,
        )
    });
    let merchant = MerchantId::parse("452739").expect("merchant");
    let customers: Vec<CustomerNumber> = (0..1000)
        .map(|i| CustomerNumber::parse(&format!("c{i}")).expect("customer"))
        .collect();

    // Saved cards to detokenize.
    let saved: Vec<(usize, Token)> = rt.block_on(async {
        futures::stream::iter(0..2000u64)
            .map(|i| {
                let (facade, merchant, c) = (facade.clone(), merchant.clone(), (i % 1000) as usize);
                let customer = customers[c].clone();
                async move {
                    let req = TokenizeRequest {
                        merchant,
                        customer,
                        pan: pan(i),
                        expiry: card::Expiry::new(12, 2030).expect("expiry"),
                        holder: None,
                    };
                    (c, facade.tokenize(req).await.expect("tokenize").token)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await
    });

    // A payment's detokenize as the order engine makes it: the facade's grant for the payment,
    // then the authorizer's detokenize with it (two round trips, two audit entries).
    let payments = std::sync::atomic::AtomicU64::new(0);
    let detokenize = |n: u64, latencies: Option<&mut Vec<Duration>>| {
        rt.block_on(async {
            let lat: Vec<Duration> = futures::stream::iter(0..n)
                .map(|i| {
                    let (f, a, m) = (facade.clone(), authorizer.clone(), merchant.clone());
                    let (c, token) = saved[(i as usize) % saved.len()];
                    let customer = customers[c].clone();
                    let p = payments.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let payment = PaymentRef::parse(&format!("bench-{p}")).expect("payment");
                    async move {
                        let t = Instant::now();
                        let grant = f
                            .grant_detokenize(&m, &customer, token, &payment, CardUse::OnFile)
                            .await
                            .expect("grant");
                        a.detokenize(&m, &customer, token, &payment, grant)
                            .await
                            .expect("detokenize");
                        t.elapsed()
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            if let Some(out) = latencies {
                *out = lat;
            }
        })
    };
    let next = std::sync::atomic::AtomicU64::new(1_000_000);
    let tokenize = |n: u64, latencies: Option<&mut Vec<Duration>>| {
        rt.block_on(async {
            let lat: Vec<Duration> = futures::stream::iter(0..n)
                .map(|_| {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (f, merchant) = (facade.clone(), merchant.clone());
                    // A customer per save: concurrent saves for one customer serialize by design.
                    let customer = CustomerNumber::parse(&format!("t{i}")).expect("customer");
                    async move {
                        let req = TokenizeRequest {
                            merchant,
                            customer,
                            pan: pan(i),
                            expiry: card::Expiry::new(12, 2030).expect("expiry"),
                            holder: None,
                        };
                        let t = Instant::now();
                        f.tokenize(req).await.expect("tokenize");
                        t.elapsed()
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            if let Some(out) = latencies {
                *out = lat;
            }
        })
    };

    // Headline figures: a fixed run of each, with throughput, p99 and HSM calls per request.
    for (name, n, f) in [
        (
            "grant+detokenize",
            100_000u64,
            &detokenize as &dyn Fn(u64, Option<&mut Vec<Duration>>),
        ),
        ("tokenize", 20_000, &tokenize),
    ] {
        let mut lat = Vec::new();
        let calls = hsm::calls();
        let cpu = cpu_seconds();
        let t = Instant::now();
        f(n, Some(&mut lat));
        let secs = t.elapsed().as_secs_f64();
        let cpu_us = (cpu_seconds() - cpu) * 1e6 / n as f64;
        lat.sort();
        let p99 = lat[lat.len() * 99 / 100];
        let hsm_per = (hsm::calls() - calls) as f64 / n as f64;
        eprintln!(
            "vault {name}: {n} requests, {IN_FLIGHT} in flight: {:.0}/s, p99 {:.2} ms, HSM calls per request {hsm_per:.2}, \
             CPU {cpu_us:.1} us per request (client + server; 2 idle cores give at most {:.0}/s)",
            n as f64 / secs,
            p99.as_secs_f64() * 1000.0,
            2e6 / cpu_us
        );
    }

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let mut g = c.benchmark_group("vault");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("grant_detokenize_1000_in_flight_1024", |b| {
        b.iter(|| detokenize(1000, None))
    });
    g.bench_function("tokenize_durable_1000_in_flight_1024", |b| {
        b.iter(|| tokenize(1000, None))
    });
    g.finish();
    c.final_summary();
    let _ = stop.send(());
    drop((facade, authorizer));
    let _ = rt.block_on(server);
}
