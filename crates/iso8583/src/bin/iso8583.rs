//! `iso8583`: decode and encode link messages while debugging.
//!
//! `iso8583 decode` reads a message from stdin (hex by default, raw bytes with `--raw`; the 2-byte
//! length header may be there or not) and prints JSON: the PAN masked, the expiry, CVC2 and CAVV
//! left out, unless `--reveal-card-data` says to print them in clear (test cards only).
//! `iso8583 encode` reads that JSON and prints hex (or raw bytes with `--raw`, and the length
//! header with `--framed`).
#![allow(clippy::print_stdout)]

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use iso8583::json::{Reveal, from_json, to_json};
use iso8583::{MAX_MESSAGE_LEN, Message};

#[derive(Parser)]
#[command(
    version,
    about = "Decode and encode ISO 8583 messages of the processing-centre link"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a message (hex, or raw bytes with --raw) from stdin and print it as JSON.
    Decode {
        /// Input is raw bytes rather than hex.
        #[arg(long)]
        raw: bool,
        /// Print the PAN, expiry, CVC2 and CAVV in clear. Test cards only: never on production
        /// traffic, never into a log or a ticket.
        #[arg(long)]
        reveal_card_data: bool,
        /// The old name of --reveal-card-data, refused so that a script written for it stops
        /// and says what the flag does instead of quietly printing card data.
        #[arg(long, hide = true)]
        unmasked: bool,
    },
    /// Read a message as JSON from stdin and print it as hex (or raw bytes with --raw).
    Encode {
        /// Write raw bytes rather than hex.
        #[arg(long)]
        raw: bool,
        /// Put the 2-byte length header in front.
        #[arg(long)]
        framed: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The largest input worth reading: a framed message as hex, with room for whitespace.
    let limit = (MAX_MESSAGE_LEN + 2) * 3;
    let mut input = Vec::new();
    std::io::stdin()
        .take(limit as u64 + 1)
        .read_to_end(&mut input)
        .context("reading stdin")?;
    if input.len() > limit {
        bail!("input is over {limit} bytes; no message is that long");
    }
    match cli.command {
        Command::Decode {
            raw,
            reveal_card_data,
            unmasked,
        } => {
            if unmasked {
                bail!(
                    "--unmasked is now --reveal-card-data: it prints the PAN, expiry, CVC2 and CAVV in clear"
                );
            }
            let bytes = if raw { input } else { parse_hex(&input)? };
            let msg = Message::decode(Bytes::from(strip_header(bytes)))?;
            let reveal = if reveal_card_data {
                Reveal::Unmasked
            } else {
                Reveal::Masked
            };
            println!("{}", serde_json::to_string_pretty(&to_json(&msg, reveal))?);
        }
        Command::Encode { raw, framed } => {
            let msg = from_json(std::str::from_utf8(&input).context("input is not UTF-8")?)?;
            let mut out = Vec::with_capacity(msg.as_bytes().len() + 2);
            if framed {
                out.extend_from_slice(&(msg.as_bytes().len() as u16).to_be_bytes());
            }
            out.extend_from_slice(msg.as_bytes());
            if raw {
                std::io::stdout().write_all(&out)?;
            } else {
                println!("{}", hex::encode_upper(out));
            }
        }
    }
    Ok(())
}

fn parse_hex(input: &[u8]) -> Result<Vec<u8>> {
    let digits: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    hex::decode(digits).context("input is not hex (use --raw for binary input)")
}

/// Drops a length header when the first two bytes announce exactly the rest. An unframed message
/// starts with MTI digits (0x30..=0x39), which as a length would be over 12,000: never ambiguous.
fn strip_header(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 2 && usize::from(u16::from_be_bytes([bytes[0], bytes[1]])) == bytes.len() - 2
    {
        bytes.drain(..2);
    }
    bytes
}
