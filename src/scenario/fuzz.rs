//! A seeded mutation fuzzer for the loader: valid scenario files are mutated (bytes flipped,
//! inserted and deleted, pieces of other files spliced in, lines duplicated, numbers replaced
//! by extremes, text truncated, control and unusual Unicode characters inserted) and each result
//! is loaded with [`super::load_str`] under `catch_unwind`, timing it.
//!
//! Invariants: a case is a pure function of (corpus, seed, case index), so any case can be
//! rebuilt alone from the three; randomness comes from [`crate::rng::stream`]. The loader must
//! return `Ok` or `Err` for every case, never panic, and stay fast (a case over
//! [`SLOW_CASE`] is reported). The quick tier runs in `cargo test`; the long tier is
//! `cargo run --release --example fuzz_loader -- --cases N --seed S`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::rng::{Purpose, stream};

/// A case slower than this is reported as slow.
pub const SLOW_CASE: Duration = Duration::from_secs(2);

/// Most mutations applied to one case.
const MAX_MUTATIONS: usize = 6;

/// Longest case, in bytes: repeated duplications would otherwise grow a case to hundreds of
/// megabytes (the loader's own limits on size are tested elsewhere).
const MAX_CASE_BYTES: usize = 4 << 20;

/// Tokens inserted whole: the punctuation and words of the format, and ways to break them.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"",
    "'",
    "//",
    "/*",
    "*/",
    "#![enable(implicit_some)]",
    "r#\"",
    "\"#",
    "Some(",
    "None",
    "()",
    "\\",
    "\\u{",
    "\\x",
    "-",
    ".",
    "e",
    "_",
    "0x",
    "inf",
    "NaN",
    "true",
    "Soft",
    "Hard",
    "Fixed(\"1s\")",
    "Uniform(min: \"1s\", max: \"0s\")",
    "services",
    "dependencies",
    "name: ",
    "capacity: ",
    "from: \"",
    "to: \"",
    "\"s0\"",
];

/// Values a number is replaced with: bounds, non-finite values, and integers past every type.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "-0.0",
    "1e308",
    "1e309",
    "-1e308",
    "1e-320",
    "NaN",
    "inf",
    "-inf",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "340282366920938463463374607431768211456",
    "99999999999999999999999999999999999999999999999",
    "0.000000000000000000001",
    "1_000_000_000",
    "0xFFFFFFFFFFFFFFFF",
];

/// Strings a string literal's content is replaced with (durations, names, oddities).
const STRINGS: &[&str] = &[
    "",
    "0s",
    "1ns",
    "1ms",
    "999999999999h",
    "18446744073709551615s",
    "1h30m",
    "-5m",
    "NaNs",
    "1e308s",
    "s0",
    ".",
    "..",
    "a/b",
    "\\u{1b}[31m",
    "\\u{0}",
    "\\u{202e}",
    "✓",
];

/// Characters inserted one at a time: controls, a BOM, wide and combining characters.
const CHARS: &[&str] = &[
    "\u{0}",
    "\u{1b}",
    "\u{7}",
    "\r",
    "\t",
    "\n",
    "\u{feff}",
    "\u{202e}",
    "\u{200b}",
    "é",
    "e\u{301}",
    "✓",
    "😀",
    "\u{10ffff}",
    "\u{fffd}",
    "\u{85}",
    "\u{2028}",
];

