//! `aftershock sweep`: a grid of scenario values, each point identical to a run of the edited
//! file; bad paths and values exit 2; the CSV has one row per (point, plan) and does not depend
//! on the thread count.

use std::path::Path;

use aftershock::metrics::Metric;
use aftershock::stats::Stat;
use aftershock::sweep::{DEFAULT_METRICS, Measure, csv_columns};

use crate::support::{Out, cli, write};

use crate::support;

/// A two-plan scenario whose outage lasts `outage` (a RON distribution).
fn scenario(outage: &str) -> String {
    format!(
        r#"// sweep test scenario
Scenario(
    name: "sw", horizon: "3h", seed: 11, trials: 24,
    services: [(name: "api", capacity: 1000.0), (name: "db", capacity: 1000.0)],
    dependencies: [(from: "api", to: "db", timeout: "1s")],
    traffic: [(entry: "api", rate: 400.0, noise: (cv: 0.1, every: "5m"))],
    failures: [(name: "db-down", kind: Crash(target: "db"), schedule: Once(at: Fixed("30m"), duration: {outage}))],
    plans: [
        (name: "all-at-once", baseline: true, strategy: AllAtOnce),
        (name: "gated", strategy: Custom(steps: [Gate(Uniform(min: "1m", max: "5m")), RestoreAll])),
    ],
)"#
    )
}

const OUTAGE: &str = r#"Uniform(min: "5m", max: "15m")"#;
const PLANS: [&str; 2] = ["all-at-once", "gated"];

fn sweep(dir: &Path, args: &[&str]) -> Out {
    cli(dir, "sweep", args)
}

/// The CSV as rows of fields (no field of these tests is quoted).
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect());
    let header = lines.next().unwrap();
    (header, lines.collect())
}

#[test]
fn three_outage_durations_give_three_points_per_plan_identical_to_separate_runs() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sw.ron", &scenario(OUTAGE));
    let out = sweep(
        dir.path(),
        &[
            "sw.ron",
            "--set",
            "failures[db-down].schedule.duration=10m,30m,1h",
            "--out",
            "out",
        ],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let (header, rows) = csv(&dir.path().join("out/sweep.csv"));
    assert_eq!(header[0], "failures[db-down].schedule.duration");
    assert_eq!(header[1], "plan");
    let measures: Vec<Measure> = DEFAULT_METRICS
        .iter()
        .map(|&m| Measure::Metric(m))
        .collect();
    let columns: Vec<(Metric, String)> = DEFAULT_METRICS
        .iter()
        .flat_map(|&m| {
            csv_columns(Measure::Metric(m))
                .into_iter()
                .map(move |c| (m, c))
        })
        .collect();
    assert_eq!(header.len(), 2 + columns.len());
    assert_eq!(measures.len(), 5);
    assert_eq!(rows.len(), 3 * PLANS.len());
    for (k, value) in ["10m", "30m", "1h"].iter().enumerate() {
        // The same scenario edited by hand, run as `run` runs it.
        let edited = scenario(&format!("Fixed(\"{value}\")"));
        let s = support::scenario(&edited);
        let report = support::report(&s, s.trials, 1);
        for (i, plan) in PLANS.iter().enumerate() {
            let row = &rows[k * PLANS.len() + i];
            assert_eq!((row[0].as_str(), row[1].as_str()), (*value, *plan));
            let p = &report.plans[i];
            assert_eq!(&p.name, plan);
            for (c, (m, col)) in columns.iter().enumerate() {
                assert_eq!(header[c + 2], format!("{}_{col}", m.key()));
                let summary = p.summary(*m).unwrap();
                let cell = &row[c + 2];
                match col.as_str() {
                    "lower_bounds" => {
                        // No trial outlives this horizon: nothing is a bound.
                        assert_eq!(cell, "", "{value} {plan} {m}");
                        continue;
                    }
                    "censored_share" => {
                        assert_eq!(cell, "0", "{value} {plan} {m}");
                        continue;
                    }
                    _ => {}
                }
                let want = summary.get(Stat::from_name(col).unwrap());
                let got: f64 = cell.parse().unwrap();
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{value} {plan} {m}_{col}: sweep {got} vs run {want}"
                );
            }
        }
    }
    // The table names every point and plan.
    assert!(out.stdout.contains("failures[db-down].schedule.duration"));
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("30m ") && l.contains("gated"))
            .count(),
        1,
        "{}",
        out.stdout
    );
}

