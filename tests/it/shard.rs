//! Sharded runs: three shards run as separate processes and merged give the unsharded output
//! byte for byte; merging refuses shards that do not make up one run.

use std::path::Path;

use assert_cmd::Command;

fn aftershock(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut c = Command::cargo_bin("aftershock").unwrap();
    c.current_dir(dir).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

const FILES: [&str; 12] = [
    "report.json",
    "trials.csv",
    "report.html",
    "report.md",
    "availability.png",
    "availability.svg",
    "load.png",
    "load.svg",
    "mttr.png",
    "mttr.svg",
    "comparison.png",
    "comparison.svg",
];

#[test]
fn three_shards_merge_into_the_unsharded_output_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["run", "--trials", "130", "--quiet"];
        args.extend_from_slice(extra);
        let (code, out) = aftershock(d, &args, env);
        assert_eq!(code, Some(0), "{out}");
    };
    run(&["--out", "full"], &[]);
    // Shard 0 by index, shard 1 as a Kubernetes Indexed Job, shard 2 as a Slurm array task
    // (1-based array, so task 3 of 1..3 is shard 2).
    run(&["--shard", "0/3", "--out", "s0"], &[]);
    run(
        &["--shard", "k8s/3", "--out", "s1"],
        &[("JOB_COMPLETION_INDEX", "1")],
    );
    run(
        &["--shard", "slurm", "--out", "s2"],
        &[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    );
    let (code, out) = aftershock(
        d,
        &["merge", "s2", "s0", "s1", "--out", "merged", "--quiet"],
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    for f in FILES {
        assert_eq!(
            std::fs::read(d.join("full").join(f)).unwrap(),
            std::fs::read(d.join("merged").join(f)).unwrap(),
            "{f} differs between the merged and the unsharded run"
        );
    }
    // Each shard ran its own block of trials: 0..43, 43..86, 86..130.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("s2/shard.json")).unwrap()).unwrap();
    assert_eq!(
        (manifest["first_trial"].as_u64(), manifest["count"].as_u64()),
        (Some(86), Some(44))
    );

    // Refusals: a missing shard, a shard twice, a shard of another seed or scenario.
    let (code, out) = aftershock(d, &["merge", "s0", "s1", "--out", "m"], &[]);
    assert_eq!(code, Some(2));
    assert!(out.contains("shard(s) 2 of 3 missing"), "{out}");
    let (code, out) = aftershock(d, &["merge", "s0", "s1", "s1", "s2", "--out", "m"], &[]);
    assert_eq!(code, Some(2));
    assert!(out.contains("are both shard 1 of 3"), "{out}");
    run(
        &["--shard", "2/3", "--seed", "7", "--out", "other-seed"],
        &[],
    );
    let (code, out) = aftershock(d, &["merge", "s0", "s1", "other-seed", "--out", "m"], &[]);
    assert_eq!(code, Some(2));
    assert!(out.contains("seed 7 differs"), "{out}");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/retry-storm.ron");
    let mut args = vec![
        "run", "--trials", "130", "--quiet", "--shard", "2/3", "--out", "other",
    ];
    let sc = scenario.to_string_lossy().into_owned();
    args.push(&sc);
    let (code, out) = aftershock(d, &args, &[]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = aftershock(d, &["merge", "s0", "s1", "other", "--out", "m"], &[]);
    assert_eq!(code, Some(2));
    assert!(out.contains("scenario retry-storm"), "{out}");
    assert!(!d.join("m").exists(), "a refused merge wrote output");
    // Bad shard specs are usage errors.
    for (spec, needle) in [("3/3", "does not exist"), ("k8s/3", "JOB_COMPLETION_INDEX")] {
        let (code, out) = aftershock(d, &["run", "--trials", "10", "--shard", spec], &[]);
        assert_eq!(code, Some(2), "{spec}");
        assert!(out.contains(needle), "{spec}: {out}");
    }
}