/// The text of case `index` of a run with `seed`: the first `corpus.len()` cases are the files
/// as they are, every later one a random file with 1 to [`MAX_MUTATIONS`] mutations.
pub fn case(corpus: &[String], seed: u64, index: u64) -> String {
    if corpus.is_empty() {
        return String::new();
    }
    let n = corpus.len() as u64;
    if index < n {
        return corpus[index as usize].clone();
    }
    let mut rng = stream(seed, index, Purpose::Other("fuzz-loader"));
    let mut bytes = corpus[rng.random_range(0..corpus.len())]
        .as_bytes()
        .to_vec();
    let count = rng.random_range(1..=MAX_MUTATIONS);
    for _ in 0..count {
        mutate(&mut bytes, corpus, &mut rng);
        bytes.truncate(MAX_CASE_BYTES);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A position in `bytes` (0..=len).
fn at(rng: &mut ChaCha8Rng, bytes: &[u8]) -> usize {
    rng.random_range(0..=bytes.len())
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// The digit run (with sign, point, exponent) around a random position after `from`.
fn number_at(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let start = from + bytes.get(from..)?.iter().position(u8::is_ascii_digit)?;
    let mut s = start;
    while s > 0 && matches!(bytes[s - 1], b'0'..=b'9' | b'.' | b'-' | b'_') {
        s -= 1;
    }
    let mut e = start;
    while e < bytes.len() && matches!(bytes[e], b'0'..=b'9' | b'.' | b'_' | b'e' | b'E') {
        e += 1;
    }
    Some((s, e))
}

/// The content of the string literal after a random position: (after the opening quote, at the
/// closing quote).
fn string_at(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let open = from + bytes.get(from..)?.iter().position(|&b| b == b'"')? + 1;
    let close = open + bytes.get(open..)?.iter().position(|&b| b == b'"')?;
    Some((open, close))
}

/// The line around position `p`: (start, end including its newline).
fn line_at(bytes: &[u8], p: usize) -> (usize, usize) {
    let p = p.min(bytes.len());
    let s = bytes[..p]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let e = bytes[p..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| p + i + 1);
    (s, e)
}

/// Applies one random mutation to `bytes`.
fn mutate(bytes: &mut Vec<u8>, corpus: &[String], rng: &mut ChaCha8Rng) {
    let len = bytes.len();
    match rng.random_range(0..12u32) {
        // Flip a bit.
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            bytes[i] ^= 1 << rng.random_range(0..8u32);
        }
        // Replace a byte with any byte.
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            bytes[i] = rng.random_range(0..=255u8);
        }
        // Insert a token of the format.
        2 => {
            let p = at(rng, bytes);
            let t = pick(rng, TOKENS);
            bytes.splice(p..p, t.bytes());
        }
        // Delete a range (usually short, sometimes long).
        3 if len > 0 => {
            let p = rng.random_range(0..len);
            let max = if rng.random_range(0..4u32) == 0 {
                4096
            } else {
                16
            };
            let e = (p + rng.random_range(1..=max)).min(len);
            bytes.drain(p..e);
        }
        // Splice a piece of another file in.
        4 => {
            let other = corpus[rng.random_range(0..corpus.len())].as_bytes();
            if !other.is_empty() {
                let s = rng.random_range(0..other.len());
                let e = (s + rng.random_range(1..=2048)).min(other.len());
                let p = at(rng, bytes);
                bytes.splice(p..p, other[s..e].iter().copied());
            }
        }
        // Duplicate a line (or a block of lines), possibly many times.
        5 if len > 0 => {
            let (s, e) = line_at(bytes, rng.random_range(0..len));
            let times = if rng.random_range(0..8u32) == 0 {
                rng.random_range(2..=2000)
            } else {
                1
            };
            let line = bytes[s..e].to_vec();
            let piece: Vec<u8> = line
                .iter()
                .copied()
                .cycle()
                .take(line.len() * times)
                .collect();
            bytes.splice(e..e, piece);
        }
        // Replace a number with an extreme value.
        6 if len > 0 => {
            if let Some((s, e)) = number_at(bytes, rng.random_range(0..len)) {
                let v = pick(rng, EXTREMES);
                bytes.splice(s..e, v.bytes());
            }
        }
        // Replace a string's content.
        7 if len > 0 => {
            if let Some((s, e)) = string_at(bytes, rng.random_range(0..len)) {
                let v = pick(rng, STRINGS);
                bytes.splice(s..e, v.bytes());
            }
        }
        // Truncate.
        8 if len > 0 => {
            let p = rng.random_range(0..len);
            bytes.truncate(p);
        }
        // Insert a control or unusual Unicode character.
        9 => {
            let p = at(rng, bytes);
            let c = pick(rng, CHARS);
            bytes.splice(p..p, c.bytes());
        }
        // Delete or swap lines.
        10 if len > 0 => {
            let (s, e) = line_at(bytes, rng.random_range(0..len));
            if rng.random_range(0..2u32) == 0 {
                bytes.drain(s..e);
            } else {
                let (s2, e2) = line_at(bytes, rng.random_range(0..len));
                if e <= s2 {
                    let second = bytes[s2..e2].to_vec();
                    let first = bytes[s..e].to_vec();
                    bytes.splice(s2..e2, first);
                    bytes.splice(s..e, second);
                }
            }
        }
        // Nest: wrap a range in brackets many times.
        _ => {
            let depth = rng.random_range(1..=200);
            let p = at(rng, bytes);
            let open = if rng.random_range(0..2u32) == 0 {
                b'['
            } else {
                b'('
            };
            bytes.splice(p..p, std::iter::repeat_n(open, depth));
        }
    }
}

/// What loading one case did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The panic message, if loading panicked.
    pub panic: Option<String>,
    /// Whether the text loaded as a valid scenario.
    pub accepted: bool,
    /// How long loading took.
    pub elapsed: Duration,
}

