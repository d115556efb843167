//! The loader fuzzer's long tier: mutates the library scenarios (`scenarios/*.ron` and the
//! built-in default) from a seed and loads every case, reporting panics and cases slower than
//! 2 s. Each finding is saved to `--out` (default `target/fuzz`) with the command that
//! rebuilds it.
//!
//! ```sh
//! cargo run --release --example fuzz_loader -- --cases 1000000 --seed 1     # a million cases
//! cargo run --release --example fuzz_loader -- --seconds 600 --seed 2       # ten minutes
//! cargo run --release --example fuzz_loader -- --seed 1 --case 123456       # one case again
//! ```
//!
//! Exit status: 0 when every case loaded or was refused quickly, 1 otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aftershock::scenario::{DEFAULT_SCENARIO, fuzz};

struct Args {
    cases: u64,
    seed: u64,
    seconds: Option<f64>,
    case: Option<u64>,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        cases: 100_000,
        seed: 1,
        seconds: None,
        case: None,
        out: PathBuf::from("target/fuzz"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag}: not a number: {value}");
        match flag.as_str() {
            "--cases" => args.cases = value.parse().map_err(|_| bad())?,
            "--seed" => args.seed = value.parse().map_err(|_| bad())?,
            "--seconds" => args.seconds = Some(value.parse().map_err(|_| bad())?),
            "--case" => args.case = Some(value.parse().map_err(|_| bad())?),
            "--out" => args.out = PathBuf::from(value),
            _ => {
                return Err(format!(
                    "unknown flag {flag} (--cases, --seed, --seconds, --case, --out)"
                ));
            }
        }
    }
    Ok(args)
}

/// The library scenarios, in name order, then the built-in default.
fn corpus(root: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("scenarios"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "ron"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut texts: Vec<String> = files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    texts.push(DEFAULT_SCENARIO.to_string());
    texts
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = corpus(root);
    // Panics are caught and reported below, with the case that caused them.
    std::panic::set_hook(Box::new(|_| {}));
    let (from, to) = match args.case {
        Some(i) => (i, i + 1),
        None => (0, args.cases),
    };
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let start = Instant::now();
    let mut next_report = Instant::now() + Duration::from_secs(30);
    println!(
        "fuzzing the loader: {} corpus files, seed {}, cases {from}..{to}{}",
        corpus.len(),
        args.seed,
        args.seconds
            .map_or(String::new(), |s| format!(" (at most {s} s)"))
    );
    let summary = fuzz::run(&corpus, args.seed, from, to, |s, f| {
        if let Some(p) = &f.outcome.panic {
            eprintln!("case {}: PANIC: {p}", f.index);
        } else if f.outcome.elapsed > fuzz::SLOW_CASE {
            eprintln!("case {}: slow: {:.2?}", f.index, f.outcome.elapsed);
        }
        if Instant::now() >= next_report {
            next_report = Instant::now() + Duration::from_secs(30);
            println!(
                "  {} cases, {} accepted, {} findings, {:.0} s",
                s.cases,
                s.accepted,
                s.findings.len()
                    + usize::from(f.outcome.panic.is_some() || f.outcome.elapsed > fuzz::SLOW_CASE),
                start.elapsed().as_secs_f64()
            );
        }
        deadline.is_none_or(|d| Instant::now() < d)
    });
    for f in &summary.findings {
        let _ = std::fs::create_dir_all(&args.out);
        let file = args
            .out
            .join(format!("seed-{}-case-{}.ron", args.seed, f.index));
        match std::fs::write(&file, &f.text) {
            Ok(()) => eprintln!(
                "saved {} (rebuild: cargo run --release --example fuzz_loader -- --seed {} --case {})",
                file.display(),
                args.seed,
                f.index
            ),
            Err(e) => eprintln!("cannot save {}: {e}", file.display()),
        }
    }
    println!(
        "{} cases in {:.1} s ({:.0} cases/s): {} accepted, {} refused, {} panics, {} over {:?}; slowest: case {} in {:.1?}",
        summary.cases,
        start.elapsed().as_secs_f64(),
        summary.cases as f64 / start.elapsed().as_secs_f64().max(1e-9),
        summary.accepted,
        summary.cases - summary.accepted,
        summary.panics(),
        summary.slow(),
        fuzz::SLOW_CASE,
        summary.slowest.0,
        summary.slowest.1
    );
    if !summary.findings.is_empty() {
        std::process::exit(1);
    }
}