#[test]
fn the_data_handed_to_the_line_chart_is_the_means_per_plan() {
    let text = scenario(OUTAGE);
    let sets = vec!["failures[0].schedule.duration=10m,\"1h30m\",Fixed(\"2h\")".to_string()];
    let sw = aftershock::sweep::Sweep::new(&text, "sw.ron", &sets, None).unwrap();
    let cfg = aftershock::runner::RunConfig {
        seed: sw.base.seed,
        trials: 8,
        threads: Some(1),
    };
    let r = aftershock::sweep::run(&sw, &cfg, &|_| {}).unwrap();
    assert_eq!(aftershock::sweep::axis(&r, 0), vec![10.0, 90.0, 120.0]);
    let m = aftershock::metrics::Metric::OperationalMttr;
    let series = aftershock::sweep::line_series(&r, m);
    assert_eq!(series.len(), PLANS.len());
    for (i, (plan, means)) in series.iter().enumerate() {
        assert_eq!(plan, PLANS[i]);
        assert_eq!(means.len(), 3);
        for (k, mean) in means.iter().enumerate() {
            assert_eq!(mean.to_bits(), r.summary(k, i, m).unwrap().mean.to_bits());
        }
        assert!(means[0] < means[2], "{plan}: {means:?}");
    }

    // Two parameters: one heatmap per plan, `cells[y][x]` with x the first parameter's value.
    let sets = vec![
        "failures[0].schedule.duration=10m,1h".to_string(),
        "services[db].capacity=600.0,900.0,1200.0".to_string(),
    ];
    let sw = aftershock::sweep::Sweep::new(&text, "sw.ron", &sets, None).unwrap();
    let r = aftershock::sweep::run(&sw, &cfg, &|_| {}).unwrap();
    for plan in 0..PLANS.len() {
        let cells = aftershock::sweep::heatmap_cells(&r, m, plan);
        assert_eq!((cells.len(), cells[0].len()), (3, 2));
        for (k, p) in r.points.iter().enumerate() {
            let (x, y) = (p.point[0], p.point[1]);
            assert_eq!(k, x * 3 + y);
            assert_eq!(
                cells[y][x].to_bits(),
                r.summary(k, plan, m).unwrap().mean.to_bits()
            );
        }
    }
}

