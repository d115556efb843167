//! The request engine against closed forms and known behaviours: M/M/1, M/M/c (Erlang C),
//! M/D/1 (Pollaczek-Khinchine), Little's law on a network, the drain of a backlog after an
//! outage, retry amplification, metastability, and jitter after a synchronized release.
//!
//! Every test fixes its seed. A statistical assertion states its tolerance: a mean over
//! independent trials is compared with the formula within 4 of its standard errors (a false
//! failure has a chance below 1e-4) and, so that a biased engine cannot pass on noise, within a
//! stated relative error as well.

use aftershock::model::Scenario;
use aftershock::requests::{self, Observed};

use crate::support::scenario;

/// One server (`instances` servers) of `capacity`, Poisson arrivals at `rate`, no failure.
fn queue_model(
    capacity: f64,
    instances: u32,
    rate: f64,
    service_time: &str,
    horizon: &str,
) -> Scenario {
    scenario(&format!(
        r#"Scenario(
    name: "queue", horizon: "{horizon}", seed: 7, engine: Requests,
    services: [(name: "server", capacity: {capacity:?}, instances: {instances}, base_latency: "0s",
                max_wait: "1h", service_time: {service_time})],
    traffic: [(entry: "server", rate: {rate:?})],
)"#
    ))
}

/// Trials `0..n` of the first plan, observed.
fn observe(s: &Scenario, n: u64) -> Vec<Observed> {
    (0..n)
        .map(|t| requests::observe(s, &s.plans[0], s.seed, t).1)
        .collect()
}

/// Mean and standard error of the mean of per-trial values.
fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, (v / n).sqrt())
}

/// Asserts `got` (mean, se) is within 4 standard errors and `rel` of `want` (and prints both,
/// for FIDELITY.md: `cargo test --release --test it requests:: -- --nocapture`).
fn assert_close(what: &str, (m, se): (f64, f64), want: f64, rel: f64) {
    eprintln!("{what}: measured {m:.4} (se {se:.4}), formula {want:.4}, tolerance {rel}");
    assert!(
        (m - want).abs() <= 4.0 * se && (m - want).abs() <= rel * want.abs(),
        "{what}: measured {m:.4} (se {se:.4}), formula {want:.4}, tolerance {rel}"
    );
}

/// Erlang C: the probability that an arrival waits in an M/M/c queue with offered load `a`
/// erlangs.
fn erlang_c(c: u32, a: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / f64::from(k);
        sum += term;
    }
    let last = term * a / f64::from(c);
    let rho = a / f64::from(c);
    let top = last / (1.0 - rho);
    top / (sum + top)
}

fn per_trial(obs: &[Observed], f: impl Fn(&Observed) -> f64) -> Vec<f64> {
    obs.iter().map(f).collect()
}

#[test]
fn mm1_waiting_time_and_probability_of_waiting() {
    // lambda 8, mu 10: Wq = rho / (mu - lambda) = 0.4 s, P(wait) = rho = 0.8. 24 trials of
    // 5000 s (40,000 customers each; the first 5% of a trial's customers start from an empty
    // queue, a bias below 0.5%). Tolerance 5%.
    let s = queue_model(10.0, 1, 8.0, "Exponential", "5000s");
    let obs = observe(&s, 24);
    let wq = per_trial(&obs, |o| o.wait_s[0] / o.started[0] as f64);
    assert_close("M/M/1 Wq", mean_se(&wq), 0.4, 0.05);
    let pw = per_trial(&obs, |o| o.waited[0] as f64 / o.arrived[0] as f64);
    assert_close("M/M/1 P(wait)", mean_se(&pw), 0.8, 0.02);
}

#[test]
fn mmc_matches_erlang_c() {
    // c = 4 servers of 10/s each, lambda 32 (a = 3.2 erlangs, rho 0.8): P(wait) = C(4, 3.2),
    // Wq = C / (c mu - lambda). Tolerance 5%.
    let s = queue_model(40.0, 4, 32.0, "Exponential", "3000s");
    let obs = observe(&s, 16);
    let c = erlang_c(4, 3.2);
    let pw = per_trial(&obs, |o| o.waited[0] as f64 / o.arrived[0] as f64);
    assert_close("M/M/4 P(wait)", mean_se(&pw), c, 0.03);
    let wq = per_trial(&obs, |o| o.wait_s[0] / o.started[0] as f64);
    assert_close("M/M/4 Wq", mean_se(&wq), c / (40.0 - 32.0), 0.05);
}

