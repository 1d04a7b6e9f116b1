//! A tiny soak end to end: the real processes, 6 s at 50 operations per second with the default
//! mix (pages included) and one fault of each kind, then the reconciliation, which must find no
//! difference; the report parses back and the PNG is drawn.

use std::sync::Arc;
use std::time::Duration;

use benches::soak::driver::Pace;
use benches::soak::faults::{FaultEvent, FaultKind};
use benches::soak::mix::Mix;
use benches::soak::report::Report;
use benches::soak::{Options, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_with_every_fault_reconciles_clean() {
    let out = tempfile::tempdir().unwrap();
    let at = |at_s, for_s, kind| FaultEvent { at_s, for_s, kind };
    let faults = vec![
        at(0.5, 1.5, FaultKind::ShopFail),
        at(1.0, 0.0, FaultKind::Disconnect),
        at(1.5, 0.5, FaultKind::Latency { ms: 100 }),
        at(2.0, 1.0, FaultKind::LostAnswers { probability: 0.05 }),
        at(3.0, 0.0, FaultKind::VaultRestart),
        at(4.0, 0.0, FaultKind::AuthorizerKill),
    ];
    let options = Options {
        pace: Pace::Rate(50),
        duration: Duration::from_secs(6),
        mix: Mix::DEFAULT.parse().unwrap(),
        faults,
        out: out.path().to_path_buf(),
        keep: false,
        seed: testkit::faults::seed("a_short_soak_with_every_fault_reconciles_clean"),
        // The smallest caches the processes take (their config refuses an unknown key, so both
        // keys are read too).
        authorizer_cache: Some(store::CacheMib::new(store::CacheMib::MIN).unwrap()),
        vault_cache: Some(store::CacheMib::new(store::CacheMib::MIN).unwrap()),
    };
    // The progress lines go where a test's output goes: shown when it fails.
    #[allow(clippy::print_stderr)]
    let progress = Arc::new(|line: String| eprintln!("{line}"));
    let outcome = run(options, progress).await.expect("the soak runs");
    let report = &outcome.report;
    assert!(report.reconciliation.clean(), "{}", report.text());
    assert!(report.reconciliation.told > 0, "{}", report.text());
    assert_eq!(report.faults_applied.len(), 9, "{}", report.text());
    let json = std::fs::read_to_string(out.path().join("report.json")).unwrap();
    let parsed: Report = serde_json::from_str(&json).unwrap();
    let tokenpay = &parsed.measured.kinds["tokenpay"];
    assert!(tokenpay.ok > 0, "{}", report.text());
    assert_eq!(
        tokenpay.decode_histogram().unwrap().len(),
        tokenpay.ok + tokenpay.error_count()
    );
    assert!(!parsed.memory.samples.is_empty());
    let png = std::fs::read(out.path().join("latency.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        std::fs::read_to_string(out.path().join("report.txt"))
            .unwrap()
            .contains("reconciliation:")
    );
}
