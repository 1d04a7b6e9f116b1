//! The three binaries as an operator runs them: the deployment examples (`deploy/*.toml`) pass
//! each binary's own parser and validator; every option of every command is explained by its
//! `--help`.

use std::path::Path;

use testkit::deploy::example;
use testkit::processes::Binaries;

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
    let config = vault::config::Config::load(&path)
        .unwrap_or_else(|e| panic!("deploy/vault.toml: {e}"));
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
                assert!(!explanation.is_empty(), "{args:?}: command {head} unexplained");
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

/// The binaries' `--help` says where every key of the config file is documented and names the
/// example, and each file it names is in the repository.
fn names_its_config_documentation(bin: &Path, readme: &str, example: &str) {
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
    let seen = every_option_explained(&bins.authorizer, &[]);
    for flag in [
        "--config",
        "--admin-addr",
        "--http",
        "--merchants",
        "customer show --merchant",
        "customer remove-card --token",
    ] {
        assert!(seen.iter().any(|s| s.ends_with(flag)), "{flag}: {seen:?}");
    }
    names_its_config_documentation(
        &bins.authorizer,
        "crates/authorizer/README.md",
        "deploy/authorizer.toml",
    );
}

#[test]
fn the_vault_help_explains_every_option() {
    let bins = Binaries::locate().expect("binaries");
    let seen = every_option_explained(&bins.vault, &[]);
    for flag in [
        "--config",
        "init --dev",
        "serve --allow-env-secrets",
        "rotate-keys --fingerprint",
        "audit verify --checkpoints",
    ] {
        assert!(seen.iter().any(|s| s.ends_with(flag)), "{flag}: {seen:?}");
    }
    names_its_config_documentation(&bins.vault, "crates/vault/README.md", "deploy/vault.toml");
}

#[test]
fn the_simulator_help_explains_every_option() {
    let bins = Binaries::locate().expect("binaries");
    let seen = every_option_explained(&bins.simulator, &[]);
    for flag in [
        "serve --config",
        "serve --iso-addr",
        "serve --acs-addr",
        "serve --certs",
        "serve --ledger",
        "certs --out",
    ] {
        assert!(seen.iter().any(|s| s.ends_with(flag)), "{flag}: {seen:?}");
    }
    names_its_config_documentation(
        &bins.simulator,
        "crates/simulator/README.md",
        "deploy/simulator.toml",
    );
}
