//! `aftershock crosscheck`: both engines on the same trials. It prints both means and a
//! verdict per plan and metric and exits 0 when the plan differences agree in direction; a
//! scenario either engine refuses exits 2 with the problems at their positions; `--scale`
//! shrinks the request counts and keeps availability; the output does not depend on the
//! thread count.

use aftershock::crosscheck;
use aftershock::metrics::Metric;
use aftershock::model::Engine;
use aftershock::requests;
use aftershock::scenario;

use crate::support::{cli, pos, write};

/// Two services both engines model, two `AllAtOnce` plans, a retry policy and a crash.
const TWO_PLANS: &str = r#"Scenario(
    name: "two-plans",
    horizon: "20m",
    seed: 5,
    trials: 500,
    services: [(name: "api", capacity: 200.0), (name: "db", capacity: 150.0)],
    dependencies: [(from: "api", to: "db", timeout: "1s",
                    retry: (max_attempts: 3, backoff_base: "100ms", backoff_cap: "1s", jitter: Full))],
    traffic: [(entry: "api", rate: 80.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("2m")))],
    plans: [(name: "first", strategy: AllAtOnce), (name: "second", strategy: AllAtOnce)],
)"#;

/// The printed line of `plan` and `metric`, split at whitespace.
fn line<'a>(out: &'a str, plan: &str, metric: &str) -> Vec<&'a str> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() >= 2 && w[0] == plan && w[1] == metric)
        .unwrap_or_else(|| panic!("no line for {plan} {metric} in\n{out}"))
}

#[test]
fn prints_both_means_and_verdicts_the_same_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "two.ron", TWO_PLANS);
    let one = cli(
        dir.path(),
        "crosscheck",
        &["two.ron", "--trials", "12", "--threads", "1"],
    );
    assert_eq!(one.code, Some(0), "{}{}", one.stdout, one.stderr);
    let two = cli(
        dir.path(),
        "crosscheck",
        &["two.ron", "--trials", "12", "--threads", "2"],
    );
    assert_eq!(two.code, Some(0), "{}", two.stderr);
    assert_eq!(one.stdout, two.stdout, "--threads 1 and 2 print the same");
    let out = &one.stdout;
    assert!(
        out.starts_with("crosscheck two-plans: 12 trials per engine, rates and capacities x1\n"),
        "{out}"
    );
    // Every metric both engines report, per plan, with both means and a verdict; none of the
    // response times (the flow engine does not model them).
    for plan in ["first", "second"] {
        for &m in Engine::Flow.reported() {
            let w = line(out, plan, m.key());
            let verdict = *w.last().unwrap();
            assert!(verdict == "agree" || verdict == "DIFFER", "{w:?}");
        }
        let w = line(out, plan, "availability");
        let (flow, req): (f64, f64) = (w[2].parse().unwrap(), w[3].parse().unwrap());
        // Down 2 of 20 minutes: both about 0.9.
        assert!(
            (flow - 0.9).abs() < 0.01 && (req - 0.9).abs() < 0.01,
            "{w:?}"
        );
        assert_eq!(*w.last().unwrap(), "agree");
        let w = line(out, plan, "technical_mttr_s");
        assert_eq!(
            (w[2], w[3], *w.last().unwrap()),
            ("120.0", "120.0", "agree"),
            "{w:?}"
        );
    }
    assert!(!out.contains("latency"), "{out}");
    // The plans are the same plan: no difference, in either engine.
    assert!(
        out.contains("plan differences against the baseline: 17 of 17 agree in direction"),
        "{out}"
    );
    // The default trial count is the scenario's, at most 200 (said in --help).
    let help = cli(dir.path(), "crosscheck", &["--help"]);
    assert!(help.stdout.contains("at most 200"), "{}", help.stdout);
    assert!(help.stdout.contains("Exit codes"), "{}", help.stdout);
}

