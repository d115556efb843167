//! Comparing plans: adding a plan changes nothing about the others (each plan draws on its own
//! stream, every plan of a trial sees the same failures), and the paired 95% CI that the
//! comparisons and rankings rest on covers a true difference of zero about 95% of the time.

use aftershock::metrics::Metric;
use aftershock::model::Scenario;
use aftershock::report::{self, Report};
use aftershock::runner::{self, RunConfig, RunRows};

use crate::support::scenario;

/// Identity, a retried database, noisy traffic and two random failures (one in half of the
/// trials): plenty of randomness that an inserted plan could shift if streams leaked.
const INSERT: &str = r#"Scenario(
    name: "insert-a-plan", horizon: "6h", resolution: "30s", seed: 42, trials: 40,
    services: [
        (name: "api", capacity: 2000.0),
        (name: "auth", capacity: 5000.0,
         roles: [Auth(key_provider: "idp", key_mismatch_probability: 0.5, client_refresh_rate: 0.005)]),
        (name: "idp", capacity: 5000.0),
        (name: "db", capacity: 1500.0, max_wait: "30s"),
    ],
    dependencies: [
        (from: "api", to: "auth"),
        (from: "auth", to: "idp"),
        (from: "api", to: "db", timeout: "1s",
         retry: (max_attempts: 3, backoff_base: "100ms", backoff_cap: "2s")),
    ],
    traffic: [(entry: "api", rate: 1000.0, noise: (cv: 0.2, every: "5m"))],
    failures: [
        (name: "idp-down", kind: Crash(target: "idp"),
         schedule: Once(at: Uniform(min: "30m", max: "1h"), duration: Exponential(mean: "40m"))),
        (name: "db-down", kind: Crash(target: "db"), probability: 0.5,
         schedule: Once(at: Uniform(min: "20m", max: "2h"), duration: LogNormal(median: "20m", p95: "1h"))),
    ],
    PLANS
)"#;

const ALL_AT_ONCE: &str = r#"(name: "all-at-once", baseline: true, strategy: AllAtOnce),"#;
const CUSTOM_A: &str = r#"(name: "custom-A", strategy: Custom(steps: [PrewarmIdentity, Gate(Uniform(min: "1m", max: "20m")), RestoreAll])),"#;
const GATE_5M: &str =
    r#"(name: "gate-5m", strategy: Custom(steps: [Gate(Exponential(mean: "5m")), RestoreAll])),"#;

fn with_plans(plans: &[&str]) -> Scenario {
    scenario(&INSERT.replace("PLANS", &format!("plans: [{}],", plans.join(" "))))
}

fn run(s: &Scenario, seed: u64, trials: u64) -> RunRows {
    let cfg = RunConfig {
        seed,
        trials,
        threads: Some(2),
    };
    runner::run(s, &cfg, 0, &|_| {})
}

/// `trials.csv` as the run command writes it.
fn trials_csv(s: &Scenario, rows: &RunRows) -> String {
    let mut bytes = Vec::new();
    report::csv::write(&mut bytes, s, rows).unwrap();
    String::from_utf8(bytes).unwrap()
}

fn plan_of(line: &str) -> &str {
    line.split(',').nth(1).unwrap()
}

#[test]
fn adding_a_plan_leaves_the_existing_plans_rows_in_trials_csv_unchanged() {
    let two = with_plans(&[ALL_AT_ONCE, CUSTOM_A]);
    let three = with_plans(&[ALL_AT_ONCE, GATE_5M, CUSTOM_A]);
    let (rows_two, rows_three) = (run(&two, two.seed, 40), run(&three, three.seed, 40));
    let (csv_two, csv_three) = (trials_csv(&two, &rows_two), trials_csv(&three, &rows_three));

    let inserted = csv_three
        .lines()
        .skip(1)
        .filter(|l| plan_of(l) == "gate-5m")
        .count();
    assert_eq!(inserted, 40, "the inserted plan has a row per trial");
    let kept: Vec<&str> = csv_three
        .lines()
        .filter(|l| plan_of(l) != "gate-5m")
        .collect();
    let before: Vec<&str> = csv_two.lines().collect();
    assert_eq!(before.len(), 1 + 2 * 40);
    for (i, (a, b)) in before.iter().zip(&kept).enumerate() {
        assert_eq!(
            a, b,
            "line {i} of trials.csv changed when a plan was inserted"
        );
    }
    assert_eq!(before.len(), kept.len());

    // The test has teeth: the plans differ and the random parts vary from trial to trial.
    let custom = rows_two.column(1, Metric::OperationalMttr);
    assert_ne!(custom, rows_two.column(0, Metric::OperationalMttr));
    assert_ne!(custom, rows_three.column(1, Metric::OperationalMttr));
    assert!(custom.windows(2).any(|w| w[0] != w[1]));

    // And so the existing plans' statistics and comparisons are unchanged too.
    let (r2, r3) = (
        Report::build(&two, two.seed, &rows_two),
        Report::build(&three, three.seed, &rows_three),
    );
    for name in ["all-at-once", "custom-A"] {
        let find = |r: &Report| {
            r.plans
                .iter()
                .find(|p| p.name == name)
                .unwrap()
                .metrics
                .clone()
        };
        assert_eq!(find(&r2), find(&r3), "{name}");
    }
    let against = |r: &Report| -> Vec<_> {
        r.comparisons
            .iter()
            .filter(|c| c.plan == "custom-A")
            .map(|c| (c.metric, c.paired))
            .collect()
    };
    assert_eq!(against(&r2), against(&r3));
}