/// Loads `text` under `catch_unwind`, timing it. (The caller may silence the panic hook.)
pub fn check(text: &str) -> Outcome {
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| super::load_str(text, "fuzz.ron", None)));
    let elapsed = start.elapsed();
    match result {
        Ok(r) => Outcome {
            panic: None,
            accepted: r.is_ok(),
            elapsed,
        },
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_string());
            Outcome {
                panic: Some(message),
                accepted: false,
                elapsed,
            }
        }
    }
}

/// A case worth a look: it panicked or was slow.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The case index (rebuild it with [`case`] and the run's seed).
    pub index: u64,
    /// What happened.
    pub outcome: Outcome,
    /// The case's text.
    pub text: String,
}

/// The summary of a run of cases.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Cases run.
    pub cases: u64,
    /// Cases that loaded as valid scenarios.
    pub accepted: u64,
    /// Cases that panicked or took longer than [`SLOW_CASE`].
    pub findings: Vec<Finding>,
    /// The slowest case: (index, time).
    pub slowest: (u64, Duration),
}

impl Summary {
    /// Cases that panicked.
    pub fn panics(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.outcome.panic.is_some())
            .count()
    }

    /// Cases slower than [`SLOW_CASE`].
    pub fn slow(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.outcome.elapsed > SLOW_CASE)
            .count()
    }
}

/// Runs cases `from..to` of a run with `seed`, calling `each` after every case (to report
/// progress or stop: it returns false to stop).
pub fn run(
    corpus: &[String],
    seed: u64,
    from: u64,
    to: u64,
    mut each: impl FnMut(&Summary, &Finding) -> bool,
) -> Summary {
    let mut summary = Summary::default();
    for index in from..to {
        let text = case(corpus, seed, index);
        let outcome = check(&text);
        summary.cases += 1;
        summary.accepted += u64::from(outcome.accepted);
        if outcome.elapsed > summary.slowest.1 {
            summary.slowest = (index, outcome.elapsed);
        }
        let finding = Finding {
            index,
            outcome,
            text,
        };
        let keep = finding.outcome.panic.is_some() || finding.outcome.elapsed > SLOW_CASE;
        let go_on = each(&summary, &finding);
        if keep {
            summary.findings.push(finding);
        }
        if !go_on {
            break;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_reproducible_and_mutated() {
        let corpus = vec![
            "(name: \"a\", capacity: 12.5)".to_string(),
            "[1, 2]".to_string(),
        ];
        assert_eq!(case(&corpus, 7, 0), corpus[0]);
        assert_eq!(case(&corpus, 7, 1), corpus[1]);
        let a: Vec<String> = (2..200).map(|i| case(&corpus, 7, i)).collect();
        let b: Vec<String> = (2..200).map(|i| case(&corpus, 7, i)).collect();
        assert_eq!(a, b);
        let other: Vec<String> = (2..200).map(|i| case(&corpus, 8, i)).collect();
        assert_ne!(a, other);
        let changed = a.iter().filter(|t| !corpus.contains(t)).count();
        assert!(changed > 150, "{changed} of 198 cases mutated");
    }
}
