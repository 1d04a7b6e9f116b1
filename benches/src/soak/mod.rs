//! The soak: the whole system (the release `vault`, `simulator` and `authorizer` processes) under
//! a mix of merchant API calls and shoppers on the payment pages, at a fixed rate or as fast as
//! it goes, for a set duration, with faults on a schedule; then a reconciliation of everything
//! it was told against every party's records, and a report (text, JSON with HDR histograms, a
//! PNG of latency over time).
//!
//! This file owns the run's order: start the shop and the processes, save the customers' cards,
//! load with faults, let the outbox drain, ask the authorizer for every order's final state,
//! stop the processes, read the ledger file, reconcile, search for card data, write the report.
//! The parts are its modules: [`mix`], [`driver`], [`flows`], [`faults`], [`memory`],
//! [`reconcile`], [`report`], [`plot`]. It never prints (the binary gets progress lines through
//! a callback) and never writes a card number anywhere.

pub mod driver;
pub mod faults;
pub mod flows;
pub mod memory;
pub mod mix;
pub mod plot;
pub mod reconcile;
pub mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use testkit::cards::{MC_FRICTIONLESS, PLAIN_APPROVED};
use testkit::shop::Shop;
use testkit::stack::{Stack, StackOptions, dev_merchants_file};
use tokio::sync::{Mutex, watch};

use self::driver::Pace;
use self::faults::{FaultEvent, FaultKind};
use self::flows::Flows;
use self::memory::MemoryReport;
use self::mix::{Kind, Mix};
use self::reconcile::{Evidence, Notified};
use self::report::{Asked, Recorder, Report};
use crate::merchant::{MERCHANT, MerchantApi, saved_customers};

/// Customers with a saved card for Token Pay, One Click and the token list: as many as the
/// tokenpay bench's, so that no customer pays so often that the engine's per-customer lock is a
/// hot spot no shop has. The dev merchant's turnover limits are lifted for the soak (its merchants
/// file), so any rate fits.
const CUSTOMERS: usize = 1_000;

/// Cards saved only for `tokens` operations to remove.
const REMOVABLE: usize = 200;

/// After the load (and the faults) end, the outbox delivers what it still owes for as long as it
/// keeps delivering: the soak gives up on the rest once no acknowledgement came for this long,
/// longer than the soak's retry schedule ([`RETRY_MS`], about 12 s). Not a fixed deadline: an
/// hour at the edge of the stack's rate leaves tens of thousands of notifications due, which
/// take minutes, and every one of them is still owed.
const DRAIN_IDLE: Duration = Duration::from_secs(60);

/// The outbox's retry schedule in the soak: short, so that a failing shop's notifications are
/// delivered within the run (the spec's schedule takes hours).
const RETRY_MS: &str = "[200, 500, 1000, 2000, 3000, 5000]";

/// The simulator's memory bounds in a soak: the reconciliation reads the ledger file, not
/// `GET /ledger`, and every follow-up of a payment comes within seconds of it, so the issuer
/// keeps little, and an hour's run does not grow it.
const SIMULATOR_CONFIG: &str = "ledger_in_memory = 10000\nremember_secs = 120\n";

/// Concurrent orderstate calls of the reconciliation.
const STATE_CALLS: usize = 32;

/// A soak, as asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fixed rate or max.
    pub pace: Pace,
    /// How long the load runs.
    pub duration: Duration,
    /// What it asks.
    pub mix: Mix,
    /// What goes wrong, when.
    pub faults: Vec<FaultEvent>,
    /// Where `report.json`, `report.txt` and `latency.png` go.
    pub out: PathBuf,
    /// Keep the processes' data directory (logs, databases, ledger) instead of removing it.
    pub keep: bool,
    /// Seeds the simulator's fault draws.
    pub seed: u64,
    /// The authorizer's store page cache; its default when `None`.
    pub authorizer_cache: Option<store::CacheMib>,
    /// The vault's store page cache; its default when `None`.
    pub vault_cache: Option<store::CacheMib>,
}

