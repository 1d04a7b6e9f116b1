//! `soak`: the whole system under load for a while, with faults, then reconciled (issue 13). See
//! `benches::soak` for what a run does and README.md "Soak" for how to run it.
//!
//! Parses flags into [`benches::soak::Options`], prints the progress lines on stderr and the
//! report on stdout, and exits 1 when the reconciliation found a difference.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a load tool reports on its terminal

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use benches::soak::driver::Pace;
use benches::soak::mix::Mix;
use benches::soak::{Options, faults, plot, report::Report};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "soak",
    about = "Drives the real vault, simulator and authorizer processes with a mix of merchant API \
             calls and payment-page shoppers, with faults, then reconciles every party's records",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Draws latency.png again from a report.json (of this machine or another).
    Plot {
        /// The report.json a soak wrote.
        report: PathBuf,
        /// The PNG to write; default latency.png beside the report.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Operations started per second (open loop: each due at its time, whatever happened to the
    /// earlier ones, its latency measured from then), or `max`: as fast as --connections callers
    /// go, each starting its next operation when its last one ended.
    #[arg(long, default_value = "200")]
    rate: String,
    /// How long the load runs: `30s`, `5m`, `1h`, `1500ms`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Weights of each kind of operation: first (a new card on the payment page, 3-D Secure,
    /// with a recurring agreement), oneclick (a saved card and its CVC on the page), tokenpay,
    /// mit (rp.cfm on a first payment's agreement), twostage (Token Pay Delayed, then
    /// charge.cfm), cancel (Token Pay, then cancel.cfm), tokens (token.cfm list, now and then
    /// rem_token.cfm), orderstate. Kinds left out are not asked.
    #[arg(long, default_value = Mix::DEFAULT)]
    mix: Mix,
    /// Callers of a `--rate max` run.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// The fault schedule: `none`, `default` (a processing-centre latency spike, every ISO
    /// connection dropped, lost answers, the shop's notification endpoint failing, the vault
    /// restarted, the authorizer SIGKILLed and restarted, spread over the run and over by 85% of
    /// it), or a TOML file of `[[fault]]` tables (at_s, for_s, kind = latency {ms} |
    /// lost_answers {probability} | disconnect | vault_restart | authorizer_kill | shop_fail).
    #[arg(long, default_value = "none")]
    faults: String,
    /// Seed of the simulator's fault draws (which answers are lost); random unless given.
    #[arg(long)]
    seed: Option<u64>,
    /// Where report.json, report.txt and latency.png are written.
    #[arg(long, default_value = "var/soak")]
    out: PathBuf,
    /// Keep the processes' data directory (logs, databases, the ledger file) and print where.
    #[arg(long)]
    keep: bool,
    /// The authorizer's store page cache, MiB (16 or more); its default unless given.
    #[arg(long, value_parser = parse_cache)]
    authorizer_cache_mib: Option<store::CacheMib>,
    /// The vault's store page cache, MiB (16 or more); its default unless given.
    #[arg(long, value_parser = parse_cache)]
    vault_cache_mib: Option<store::CacheMib>,
}

fn parse_cache(text: &str) -> Result<store::CacheMib, String> {
    let mib = text
        .parse()
        .map_err(|_| format!("{text:?}: a number of MiB"))?;
    store::CacheMib::new(mib).map_err(|e| e.to_string())
}

/// `30s`, `5m`, `1h`, `1500ms`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: a number and a unit (ms, s, m, h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{text:?}: the unit is ms, s, m or h")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{text:?}: must be above 0"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl RunArgs {
    /// The checked options.
    fn options(self) -> anyhow::Result<Options> {
        let pace = match self.rate.as_str() {
            "max" => {
                if self.connections == 0 {
                    bail!("--connections must be above 0");
                }
                Pace::Max {
                    connections: self.connections,
                }
            }
            rate => match rate.parse::<u64>() {
                Ok(r) if r > 0 => Pace::Rate(r),
                _ => bail!("--rate {rate:?}: a number of operations per second above 0, or max"),
            },
        };
        let faults = faults::schedule(&self.faults, self.duration)
            .with_context(|| format!("--faults {}", self.faults))?;
        Ok(Options {
            pace,
            duration: self.duration,
            mix: self.mix,
            faults,
            out: self.out,
            keep: self.keep,
            seed: self.seed.unwrap_or_else(rand::random),
            authorizer_cache: self.authorizer_cache_mib,
            vault_cache: self.vault_cache_mib,
        })
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(Command::Plot { report, out }) = cli.command {
        let text = std::fs::read_to_string(&report)
            .with_context(|| format!("reading {}", report.display()))?;
        let parsed: Report = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a soak report", report.display()))?;
        let png = out.unwrap_or_else(|| report.with_file_name("latency.png"));
        plot::draw(&parsed, &png)?;
        eprintln!("soak: drew {}", png.display());
        return Ok(ExitCode::SUCCESS);
    }
    let options = cli.run.options()?;
    let out = options.out.clone();
    // Two workers: the machine the figures are quoted for has two cores, shared with the three
    // processes under test.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("the runtime")?;
    let progress = Arc::new(|line: String| eprintln!("{line}"));
    let outcome = runtime.block_on(benches::soak::run(options, progress))?;
    print!("{}", outcome.report.text());
    println!(
        "soak: report in {}/report.json, report.txt and latency.png",
        out.display()
    );
    if let Some(dir) = outcome.data_dir {
        println!("soak: the processes' data kept in {}", dir.display());
    }
    Ok(if outcome.report.reconciliation.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err() && parse_duration("3 weeks").is_err());
    }
}
