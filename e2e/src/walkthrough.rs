//! The One Click walkthrough across the real processes: the `simulator` and `vault` binaries as
//! children, the authorizer's link in this process over mutual TLS to the simulator, resolving
//! cards through the vault. A shopper saves a card, authenticates with 3-D Secure, pays a first
//! use, sees the card listed, pays One Click with only the CVC; the merchant charges a recurring
//! MIT; two payments are declined; then the simulator's ledger is reconciled with what the
//! walkthrough saw, and the vault's audit log is verified once the vault has stopped.
//!
//! Owns the flow and the roles each call is made in (`facade` tokenizes and lists, `authorizer`
//! detokenizes and records payments). Must never return or print a PAN or a CVC: the PAN lives
//! from a detokenize to one authorization, the CVC is typed per payment and dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use card::{Cvc, Expiry, Pan, PaymentRef};
use iso8583::{Amount, Cavv, DsTransactionId, Eci, MitReason};
use link::{
    AuthorizationRequest, CredentialOnFile, Currency, Link, LinkOutcome, Merchant, ThreeDs,
    TransactionKind,
};
use simulator::AcsClient;
use vault::{
    CardUse, CardholderName, ClientOptions, Credentials, CustomerNumber, MerchantId, Timestamp,
    Token, TokenizeRequest, VaultClient, VaultEndpoint,
};

use crate::summary::{
    Expect, ListedCardView, Outcome, Payment, Reconciliation, Step, StepName, Summary,
};
use authorizer::cards::VaultCards;
use testkit::network::{LinkSetupError, MERCHANT, link_config};
use testkit::processes::{Binaries, ClientLogin, ProcessError, SimulatorProcess, VaultSetup};