#[test]
fn a_scenario_one_engine_refuses_exits_2_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    // The flow engine refuses a service-time distribution.
    let fixed = TWO_PLANS.replace(
        r#"(name: "db", capacity: 150.0)"#,
        r#"(name: "db", capacity: 150.0, service_time: Fixed)"#,
    );
    // The flow engine refuses dropping expired work too (a topological plan is modelled by
    // both).
    let expired = TWO_PLANS
        .replace(
            r#"(name: "db", capacity: 150.0)"#,
            r#"(name: "db", capacity: 150.0, drop_expired: true)"#,
        )
        .replace(
            r#"(name: "second", strategy: AllAtOnce)"#,
            r#"(name: "second", strategy: Topological(gate: Fixed("1m")))"#,
        );
    for (name, text, needles) in [
        (
            "fixed.ron",
            &fixed,
            &[("Fixed)", "not modelled by the flow engine")][..],
        ),
        (
            "expired.ron",
            &expired,
            &[("true)", "not modelled by the flow engine")][..],
        ),
    ] {
        write(dir.path(), name, text);
        let out = cli(dir.path(), "crosscheck", &[name, "--trials", "2"]);
        assert_eq!(out.code, Some(2), "{name}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{name}: nothing runs");
        for (needle, message) in needles {
            let at = format!("{name}:{}: ", pos(text, needle));
            assert!(
                out.stderr
                    .lines()
                    .any(|l| l.starts_with(&at) && l.contains(message)),
                "{name}: no `{message}` at {at}:\n{}",
                out.stderr
            );
        }
        assert!(
            out.stderr.contains("needs a scenario both engines model")
                && out.stderr.contains("`--engine` have no meaning here"),
            "{}",
            out.stderr
        );
        // The override is the cross-check's, not a flag the user gave.
        assert!(
            !out.stderr.contains("which this run uses"),
            "{}",
            out.stderr
        );
    }
    // A problem both engines find is listed once.
    let bad = TWO_PLANS.replace("capacity: 200.0", "capacity: -1.0");
    write(dir.path(), "bad.ron", &bad);
    let out = cli(dir.path(), "crosscheck", &["bad.ron"]);
    assert_eq!(out.code, Some(2));
    let at = format!("bad.ron:{}: ", pos(&bad, "-1.0"));
    assert_eq!(
        out.stderr.lines().filter(|l| l.starts_with(&at)).count(),
        1,
        "{}",
        out.stderr
    );
    // Scaled up beyond what the request engine can simulate: refused before anything runs,
    // with the way out that a cross-check has.
    write(dir.path(), "two.ron", TWO_PLANS);
    let out = cli(dir.path(), "crosscheck", &["two.ron", "--scale", "1e6"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("with the requests engine") && out.stderr.contains("a lower `--scale`"),
        "{}",
        out.stderr
    );
    // Usage: a scale of 0, --engine, no trials.
    for args in [
        &["two.ron", "--scale", "0"][..],
        &["two.ron", "--scale", "inf"][..],
        &["two.ron", "--engine", "flow"][..],
        &["two.ron", "--trials", "0"][..],
    ] {
        write(dir.path(), "two.ron", TWO_PLANS);
        let out = cli(dir.path(), "crosscheck", args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("help:"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn scale_halves_rates_capacities_and_request_counts_and_keeps_availability() {
    let flow = scenario::load_str(TWO_PLANS, "two.ron", Some(Engine::Flow)).unwrap();
    let req = scenario::load_str(TWO_PLANS, "two.ron", Some(Engine::Requests)).unwrap();
    let (mut flow_half, mut req_half) = (flow.clone(), req.clone());
    crosscheck::scale(&mut flow_half, 0.5);
    crosscheck::scale(&mut req_half, 0.5);
    assert_eq!(req_half.traffic[0].rate, 40.0);
    let caps: Vec<f64> = req_half
        .topology
        .services
        .iter()
        .map(|s| s.capacity)
        .collect();
    assert_eq!(caps, [100.0, 75.0]);
    // Half the requests arrive (80/s for 20 minutes: 96,000 user requests, so 2% is many
    // standard deviations).
    let (_, full) = requests::observe(&req, &req.plans[0], req.seed, 0);
    let (_, half) = requests::observe(&req_half, &req_half.plans[0], req.seed, 0);
    let ratio = half.users as f64 / full.users as f64;
    assert!(
        (ratio - 0.5).abs() < 0.01,
        "users {} vs {}",
        half.users,
        full.users
    );
    // Availability stays close in both engines.
    let a = crosscheck::run(&flow, &req, 5, 8, Some(2), 1.0).unwrap();
    let b = crosscheck::run(&flow_half, &req_half, 5, 8, Some(2), 0.5).unwrap();
    let avail = |c: &crosscheck::Crosscheck| {
        let l = c
            .levels
            .iter()
            .find(|l| l.metric == Metric::Availability)
            .unwrap();
        (l.flow, l.requests)
    };
    let (fa, ra) = avail(&a);
    let (fb, rb) = avail(&b);
    assert!((fa - fb).abs() < 1e-9, "flow {fa} vs {fb}");
    assert!((ra - rb).abs() < 0.005, "requests {ra} vs {rb}");
    // The command says which scale ran.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "two.ron", TWO_PLANS);
    let out = cli(
        dir.path(),
        "crosscheck",
        &["two.ron", "--trials", "4", "--scale", "0.5"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("crosscheck two-plans: 4 trials per engine, rates and capacities x0.5\n"),
        "{}",
        out.stdout
    );
}

/// The scale of the full tier below: rates and capacities x0.03 keep every library
/// scenario's service times (`instances / capacity` per request, x1/0.03) well under its
/// callers' timeouts, which a smaller scale does not (at about two million events per trial,
/// x0.0003 to x0.002, the smallest services take a second or more per request and the request
/// engine's storms never end, in every plan alike: another system than the scenario's).
const LIBRARY_SCALE: f64 = 0.03;

/// Library scenarios whose plan directions the full tier does not find the same in both
/// engines, each with its reason (FIDELITY.md, section 4); they leave the list when they agree.
const KNOWN_TO_DIFFER: &[(&str, &str)] = &[
    (
        "cache-cluster-loss.ron",
        "49 of 51 directions agree; `cascade_count` (staged, invalidate-45m) is measured \
         differently: from instantaneous health in the flow engine, from failures over the \
         trailing stability window in the request engine",
    ),
    (
        "db-cluster-outage.ron",
        "22 of 34 directions agree; not explained yet: the request engine's all-at-once restores \
         far later and the staged and runbook plans come out better than it, worse in the flow \
         engine",
    ),
    (
        "flaky-dependencies.ron",
        "49 of 51 directions agree; failover's routing failures are 3.4 fewer than \
         all-at-once's in the request engine, equal in the flow engine (levels 19.7 against \
         163, not explained yet), and staged's excess work is Poisson windows over capacity \
         (41 requests)",
    ),
    (
        "identity-provider-outage.ron",
        "50 of 51 directions agree; prewarm-first's degraded accepts are 60 fewer than \
         all-at-once's (of 404,000) in the request engine, none in the flow engine: not \
         explained yet",
    ),
    (
        "queue-consumer-outage.ron",
        "43 of 51 directions agree; the flow engine makes every call of a multi-call hard edge \
         whatever the earlier ones did (the consumer's three writes per message), which \
         overloads the database longer during the drain (issue 18's damped fixed point)",
    ),
    (
        "retry-storm.ron",
        "the flow engine's multi-call hard edges hold `user-store` down for hours (FIDELITY.md, \
         section 3); at x0.03 31 of 34 directions agree: `blast_radius_services` of the staged \
         and paced plans (the request engine counts callers' timeouts during the brownout) and \
         paced-retries' overload",
    ),
];

/// The library scenarios, sorted, loaded for the request engine and the flow engine.
fn library() -> Vec<(
    String,
    aftershock::model::Scenario,
    aftershock::model::Scenario,
)> {
    use aftershock::model::Engine;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ron"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let requests = aftershock::scenario::load_file(&path, Some(Engine::Requests))
                .unwrap_or_else(|e| panic!("{name} is refused by the request engine:\n{e}"));
            let flow = aftershock::scenario::load_file(&path, Some(Engine::Flow)).unwrap();
            (name, requests, flow)
        })
        .collect()
}

#[test]
fn every_library_scenario_runs_with_both_engines() {
    // Quick tier: the request engine refuses nothing the flow engine models, and every library
    // scenario runs with both on the same trials (scaled to about two million request events
    // per trial) without a trial stopping at its event cap; every plan has its row in both.
    for (name, mut requests, mut flow) in library() {
        let events = aftershock::budget::expected_request_events(&requests);
        let scale = (2e6 / events).min(1.0);
        aftershock::crosscheck::scale(&mut flow, scale);
        aftershock::crosscheck::scale(&mut requests, scale);
        let c = aftershock::crosscheck::run(&flow, &requests, flow.seed, 2, None, scale)
            .unwrap_or_else(|_| panic!("{name}: a trial stopped at its event cap"));
        let table = c.table();
        for plan in &flow.plans {
            assert!(
                table.contains(&plan.name),
                "{name}: no {}:\n{table}",
                plan.name
            );
        }
    }
}

/// Full tier (`cargo test --release --test it -- --ignored library_scenarios_agree`, about
/// 15 minutes on two cores): every library scenario at [`LIBRARY_SCALE`], 10 trials per
/// engine, agrees on the direction of every plan difference either engine finds significant
/// (a 95% interval excluding 0), or is listed in [`KNOWN_TO_DIFFER`] with its reason.
#[test]
#[ignore = "full tier: about 15 minutes on two cores"]
fn library_scenarios_agree_on_directions_at_a_scale_that_keeps_service_times() {
    let mut failures = Vec::new();
    for (name, mut requests, mut flow) in library() {
        let scale = LIBRARY_SCALE.min(1.0);
        let scale = if requests.plans.len() < 2 { 1.0 } else { scale };
        aftershock::crosscheck::scale(&mut flow, scale);
        aftershock::crosscheck::scale(&mut requests, scale);
        let c = aftershock::crosscheck::run(&flow, &requests, flow.seed, 10, None, scale)
            .unwrap_or_else(|_| panic!("{name}: a trial stopped at its event cap"));
        println!("{name} (x{scale}, 10 trials):\n{}", c.table());
        let listed = KNOWN_TO_DIFFER.iter().any(|(n, _)| *n == name);
        if listed == c.directions_agree() {
            let what = if listed {
                "agrees now: unlist it"
            } else {
                "differs"
            };
            failures.push(format!("{name} {what}:\n{}", c.table()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
