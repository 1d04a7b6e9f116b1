//! The seed of a test's injected faults. Owns how a seed is chosen and reported: taken from
//! `FAULT_SEED` to replay a run, otherwise random and printed, so that a failure can be replayed.
//! Never chooses a fault itself (that is the simulator's `Faults`).

/// The environment variable that replays a run's faults.
pub const FAULT_SEED: &str = "FAULT_SEED";

/// The fault seed for `test`: `FAULT_SEED` when set, a random one otherwise; printed on stderr
/// either way (the test harness shows it with a failing test's output).
///
/// # Panics
/// When `FAULT_SEED` is set but not a number.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var(FAULT_SEED) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{FAULT_SEED}={v:?} is not a u64")),
        Err(_) => rand::random(),
    };
    report(test, seed);
    seed
}

// A test's stderr is the place for this line: captured, and shown when the test fails.
#[allow(clippy::print_stderr)]
fn report(test: &str, seed: u64) {
    eprintln!("{test}: fault seed {seed} (replay with {FAULT_SEED}={seed})");
}
