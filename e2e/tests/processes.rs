//! The three binaries as an operator runs them: the deployment examples (`deploy/*.toml`) pass
//! each binary's own parser and validator; every option of every command is explained by its
//! `--help`; the authorizer's `/health` (liveness) and `/ready` (readiness, following the network
//! and the vault as they go and come back); and a SIGTERM while payments wait on a slow network:
//! each still gets its answer, the process exits 0, and after a restart no order is In Process.

use std::path::Path;

use testkit::cards::PLAIN_APPROVED;
use testkit::deploy::example;
use testkit::eventually;
use testkit::http::{Answer, request};
use testkit::processes::Binaries;
use testkit::shop::Merchant;
use testkit::stack::{Stack, StackOptions};

#[test]
fn the_authorizer_deployment_example_is_accepted() {
    let (_site, path) = example("authorizer.toml");
    let config = authorizer::config::Settings::from_file(&path)
        .and_then(authorizer::config::Settings::validate)
        .unwrap_or_else(|e| panic!("deploy/authorizer.toml: {e}"));
    assert!(config.data_dir.starts_with(path.parent().unwrap()));
}

#[test]
fn the_vault_deployment_example_is_accepted_by_serve() {
    let (_site, path) = example("vault.toml");
    let config =
        vault::config::Config::load(&path).unwrap_or_else(|e| panic!("deploy/vault.toml: {e}"));
    // `serve` refuses secrets from the environment unless told otherwise.
    assert!(config.env_secrets.is_empty(), "{:?}", config.env_secrets);
}

#[test]
fn the_simulator_deployment_example_is_accepted() {
    let (_site, path) = example("simulator.toml");
    let config = simulator::config::ServeConfig::from_args(simulator::config::ServeArgs {
        config: Some(path.clone()),
        ..simulator::config::ServeArgs::default()
    })
    .unwrap_or_else(|e| panic!("deploy/simulator.toml: {e}"));
    assert_eq!(config.sim.faults.rules.len(), 1);
}

/// What `bin <args> --help` says of each option: `(the option's line, its explanation)`, and the
/// subcommands it lists. Read from clap's layout (a section title ending in `:` at the margin,
/// entries indented, an explanation after two spaces or on the lines below), not from its text.
fn help(bin: &Path, args: &[&str]) -> (String, Vec<(String, String)>, Vec<String>) {
    let out = std::process::Command::new(bin)
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{} {args:?} --help: {e}", bin.display()));
    assert!(out.status.success(), "{args:?} --help: {}", out.status);
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut options, mut commands) = (Vec::new(), Vec::new());
    let mut section = "";
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.is_empty() && !line.starts_with(' ') {
            // A section's title, or text at the margin (the long help's prose) that ends one.
            section = if line.ends_with(':') { line } else { "" };
            continue;
        }
        let entry = line.trim_start();
        let indent = line.len() - entry.len();
        if entry.is_empty() || indent > 6 {
            continue;
        }
        let (head, inline) = entry.split_once("  ").unwrap_or((entry, ""));
        let mut explanation = inline.trim().to_owned();
        // The long layout puts the explanation on the deeper-indented lines below.
        while let Some(next) = lines.peek() {
            let t = next.trim_start();
            if t.is_empty() || next.len() - t.len() <= indent {
                break;
            }
            explanation.push_str(t);
            lines.next();
        }
        match section {
            "Options:" => options.push((head.to_owned(), explanation)),
            "Commands:" if head != "help" => {
                assert!(
                    !explanation.is_empty(),
                    "{args:?}: command {head} unexplained"
                );
                commands.push(head.to_owned());
            }
            _ => {}
        }
    }
    (text, options, commands)
}

/// Every option of `bin` and of each of its subcommands, recursively, has an explanation; the
/// options seen, as `<command path> <flag>`.
fn every_option_explained(bin: &Path, path: &[&str]) -> Vec<String> {
    let (_, options, commands) = help(bin, path);
    let mut seen = Vec::new();
    for (option, explanation) in options {
        assert!(!explanation.is_empty(), "{path:?} {option}: no explanation");
        let flag = option
            .split([' ', ','])
            .find(|w| w.starts_with("--"))
            .unwrap_or(&option);
        seen.push(format!("{} {flag}", path.join(" ")).trim().to_owned());
    }
    for command in &commands {
        let mut sub = path.to_vec();
        sub.push(command);
        seen.extend(every_option_explained(bin, &sub));
    }
    seen
}

/// Every option of every command of `bin` is explained, `flags` (`<command path> <flag>`) among
/// them; and its `--help` names the README that documents every key of the config file and the
/// deployment example, both files of the repository.
fn help_explains(bin: &Path, flags: &[&str], readme: &str, example: &str) {
    let seen = every_option_explained(bin, &[]);
    for flag in flags {
        assert!(seen.iter().any(|s| s.ends_with(flag)), "{flag}: {seen:?}");
    }
    let (text, _, _) = help(bin, &[]);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in [readme, example] {
        assert!(flat.contains(file), "--help does not name {file}: {text}");
        assert!(repo.join(file).is_file(), "{file} is not in the repository");
    }
}

#[test]
fn the_authorizer_help_explains_every_option() {
    let bins = Binaries::locate().expect("binaries");
    help_explains(
        &bins.authorizer,
        &[
            "--config",
            "--admin-addr",
            "--http",
            "--merchants",
            "customer show --merchant",
            "customer remove-card --token",
        ],
        "crates/authorizer/README.md",
        "deploy/authorizer.toml",
    );
}

