//! Shared set-up of the link tests: a real simulator in-process on 127.0.0.1:0 with its own dev
//! PKI, a real link over mutual TLS to it, a redb store in a temp dir, and a card resolver that
//! stands in for the vault (token → PAN in memory).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use card::{CustomerNumber, Cvc, Expiry, MerchantId, Pan, Token};
use futures::future::BoxFuture;
use iso8583::Amount;
use link::{
    AuthorizationRequest, CardRef, CardResolver, CardsUnavailable, CredentialOnFile, Currency,
    Endpoint, Link, LinkConfig, Merchant, ThreeDs, TlsMaterial, TransactionKind, client_config,
};
use simulator::{AcsClient, DevPki, Faults, SimConfig, Simulator, SimulatorHandle};
use tokio::net::TcpListener;

pub const MC_FRICTIONLESS: &str = "5555555555554444";
pub const VISA_CHALLENGE: &str = "4111111111111111";
pub const MIR_CHALLENGE: &str = "2200000000000004";
pub const PLAIN_APPROVED: &str = "4242424242424242";
pub const STOLEN: &str = "4000000000000002";
pub const LOW_BALANCE: &str = "4000000000009995";
pub const VELOCITY: &str = "4000000000000259";

/// The vault's role for the link: finds a PAN again from its token.
#[derive(Debug, Default)]
pub struct TestVault {
    cards: Mutex<HashMap<CardRef, Pan>>,
}

impl TestVault {
    pub fn token(&self, pan: &Pan) -> CardRef {
        let card = net_card();
        self.cards.lock().unwrap().insert(card.clone(), pan.clone());
        card
    }
}

impl CardResolver for TestVault {
    fn resolve<'a>(
        &'a self,
        card: &'a CardRef,
    ) -> BoxFuture<'a, Result<Option<Pan>, CardsUnavailable>> {
        let pan = self.cards.lock().unwrap().get(card).cloned();
        Box::pin(async move { Ok(pan) })
    }
}

pub struct Sim {
    pub handle: SimulatorHandle,
    pub pki: DevPki,
}

pub async fn simulator(faults: Faults) -> Sim {
    let pki = DevPki::generate();
    let mut config = SimConfig::with_pki(&pki);
    config.faults = faults;
    let iso = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acs = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = Simulator::start(config, iso, acs).await.unwrap();
    Sim { handle, pki }
}

/// Short time-outs so the fault tests stay fast; the simulator's late delay is set above them.
pub fn link_config(pki: &DevPki, addrs: &[std::net::SocketAddr]) -> LinkConfig {
    let tls = client_config(&TlsMaterial {
        ca_cert_pem: pki.ca_cert_pem.clone(),
        client_cert_pem: pki.client_cert_pem.clone(),
        client_key_pem: pki.client_key_pem.clone(),
    })
    .unwrap();
    let endpoints = addrs
        .iter()
        .map(|a| Endpoint::new(a.to_string(), "localhost").unwrap())
        .collect();
    let mut c = LinkConfig::new(endpoints, tls);
    c.connections = 2;
    c.request_timeout = Duration::from_millis(400);
    c.reversal_timeout = Duration::from_millis(400);
    c.backoff.initial = Duration::from_millis(20);
    c.backoff.max = Duration::from_millis(200);
    c.saf_retry_interval = Duration::from_millis(100);
    c
}

pub struct Net {
    pub sim: Sim,
    pub link: Link,
    pub vault: Arc<TestVault>,
    pub dir: tempfile::TempDir,
}

impl Net {
    pub async fn start(faults: Faults) -> Net {
        Net::start_with(faults, |_| {}).await
    }

    pub async fn start_with(faults: Faults, tweak: impl FnOnce(&mut LinkConfig)) -> Net {
        let sim = simulator(faults).await;
        let dir = tempfile::tempdir().unwrap();
        let vault = Arc::new(TestVault::default());
        let mut config = link_config(&sim.pki, &[sim.handle.iso_addr]);
        tweak(&mut config);
        let link = start_link(config, &dir, &vault);
        assert!(
            link.wait_ready(Duration::from_secs(10)).await,
            "link never signed on"
        );
        Net {
            sim,
            link,
            vault,
            dir,
        }
    }