#[test]
fn an_invalid_path_exits_two_naming_the_bad_segment_and_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sw.ron", &scenario(OUTAGE));
    let out = sweep(
        dir.path(),
        &[
            "sw.ron",
            "--set",
            "failures[db-down].schedule.durration=10m",
        ],
    );
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("no field `durration` in `failures[db-down].schedule`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `duration`?"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`at`, `duration`"), "{}", out.stderr);

    let out = sweep(
        dir.path(),
        &["sw.ron", "--set", "failures[db-dwn].schedule.duration=10m"],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no element named `db-dwn` in `failures`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[0] `db-down`"), "{}", out.stderr);

    let out = sweep(dir.path(), &["sw.ron", "--set", "traffic[4].rate=1.0"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no element [4] in `traffic`: it has 1 element(s)"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("output").exists());
}

#[test]
fn a_value_that_makes_the_scenario_invalid_or_an_unknown_metric_exits_two() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sw.ron", &scenario(OUTAGE));
    let out = sweep(
        dir.path(),
        &["sw.ron", "--set", "services[db].capacity=500.0,-1.0"],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("with services[db].capacity=-1.0"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("sw.ron:4:"), "{}", out.stderr);
    assert!(out.stderr.contains("`capacity`"), "{}", out.stderr);

    let out = sweep(dir.path(), &["sw.ron", "--set", "traffic[0].rate=12abc"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("not a RON value"), "{}", out.stderr);

    let out = sweep(
        dir.path(),
        &[
            "sw.ron",
            "--set",
            "traffic[0].rate=100.0",
            "--metric",
            "availabilty",
        ],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean `availability`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_two_by_two_grid_writes_four_rows_per_plan() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sw.ron", &scenario(OUTAGE));
    let out = sweep(
        dir.path(),
        &[
            "sw.ron",
            "--set",
            "failures[db-down].schedule.duration=10m,40m",
            "--set",
            "services[db].capacity=800.0,1200.0",
            "--metric",
            "availability",
            "--metric",
            "operational_mttr_s",
            "--trials",
            "8",
            "--quiet",
        ],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let (header, rows) = csv(&dir.path().join("output/sw-sweep/sweep.csv"));
    assert_eq!(
        header,
        [
            "failures[db-down].schedule.duration",
            "services[db].capacity",
            "plan",
            "availability_mean",
            "availability_ci95_low",
            "availability_ci95_high",
            // Higher is better: the bad tail is the low one.
            "availability_p5",
            "availability_p1",
            "availability_min",
            "operational_mttr_s_mean",
            "operational_mttr_s_ci95_low",
            "operational_mttr_s_ci95_high",
            "operational_mttr_s_p95",
            "operational_mttr_s_p99",
            "operational_mttr_s_max",
            "operational_mttr_s_censored_share",
            "operational_mttr_s_lower_bounds",
        ]
    );
    assert_eq!(rows.len(), 4 * PLANS.len());
    let points: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        points,
        [
            ("10m", "800.0", "all-at-once"),
            ("10m", "800.0", "gated"),
            ("10m", "1200.0", "all-at-once"),
            ("10m", "1200.0", "gated"),
            ("40m", "800.0", "all-at-once"),
            ("40m", "800.0", "gated"),
            ("40m", "1200.0", "all-at-once"),
            ("40m", "1200.0", "gated"),
        ]
    );
}

#[test]
fn the_csv_is_identical_for_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sw.ron", &scenario(OUTAGE));
    let mut csvs = Vec::new();
    for threads in ["1", "2"] {
        let out_dir = format!("out-{threads}");
        let out = sweep(
            dir.path(),
            &[
                "sw.ron",
                "--set",
                "failures[0].schedule.duration=10m,Uniform(min: \"20m\", max: \"1h\")",
                "--trials",
                "130",
                "--threads",
                threads,
                "--metric",
                "restoration_gap_s",
                "--out",
                &out_dir,
                "--quiet",
            ],
        );
        assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
        csvs.push(std::fs::read(dir.path().join(out_dir).join("sweep.csv")).unwrap());
    }
    assert_eq!(csvs[0], csvs[1]);
    let text = String::from_utf8(csvs.swap_remove(0)).unwrap();
    // A value with commas is one value, quoted in the CSV.
    assert!(
        text.contains("\"Uniform(min: \"\"20m\"\", max: \"\"1h\"\")\",gated,"),
        "{text}"
    );
}

#[test]
fn censoring_shares_and_lower_bounds_are_columns_a_program_can_read() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sw.ron", &scenario(OUTAGE));
    // The outage starts at 30m of a 3h horizon: 3h outages are never repaired in time, 10m
    // ones always are.
    let out = sweep(
        dir.path(),
        &[
            "sw.ron",
            "--set",
            "failures[db-down].schedule.duration=10m,3h",
            "--metric",
            "never_technically_recovered_share",
            "--metric",
            "technical_mttr_s",
            "--trials",
            "10",
            "--out",
            "out",
        ],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let (header, rows) = csv(&dir.path().join("out/sweep.csv"));
    assert_eq!(
        header[2..],
        [
            "never_technically_recovered_share_mean",
            "never_technically_recovered_share_ci95_low",
            "never_technically_recovered_share_ci95_high",
            "technical_mttr_s_mean",
            "technical_mttr_s_ci95_low",
            "technical_mttr_s_ci95_high",
            "technical_mttr_s_p95",
            "technical_mttr_s_p99",
            "technical_mttr_s_max",
            "technical_mttr_s_censored_share",
            "technical_mttr_s_lower_bounds",
        ]
    );
    let field = |row: &[String], name: &str| -> String {
        row[header.iter().position(|h| h == name).unwrap()].clone()
    };
    for row in &rows {
        let share: f64 = field(row, "never_technically_recovered_share_mean")
            .parse()
            .unwrap();
        let lo: f64 = field(row, "never_technically_recovered_share_ci95_low")
            .parse()
            .unwrap();
        let hi: f64 = field(row, "never_technically_recovered_share_ci95_high")
            .parse()
            .unwrap();
        let (want_lo, want_hi) = aftershock::stats::wilson((share * 10.0).round() as u64, 10);
        assert_eq!((lo, hi), (want_lo, want_hi));
        let bounds = field(row, "technical_mttr_s_lower_bounds");
        if row[0] == "10m" {
            assert_eq!(share, 0.0);
            assert_eq!((lo, hi > 0.2), (0.0, true), "Wilson: not a point at 0");
            assert_eq!(bounds, "");
        } else {
            assert_eq!(share, 1.0);
            assert_eq!(hi, 1.0);
            assert_eq!(field(row, "technical_mttr_s_censored_share"), "1");
            assert_eq!(bounds, "mean|ci95_low|ci95_high|p95|p99|max");
            // Capped at the horizon: 3h - 30m.
            assert_eq!(field(row, "technical_mttr_s_max"), "9000");
        }
    }
    // The terminal table marks the bound and shows the share.
    assert!(out.stdout.contains(">= 2.50h"), "{}", out.stdout);
    assert!(out.stdout.contains("100.0%"), "{}", out.stdout);
}

#[test]
fn the_ambiguous_never_restored_share_is_refused_as_a_sweep_metric() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sw.ron", &scenario(OUTAGE));
    let out = sweep(
        dir.path(),
        &[
            "sw.ron",
            "--set",
            "traffic[0].rate=100.0",
            "--metric",
            "never_restored_share",
        ],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("split in two"), "{}", out.stderr);
    assert!(
        out.stderr.contains("`never_technically_recovered_share`")
            && out.stderr.contains("`never_operationally_restored_share`"),
        "{}",
        out.stderr
    );
}
