//! The tour end to end: every row of its table, from the first payment that saves a card to the
//! reconciliation with the simulator's ledger, goes as expected.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_the_tour_passes() {
    let tour = e2e::tour::run().await.expect("the tour runs to the end");
    assert!(tour.ok(), "{tour}");
}
