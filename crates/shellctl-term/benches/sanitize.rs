//! Throughput of the PTY sanitizer on typical terminal output.
//!
//! `cargo bench -p shellctl-term --bench sanitize` reports MB/s (criterion's
//! "thrpt") for each workload, in memory. Target: at least 100 MB/s for
//! coloured log lines; the reference's Python sanitizer manages about
//! 5 MB/s. Issue 16's targets are for the whole `shellctl sanitize-pty`
//! process (at least 400 MB/s on coloured lines, 1 GB/s on plain ASCII),
//! which `bench/compare.py` measures.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shellctl_term::PtySanitizer;
use std::hint::black_box;

const TOTAL_BYTES: usize = 4 << 20;
const CHUNK: usize = 64 * 1024;

/// Coloured log lines as a PTY delivers them (`\r\n` line ends).
fn coloured_log() -> Vec<u8> {
    let levels = [
        ("32", "INFO "),
        ("33", "WARN "),
        ("31", "ERROR"),
        ("36", "DEBUG"),
    ];
    let mut out = Vec::with_capacity(TOTAL_BYTES + 256);
    let mut i = 0usize;
    while out.len() < TOTAL_BYTES {
        let (colour, level) = levels[i % levels.len()];
        out.extend_from_slice(
            format!(
                "\x1b[2m2026-11-26T15:04:{:02}Z\x1b[0m \x1b[{colour}m{level}\x1b[0m \x1b[1mworker::{}\x1b[0m processed request id={i} in {}ms status=ok\r\n",
                i % 60,
                i % 7,
                i % 1000
            )
            .as_bytes(),
        );
        i += 1;
    }
    out
}

/// Plain ASCII lines.
fn plain_lines() -> Vec<u8> {
    let mut out = Vec::with_capacity(TOTAL_BYTES + 128);
    let mut i = 0usize;
    while out.len() < TOTAL_BYTES {
        out.extend_from_slice(
            format!("line {i} of some ordinary program output here\r\n").as_bytes(),
        );
        i += 1;
    }
    out
}

/// Plain ASCII text as a pipe or a file holds it: lines of printable ASCII
/// (0 to 120 characters, pseudo-random but the same on every run) ending in
/// `\n` alone.
fn plain_ascii() -> Vec<u8> {
    let mut out = Vec::with_capacity(TOTAL_BYTES + 128);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    while out.len() < TOTAL_BYTES {
        let len = next() % 121;
        out.extend((0..len).map(|_| b' ' + (next() % 95) as u8));
        out.push(b'\n');
    }
    out
}

/// A progress bar redrawn with carriage returns.
fn progress_bar() -> Vec<u8> {
    let mut out = Vec::with_capacity(TOTAL_BYTES + 128);
    let mut i = 0usize;
    while out.len() < TOTAL_BYTES {
        let pct = i % 101;
        out.extend_from_slice(format!("\r\x1b[K[{:<50}] {pct:3}%", "#".repeat(pct / 2)).as_bytes());
        if pct == 100 {
            out.extend_from_slice(b"\r\n");
        }
        i += 1;
    }
    out
}

/// A progress bar as tqdm draws it: returning with `\r` and writing over
/// the old bar (no erase), in Unicode blocks.
fn progress_overwrite() -> Vec<u8> {
    let mut out = Vec::with_capacity(TOTAL_BYTES + 256);
    let mut i = 0usize;
    while out.len() < TOTAL_BYTES {
        let pct = i % 101;
        out.extend_from_slice(
            format!(
                "\r{pct:3}%|{:<30}| {pct}/100 [00:{:02}<00:{:02}, {}.{:02}it/s]",
                "\u{2588}".repeat(pct * 30 / 100),
                i % 60,
                i * 7 % 60,
                10 + i % 90,
                i % 100
            )
            .as_bytes(),
        );
        if pct == 100 {
            out.extend_from_slice(b"\r\n");
        }
        i += 1;
    }
    out
}

fn sanitize_in_chunks(data: &[u8]) -> usize {
    let mut sanitizer = PtySanitizer::new();
    let mut produced = 0;
    for chunk in data.chunks(CHUNK) {
        produced += sanitizer.feed(chunk).len();
    }
    produced + sanitizer.finish().len()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sanitize");
    group.sample_size(20);
    for (name, data) in [
        ("coloured_log", coloured_log()),
        ("plain_lines", plain_lines()),
        ("plain_ascii", plain_ascii()),
        ("progress_bar", progress_bar()),
        ("progress_overwrite", progress_overwrite()),
    ] {
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &data, |b, data| {
            b.iter(|| black_box(sanitize_in_chunks(black_box(data))));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