#[test]
fn md1_matches_pollaczek_khinchine() {
    // Fixed service time 0.1 s, lambda 8: Wq = rho / (2 mu (1 - rho)) = 0.2 s (half the
    // M/M/1 wait: the P-K formula with a service-time variance of 0). Tolerance 5%.
    let s = queue_model(10.0, 1, 8.0, "Fixed", "5000s");
    let obs = observe(&s, 24);
    let wq = per_trial(&obs, |o| o.wait_s[0] / o.started[0] as f64);
    assert_close("M/D/1 Wq", mean_se(&wq), 0.2, 0.05);
    // Log-normal with cv 2: Wq = rho (1 + cv^2) / (2 mu (1 - rho)) = 1.0 s; heavier tails
    // converge slower: tolerance 10%.
    let s = queue_model(10.0, 1, 8.0, "LogNormal(cv: 2.0)", "5000s");
    let obs = observe(&s, 40);
    let wq = per_trial(&obs, |o| o.wait_s[0] / o.started[0] as f64);
    assert_close("M/G/1 Wq (log-normal, cv 2)", mean_se(&wq), 1.0, 0.10);
}

#[test]
fn littles_law_holds_at_every_service_of_a_network() {
    // A gateway calling two services (one of them 1.5 times per request on average), each
    // queueing: per service, the time-average number in system equals the arrival rate times
    // the mean time in system (L = lambda W), up to the requests still in the system at the
    // end (tolerance 1%).
    let s = scenario(
        r#"Scenario(
    name: "network", horizon: "2000s", seed: 11, engine: Requests,
    services: [
        (name: "gateway", capacity: 100.0, instances: 4, max_wait: "1h"),
        (name: "orders", capacity: 60.0, instances: 2, max_wait: "1h", service_time: Fixed),
        (name: "stock", capacity: 50.0, instances: 1, max_wait: "1h",
         service_time: LogNormal(cv: 1.5)),
    ],
    dependencies: [
        (from: "gateway", to: "orders"),
        (from: "gateway", to: "stock", calls: 1.5),
    ],
    traffic: [(entry: "gateway", rate: 25.0)],
)"#,
    );
    let (_, o) = requests::observe(&s, &s.plans[0], s.seed, 0);
    let horizon = 2000.0;
    for svc in 0..3 {
        let l = o.in_system_s[svc] / horizon;
        let lambda = o.arrived[svc] as f64 / horizon;
        let w = o.sojourn_s[svc] / o.completed[svc] as f64;
        eprintln!(
            "Little, service {svc}: L {l:.4}, lambda W {:.4}",
            lambda * w
        );
        assert!(
            (l - lambda * w).abs() <= 0.01 * l,
            "service {svc}: L {l:.4} vs lambda W {:.4}",
            lambda * w
        );
    }
    // The fan-out: 1.5 calls per request on average.
    let ratio = o.arrived[2] as f64 / o.arrived[0] as f64;
    assert!((ratio - 1.5).abs() < 0.02, "calls per request {ratio}");
}

#[test]
fn a_backlog_drains_as_the_busy_period_formula_says() {
    // mu 10, lambda 5; for 60 s the server works at a tenth of its speed, so a backlog B builds.
    // From the end of the outage the server empties after a busy period started by B requests:
    // E[T | B] = B / (mu - lambda), Var[T | B] = B (mu + lambda) / (mu - lambda)^3. Over 300
    // trials: the mean of T - B / (mu - lambda) is 0 within 4 standard errors, and its variance
    // is E[B] (mu + lambda) / (mu - lambda)^3 within 20% (the sample variance of 300 values has a
    // relative standard error of about 8%).
    let s = scenario(
        r#"Scenario(
    name: "drain", horizon: "400s", seed: 3, engine: Requests,
    services: [(name: "server", capacity: 10.0, base_latency: "0s", max_wait: "1h")],
    traffic: [(entry: "server", rate: 5.0)],
    failures: [(name: "slow", kind: Partial(target: "server", capacity: 0.1),
                schedule: Once(at: Fixed("100s"), duration: Fixed("60s")))],
)"#,
    );
    let obs = observe(&s, 300);
    let (mu, lambda) = (10.0, 5.0);
    let resid: Vec<f64> = obs
        .iter()
        .map(|o| o.drain_s[0].expect("drained") - o.backlog_at_recovery[0] as f64 / (mu - lambda))
        .collect();
    let (m, se) = mean_se(&resid);
    assert!(m.abs() <= 4.0 * se, "mean residual {m} (se {se})");
    let b = obs
        .iter()
        .map(|o| o.backlog_at_recovery[0] as f64)
        .sum::<f64>()
        / obs.len() as f64;
    assert!(b > 150.0, "a backlog built: {b}");
    let var = resid.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / (resid.len() as f64 - 1.0);
    let want = b * (mu + lambda) / (mu - lambda).powi(3);
    eprintln!(
        "drain: E[B] {b:.1}, mean of T - B/(mu - lambda) {m:.3} s (se {se:.3}), variance {var:.2} vs {want:.2}"
    );
    assert!(
        (var / want - 1.0).abs() < 0.2,
        "drain variance {var} vs {want}"
    );
}

