//! Least privilege for the authorizer and the vault's own retention clock, as an attacker holding
//! only the authorizer's secret (or replaying its frames) would try them, against the real
//! `vault` binary: listing is refused, a detokenize needs the facade's single-use grant for that
//! very card and payment, a reversal only reaches a payment the vault detokenized, the rate is
//! bounded per client, a payment time far from the vault's clock is refused and a replayed
//! payment counts once.

use testkit::vault::*;
use vault::VaultClient;
use vault::model::*;

async fn serving(extra: &str) -> (Vault, VaultClient, VaultClient, SavedCard) {
    let mut v = Vault::init(extra);
    v.start();
    let facade = v.client("facade").await.unwrap();
    let authorizer = v.client("authorizer").await.unwrap();
    let saved = facade
        .tokenize(tokenize_req(SOLO, "cust-1", "4111111111111111", "12.2030"))
        .await
        .unwrap();
    (v, facade, authorizer, saved)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_secret_cannot_list() {
    let (_v, _facade, authorizer, _) = serving("").await;
    assert_eq!(
        refusal(authorizer.list(&merchant(SOLO), &customer("cust-1")).await),
        VaultError::Forbidden("authorizer")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detokenize_without_a_grant_is_refused() {
    let (_v, _facade, authorizer, saved) = serving("").await;
    let (m, c, p) = (merchant(SOLO), customer("cust-1"), payment("p1"));
    let forged = GrantId([0x5a; 16]);
    assert_eq!(
        refusal(authorizer.detokenize(&m, &c, saved.token, &p, forged).await),
        VaultError::GrantRefused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_payments_grant_is_refused() {
    let (_v, facade, authorizer, saved) = serving("").await;
    let (m, c) = (merchant(SOLO), customer("cust-1"));
    let grant = facade
        .grant_detokenize(&m, &c, saved.token, &payment("p1"), CardUse::OnFile)
        .await
        .unwrap();
    assert_eq!(
        refusal(
            authorizer
                .detokenize(&m, &c, saved.token, &payment("p2"), grant)
                .await
        ),
        VaultError::GrantRefused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_grant_is_refused() {
    let (_v, facade, authorizer, saved) = serving("").await;
    let (m, c, p) = (merchant(SOLO), customer("cust-1"), payment("p1"));
    let grant = facade
        .grant_detokenize(&m, &c, saved.token, &p, CardUse::OnFile)
        .await
        .unwrap();
    let secret = authorizer
        .detokenize(&m, &c, saved.token, &p, grant)
        .await
        .unwrap();
    assert_eq!(secret.pan.expose(), b"4111111111111111");
    assert_eq!(
        refusal(authorizer.detokenize(&m, &c, saved.token, &p, grant).await),
        VaultError::GrantRefused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_grant_is_refused() {
    let (_v, facade, authorizer, saved) = serving("[payments]\ngrant_ttl_secs = 1\n").await;
    let (m, c, p) = (merchant(SOLO), customer("cust-1"), payment("p1"));
    let grant = facade
        .grant_detokenize(&m, &c, saved.token, &p, CardUse::OnFile)
        .await
        .unwrap();
    // The property under test is the passage of time itself: the grant lives one second.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert_eq!(
        refusal(authorizer.detokenize(&m, &c, saved.token, &p, grant).await),
        VaultError::GrantRefused
    );
}

/// The review's attack: with the authorizer's secret alone, list 2,000 guessed customer numbers
/// and detokenize what they hold. Now listing is refused, and a detokenize or a reversal of a
/// guessed (token, payment) yields nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enumeration_from_the_review_yields_no_card() {
    let (_v, facade, authorizer, saved) = serving("").await;
    let m = merchant(SOLO);
    // A real payment happened, so the vault holds a reversal binding the attacker could aim at.
    let c1 = customer("cust-1");
    granted_detokenize(&facade, &authorizer, &m, &c1, saved.token, "bill-1")
        .await
        .unwrap();
    let attempts = (0..2_000u32).map(|i| {
        let (authorizer, m) = (authorizer.clone(), m.clone());
        async move {
            let c = customer(&format!("cust-{i}"));
            let listed = authorizer.list(&m, &c).await;
            assert_eq!(refusal(listed), VaultError::Forbidden("authorizer"));
            let guessed = Token::random();
            let p = payment(&format!("bill-{i}"));
            let grant = GrantId(*guessed.as_bytes());
            let mut pans = 0;
            for attempt in [
                authorizer.detokenize(&m, &c, guessed, &p, grant).await,
                authorizer
                    .detokenize_for_reversal(&m, &c, guessed, &p)
                    .await,
            ] {
                match attempt {
                    Ok(_) => pans += 1,
                    // Refused without saying whether the card exists.
                    Err(e) => assert_eq!(refusal::<()>(Err(e)), VaultError::GrantRefused),
                }
            }
            pans
        }
    });
    let pans: usize = futures::future::join_all(attempts).await.into_iter().sum();
    assert_eq!(pans, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversal_reaches_only_a_payment_the_vault_detokenized() {
    let (_v, facade, authorizer, saved) = serving("").await;
    let (m, c) = (merchant(SOLO), customer("cust-1"));
    assert_eq!(
        refusal(
            authorizer
                .detokenize_for_reversal(&m, &c, saved.token, &payment("bill-1"))
                .await
        ),
        VaultError::GrantRefused,
        "before the payment"
    );
    granted_detokenize(&facade, &authorizer, &m, &c, saved.token, "bill-1")
        .await
        .unwrap();
    let again = authorizer
        .detokenize_for_reversal(&m, &c, saved.token, &payment("bill-1"))
        .await
        .unwrap();
    assert_eq!(again.pan.expose(), b"4111111111111111");
    assert_eq!(
        refusal(
            authorizer
                .detokenize_for_reversal(&m, &c, saved.token, &payment("bill-2"))
                .await
        ),
        VaultError::GrantRefused,
        "another payment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detokenize_volume_is_limited_per_client() {
    let (_v, facade, authorizer, saved) =
        serving("[detokenize]\nrate_per_sec = 1\nburst = 3\nalert_per_sec = 2\n").await;
    let (m, c) = (merchant(SOLO), customer("cust-1"));
    granted_detokenize(&facade, &authorizer, &m, &c, saved.token, "bill-1")
        .await
        .unwrap();
    let mut limited = 0;
    for _ in 0..10 {
        if let Err(e) = authorizer
            .detokenize_for_reversal(&m, &c, saved.token, &payment("bill-1"))
            .await
        {
            assert_eq!(refusal::<()>(Err(e)), VaultError::RateLimited);
            limited += 1;
        }
    }
    assert!(
        limited >= 6,
        "a burst of 3 at 1 per second: {limited} refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_in_the_year_2100_is_refused() {
    let (_v, _facade, authorizer, saved) = serving("").await;
    let (m, c) = (merchant(SOLO), customer("cust-1"));
    let year_2100 = Timestamp(4_102_444_800);
    assert!(matches!(
        refusal(
            authorizer
                .record_payment(&m, &c, saved.token, &payment("p1"), year_2100)
                .await
        ),
        VaultError::BadRequest(ref m) if m.contains("clock")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_payment_counts_once() {
    let (mut v, facade, authorizer, saved) = serving("").await;
    let (m, c) = (merchant(SOLO), customer("cust-1"));
    let before = Timestamp::now();
    for _ in 0..3 {
        authorizer
            .record_payment(&m, &c, saved.token, &payment("bill-1"), before)
            .await
            .unwrap();
    }
    drop((facade, authorizer));
    v.stop();
    let store = v.open_store();
    let key = vault::record::card_key(&Scope::Merchant(m).key(), "cust-1", &saved.token);
    let rec = vault::record::CardRecord::decode(&store.get(&key).unwrap().unwrap()).unwrap();
    assert_eq!(rec.successes, 1);
    let at = rec.last_payment.unwrap();
    assert!(
        at >= before && at.0 <= Timestamp::now().0,
        "the vault's time"
    );
}
