//! Scaling benchmark of the scenario loader: writes valid scenario files of growing size (one
//! hard chain of services, each depending on the previous one) and times
//! `aftershock validate` on each, with its peak memory when `/usr/bin/time` is present.
//!
//! ```sh
//! cargo build --release && cargo run --release --example validate_scale            # 10 KB, 1 MB, 10 MB
//! cargo run --release --example validate_scale -- 10K 1M 10M 70M                 # any sizes (K, M suffixes)
//! cargo run --release --example validate_scale -- --services 1000000 > chain.ron # one file, by service count
//! ```
//!
//! Files are written to a temporary directory that is removed afterwards. The time per MB
//! printed last should stay about constant from one size to the next: validation is linear.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A valid scenario: `n` services (`s0`, `s1`, ...) in one hard chain.
fn chain(n: usize) -> String {
    let mut out = String::with_capacity(n * 80 + 512);
    out.push_str("Scenario(\n    name: \"chain\",\n    horizon: \"1h\",\n    seed: 1,\n    trials: 10,\n    services: [\n");
    for i in 0..n {
        out.push_str(&format!("        (name: \"s{i}\", capacity: 1000.0),\n"));
    }
    out.push_str("    ],\n    dependencies: [\n");
    for i in 1..n {
        out.push_str(&format!("        (from: \"s{}\", to: \"s{i}\"),\n", i - 1));
    }
    out.push_str(
        "    ],\n    traffic: [(entry: \"s0\", rate: 10.0)],\n    \
         failures: [(kind: Crash(target: \"s0\"), schedule: Once(at: Fixed(\"10m\"), duration: Fixed(\"5m\")))],\n    \
         plans: [(name: \"all-at-once\", baseline: true, strategy: AllAtOnce)],\n)\n",
    );
    out
}

/// The chain closest in size to `bytes` (from below, at least two services).
fn chain_of_size(bytes: usize) -> String {
    // About 80 bytes per service; refine once from the measured size.
    let mut n = (bytes / 80).max(2);
    let text = chain(n);
    n = ((n as f64) * bytes as f64 / text.len() as f64) as usize;
    chain(n.max(2))
}

fn parse_size(s: &str) -> Option<usize> {
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1_000),
        'M' | 'm' => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    num.parse::<usize>().ok().map(|v| v * mult)
}

/// Runs `aftershock validate FILE`: (wall seconds, peak RSS in KB if measured, stdout).
fn time_validate(bin: &Path, file: &Path) -> (f64, Option<u64>, String) {
    let gnu_time = Path::new("/usr/bin/time");
    let start = Instant::now();
    let out = if gnu_time.exists() {
        Command::new(gnu_time)
            .arg("-f")
            .arg("peak-rss-kb %M")
            .arg(bin)
            .arg("validate")
            .arg(file)
            .output()
    } else {
        Command::new(bin).arg("validate").arg(file).output()
    };
    let wall = start.elapsed().as_secs_f64();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cannot run {}: {e}", bin.display());
            std::process::exit(2);
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("peak-rss-kb "))
        .find_map(|v| v.trim().parse().ok());
    if !out.status.success() {
        eprintln!("validate failed on {}:\n{stderr}", file.display());
        std::process::exit(1);
    }
    (
        wall,
        rss,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--services") {
        let n = args
            .get(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1_000_000);
        let mut stdout = std::io::stdout().lock();
        if stdout.write_all(chain(n).as_bytes()).is_err() {
            std::process::exit(1);
        }
        return;
    }
    let sizes: Vec<usize> = if args.is_empty() {
        vec![10_000, 1_000_000, 10_000_000]
    } else {
        args.iter()
            .map(|a| {
                parse_size(a).unwrap_or_else(|| {
                    eprintln!("not a size: {a} (write e.g. 10K or 1M)");
                    std::process::exit(2)
                })
            })
            .collect()
    };
    let exe = std::env::current_exe().unwrap_or_default();
    // target/release/examples/validate_scale -> target/release/aftershock
    let bin: PathBuf = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("aftershock"))
        .unwrap_or_default();
    if !bin.exists() {
        eprintln!(
            "{} not found: run `cargo build --release` first",
            bin.display()
        );
        std::process::exit(2);
    }
    let dir = std::env::temp_dir().join(format!("validate-scale-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(2);
    }
    println!("| file size | services | validate wall | peak RSS | time per MB |");
    println!("| --- | --- | --- | --- | --- |");
    for size in sizes {
        let text = chain_of_size(size);
        let file = dir.join(format!("chain-{size}.ron"));
        if let Err(e) = std::fs::write(&file, &text) {
            eprintln!("cannot write {}: {e}", file.display());
            std::process::exit(2);
        }
        let (wall, rss, out) = time_validate(&bin, &file);
        let services = out
            .split("ok (")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap_or("?")
            .to_string();
        let mb = text.len() as f64 / 1e6;
        println!(
            "| {:.2} MB | {services} | {wall:.3} s | {} | {:.3} s/MB |",
            mb,
            rss.map_or("n/a".to_string(), |kb| format!(
                "{:.1} MB",
                kb as f64 / 1000.0
            )),
            wall / mb
        );
        let _ = std::fs::remove_file(&file);
    }
    let _ = std::fs::remove_dir(&dir);
}