/// A caller `layers` deep chain of services `s0 -> s1 -> ... -> s{layers}` where each caller
/// retries `attempts` times at once, and the last service fails `share` of its requests.
fn retry_chain(layers: usize, attempts: u32, failure: &str) -> Scenario {
    let services: Vec<String> = (0..=layers)
        .map(|i| format!(r#"(name: "s{i}", capacity: 1e6, instances: 64, base_latency: "0s")"#))
        .collect();
    let deps: Vec<String> = (0..layers)
        .map(|i| {
            format!(
                r#"(from: "s{i}", to: "s{}", retry: (max_attempts: {attempts}, backoff_base: "1ms",
                    backoff_cap: "1ms", jitter: None))"#,
                i + 1
            )
        })
        .collect();
    scenario(&format!(
        r#"Scenario(
    name: "chain", horizon: "600s", seed: 5, engine: Requests,
    services: [{}],
    dependencies: [{}],
    traffic: [(entry: "s0", rate: 200.0)],
    failures: [(name: "bottom", kind: {failure},
                schedule: Once(at: Fixed("0s"), duration: Fixed("1h")))],
)"#,
        services.join(", "),
        deps.join(", ")
    ))
}

#[test]
fn retries_amplify_as_the_formulas_say() {
    // One layer, error rate p = 0.5, 3 attempts: (1 - p^3) / (1 - p) = 1.75 attempts per call
    // (120,000 calls: tolerance 1%, about 5 standard errors).
    let s = retry_chain(1, 3, r#"ErrorRate(target: "s1", share: 0.5)"#);
    let (_, o) = requests::observe(&s, &s.plans[0], s.seed, 0);
    let a = o.attempts[0] as f64 / o.calls[0] as f64;
    eprintln!("retries: {a:.4} attempts per call, formula 1.75");
    assert!((a - 1.75).abs() < 0.0175, "attempts per call {a}");
    // Three layers, the bottom fails a share p: layer k's calls fail with p_k = p_{k+1}^n, so
    // attempts multiply layer by layer: a(p_1) a(p_2) a(p_3) per user request at the bottom.
    let s = retry_chain(3, 3, r#"ErrorRate(target: "s3", share: 0.8)"#);
    let (_, o) = requests::observe(&s, &s.plans[0], s.seed, 0);
    let amp = |p: f64| (1.0 - p.powi(3)) / (1.0 - p);
    let (p3, p2) = (0.8f64, 0.8f64.powi(3));
    let p1 = p2.powi(3);
    let want = amp(p3) * amp(p2) * amp(p1);
    let got = o.arrived[3] as f64 / o.arrived[0] as f64;
    assert!(
        (got / want - 1.0).abs() < 0.02,
        "bottom attempts per request {got} vs {want}"
    );
    // The bottom down (every request fails): a^d = 3^3 = 27 attempts per user request, exactly
    // for every request whose attempts were all made before the horizon (the last
    // milliseconds' are cut off: tolerance 1e-4).
    let s = retry_chain(3, 3, r#"Crash(target: "s3")"#);
    let (_, o) = requests::observe(&s, &s.plans[0], s.seed, 0);
    let got = o.arrived[3] as f64 / o.arrived[0] as f64;
    assert!((got - 27.0).abs() < 27e-4, "a^d: {got}");
}

/// Clients calling a server (mu 10, a queue of up to 10 s) with a 1 s timeout and `retries`
/// immediate retries; from 60 s to 180 s every response is 2 s late (the trigger: every attempt
/// times out and is retried, and a queue builds when the retries exceed capacity).
fn metastable(rate: f64, retries: u32, drop_expired: bool) -> Scenario {
    scenario(&format!(
        r#"Scenario(
    name: "metastable", horizon: "900s", seed: 9, engine: Requests,
    slo: (success_rate: 0.9, stability_window: "60s"),
    services: [
        (name: "clients", capacity: 1e9, base_latency: "0s"),
        (name: "server", capacity: 10.0, base_latency: "0s", max_wait: "10s",
         drop_expired: {drop_expired}),
    ],
    dependencies: [(from: "clients", to: "server", timeout: "1s",
                    retry: (max_attempts: {}, backoff_base: "0s", backoff_cap: "0s", jitter: None))],
    traffic: [(entry: "clients", rate: {rate:?})],
    failures: [(name: "trigger", kind: Latency(target: "server", added: "2s"),
                schedule: Once(at: Fixed("60s"), duration: Fixed("120s")))],
)"#,
        retries + 1
    ))
}

#[test]
fn metastability_needs_retries_beyond_capacity_and_work_on_abandoned_requests() {
    use aftershock::metrics::Metric;
    let restored = |s: &Scenario| {
        (0..4).all(|t| {
            let (row, _) = requests::observe(s, &s.plans[0], s.seed, t);
            !row.op_censored && row.get(Metric::OperationalMttr) < 400.0
        })
    };
    let stuck = |s: &Scenario| {
        (0..4).all(|t| {
            let (row, _) = requests::observe(s, &s.plans[0], s.seed, t);
            row.op_censored && row.get(Metric::Availability) < 0.5
        })
    };
    // lambda (1 + r) = 4 x 3 = 12 > mu = 10: the full queue of abandoned work sustains itself.
    assert!(
        stuck(&metastable(4.0, 2, false)),
        "12/s of attempts stays failed"
    );
    // lambda (1 + r) = 4 x 2 = 8 < 10: the queue drains even though every attempt fails.
    assert!(
        restored(&metastable(4.0, 1, false)),
        "8/s of attempts recovers"
    );
    // Dropping expired work: the same 12/s recovers.
    assert!(
        restored(&metastable(4.0, 2, true)),
        "dropping expired work recovers"
    );
}

/// Clients whose requests queue at a slowed server until a crash at 100 s fails them all at
/// once; they retry with the given jitter (base 8 s).
fn release(jitter: &str) -> Scenario {
    scenario(&format!(
        r#"Scenario(
    name: "release", horizon: "200s", seed: 13, engine: Requests,
    services: [
        (name: "clients", capacity: 1e9, base_latency: "0s"),
        (name: "server", capacity: 1000.0, base_latency: "0s", max_wait: "1h"),
    ],
    dependencies: [(from: "clients", to: "server",
                    retry: (max_attempts: 2, backoff_base: "8s", backoff_cap: "8s", jitter: {jitter}))],
    traffic: [(entry: "clients", rate: 50.0)],
    failures: [
        (name: "slow", kind: Partial(target: "server", capacity: 0.001),
         schedule: Once(at: Fixed("10s"), duration: Fixed("100s"))),
        (name: "crash", kind: Crash(target: "server"), schedule: Once(at: Fixed("100s"), duration: Fixed("1s"))),
    ],
)"#
    ))
}

#[test]
fn jitter_spreads_a_synchronized_release() {
    // The slowed server's queue holds 3,600 requests (an hour of its remaining 1/s), which
    // fail together at 100 s. Without jitter they all retry at 108 s;
    // full jitter spreads them over [100 s, 108 s), equal jitter over [104 s, 108 s).
    let busiest = |jitter: &str| {
        let s = release(jitter);
        let (_, o) = requests::observe(&s, &s.plans[0], s.seed, 0);
        let n = s.topology.services.len();
        (101..200)
            .map(|w| o.window_arrivals.get(w * n + 1).copied().unwrap_or(0))
            .max()
            .unwrap()
    };
    let (none, equal, full) = (busiest("None"), busiest("Equal"), busiest("Full"));
    eprintln!("jitter: busiest second none {none}, equal {equal}, full {full}");
    assert!(none > 3_500, "no jitter: one synchronized wave ({none})");
    assert!(
        full * 4 < none,
        "full jitter is well below ({full} vs {none})"
    );
    assert!(
        full < equal && equal < none,
        "equal lies between ({full} < {equal} < {none})"
    );
}

#[test]
fn same_trial_same_result() {
    let s = metastable(4.0, 2, false);
    let a = requests::observe(&s, &s.plans[0], s.seed, 3);
    let b = requests::observe(&s, &s.plans[0], s.seed, 3);
    let bits = |r: &aftershock::metrics::TrialRow| r.stored().map(f64::to_bits);
    assert_eq!(bits(&a.0), bits(&b.0));
    assert_eq!(a.1.window_arrivals, b.1.window_arrivals);
}

#[test]
fn a_timeout_fails_the_tail_of_the_mm1_response_time() {
    // Clients calling an M/M/1 server (lambda 8, mu 10) with a 1 s timeout and no retries: the
    // response time of M/M/1 is exponential with rate mu - lambda, so a share e^-2 = 13.5% of
    // calls time out (the server still serves them, so the queue is the M/M/1 queue). 16 trials
    // of 5000 s; tolerance 4 standard errors and 3%.
    let s = scenario(
        r#"Scenario(
    name: "tail", horizon: "5000s", seed: 17, engine: Requests,
    services: [
        (name: "clients", capacity: 1e9, base_latency: "0s"),
        (name: "server", capacity: 10.0, base_latency: "0s", max_wait: "1h"),
    ],
    dependencies: [(from: "clients", to: "server", timeout: "1s")],
    traffic: [(entry: "clients", rate: 8.0)],
)"#,
    );
    let failed: Vec<f64> = (0..16)
        .map(|t| {
            let (row, _) = requests::observe(&s, &s.plans[0], s.seed, t);
            1.0 - row.get(aftershock::metrics::Metric::Availability)
        })
        .collect();
    assert_close(
        "M/M/1 P(response > 1 s)",
        mean_se(&failed),
        (-2f64).exp(),
        0.03,
    );
}

