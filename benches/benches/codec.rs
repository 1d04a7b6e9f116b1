//! ISO 8583 codec: decode (fully validated) and encode of the reference 0100, a first-use
//! credential-on-file authorization with DE 2 3 4 7 11 12 13 14 18 22 25 32 37 41 42 43 48
//! (subelements 01 10 20 21 22 23) 49, against the `i8583` crate and pyiso8583 on the same
//! fields in the same run.
//!
//! `cargo bench -p benches --bench codec` prints criterion's figures, then a summary with the
//! ratios and the heap allocations per decode. pyiso8583 is timed when `python3 -c "import
//! iso8583"` works (`pip install pyiso8583`).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::alloc::System;
use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::Criterion;
use iso8583::{Message, MessageBuilder, Mti};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const REFERENCE_HEX: &str = include_str!("../../crates/iso8583/testdata/reference_0100.hex");

/// The reference message's fields, as raw values.
const FIELDS: [(u8, &[u8]); 17] = [
    (2, b"4111111111111111"),
    (3, b"000000"),
    (4, b"000000012345"),
    (7, b"1123143015"),
    (11, b"000042"),
    (12, b"173015"),
    (13, b"1123"),
    (14, b"3012"),
    (18, b"5999"),
    (22, b"010"),
    (25, b"59"),
    (32, b"123456"),
    (37, b"000000000042"),
    (41, b"TERM0001"),
    (42, b"452739         "),
    (43, b"DEMO SHOP>MOSCOW RU                     "),
    (49, b"643"),
];
const DE48: [(u8, &[u8]); 6] = [
    (1, b"I"),
    (10, b"123"),
    (20, b"05"),
    (21, b"AAABBEg0VhI0VniQEjRWAAAAAAA="),
    (22, b"2.2.0"),
    (23, b"8a880dc0-d2d2-4067-bcb1-b08d1690b26e"),
];

fn reference() -> Bytes {
    Bytes::from(hex::decode(REFERENCE_HEX.trim()).unwrap())
}

fn encode_ours(out: &mut BytesMut) {
    out.clear();
    let mut b = MessageBuilder::new(Mti::AUTH_REQUEST);
    // Ascending order, as the message-kind builders set fields.
    for (n, v) in &FIELDS[..16] {
        b.field(*n, v);
    }
    b.de48(&DE48);
    b.field(FIELDS[16].0, FIELDS[16].1);
    b.encode_into(out).unwrap();
}

fn de48_raw() -> Vec<u8> {
    let mut v = Vec::new();
    for (tag, value) in DE48 {
        v.extend_from_slice(format!("{tag:02}{:02}", value.len()).as_bytes());
        v.extend_from_slice(value);
    }
    v
}

fn i8583_packer<'a>(de48: &'a [u8]) -> i8583::Packer<'a> {
    let mut p = i8583::Packer::new(&i8583::v1987::SPEC);
    p.set_field(0, Cow::Borrowed(b"0100")).unwrap();
    for (n, v) in FIELDS {
        p.set_field(usize::from(n), Cow::Borrowed(v)).unwrap();
    }
    p.set_field(48, Cow::Borrowed(de48)).unwrap();
    p
}

fn benches(c: &mut Criterion) {
    let wire = reference();
    let mut group = c.benchmark_group("iso8583/reference_0100");
    // The message goes to std's black_box, not back to criterion: criterion 0.5's stable
    // black_box is a volatile read of its argument, and copying the 576-byte `Message` that way
    // took 170 ns, nearly doubling the figure.
    group.bench_function("decode", |b| {
        b.iter(|| {
            black_box(Message::decode(black_box(wire.clone())).unwrap());
        });
    });
    let mut out = BytesMut::with_capacity(512);
    group.bench_function("encode", |b| b.iter(|| encode_ours(black_box(&mut out))));

    let de48 = de48_raw();
    let theirs = i8583_packer(&de48).pack(Vec::with_capacity(512)).unwrap();
    group.bench_function("i8583_decode", |b| {
        b.iter(|| {
            let mut u = i8583::Unpacker::new(black_box(&theirs));
            u.unpack(&i8583::v1987::SPEC).map(|f| f.len()).unwrap()
        });
    });
    group.bench_function("i8583_encode", |b| {
        b.iter(|| {
            i8583_packer(black_box(&de48))
                .pack(Vec::with_capacity(512))
                .unwrap()
        });
    });
    group.finish();
}

