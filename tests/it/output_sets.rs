//! An output set is all old or all new, on the real binary: `kill -9` at random moments while a
//! run replaces a set leaves one complete set; Ctrl-C and `SIGTERM` leave the old set and no
//! temporaries; a directory that is not aftershock's to replace is refused; and `merge` trusts
//! nothing it did not check (flipped bytes, another run's files, NaN rows, an edited manifest).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};

use crate::support::{binary, root, run_at_root as run};

/// Every file of `dir` with its bytes (`None` when `dir` does not exist).
fn contents(dir: &Path) -> Option<BTreeMap<String, Vec<u8>>> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect(),
    )
}

/// The names in `dir` (sorted).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `aftershock run` of the default scenario with `seed` into `out`, as arguments.
fn run_args(seed: &str, trials: &str, out: &Path) -> Vec<String> {
    [
        "run",
        "--trials",
        trials,
        "--seed",
        seed,
        "--threads",
        "1",
        "--quiet",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.to_str().unwrap().to_string()])
    .collect()
}

/// `kill -9` at seeded random moments of runs that replace one set with another: the target
/// always holds exactly one complete set (seed 1's or seed 2's), never a mix, never half a file.
#[test]
fn a_kill_at_any_moment_leaves_the_old_or_the_new_set() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let trials = "20";
    let mut sets = Vec::new();
    let mut longest = Duration::ZERO;
    for seed in ["1", "2"] {
        let out = dir.join(format!("ref-{seed}"));
        let started = Instant::now();
        let (code, err) = run(&run_args(seed, trials, &out)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>());
        longest = longest.max(started.elapsed());
        assert_eq!(code, Some(0), "{err}");
        sets.push(contents(&out).unwrap());
    }
    assert_ne!(sets[0], sets[1], "the two seeds must give different sets");
    let target = dir.join("target");
    // Kills per run: CI's quick tier; AFTERSHOCK_KILLS raises it (see CONTRIBUTING.md).
    let kills: usize = std::env::var("AFTERSHOCK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(16);
    let mut finished = 0;
    for k in 0..kills {
        let seed = if k % 2 == 0 { "1" } else { "2" };
        let mut child = Command::new(binary())
            .args(run_args(seed, trials, &target))
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Anywhere in the run, with a bias to its end, where the set is written.
        let at = longest.mul_f64(rng.random_range(0.0..1.2));
        std::thread::sleep(at);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            finished += 1;
        }
        if let Some(now) = contents(&target) {
            assert!(
                sets.contains(&now),
                "after kill {k} at {at:?} the target holds a mix: {:?}",
                now.keys().collect::<Vec<_>>()
            );
        }
        // Besides the target, at most the temporary directories of killed runs.
        for n in names(dir) {
            assert!(
                n.starts_with("ref-") || n == "target" || n.starts_with(".target.tmp-"),
                "unexpected {n} beside the target"
            );
        }
    }
    eprintln!(
        "{kills} kills, {} during a run, {finished} after it ended",
        kills - finished
    );
    assert!(
        finished < kills,
        "no kill landed during a run: the test checks nothing"
    );
}

/// Two runs writing into one directory at once (as two containers whose processes are both
/// PID 1 would): both succeed, and the directory holds one complete set, never a mix, with
/// nothing left beside it.
#[test]
fn two_runs_into_one_directory_leave_one_complete_set() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut sets = Vec::new();
    for seed in ["1", "2"] {
        let out = dir.join(format!("ref-{seed}"));
        let (code, err) = run(&run_args(seed, "20", &out)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>());
        assert_eq!(code, Some(0), "{err}");
        sets.push(contents(&out).unwrap());
    }
    let target = dir.join("target");
    for round in 0..8 {
        if round % 2 == 0 {
            // Both runs find no target and race to create it.
            let _ = std::fs::remove_dir_all(&target);
        }
        let children: Vec<_> = ["1", "2"]
            .iter()
            .map(|seed| {
                Command::new(binary())
                    .args(run_args(seed, "20", &target))
                    .current_dir(root())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let now = contents(&target).unwrap();
        assert!(sets.contains(&now), "round {round}: a mix of two runs");
        assert_eq!(names(dir), ["ref-1", "ref-2", "target"], "round {round}");
    }
}

/// Ctrl-C (and `SIGTERM`) during a run: exit 128 + signal, the old set untouched, no
/// temporaries left beside it.
#[cfg(unix)]
#[test]
fn ctrl_c_leaves_the_old_set_and_no_temporaries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let target = dir.join("out");
    let (code, err) = run(&run_args("1", "10", &target)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{err}");
    let old = contents(&target).unwrap();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let mut child = Command::new(binary())
            .args(run_args("2", "200000", &target))
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Long enough for the private directory to exist, far shorter than the run.
        std::thread::sleep(Duration::from_millis(400));
        #[allow(unsafe_code)]
        // SAFETY: sends a signal to the child just started (and not yet waited for).
        let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "signal {signal}: {status:?}");
        assert_eq!(contents(&target).unwrap(), old, "signal {signal}");
        assert_eq!(names(dir), ["out"], "signal {signal}: temporaries left");
    }
}