/// Why a soak could not run to its report (a reconciliation difference is not an error: it is
/// in the report).
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// The shop, a process or the saved cards could not be set up.
    #[error("setting up: {0}")]
    Setup(String),
    /// Stopping the processes failed.
    #[error("stopping the processes: {0}")]
    Stop(#[from] testkit::processes::ProcessError),
    /// A file of the run could not be read or written.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The PNG could not be drawn.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
}

/// What a soak leaves: its report, and where the data directory is when it was kept.
#[derive(Debug)]
pub struct Outcome {
    /// The report (also written to `out`).
    pub report: Report,
    /// The processes' data directory, when `keep` was asked for.
    pub data_dir: Option<PathBuf>,
}

/// What a progress line goes to (the binary prints it on stderr).
pub type Progress = Arc<dyn Fn(String) + Send + Sync>;

/// The dev merchants file with the shop's notification URL (every result) for 452739, and its
/// daily and weekly turnover limits removed: a soak pays far more per customer than a day's limit.
fn merchants_file(url: &str) -> Result<String, SoakError> {
    let path = dev_merchants_file();
    let dev =
        std::fs::read_to_string(&path).map_err(|e| SoakError::Io(path.display().to_string(), e))?;
    let mut out = String::new();
    let mut in_first = false;
    for line in dev.lines() {
        if line.starts_with("id = ") {
            in_first = line.contains(MERCHANT);
        }
        let limit = line.starts_with("daily_limit") || line.starts_with("weekly_limit");
        if in_first && limit {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if in_first && line.starts_with("checkvalue_salt") {
            out.push_str(&format!(
                "notification_url = \"{url}\"\nnotify = [\"payments\", \"charges\", \"cancels\"]\n"
            ));
        }
    }
    Ok(out)
}

/// How many cards to save for `tokens` operations to remove: one in four of them removes one
/// (as many as a fixed-rate run will ask for, at most [`REMOVABLE`]).
fn removable_cards(options: &Options) -> usize {
    let Some(&(_, weight)) = options.mix.weights.iter().find(|(k, _)| *k == Kind::Tokens) else {
        return 0;
    };
    let total: u32 = options.mix.weights.iter().map(|(_, w)| w).sum();
    match options.pace {
        Pace::Rate(rate) => {
            let ops =
                rate as f64 * options.duration.as_secs_f64() * f64::from(weight) / f64::from(total);
            ((ops / 4.0).ceil() as usize + 1).min(REMOVABLE)
        }
        Pace::Max { .. } => REMOVABLE,
    }
}

/// `key = <MiB>` for a config file, or nothing for the process's default.
fn cache_key(key: &str, cache: Option<store::CacheMib>) -> String {
    cache.map_or_else(String::new, |c| format!("{key} = {}\n", c.mib()))
}

/// Runs a soak as `options` say; `progress` gets a line every second.
pub async fn run(options: Options, progress: Progress) -> Result<Outcome, SoakError> {
    std::fs::create_dir_all(&options.out)
        .map_err(|e| SoakError::Io(options.out.display().to_string(), e))?;
    let shop = Shop::serve_keeping(&["billnumber", "orderstate", "slipno"])
        .await
        .map_err(|e| SoakError::Setup(format!("the shop: {e}")))?;
    let sections = format!(
        "[notifications]\nretry_ms = {RETRY_MS}\ntimeout_ms = 5000\n\
         allowed_ports = [80, 443, 8080, 8443, {}]\n",
        shop.addr().port()
    );
    progress("soak: starting the vault, the simulator and the authorizer".into());
    let stack = Stack::start(StackOptions {
        merchants_file: Some(merchants_file(&shop.url("m1"))?),
        sections,
        authorizer_head: cache_key("store_cache_mib", options.authorizer_cache),
        vault_head: cache_key("cache_mib", options.vault_cache),
        simulator_config: SIMULATOR_CONFIG.into(),
        ..StackOptions::default()
    })
    .await;
    let customers = saved_customers(&stack.setup, "soak", CUSTOMERS, PLAIN_APPROVED)
        .await
        .map_err(|e| SoakError::Setup(format!("saving cards: {e}")))?;
    let removable = removable_cards(&options);
    let removable = if removable > 0 {
        saved_customers(&stack.setup, "soak-rm", removable, PLAIN_APPROVED)
            .await
            .map_err(|e| SoakError::Setup(format!("saving cards: {e}")))?
    } else {
        Vec::new()
    };
    let api = MerchantApi::new(stack.authorizer().api_addr);
    let run_id = format!("s{:08x}", rand::random::<u32>());
    let flows = Arc::new(Flows::new(api.clone(), run_id, customers, removable));
    let stack = Arc::new(Mutex::new(stack));
    let recorder = Arc::new(Recorder::new());
    let (done, finished) = watch::channel(false);
    let memory = tokio::spawn(sample_memory(
        stack.clone(),
        recorder.clone(),
        finished.clone(),
    ));
    let ticker = tokio::spawn(tick(recorder.clone(), progress.clone(), finished.clone()));
    let fault_log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let applied = tokio::spawn(apply_faults(
        options.faults.clone(),
        Faulting {
            seed: options.seed,
            stack: stack.clone(),
            shop: shop.clone(),
            api: api.clone(),
            progress: progress.clone(),
            log: fault_log.clone(),
        },
    ));
    progress(format!(
        "soak: {} for {:?}, mix {}, {} faults",
        match options.pace {
            Pace::Rate(r) => format!("{r}/s"),
            Pace::Max { connections } => format!("max over {connections} connections"),
        },
        options.duration,
        options.mix,
        options.faults.len()
    ));
    let load_started = Instant::now();
    driver::drive(
        flows.clone(),
        recorder.clone(),
        options.mix.clone(),
        options.pace,
        options.duration,
    )
    .await;
    let elapsed = load_started.elapsed();
    // Whatever the schedule still had is over: calm network, a shop that acknowledges.
    applied.abort();
    let _ = applied.await;
    shop.fail(false);
    let calm = faults::simulator_faults(&[], options.seed);
    put_simulator_faults(&*stack.lock().await, &calm).await;
    let _ = done.send(true);
    let memory = memory.await.unwrap_or_default();
    let _ = ticker.await;
    let measured = recorder.measurements(elapsed);
    let faults_applied = std::mem::take(&mut *lock(&fault_log));

    let journal = flows.take_journal();
    progress("soak: load over; waiting for the outbox to deliver every notification".into());
    drain(&shop, &journal.attempts, &progress).await;
    progress(format!(
        "soak: asking the authorizer for the final state of {} orders",
        journal.attempts.len()
    ));
    let states: Vec<Result<Vec<String>, String>> = futures::stream::iter(&journal.attempts)
        .map(|a| {
            let flows = flows.clone();
            async move {
                flows
                    .order_states(&a.order_number)
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .buffered(STATE_CALLS)
        .collect()
        .await;

    let notified: Vec<Notified> = shop
        .received()
        .iter()
        .filter(|n| n.acknowledged)
        .map(|n| Notified {
            billnumber: n.billnumber().to_owned(),
            orderstate: n.fields.get("orderstate").cloned().unwrap_or_default(),
            slipno: n.fields.get("slipno").cloned().unwrap_or_default(),
        })
        .collect();
    let stack = Arc::try_unwrap(stack)
        .map_err(|_| SoakError::Setup("the processes are still in use".into()))?
        .into_inner();
    let recorded_acks = recorded_acks(stack.authorizer().admin_addr, &notified).await;
    let ledger_file = stack.sim.ledger_file.clone();
    let dir = stack.stop().await?;
    let ledger = read_ledger(&ledger_file)?;
    let cards: Vec<(String, i64)> = [PLAIN_APPROVED, MC_FRICTIONLESS]
        .iter()
        .map(|pan| {
            (
                testkit::cards::masked(pan),
                testkit::cards::profile(pan).opening_balance,
            )
        })
        .collect();
    let mut reconciliation = reconcile::reconcile(&Evidence {
        attempts: &journal.attempts,
        states: &states,
        ledger: &ledger,
        cards: &cards,
        notified: &notified,
        recorded_acks: &recorded_acks,
    });
    reconcile::search_card_data(
        &mut reconciliation,
        &[dir.path().to_path_buf(), options.out.clone()],
        &card_data_needles(),
    );
    let report = Report {
        started_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_sub(load_started.elapsed().as_secs()),
        asked: Asked {
            rate: match options.pace {
                Pace::Rate(r) => Some(r),
                Pace::Max { .. } => None,
            },
            duration_s: options.duration.as_secs_f64(),
            connections: match options.pace {
                Pace::Rate(_) => 0,
                Pace::Max { connections } => connections,
            },
            mix: options.mix.to_string(),
            faults: options.faults.clone(),
        },
        elapsed_s: elapsed.as_secs_f64(),
        measured,
        faults_applied,
        memory,
        reconciliation,
    };
    write_report(&report, &options.out)?;
    let data_dir = if options.keep { Some(dir.keep()) } else { None };
    Ok(Outcome { report, data_dir })
}

/// Writes `report.json`, `report.txt` and `latency.png` into `out`.
pub fn write_report(report: &Report, out: &std::path::Path) -> Result<(), SoakError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|e| SoakError::Io(path.display().to_string(), e))
    };
    let json = serde_json::to_vec_pretty(report).expect("a report serializes");
    write("report.json", &json)?;
    write("report.txt", report.text().as_bytes())?;
    plot::draw(report, &out.join("latency.png"))?;
    Ok(())
}

/// What must appear in no file: every test card number the soak uses, and their CVC as a page's
/// form or a JSON body would carry it (a bare three digits is in any file by chance).
fn card_data_needles() -> Vec<(String, Vec<u8>)> {
    let cvc = testkit::cards::CVC;
    let mut needles: Vec<(String, Vec<u8>)> = [PLAIN_APPROVED, MC_FRICTIONLESS]
        .iter()
        .map(|pan| {
            (
                format!("the card number {}", testkit::cards::masked(pan)),
                pan.as_bytes().to_vec(),
            )
        })
        .collect();
    for shape in [
        format!("cvc={cvc}"),
        format!("\"cvc\":\"{cvc}\""),
        format!("cvc2={cvc}"),
    ] {
        needles.push((format!("a CVC ({} shape)", shape.len()), shape.into_bytes()));
    }
    needles
}

/// For each notification the shop acknowledged more than once, how many of its tries the outbox
/// recorded as acknowledged (the authorizer's admin `/notifications/<bill>`); one that cannot be
/// read is left out, which the reconciliation reports.
async fn recorded_acks(
    admin: std::net::SocketAddr,
    notified: &[Notified],
) -> std::collections::HashMap<String, usize> {
    let mut recorded = std::collections::HashMap::new();
    for sent in reconcile::acknowledged_again(notified).into_keys() {
        // `<billnumber>.<operation>`; an order's own Timeout has no operation (0).
        let (bill, operation) = sent.split_once('.').unwrap_or((sent, "0"));
        let Ok(operation) = operation.parse::<u32>() else {
            continue;
        };
        let answer =
            testkit::http::request(admin, "GET", &format!("/notifications/{bill}"), "").await;
        let Ok(views) = serde_json::from_str::<Vec<outbox::NotificationView>>(&answer.body) else {
            continue;
        };
        let acknowledged = views
            .iter()
            .filter(|v| v.notice.id.operation == operation)
            .flat_map(|v| &v.attempts)
            .filter(|a| a.outcome == outbox::AttemptOutcome::Acknowledged)
            .count();
        recorded.insert(sent.to_owned(), acknowledged);
    }
    recorded
}

/// Waits until the shop has acknowledged the notification of every order it was told of, or
/// acknowledged nothing for [`DRAIN_IDLE`]. The full check copies every notification received
/// under the lock the shop's server takes for each one (millions after an hour), so it runs only
/// once the count of acknowledgements could cover every order, and again only when it moved.
async fn drain(shop: &Shop, attempts: &[flows::Attempt], progress: &Progress) {
    let owed = attempts
        .iter()
        .filter_map(flows::Attempt::owed_notice)
        .count();
    let started = Instant::now();
    let (mut seen, mut moved) = (shop.acknowledgements(), Instant::now());
    let mut checked = None;
    while moved.elapsed() < DRAIN_IDLE {
        let acks = shop.acknowledgements();
        if acks != seen {
            (seen, moved) = (acks, Instant::now());
        }
        if acks >= owed && checked != Some(acks) {
            if all_notified(shop, attempts) {
                break;
            }
            checked = Some(acks);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress(format!(
        "soak: {seen} acknowledgements for {owed} orders owed one, {:.0} s after the load",
        started.elapsed().as_secs_f64()
    ));
}

/// Every order the soak was told was approved or cancelled has its notification at the shop.
fn all_notified(shop: &Shop, attempts: &[flows::Attempt]) -> bool {
    let mut got: std::collections::HashMap<String, Vec<String>> = Default::default();
    for n in shop.received().iter().filter(|n| n.acknowledged) {
        let order = n
            .billnumber()
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        got.entry(order)
            .or_default()
            .push(n.fields.get("orderstate").cloned().unwrap_or_default());
    }
    attempts
        .iter()
        .filter_map(flows::Attempt::owed_notice)
        .all(|(bill, expected)| {
            got.get(bill)
                .is_some_and(|states| states.iter().any(|s| s == expected))
        })
}

/// The simulator's ledger file, every entry of the run (complete once it stopped).
fn read_ledger(path: &std::path::Path) -> Result<Vec<simulator::LedgerEntry>, SoakError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| SoakError::Io(path.display().to_string(), e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| {
                SoakError::Io(
                    path.display().to_string(),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })
        })
        .collect()
}

/// Every second: closes the recorder's window and reports it.
async fn tick(recorder: Arc<Recorder>, progress: Progress, mut finished: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = finished.changed() => return,
        }
        let s = recorder.roll();
        progress(format!(
            "[{:>5.0} s] {:>6} done/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  errors {:>4}/s ({} in all)",
            s.t_s,
            s.done,
            s.p50_ms,
            s.p99_ms,
            s.max_ms,
            s.errors,
            recorder.errors()
        ));
    }
}

