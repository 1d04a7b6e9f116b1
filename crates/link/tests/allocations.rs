//! Heap allocations on an authorization's path, counted rather than timed: a count does not
//! depend on what else the machine is running, so it can fail a test where a timed figure could
//! only warn. The link bench lost its A/B against the code before the reshape on a shared machine
//! and the typed references were the suspects; these tests keep what the references cost at zero
//! and an authorization's round trip within a bound (README, Figures, "Link to the simulator").
//!
//! The process's allocator counts for every thread, so this file holds its tests in one function
//! (the harness runs tests of a file in parallel) and runs the link, the simulator and the
//! callers on one current-thread runtime: between two awaits nothing else allocates.

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use card::{CustomerNumber, Cvc, MerchantId, Pan, PaymentRef, Token};
use link::{AuthorizationRequest, CardRef, LinkOutcome};
use simulator::Faults;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use testkit::cards::{PLAIN_APPROVED, TEST_CVC};
use testkit::network::{MERCHANT, Sim, TestVault, link_config, purchase, start_link};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations of one authorization round trip, link and simulator together, one in flight.
/// Measured 25.0 when this bound was set (2026-12-01; 36.0 before the names became inline and
/// DE 48, the in-flight entry and the waiter's copy of the answer stopped allocating). A new
/// allocation per request fails the test; if a tokio or rustls update adds one, find it before
/// raising this.
const ROUND_TRIP_BOUND: f64 = 26.0;

/// Round trips measured, after as many to warm up (connections, buffers, the skip list).
const ROUND_TRIPS: u64 = 200;

fn request<'a>(pan: &'a Pan, cvc: &'a Cvc, amount: u64) -> AuthorizationRequest<'a> {
    let card = CardRef {
        merchant: MerchantId::parse(MERCHANT).unwrap(),
        customer: CustomerNumber::parse("alloc-test").unwrap(),
        token: Token::from_bytes([7; 16]),
        payment: Some(PaymentRef::parse("1234567890123456.1").unwrap()),
    };
    purchase(pan, cvc, card, amount)
}

#[tokio::test]
async fn an_authorization_allocates_within_its_bound() {
    let sim = Sim::start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = link_config(&sim.pki, &[sim.handle.iso_addr]).unwrap();
    config.connections = 1;
    let link = start_link(config, &dir, &Arc::new(TestVault::default()));
    assert!(link.wait_ready(Duration::from_secs(10)).await);
    let pan = Pan::parse(PLAIN_APPROVED).unwrap();
    let cvc = Cvc::from_ascii(TEST_CVC).unwrap();

    // The request's card and merchant, its trace numbers, the reference the order engine makes
    // durable and the check that the request is the prepared one: no allocation at all.
    let region = Region::new(GLOBAL);
    let req = request(&pan, &cvc, 100);
    let prepared = link.prepare(req.intent());
    let durable = prepared.reference().clone();
    let cost = region.change();
    assert_eq!(
        cost.allocations, 0,
        "preparing a request allocated: {cost:?}"
    );
    let outcome = link.authorize_prepared(prepared, req).await.unwrap();
    assert_eq!(outcome.reference(), &durable);

    let pay = async |n: u64| {
        let outcome = link.authorize(request(&pan, &cvc, 100 + n)).await.unwrap();
        assert!(
            matches!(outcome, LinkOutcome::Approved { .. }),
            "{outcome:?}"
        );
    };
    for n in 0..ROUND_TRIPS {
        pay(n).await;
    }
    let region = Region::new(GLOBAL);
    for n in 0..ROUND_TRIPS {
        pay(n).await;
    }
    let per_round_trip = region.change().allocations as f64 / ROUND_TRIPS as f64;
    eprintln!("allocations per authorization round trip (link and simulator): {per_round_trip:.2}");
    assert!(
        per_round_trip <= ROUND_TRIP_BOUND,
        "{per_round_trip:.2} allocations per round trip, over the bound of {ROUND_TRIP_BOUND}"
    );
    link.shutdown().await;
}