    pub fn acs(&self) -> AcsClient {
        AcsClient::new(self.sim.handle.acs_addr)
    }

    /// A purchase (0200) with the card's CVC, no stored credential.
    pub async fn pay(&self, digits: &str, amount: u64) -> link::LinkOutcome {
        self.pay_with(
            TransactionKind::Purchase,
            digits,
            amount,
            CredentialOnFile::None,
            None,
            Some("123"),
        )
        .await
    }

    pub async fn pay_with(
        &self,
        kind: TransactionKind,
        digits: &str,
        amount: u64,
        cof: CredentialOnFile,
        three_ds: Option<ThreeDs>,
        cvc: Option<&str>,
    ) -> link::LinkOutcome {
        self.try_pay_with(kind, digits, amount, cof, three_ds, cvc)
            .await
            .unwrap()
    }

    pub async fn try_pay_with(
        &self,
        kind: TransactionKind,
        digits: &str,
        amount: u64,
        cof: CredentialOnFile,
        three_ds: Option<ThreeDs>,
        cvc: Option<&str>,
    ) -> Result<link::LinkOutcome, link::AuthorizeError> {
        let pan = Pan::parse(digits).unwrap();
        let cvc = cvc.map(|c| Cvc::parse(c).unwrap());
        let card = self.vault.token(&pan);
        self.link
            .authorize(AuthorizationRequest {
                kind,
                pan: &pan,
                expiry: future_expiry(),
                cvc: cvc.as_ref(),
                card,
                amount: Amount(amount),
                currency: Currency::RUB,
                cof,
                three_ds,
                merchant: merchant(),
            })
            .await
    }

    /// A 0220 completing `original` (an approved 0100 on `digits`) for `amount`.
    pub async fn complete(
        &self,
        digits: &str,
        original: &link::TransactionRef,
        amount: u64,
    ) -> link::LinkOutcome {
        let pan = Pan::parse(digits).unwrap();
        self.link
            .complete(link::CompletionRequest {
                pan: &pan,
                expiry: future_expiry(),
                amount: Amount(amount),
                original,
            })
            .await
            .unwrap()
    }

    /// 3-D Secure at the simulator's ACS as the cardholder who knows the code.
    pub async fn three_ds(&self, digits: &str) -> ThreeDs {
        let r = self
            .acs()
            .authenticate_passing(&Pan::parse(digits).unwrap())
            .await
            .unwrap();
        ThreeDs {
            eci: iso8583::Eci::parse(&r.eci.unwrap()).unwrap(),
            cavv: r.cavv.map(|c| iso8583::Cavv::parse(&c).unwrap()),
            version: Some("2.2.0".into()),
            ds_transaction_id: Some(iso8583::DsTransactionId::parse(&r.ds_trans_id).unwrap()),
        }
    }
}

pub fn start_link(config: LinkConfig, dir: &tempfile::TempDir, vault: &Arc<TestVault>) -> Link {
    let store =
        store::Store::open(store::EngineKind::Redb, &dir.path().join("authorizer.redb")).unwrap();
    Link::start(config, store, vault.clone()).unwrap()
}

pub fn future_expiry() -> Expiry {
    Expiry::new(12, 2099).unwrap()
}

/// A saved card of the dev merchant's customer, under a fresh token.
pub fn net_card() -> CardRef {
    CardRef {
        merchant: MerchantId::parse("452739").unwrap(),
        customer: CustomerNumber::parse("c1").unwrap(),
        token: Token::random(),
        payment: None,
    }
}

pub fn merchant() -> Merchant {
    Merchant {
        id: MerchantId::parse("452739").unwrap(),
        name_location: None,
        category_code: None,
    }
}

/// Waits for `cond`, polling a cheap in-memory read; the deadline is only a guard.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