/// Every [`memory::INTERVAL`]: each process's RSS, and the soak's own.
async fn sample_memory(
    stack: Arc<Mutex<Stack>>,
    recorder: Arc<Recorder>,
    mut finished: watch::Receiver<bool>,
) -> MemoryReport {
    let mut report = MemoryReport::default();
    let mut every = tokio::time::interval(memory::INTERVAL);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = finished.changed() => break,
        }
        let t_s = recorder.elapsed().as_secs_f64();
        let pids = {
            let stack = stack.lock().await;
            [
                ("simulator", stack.sim.pid()),
                ("vault", stack.vault.as_ref().and_then(|v| v.pid())),
                ("authorizer", stack.authorizer().pid()),
                ("soak", Some(std::process::id())),
            ]
        };
        for (name, pid) in pids {
            if let Some(pid) = pid
                && let Some(rss_kib) = memory::rss_kib(pid)
            {
                report.add(name, memory::Sample { t_s, pid, rss_kib });
            }
        }
    }
    report.finish(recorder.elapsed());
    report
}

/// What applying the faults reaches, and where it writes what it did.
struct Faulting {
    seed: u64,
    stack: Arc<Mutex<Stack>>,
    shop: Shop,
    api: MerchantApi,
    progress: Progress,
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Applies the schedule: opens and closes the windows, restarts and kills processes; each fault
/// as applied goes to `log` (for the report: the task is aborted when the load ends).
async fn apply_faults(schedule: Vec<FaultEvent>, with: Faulting) {
    let Faulting {
        seed,
        stack,
        shop,
        api,
        progress,
        log,
    } = with;
    // Each event's start, and each window's end, in time order.
    let mut steps: Vec<(Duration, bool, usize)> = Vec::new();
    for (i, e) in schedule.iter().enumerate() {
        steps.push((e.at(), true, i));
        if e.kind.has_window() {
            steps.push((e.until(), false, i));
        }
    }
    steps.sort_by_key(|&(at, opens, _)| (at, opens));
    let started = tokio::time::Instant::now();
    let mut open: Vec<usize> = Vec::new();
    for (at, opens, i) in steps {
        tokio::time::sleep_until(started + at).await;
        let event = &schedule[i];
        let note = match (&event.kind, opens) {
            (FaultKind::Latency { .. } | FaultKind::LostAnswers { .. }, _) => {
                if opens {
                    open.push(i);
                } else {
                    open.retain(|&o| o != i);
                }
                let kinds: Vec<&FaultKind> = open.iter().map(|&o| &schedule[o].kind).collect();
                let faults = faults::simulator_faults(&kinds, seed);
                put_simulator_faults(&*stack.lock().await, &faults).await;
                format!("{:?} {}", event.kind, if opens { "on" } else { "off" })
            }
            (FaultKind::ShopFail, _) => {
                if opens {
                    open.push(i);
                } else {
                    open.retain(|&o| o != i);
                }
                let failing = open
                    .iter()
                    .any(|&o| schedule[o].kind == FaultKind::ShopFail);
                shop.fail(failing);
                format!(
                    "the shop {}",
                    if failing {
                        "fails (500)"
                    } else {
                        "acknowledges again"
                    }
                )
            }
            (FaultKind::Disconnect, _) => {
                let sim = stack.lock().await.sim.acs_addr;
                let a = testkit::http::request(sim, "POST", "/faults/disconnect", "").await;
                format!("the simulator closed every ISO connection ({})", a.status)
            }
            (FaultKind::VaultRestart, _) => {
                let mut stack = stack.lock().await;
                let stopped = match stack.vault.take() {
                    Some(vault) => vault.stop().await.map_err(|e| e.to_string()),
                    None => Ok(()),
                };
                let started = stack.setup.serve().await.map_err(|e| e.to_string());
                let note = format!(
                    "the vault restarted (stop {stopped:?}, start {:?})",
                    started.as_ref().map(drop)
                );
                stack.vault = started.ok();
                note
            }
            (FaultKind::AuthorizerKill, _) => {
                let mut stack = stack.lock().await;
                let killed = stack
                    .take_authorizer()
                    .kill()
                    .await
                    .map_err(|e| e.to_string());
                // On the same data directory: what it had in flight is resolved on start.
                stack.start_authorizer().await;
                api.moved_to(stack.authorizer().api_addr);
                format!("the authorizer SIGKILLed ({killed:?}) and started again")
            }
        };
        let line = format!("{:.1} s: {note}", started.elapsed().as_secs_f64());
        progress(format!("soak: fault at {line}"));
        lock(&log).push(line);
    }
}

/// `PUT /faults` on the simulator's HTTP listener.
async fn put_simulator_faults(stack: &Stack, faults: &simulator::Faults) {
    let body = serde_json::to_string(faults).expect("faults serialize");
    let headers = [("content-type", "application/json")];
    testkit::http::request_with(stack.sim.acs_addr, "PUT", "/faults", &headers, &body).await;
}