/// Best mean over a few rounds, in nanoseconds: a quick figure for the ratios; criterion's
/// output above is the careful one.
fn ns_per_op(mut f: impl FnMut()) -> f64 {
    let rounds = 7;
    let n = 200_000;
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::MAX, f64::min)
}

/// pyiso8583 on the same bytes: its `default_ascii` spec with binary bitmaps is this dialect.
fn pyiso8583_ns() -> Option<(f64, f64)> {
    let script = format!(
        r#"
import copy, timeit, iso8583, iso8583.specs
spec = copy.deepcopy(iso8583.specs.default_ascii)
for k in ("p", "1"):
    spec[k]["data_enc"] = "b"; spec[k]["max_len"] = 8
raw = bytes.fromhex("{hex}")
doc, _ = iso8583.decode(raw, spec)
assert doc["2"] == "4111111111111111" and doc["48"].startswith("0101I"), "pyiso8583 reads our bytes differently"
enc = {{k: v for k, v in doc.items() if k not in ("p", "1", "bm")}}
out, _ = iso8583.encode(copy.deepcopy(enc), spec)
assert bytes(out) == raw, "pyiso8583 writes these fields differently"
n = 20000
d = min(timeit.repeat(lambda: iso8583.decode(raw, spec), number=n, repeat=3)) / n
e = min(timeit.repeat(lambda: iso8583.encode(dict(enc), spec), number=n, repeat=3)) / n
print(d * 1e9, e * 1e9)
"#,
        hex = REFERENCE_HEX.trim()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .ok()?;
    if !out.status.success() {
        println!(
            "pyiso8583: not timed ({})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<f64>().ok());
    Some((it.next()??, it.next()??))
}

fn summary() {
    let wire = reference();
    let region = Region::new(GLOBAL);
    let m = Message::decode(wire.clone()).unwrap();
    let allocs = region.change().allocations;
    drop(m);

    let decode = ns_per_op(|| {
        black_box(Message::decode(black_box(wire.clone())).unwrap());
    });
    let mut out = BytesMut::with_capacity(512);
    let encode = ns_per_op(|| encode_ours(black_box(&mut out)));
    let de48 = de48_raw();
    let theirs = i8583_packer(&de48).pack(Vec::with_capacity(512)).unwrap();
    let i_decode = ns_per_op(|| {
        let mut u = i8583::Unpacker::new(black_box(&theirs));
        black_box(u.unpack(&i8583::v1987::SPEC).map(|f| f.len()).unwrap());
    });
    let i_encode = ns_per_op(|| {
        black_box(
            i8583_packer(black_box(&de48))
                .pack(Vec::with_capacity(512))
                .unwrap(),
        );
    });

    println!(
        "\n== iso8583 reference 0100 ({} bytes), one core ==",
        wire.len()
    );
    println!("heap allocations per decode: {allocs}");
    println!("{:<28}{:>12}{:>12}", "", "decode ns", "encode ns");
    println!("{:<28}{decode:>12.0}{encode:>12.0}", "iso8583 (this crate)");
    println!(
        "{:<28}{i_decode:>12.0}{i_encode:>12.0}   ratio {:.1}x / {:.1}x",
        "i8583 crate (no validation)",
        i_decode / decode,
        i_encode / encode
    );
    if let Some((p_decode, p_encode)) = pyiso8583_ns() {
        println!(
            "{:<28}{p_decode:>12.0}{p_encode:>12.0}   ratio {:.0}x / {:.0}x",
            "pyiso8583",
            p_decode / decode,
            p_encode / encode
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
    summary();
}