#[test]
fn a_breaker_opens_on_timeouts_and_probes_while_half_open() {
    // Clients (20/s) call a server with a 100 ms timeout through a breaker (half of 5 or more
    // outcomes failing in 10 s opens it for 30 s, then 3 probes). For 60 s every response is
    // 1 s late: without the breaker the server receives all 1,200 attempts of those 60 s; with
    // it, those of the first 5 s or so (until the timeouts are half of the window's outcomes,
    // the rest being the successes of the seconds before: about 100), then 3 probes when it
    // half-opens 30 s later (they time out, it opens again until after the brownout).
    let text = |breaker: &str| {
        format!(
            r#"Scenario(
    name: "breaker", horizon: "100s", seed: 21, engine: Requests,
    services: [
        (name: "clients", capacity: 1e9, base_latency: "0s"),
        (name: "server", capacity: 1000.0, instances: 10, base_latency: "0s"),
    ],
    dependencies: [(from: "clients", to: "server", timeout: "100ms"{breaker})],
    traffic: [(entry: "clients", rate: 20.0)],
    failures: [(name: "slow", kind: Latency(target: "server", added: "1s"),
                schedule: Once(at: Fixed("20s"), duration: Fixed("60s")))],
)"#
        )
    };
    let arrivals = |t: &str| {
        let s = scenario(t);
        let (_, o) = requests::observe(&s, &s.plans[0], s.seed, 0);
        (20..80).map(|w| o.window_arrivals[w * 2 + 1]).sum::<u64>()
    };
    let open = arrivals(&text(
        r#", breaker: (failure_threshold: 0.5, window: "10s", open_for: "30s", half_open_probes: 3)"#,
    ));
    let none = arrivals(&text(""));
    assert!(none > 1_000, "without a breaker: {none}");
    assert!(
        (80..130).contains(&open),
        "the breaker sheds the attempts: {open} of {none}"
    );
    // Restoration waits for the breaker to close (it is adaptive state, as in the flow
    // engine): the stable run starts no sooner than the breaker's last closing.
    let s = scenario(&text(
        r#", breaker: (failure_threshold: 0.5, window: "10s", open_for: "30s", half_open_probes: 3)"#,
    ));
    let s = aftershock::model::Scenario {
        horizon: aftershock::engine::SimTime(400 * 1_000_000_000),
        ..s
    };
    let mut windows = Vec::new();
    aftershock::fault::draw(&s, s.seed, 0, &mut windows);
    let mut trace = Vec::new();
    let row = aftershock::sim::run_trial(&s, &s.plans[0], &windows, s.seed, 0, Some(&mut trace));
    let closed = trace
        .iter()
        .filter(|r| {
            matches!(&r.event, aftershock::sim::trace::TraceEvent::Breaker { state, .. }
                if *state == "breaker_closed")
        })
        .map(|r| r.t_s)
        .fold(f64::NAN, f64::max);
    assert!(
        closed > 80.0,
        "the breaker closes after the brownout: {closed}"
    );
    let op = row.get(aftershock::metrics::Metric::OperationalMttr);
    assert!(
        !row.op_censored && op + 20.0 >= closed,
        "restored at {} s, breaker closed at {closed} s",
        op + 20.0
    );
}