/// The shopper, as the merchant numbers its customers.
pub const CUSTOMER: &str = "cust-42";
/// The simulator's Visa that passes a 3-D Secure challenge with code `1234`.
pub const TEST_PAN: &str = testkit::cards::VISA_CHALLENGE;
/// [`TEST_PAN`] as every listing, ledger and summary shows it.
pub const TEST_PAN_MASKED: &str = "411111******1111";
const CVC: &str = "123";
const WRONG_CVC: &str = "999";
const HOLDER: &str = "IVAN PETROV";
/// Magic amount: the simulator's issuer answers `61`, exceeds amount limit.
const AMOUNT_LIMIT_MAGIC: u64 = 9961;
/// Magic amount: the simulator approves and books it, and never answers.
const LOST_ANSWER_MAGIC: u64 = 9901;
/// How long the link waits for an answer before it reverses: shorter than the dev default of
/// 5 s so that the lost answer costs the walkthrough little, long enough for a loaded machine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the walkthrough stopped before its summary. A declined or reversed payment is not an
/// error (it is a step's outcome); these mean the test setup or a process failed.
#[derive(Debug, thiserror::Error)]
pub enum WalkthroughError {
    /// A child process (simulator, vault) would not start, stop or answer, or the vault's audit
    /// verification could not run.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A vault call failed: the vault was unreachable, refused our client or answered an error.
    #[error("vault: {0}")]
    Vault(#[from] vault::ClientError),
    /// A value only the vault's model checks (the test cardholder's name) breaks its rules: a
    /// bug here.
    #[error("vault input: {0}")]
    Model(#[from] vault::ModelError),
    /// The test card's number, CVC or expiry is not valid: a bug here.
    #[error("card: {0}")]
    Card(#[from] card::CardError),
    /// A merchant ID, customer number, token or payment reference the walkthrough makes is
    /// malformed: a bug here.
    #[error("name: {0}")]
    Name(#[from] card::NameError),
    /// The link refused its configuration or could not open its store-and-forward queue.
    #[error("link start: {0}")]
    Start(#[from] link::StartError),
    /// The link's configuration could not be made from the simulator's PKI.
    #[error(transparent)]
    LinkSetup(#[from] LinkSetupError),
    /// A payment got no outcome from the link (not sent, or an internal failure); a decline or
    /// a time-out is an outcome, not this.
    #[error("authorization: {0}")]
    Authorize(#[from] link::AuthorizeError),
    /// The link's store (`authorizer.redb`) could not be opened.
    #[error("link store: {0}")]
    Store(#[from] store::StoreError),
    /// The simulator's ACS or ledger endpoint failed or answered something unexpected.
    #[error("ACS: {0}")]
    Acs(#[from] simulator::acs_client::AcsClientError),
    /// A file system operation on the data directory failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, and to which path.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The link did not sign on to the simulator in time (given): the simulator or the TLS
    /// setup is at fault.
    #[error("the link did not sign on to the simulator within {0:?}")]
    LinkNotReady(Duration),
    /// The simulator's ACS authenticated the test card without an ECI, which the first use
    /// needs: the simulator's fault.
    #[error("the ACS gave no ECI for the test card")]
    NoEci,
    /// The data directory already holds something: a walkthrough needs a fresh one, since it
    /// makes new keys and PINs.
    #[error(
        "{0} is not empty: the walkthrough makes new keys and PINs, so it needs a fresh directory"
    )]
    DataDirNotEmpty(PathBuf),
}

/// Where the walkthrough runs.
#[derive(Debug, Clone)]
pub struct WalkthroughConfig {
    /// The `simulator`, `vault` and `authorizer` executables to start.
    pub binaries: Binaries,
    /// Gets `simulator/`, `vault/` and `authorizer/` subdirectories; must be empty or absent.
    pub data_dir: PathBuf,
}

impl WalkthroughConfig {
    /// Holds the simulator's PKI (`certs/`) and its ledger.
    pub fn simulator_dir(&self) -> PathBuf {
        self.data_dir.join("simulator")
    }
    /// Holds the vault's config, SoftHSM2 token and database.
    pub fn vault_dir(&self) -> PathBuf {
        self.data_dir.join("vault")
    }
    /// Holds the link's store (the reversal store-and-forward queue).
    pub fn authorizer_dir(&self) -> PathBuf {
        self.data_dir.join("authorizer")
    }
}

/// Runs the whole walkthrough, stops every process gracefully and verifies the vault's audit log.
/// On an error the children are killed as their handles drop.
pub async fn run(config: &WalkthroughConfig) -> Result<Summary, WalkthroughError> {
    if std::fs::read_dir(&config.data_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(WalkthroughError::DataDirNotEmpty(config.data_dir.clone()));
    }
    for dir in [config.simulator_dir(), config.authorizer_dir()] {
        std::fs::create_dir_all(&dir).map_err(|source| WalkthroughError::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
    }
    let sim = SimulatorProcess::start(&config.binaries.simulator, &config.simulator_dir()).await?;
    let vault_setup =
        VaultSetup::init(&config.binaries.vault, &config.vault_dir(), MERCHANT).await?;
    let vault = vault_setup.serve().await?;

    let facade = connect(&vault_setup.socket(), &vault_setup.facade).await?;
    let authorizer = connect(&vault_setup.socket(), &vault_setup.authorizer).await?;
    let cards = VaultCards::new(authorizer.clone());
    let link = start_link(&sim, &config.authorizer_dir(), cards.clone())?;
    let ready = Duration::from_secs(10);
    if !link.wait_ready(ready).await {
        return Err(WalkthroughError::LinkNotReady(ready));
    }

    let shop = Shop {
        merchant: MerchantId::parse(MERCHANT)?,
        customer: CustomerNumber::parse(CUSTOMER)?,
        facade,
        authorizer,
        link: link.clone(),
        acs: AcsClient::new(sim.acs_addr),
        payments: std::sync::atomic::AtomicU32::new(1),
    };
    let steps = shop.one_click().await?;
    let reconciliation = reconcile(&steps, &shop.acs.ledger().await?, cards.counts());
    drop(shop);

    link.shutdown().await;
    sim.stop().await?;
    vault.stop().await?;
    let audit = vault_setup.audit_verify().await?;
    Ok(Summary {
        steps,
        reconciliation,
        audit,
    })
}

async fn connect(socket: &Path, login: &ClientLogin) -> Result<VaultClient, WalkthroughError> {
    Ok(VaultClient::connect_with(
        VaultEndpoint::Unix(socket.to_path_buf()),
        Credentials::Secret {
            client: login.id.to_owned(),
            secret: login.secret(),
        },
        ClientOptions {
            connections: 1,
            timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
    )
    .await?)
}

/// The link with the dev defaults, trusting the CA the simulator wrote and presenting its client
/// certificate.
fn start_link(
    sim: &SimulatorProcess,
    dir: &Path,
    cards: VaultCards,
) -> Result<Link, WalkthroughError> {
    let store = store::Store::open(store::EngineKind::Redb, &dir.join("authorizer.redb"))?;
    let mut config = link_config(&sim.pki()?, &[sim.iso_addr])?;
    config.request_timeout = REQUEST_TIMEOUT;
    Ok(Link::start(config, store, Arc::new(cards))?)
}

/// The merchant's shop as the walkthrough drives it: one customer, the vault in both roles, the
/// link and the ACS.
struct Shop {
    merchant: MerchantId,
    customer: CustomerNumber,
    facade: VaultClient,
    authorizer: VaultClient,
    link: Link,
    acs: AcsClient,
    /// Numbers the payments, as the order engine's billnumbers would: each detokenize is granted
    /// for one payment reference.
    payments: std::sync::atomic::AtomicU32,
}

/// How one payment is made.
struct Pay {
    kind: TransactionKind,
    amount: u64,
    cvc: Option<&'static str>,
    cof: CredentialOnFile,
    three_ds: Option<ThreeDs>,
}

impl Shop {
    async fn one_click(&self) -> Result<Vec<Step>, WalkthroughError> {
        let mut steps = Vec::new();

        // The shopper types the card on the payment page, "remember this card" checked.
        let pan = Pan::parse(TEST_PAN)?;
        let card = pan.masked();
        let saved = self
            .facade
            .tokenize(TokenizeRequest {
                merchant: self.merchant.clone(),
                customer: self.customer.clone(),
                pan: pan.clone(),
                expiry: future_expiry()?,
                holder: Some(CardholderName::parse(HOLDER)?),
            })
            .await?;
        let token = saved.token;
        steps.push(Step {
            name: StepName::SaveCard,
            card: card.clone(),
            payment: None,
            outcome: Outcome::Saved {
                token: token.to_string(),
                created: saved.created,
            },
            expected: Expect::Created,
        });
        steps.push(self.list(StepName::ListBeforePayment, &card, 0).await?);

        // 3-D Secure at the ACS, the cardholder answering the challenge.
        let auth = self.acs.authenticate_passing(&pan).await?;
        drop(pan);
        steps.push(Step {
            name: StepName::ThreeDSecure,
            card: card.clone(),
            payment: None,
            outcome: Outcome::Authenticated {
                status: auth.status.clone(),
                eci: auth.eci.clone(),
                cavv_present: auth.cavv.is_some(),
                ds_trans_id: auth.ds_trans_id.clone(),
            },
            expected: Expect::Authenticated,
        });
        let three_ds = ThreeDs {
            eci: auth
                .eci
                .as_deref()
                .and_then(Eci::parse)
                .ok_or(WalkthroughError::NoEci)?,
            cavv: auth.cavv.as_deref().and_then(Cavv::parse),
            version: Some("2.2.0".into()),
            ds_transaction_id: DsTransactionId::parse(&auth.ds_trans_id),
        };

        let first = Pay {
            kind: TransactionKind::Purchase,
            amount: 1_500,
            cvc: Some(CVC),
            cof: CredentialOnFile::FirstUse,
            three_ds: Some(three_ds),
        };
        let first_use = self
            .pay(
                StepName::FirstUse,
                token,
                first,
                Expect::ApprovedWithNetworkId,
            )
            .await?;
        let network_txn_id = match &first_use.outcome {
            Outcome::Approved { network_txn_id, .. } => network_txn_id.clone(),
            _ => None,
        };
        steps.push(first_use);
        steps.push(self.list(StepName::ListAfterPayment, &card, 1).await?);

        let one_click = Pay {
            kind: TransactionKind::Purchase,
            amount: 2_500,
            cvc: Some(CVC),
            cof: CredentialOnFile::Cardholder,
            three_ds: None,
        };
        steps.push(
            self.pay(StepName::OneClick, token, one_click, Expect::Approved)
                .await?,
        );

        // The merchant's subscription charge, linked to the first use by the network's ID.
        if let Some(original) = network_txn_id
            .as_deref()
            .and_then(link::NetworkTxnId::parse)
        {
            let recurring = Pay {
                kind: TransactionKind::Purchase,
                amount: 990,
                cvc: None,
                cof: CredentialOnFile::Merchant {
                    reason: MitReason::Recurring,
                    original,
                },
                three_ds: None,
            };
            steps.push(
                self.pay(StepName::Recurring, token, recurring, Expect::Approved)
                    .await?,
            );
        }

        let wrong_cvc = Pay {
            kind: TransactionKind::Purchase,
            amount: 1_200,
            cvc: Some(WRONG_CVC),
            cof: CredentialOnFile::Cardholder,
            three_ds: None,
        };
        steps.push(
            self.pay(
                StepName::CvcMismatch,
                token,
                wrong_cvc,
                Expect::Declined("N7"),
            )
            .await?,
        );
        let over_limit = Pay {
            kind: TransactionKind::Purchase,
            amount: AMOUNT_LIMIT_MAGIC,
            cvc: Some(CVC),
            cof: CredentialOnFile::Cardholder,
            three_ds: None,
        };
        steps.push(
            self.pay(
                StepName::AmountLimit,
                token,
                over_limit,
                Expect::Declined("61"),
            )
            .await?,
        );
        // The network books it but its answer never comes: the link reverses it, finding the
        // PAN for the reversal's DE 2 again through the vault.
        let lost = Pay {
            kind: TransactionKind::Purchase,
            amount: LOST_ANSWER_MAGIC,
            cvc: Some(CVC),
            cof: CredentialOnFile::Cardholder,
            three_ds: None,
        };
        steps.push(
            self.pay(StepName::LostAnswer, token, lost, Expect::Reversed)
                .await?,
        );
        Ok(steps)
    }

    /// The payment page's card listing, as the facade asks for it.
    async fn list(
        &self,
        name: StepName,
        card: &str,
        expected: usize,
    ) -> Result<Step, WalkthroughError> {
        let listing = self.facade.list(&self.merchant, &self.customer).await?;
        let cards = listing
            .cards
            .iter()
            .map(|c| ListedCardView {
                token: c.token.to_string(),
                masked: format!("{}******{}", c.card.bin.as_str(), c.card.last4.as_str()),
                brand: c.card.brand.assist_name(),
                expire: c.card.expiry.assist_format(),
                active: c.active,
                need_cvc: c.need_cvc,
            })
            .collect();
        Ok(Step {
            name,
            card: card.to_owned(),
            payment: None,
            outcome: Outcome::Listed {
                status: format!("{:?}", listing.status),
                cards,
            },
            expected: Expect::Listed(expected),
        })
    }

    /// One payment as the order engine makes it: a detokenize grant for this payment (facade
    /// role), detokenize with it (authorizer role), one authorization through the link, and on
    /// approval the success recorded in the vault.
    async fn pay(
        &self,
        name: StepName,
        token: Token,
        pay: Pay,
        expected: Expect,
    ) -> Result<Step, WalkthroughError> {
        let n = self
            .payments
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let payment_ref = PaymentRef::parse(&format!("walkthrough-{n}"))?;
        let grant = self
            .facade
            .grant_detokenize(
                &self.merchant,
                &self.customer,
                token,
                &payment_ref,
                CardUse::OnFile,
            )
            .await?;
        let secret = self
            .authorizer
            .detokenize(&self.merchant, &self.customer, token, &payment_ref, grant)
            .await?;
        let cvc = pay.cvc.map(Cvc::parse).transpose()?;
        let outcome = self
            .link
            .authorize(AuthorizationRequest {
                kind: pay.kind,
                pan: &secret.pan,
                expiry: secret.expiry,
                cvc: cvc.as_ref(),
                card: VaultCards::card_ref(&self.merchant, &self.customer, token, &payment_ref),
                amount: Amount(pay.amount),
                currency: Currency::RUB,
                cof: pay.cof,
                three_ds: pay.three_ds,
                merchant: Merchant {
                    id: self.merchant.clone(),
                    name_location: None,
                    category_code: None,
                },
            })
            .await?;
        let card = secret.pan.masked();
        drop((secret, cvc));
        let reference = outcome.reference();
        let payment = Payment {
            mti: reference.mti.value(),
            stan: reference.stan.value(),
            rrn: reference.rrn.as_str().to_owned(),
            amount: reference.amount.0,
        };
        let outcome = match outcome {
            LinkOutcome::Approved {
                approval_code,
                network_txn_id,
                ..
            } => {
                self.authorizer
                    .record_payment(
                        &self.merchant,
                        &self.customer,
                        token,
                        &payment_ref,
                        Timestamp::now(),
                    )
                    .await?;
                Outcome::Approved {
                    approval_code: approval_code.as_str().to_owned(),
                    network_txn_id: network_txn_id.map(|id| id.as_str().to_owned()),
                    recorded: true,
                }
            }
            LinkOutcome::Declined { code, .. } => Outcome::Declined {
                code: code.as_str().to_owned(),
            },
            LinkOutcome::TimedOutReversed { reversal, .. } => Outcome::TimedOutReversed {
                reversal: format!("{reversal:?}"),
            },
        };
        Ok(Step {
            name,
            card,
            payment: Some(payment),
            outcome,
            expected,
        })
    }
}

/// December, three years from now: valid at the simulator and active in the listing.
fn future_expiry() -> Result<Expiry, card::CardError> {
    let (year, _) = Timestamp::now().year_month();
    Expiry::new(12, year + 3)
}

/// The walkthrough's approvals, declines and reversals against the ledger's, and the card's
/// balance against the approved amounts.
fn reconcile(
    steps: &[Step],
    ledger: &simulator::Ledger,
    (cards_resolved, cards_unresolved): (u64, u64),
) -> Reconciliation {
    let mut walkthrough_approvals = Vec::new();
    let mut walkthrough_declines = Vec::new();
    let mut walkthrough_reversals = Vec::new();
    let mut approved_amount = 0;
    for step in steps {
        let Some(p) = &step.payment else { continue };
        match &step.outcome {
            Outcome::Approved { .. } => {
                walkthrough_approvals.push((p.stan, p.rrn.clone()));
                approved_amount += p.amount;
            }
            Outcome::Declined { code } => walkthrough_declines.push((p.stan, code.clone())),
            Outcome::TimedOutReversed { .. } => {
                walkthrough_reversals.push((p.stan, step.card.clone()))
            }
            _ => {}
        }
    }
    let reversed: Vec<&(String, u32)> = ledger
        .applied_reversals()
        .filter_map(|e| e.original.as_ref())
        .collect();
    let mut ledger_reversals: Vec<_> = ledger
        .applied_reversals()
        .map(|e| {
            let stan = e.original.as_ref().map_or(0, |(_, stan)| *stan);
            (stan, e.card.clone().unwrap_or_else(|| "-".into()))
        })
        .collect();
    let mut ledger_approvals: Vec<_> = ledger
        .approvals()
        .filter(|e| {
            !reversed
                .iter()
                .any(|(mti, stan)| Some(*stan) == e.stan && *mti == e.mti)
        })
        .map(|e| (e.stan.unwrap_or(0), e.rrn.clone().unwrap_or_default()))
        .collect();
    let mut ledger_declines: Vec<_> = ledger
        .entries
        .iter()
        .filter(|e| e.action == simulator::Action::Declined)
        .map(|e| {
            (
                e.stan.unwrap_or(0),
                e.response_code.clone().unwrap_or_default(),
            )
        })
        .collect();
    for v in [&mut walkthrough_approvals, &mut ledger_approvals] {
        v.sort();
    }
    for v in [
        &mut walkthrough_declines,
        &mut ledger_declines,
        &mut walkthrough_reversals,
        &mut ledger_reversals,
    ] {
        v.sort();
    }
    let card_debited = ledger
        .balance(TEST_PAN_MASKED)
        .map_or(0, |b| b.opening - b.current);
    Reconciliation {
        walkthrough_approvals,
        ledger_approvals,
        walkthrough_declines,
        ledger_declines,
        walkthrough_reversals,
        ledger_reversals,
        cards_resolved,
        cards_unresolved,
        approved_amount,
        card_debited,
        balances_add_up: ledger.balances_add_up(),
        ledger_entries: ledger.entries.len(),
    }
}

#[cfg(test)]
mod tests {
    use simulator::{Action, Balance, Delivery, Ledger, LedgerEntry};

    use super::*;

    fn entry(stan: u32, action: Action, delta: i64, original: Option<u32>) -> LedgerEntry {
        LedgerEntry {
            seq: u64::from(stan),
            at_ms: 0,
            connection: 1,
            mti: if original.is_some() { "0400" } else { "0200" }.into(),
            stan: Some(stan),
            rrn: Some(format!("rrn{stan}")),
            card: Some(TEST_PAN_MASKED.into()),
            card_present: true,
            amount: Some(delta.unsigned_abs()),
            original: original.map(|s| ("0200".into(), s)),
            response_code: Some(
                if action == Action::Declined {
                    "N7"
                } else {
                    "00"
                }
                .into(),
            ),
            approval_code: None,
            network_id: None,
            action,
            balance_delta: delta,
            balance_after: None,
            delivery: Delivery::Sent,
        }
    }

    fn payment(stan: u32, amount: u64, outcome: Outcome) -> Step {
        Step {
            name: StepName::OneClick,
            card: TEST_PAN_MASKED.into(),
            payment: Some(Payment {
                mti: 200,
                stan,
                rrn: format!("rrn{stan}"),
                amount,
            }),
            outcome,
            expected: Expect::Approved,
        }
    }

    fn approved() -> Outcome {
        Outcome::Approved {
            approval_code: "000001".into(),
            network_txn_id: None,
            recorded: true,
        }
    }

    fn ledger(entries: Vec<LedgerEntry>) -> Ledger {
        let moved: i64 = entries.iter().map(|e| e.balance_delta).sum();
        let balance = Balance {
            opening: 10_000,
            current: 10_000 + moved,
        };
        Ledger {
            entries,
            trimmed: 0,
            balances: [(TEST_PAN_MASKED.to_owned(), balance)].into(),
        }
    }

    #[test]
    fn a_reversed_approval_reconciles_with_a_timed_out_payment() {
        let steps = [
            payment(1, 100, approved()),
            payment(2, 50, Outcome::Declined { code: "N7".into() }),
            payment(
                3,
                70,
                Outcome::TimedOutReversed {
                    reversal: "Acknowledged".into(),
                },
            ),
        ];
        let net = ledger(vec![
            entry(1, Action::Approved, -100, None),
            entry(2, Action::Declined, 0, None),
            entry(3, Action::Approved, -70, None),
            entry(4, Action::Reversed, 70, Some(3)),
        ]);
        let r = reconcile(&steps, &net, (1, 0));
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.ledger_approvals, vec![(1, "rrn1".to_owned())]);
        assert_eq!(r.card_debited, 100);

        assert!(
            !reconcile(&steps, &net, (0, 1)).ok(),
            "a reversal sent without its card is a mismatch"
        );
    }

    #[test]
    fn an_approval_only_the_network_saw_is_a_mismatch() {
        let steps = [payment(1, 100, approved())];
        let net = ledger(vec![
            entry(1, Action::Approved, -100, None),
            entry(2, Action::Approved, -30, None),
        ]);
        let r = reconcile(&steps, &net, (0, 0));
        assert!(!r.ok());
        assert_eq!(r.card_debited, 130);
        assert_ne!(r.walkthrough_approvals, r.ledger_approvals);
    }
}