#[test]
fn the_vault_help_explains_every_option() {
    let bins = Binaries::locate().expect("binaries");
    help_explains(
        &bins.vault,
        &[
            "--config",
            "init --dev",
            "serve --allow-env-secrets",
            "rotate-keys --fingerprint",
            "audit verify --checkpoints",
        ],
        "crates/vault/README.md",
        "deploy/vault.toml",
    );
}

#[test]
fn the_simulator_help_explains_every_option() {
    let bins = Binaries::locate().expect("binaries");
    help_explains(
        &bins.simulator,
        &[
            "serve --config",
            "serve --iso-addr",
            "serve --acs-addr",
            "serve --certs",
            "serve --ledger",
            "certs --out",
        ],
        "crates/simulator/README.md",
        "deploy/simulator.toml",
    );
}

async fn admin_get(stack: &Stack, path: &str) -> Answer {
    request(stack.authorizer().admin_addr, "GET", path, "").await
}

/// Polls the authorizer's `/ready` until it answers `status`; its answer.
async fn ready_becomes(stack: &Stack, status: u16) -> Answer {
    let mut last = None;
    eventually(&format!("/ready answering {status}"), async || {
        let a = admin_get(stack, "/ready").await;
        let done = a.status == status;
        last = Some(a);
        done
    })
    .await;
    last.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_network_while_health_stays_up() {
    let mut stack = Stack::start(StackOptions::default()).await;
    assert_eq!(admin_get(&stack, "/health").await.status, 200);
    ready_becomes(&stack, 200).await;

    stack.sim.stop_for_now().await.expect("the simulator stops");
    let away = ready_becomes(&stack, 503).await;
    assert!(away.body.contains("link"), "{}", away.body);
    assert_eq!(
        admin_get(&stack, "/health").await.status,
        200,
        "the process itself is alive"
    );

    stack
        .sim
        .start_again(&stack.bins.simulator)
        .await
        .expect("the simulator comes back");
    ready_becomes(&stack, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_vault() {
    let mut stack = Stack::start(StackOptions::default()).await;
    ready_becomes(&stack, 200).await;

    let vault = stack.vault.take().expect("the vault runs");
    vault.stop().await.expect("the vault stops");
    let away = ready_becomes(&stack, 503).await;
    assert!(away.body.contains("vault"), "{}", away.body);

    stack.vault = Some(stack.setup.serve().await.expect("the vault serves again"));
    ready_becomes(&stack, 200).await;
}

/// The amount the slow network holds, in minor units and as the merchant writes it.
const SLOW: (u64, &str) = (4_200, "42.00");
/// How long the network holds it: long enough for the SIGTERM to land while every payment waits,
/// well inside the link's request time-out (5 s), after which it would be reversed.
const SLOW_MS: u64 = 1_500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_payments_in_flight_finish_and_leaves_none_in_process() {
    let mut stack = Stack::start(StackOptions {
        simulator_config: format!(
            "[faults]\n[[faults.rules]]\nwhen = {{ amount = {} }}\n\
             fault = {{ kind = \"delay\", latency = {{ kind = \"fixed\", ms = {SLOW_MS} }} }}\n",
            SLOW.0
        ),
        ..StackOptions::default()
    })
    .await;
    // A customer and a saved card per payment, so that nothing of one customer's (its limits)
    // orders them one after another.
    let orders: Vec<String> = (1..=4).map(|n| format!("sigterm-{n}")).collect();
    let mut tokens = Vec::new();
    for customer in &orders {
        tokens.push(stack.saved_card("452739", customer, PLAIN_APPROVED).await);
    }

    let merchant = Merchant::dev(stack.authorizer().api_addr);
    let payments: Vec<_> = orders
        .iter()
        .zip(tokens)
        .map(|(order, token)| {
            let (order, merchant) = (order.clone(), merchant.clone());
            tokio::spawn(async move {
                merchant
                    .token_pay(&order, SLOW.1, false, &order, &token)
                    .await
            })
        })
        .collect();
    // Every payment is at the network (booked there, its answer held back) before the signal.
    let acs = simulator::AcsClient::new(stack.sim.acs_addr);
    eventually("every payment waiting at the network", async || {
        let ledger = acs.ledger().await.expect("the ledger");
        ledger
            .entries
            .iter()
            .filter(|e| e.amount == Some(SLOW.0))
            .count()
            == orders.len()
    })
    .await;
    stack
        .take_authorizer()
        .stop()
        .await
        .expect("the authorizer exits 0 on SIGTERM");

    for (order, payment) in orders.iter().zip(payments) {
        let answer = payment
            .await
            .expect("the payment's task")
            .expect("an answer");
        assert_eq!(answer.status, 200, "{order}: {answer:?}");
        let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(
            v["tokenpay"]["orders"][0]["orderstate"], "Approved",
            "{order}: {v}"
        );
    }

    stack.start_authorizer().await;
    for order in &orders {
        let a = Merchant::dev(stack.authorizer().api_addr)
            .call(
                "/orderstate/orderstate.cfm",
                &[("OrderNumber", order), ("Format", "5")],
            )
            .await
            .expect("an answer");
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        let states: Vec<&str> = v["orderstate"]["orders"]
            .as_array()
            .unwrap_or_else(|| panic!("{order}: {v}"))
            .iter()
            .filter_map(|o| o["orderstate"].as_str())
            .collect();
        assert_eq!(states, ["Approved"], "{order}: {v}");
    }
}