#[test]
fn report_json_lists_rankings_after_comparisons() {
    let s = with_plans(&[ALL_AT_ONCE, GATE_5M, CUSTOM_A]);
    let r = Report::build(&s, s.seed, &run(&s, s.seed, 20));
    let text = report::json::render(&r);
    let at = |key: &str| text.find(&format!("\n  \"{key}\": ")).unwrap();
    assert!(at("comparisons") < at("rankings") && at("rankings") < at("expectations"));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rankings = doc["rankings"].as_array().unwrap();
    assert_eq!(rankings.len(), r.rankings.len());
    assert!(!rankings.is_empty());
    for k in rankings {
        let order = k["order"].as_array().unwrap();
        assert_eq!(order.len(), 3, "{k}");
        assert_eq!(order[0]["indistinguishable_from_previous"], false);
        assert!(order.iter().all(|o| o["plan"].is_string()));
    }
    let availability = rankings
        .iter()
        .find(|k| k["metric"] == "availability")
        .unwrap();
    let means: Vec<f64> = availability["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["mean"].as_f64().unwrap())
        .collect();
    assert!(
        means.windows(2).all(|w| w[0] >= w[1]),
        "best first: {means:?}"
    );
    // The terminal summary shows them too.
    let table = report::table::render(&r);
    assert!(
        table.contains("\nranking (best first by mean):\n"),
        "{table}"
    );
    assert!(table.contains("\n  availability  "), "{table}");
}

/// One service chain, one crash of random length, two plans identical in distribution whose
/// gates draw on their own streams (keyed by plan name): the true mean difference is 0.
const TWINS: &str = r#"Scenario(
    name: "twins", horizon: "3h", resolution: "1m", seed: 1, trials: 100,
    services: [(name: "api", capacity: 1000.0), (name: "db", capacity: 1000.0)],
    dependencies: [(from: "api", to: "db")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Fixed("10m"), duration: Exponential(mean: "20m")))],
    plans: [
        (name: "gate-a", baseline: true, strategy: Custom(steps: [Gate(Exponential(mean: "10m")), RestoreAll])),
        (name: "gate-b", strategy: Custom(steps: [Gate(Exponential(mean: "10m")), RestoreAll])),
    ],
)"#;

#[test]
fn the_paired_ci_covers_a_zero_difference_about_95_percent_of_the_time() {
    let s = scenario(TWINS);
    let (mut covered, mut varied) = (0, 0);
    for seed in 1..=200u64 {
        let rows = run(&s, seed, 100);
        let r = Report::build(&s, seed, &rows);
        let c = r
            .comparisons
            .iter()
            .find(|c| c.metric == Metric::Availability)
            .unwrap();
        let p = &c.paired;
        let covers = p.ci95_low <= 0.0 && 0.0 <= p.ci95_high;
        covered += usize::from(covers);
        varied += usize::from(p.ci95_low < p.ci95_high);
        // The ranking calls the twins tied exactly when the CI covers 0.
        let k = r
            .rankings
            .iter()
            .find(|k| k.metric == Metric::Availability)
            .unwrap();
        assert_eq!(k.order[1].tied_with_previous, covers, "seed {seed}: {p:?}");
    }
    // The differences are not identically zero, or the CI could not miss 0 and the test
    // could not fail.
    assert!(
        varied >= 190,
        "only {varied} of 200 seeds had varying differences"
    );
    // Binomial(200, 0.95) has mean 190 and sd 3.1: [180, 199] is -3.2 to +2.9 sd (200 of 200,
    // probability 0.95^200 = 3.5e-5, would mean the CI is too wide), with room for the t
    // interval being approximate on a skewed difference. The fixed seed list makes the count
    // deterministic (190 when written).
    assert!(
        (180..=199).contains(&covered),
        "the 95% CI covered 0 on {covered} of 200 seeds"
    );
}