/// What is not aftershock's to replace is refused before any trial runs, and kept: a directory
/// holding another directory, a file as the target, the current directory. A symlink to a
/// directory is written through; a user's file beside the set is kept.
#[test]
fn a_target_that_is_not_ours_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let shared = dir.join("shared");
    std::fs::create_dir_all(shared.join("other-scenario")).unwrap();
    std::fs::write(shared.join("other-scenario/report.json"), "keep").unwrap();
    let (code, err) = run(&run_args("1", "5", &shared)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("other-scenario") && err.contains("help:"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(shared.join("other-scenario/report.json")).unwrap(),
        "keep"
    );
    assert_eq!(names(&shared), ["other-scenario"]);

    // The current directory.
    let out = crate::support::cli(dir, "run", &["--trials", "5", "--quiet", "--out", "."]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("current directory"), "{}", out.stderr);

    // A symlink to a directory holding a user's file: written through, both kept.
    #[cfg(unix)]
    {
        let real = dir.join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("notes.txt"), "mine").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink("real", &link).unwrap();
        let (code, err) = run(&run_args("1", "5", &link)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>());
        assert_eq!(code, Some(0), "{err}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(real.join("report.json").is_file());
        assert_eq!(
            std::fs::read_to_string(real.join("notes.txt")).unwrap(),
            "mine"
        );
    }
}

/// Two shards of retry-storm in `dir` (`s0`, `s1`).
fn two_shards(dir: &Path, seed: &str) -> [PathBuf; 2] {
    [0, 1].map(|k| {
        let out = dir.join(format!("s{k}-{seed}"));
        let (code, err) = run(&[
            "run",
            "scenarios/retry-storm.ron",
            "--trials",
            "20",
            "--seed",
            seed,
            "--shard",
            &format!("{k}/2"),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(0), "{err}");
        out
    })
}

fn merge(dir: &Path, shards: &[PathBuf; 2]) -> (Option<i32>, String) {
    let merged = dir.join("merged");
    run(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
        "--quiet",
    ])
}

/// Writes `m` with a valid checksum (a careful forger's edit, which only the other checks catch).
fn write_manifest(dir: &Path, mut m: aftershock::shard::Manifest) {
    m.checksum = m.expected_checksum();
    std::fs::write(
        dir.join("shard.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
}

fn manifest(dir: &Path) -> aftershock::shard::Manifest {
    serde_json::from_str(&std::fs::read_to_string(dir.join("shard.json")).unwrap()).unwrap()
}

/// Every damaged or mixed shard set is refused with exit 2 and a help line; the unchanged set
/// merges.
#[test]
fn merge_refuses_what_it_cannot_trust() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let shards = two_shards(dir, "7");
    let other = two_shards(dir, "8");
    let (code, err) = merge(dir, &shards);
    assert_eq!(code, Some(0), "{err}");
    let rows = shards[1].join("rows.bin");
    let good = std::fs::read(&rows).unwrap();
    let good_manifest = manifest(&shards[1]);
    let refused = |what: &str, says: &str| {
        let (code, err) = merge(dir, &shards);
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(err.contains("help:"), "{what}: {err}");
    };

    // One flipped bit in the rows.
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 1;
    std::fs::write(&rows, &bad).unwrap();
    refused("flipped bit", "checksum");
    // Another seed's rows (same size).
    std::fs::copy(other[1].join("rows.bin"), &rows).unwrap();
    refused("another seed's rows", "checksum");
    // Another seed's chart series.
    std::fs::write(&rows, &good).unwrap();
    let series = shards[1].join("series.json");
    let good_series = std::fs::read(&series).unwrap();
    std::fs::copy(other[1].join("series.json"), &series).unwrap();
    refused("another seed's series", "series.json");
    std::fs::write(&series, &good_series).unwrap();
    // A truncated file.
    std::fs::write(&rows, &good[..good.len() - 3]).unwrap();
    refused("truncated rows", "bytes");
    std::fs::write(&rows, &good).unwrap();
    // The seed edited in the manifest, checksum not updated.
    let text = std::fs::read_to_string(shards[1].join("shard.json")).unwrap();
    std::fs::write(
        shards[1].join("shard.json"),
        text.replace("\"seed\": 7", "\"seed\": 9"),
    )
    .unwrap();
    refused("edited seed", "checksum");
    // A NaN in the rows, with the manifest's checksums made to match.
    let mut nan = good.clone();
    nan[..8].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
    std::fs::write(&rows, &nan).unwrap();
    let mut m = good_manifest.clone();
    m.files[0].fnv1a64 = format!("fnv1a64:{:016x}", aftershock::rng::fnv1a(&nan));
    write_manifest(&shards[1], m);
    refused("NaN row", "NaN");
    // An absurd shard or trial count, checksum made to match: refused before allocating.
    std::fs::write(&rows, &good).unwrap();
    for (edit, says) in [
        (
            Box::new(|m: &mut aftershock::shard::Manifest| m.shards = u64::MAX)
                as Box<dyn Fn(&mut aftershock::shard::Manifest)>,
            "never writes",
        ),
        (Box::new(|m| m.trials = u64::MAX), "trial count"),
        (Box::new(|m| m.seed = 8), "seed"),
    ] {
        let mut m = good_manifest.clone();
        edit(&mut m);
        write_manifest(&shards[1], m);
        refused(says, says);
    }
    // Restored, it merges again.
    write_manifest(&shards[1], good_manifest);
    let (code, err) = merge(dir, &shards);
    assert_eq!(code, Some(0), "{err}");
}
