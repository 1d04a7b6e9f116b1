//! The network in this process: the real simulator on 127.0.0.1:0 with its own dev PKI, and the
//! real link over mutual TLS 1.3 to it, with a redb store in a temp dir and a fake of the vault
//! ([`TestVault`], the link's `CardResolver` in memory). What link tests, the authorizer's tests
//! and the link bench start; `e2e` starts the same pieces as processes instead.
//!
//! Owns the test merchant and customer and the link configurations tests start from. Never
//! writes a PAN anywhere but the fake vault's memory.

use std::collections::HashMap;
use std::net::SocketAddr;
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

use crate::iso::IsoClient;

/// The dev merchant of ARCHITECTURE.md.
pub const MERCHANT: &str = "452739";

/// A fake of the vault in the link's role for it: finds a PAN again from its token, in memory.
/// Empty, it stands for a vault that knows no card (what a test expecting no reversal needs).
#[derive(Debug, Default)]
pub struct TestVault {
    cards: Mutex<HashMap<CardRef, Pan>>,
}

impl TestVault {
    /// Saves `pan` under a fresh token of the dev merchant's customer.
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

/// The simulator running in this process, and the PKI it trusts.
#[derive(Debug)]
pub struct Sim {
    /// The running simulator: its addresses, ledger and fault settings.
    pub handle: SimulatorHandle,
    /// Its dev PKI, whose client certificate an acquirer presents.
    pub pki: DevPki,
}

impl Sim {
    /// A simulator with a fresh PKI and `faults`, both listeners on 127.0.0.1:0.
    pub async fn start(faults: Faults) -> Sim {
        let pki = DevPki::generate();
        let mut config = SimConfig::with_pki(&pki);
        config.faults = faults;
        Sim::start_with(config, pki).await
    }

    /// A simulator with `config`, whose TLS is `pki`'s.
    pub async fn start_with(config: SimConfig, pki: DevPki) -> Sim {
        let iso = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let acs = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = Simulator::start(config, iso, acs).await.unwrap();
        Sim { handle, pki }
    }

    /// A new plain ISO 8583 connection to it.
    pub async fn client(&self) -> IsoClient {
        IsoClient::connect(self.handle.iso_addr, &self.pki)
            .await
            .unwrap()
    }

    /// A client of its ACS pages and ledger endpoint.
    pub fn acs(&self) -> AcsClient {
        AcsClient::new(self.handle.acs_addr)
    }
}

/// Why a link configuration could not be made from a PKI.
#[derive(Debug, thiserror::Error)]
pub enum LinkSetupError {
    /// The PKI's certificates or key were not usable.
    #[error("link TLS material: {0}")]
    Tls(#[from] link::TlsError),
    /// An endpoint was refused.
    #[error("link endpoint: {0}")]
    Endpoint(#[from] link::ConfigError),
}

/// The link's defaults (those the `authorizer` binary also starts from) towards `addrs` in
/// order, trusting `pki`'s CA and presenting its client certificate.
pub fn link_config(pki: &DevPki, addrs: &[SocketAddr]) -> Result<LinkConfig, LinkSetupError> {
    let tls = client_config(&TlsMaterial {
        ca_cert_pem: pki.ca_cert_pem.clone(),
        client_cert_pem: pki.client_cert_pem.clone(),
        client_key_pem: pki.client_key_pem.clone(),
    })?;
    let endpoints = addrs
        .iter()
        .map(|a| Endpoint::new(a.to_string(), "localhost"))
        .collect::<Result<_, _>>()?;
    Ok(LinkConfig::new(endpoints, tls))
}

/// [`link_config`] with two connections and short time-outs, so the fault tests stay fast; the
/// simulator's late delay is set above them.
pub fn fast_link_config(pki: &DevPki, addrs: &[SocketAddr]) -> LinkConfig {
    let mut c = link_config(pki, addrs).unwrap();
    c.connections = 2;
    c.request_timeout = Duration::from_millis(400);
    c.reversal_timeout = Duration::from_millis(400);
    c.backoff.initial = Duration::from_millis(20);
    c.backoff.max = Duration::from_millis(200);
    c.saf_retry_interval = Duration::from_millis(100);
    c
}

/// The simulator and a signed-on link to it, as a link test drives them.
#[derive(Debug)]
pub struct Net {
    /// The network.
    pub sim: Sim,
    /// The link under test, started with [`fast_link_config`].
    pub link: Link,
    /// Where the link finds a PAN again for a reversal.
    pub vault: Arc<TestVault>,
    /// Holds the link's store (`authorizer.redb`); a test restarts the link on it.
    pub dir: tempfile::TempDir,
}

impl Net {
    /// The network with `faults` and the link with [`fast_link_config`], signed on.
    pub async fn start(faults: Faults) -> Net {
        Net::start_with(faults, |_| {}).await
    }

    /// Like [`Net::start`], with the link's configuration changed by `tweak` first.
    pub async fn start_with(faults: Faults, tweak: impl FnOnce(&mut LinkConfig)) -> Net {
        let sim = Sim::start(faults).await;
        let dir = tempfile::tempdir().unwrap();
        let vault = Arc::new(TestVault::default());
        let mut config = fast_link_config(&sim.pki, &[sim.handle.iso_addr]);
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
        .unwrap()
    }

    /// An authorization of `kind` on `digits`, saved in the fake vault under a fresh token; the
    /// link's error is returned, as a test under faults expects some.
    pub async fn pay_with(
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
            .sim
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

/// A link with `config` on the store `authorizer.redb` in `dir`, resolving cards with `vault`;
/// not waited for (a test that wants it signed on calls `wait_ready`).
pub fn start_link(config: LinkConfig, dir: &tempfile::TempDir, vault: &Arc<TestVault>) -> Link {
    let store =
        store::Store::open(store::EngineKind::Redb, &dir.path().join("authorizer.redb")).unwrap();
    Link::start(config, store, vault.clone()).unwrap()
}

/// An expiry no test will outlive.
pub fn future_expiry() -> Expiry {
    Expiry::new(12, 2099).unwrap()
}

/// A purchase of `amount` kopecks by the dev merchant with `pan` and its `cvc`, saved as `card`:
/// no credential on file, no 3-D Secure. What the link's tests and bench send.
pub fn purchase<'a>(
    pan: &'a Pan,
    cvc: &'a Cvc,
    card: CardRef,
    amount: u64,
) -> AuthorizationRequest<'a> {
    AuthorizationRequest {
        kind: TransactionKind::Purchase,
        pan,
        expiry: future_expiry(),
        cvc: Some(cvc),
        card,
        amount: Amount(amount),
        currency: Currency::RUB,
        cof: CredentialOnFile::None,
        three_ds: None,
        merchant: merchant(),
    }
}

/// A saved card of the dev merchant's customer, under a fresh token.
pub fn net_card() -> CardRef {
    CardRef {
        merchant: MerchantId::parse(MERCHANT).unwrap(),
        customer: CustomerNumber::parse("c1").unwrap(),
        token: Token::random(),
        payment: None,
    }
}

/// The dev merchant as the link sends it (no name or category of its own).
pub fn merchant() -> Merchant {
    Merchant {
        id: MerchantId::parse(MERCHANT).unwrap(),
        name_location: None,
        category_code: None,
    }
}
