//! Cache and auth roles, and key rotations, in the request engine: per request, with the flow
//! engine's meaning (see `src/requests/cache.rs` and `src/requests/auth.rs`). Each test runs a
//! small scenario with fixed seeds and compares what users rely on (origin load after an
//! outage, rejected requests after a key mismatch) between settings, and with the flow engine
//! where the two are meant to agree.

use aftershock::crosscheck::{self, Crosscheck};
use aftershock::metrics::{Metric, TrialRow};
use aftershock::model::{Engine, Scenario};
use aftershock::requests::{self, Observed};
use aftershock::sim::trace::{TraceEvent, TraceRecord};

fn load(text: &str, engine: Engine) -> Scenario {
    aftershock::scenario::load_str(text, "roles.ron", Some(engine))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// api -> cache -> db. The cache holds `KEYS` keys (TTL 5 minutes, hit ratio 0.9, extended at
/// most 10 minutes, `WINDOW` its invalidation window); the db, its origin, crashes at 5 minutes
/// for `DUR`. 100 user requests per second, so about 10 misses per second reach the db
/// (capacity 60) normally, and every read would overload it.
const CACHE: &str = r#"Scenario(
    name: "cache-roles",
    horizon: "30m",
    storm_window: "10s",
    seed: 7,
    trials: 6,
    slo: (success_rate: 0.99, stability_window: "2m"),
    services: [(name: "api", capacity: 1000.0, instances: 4),
               (name: "cache", capacity: 1000.0, instances: 4,
                roles: [Cache(origin: "db", keys: KEYS, ttl: "5m", hit_ratio: 0.9,
                              max_extension: "10m"WINDOW)]),
               (name: "db", capacity: 60.0, instances: 4, max_wait: "2s")],
    dependencies: [(from: "api", to: "cache", timeout: "3s"),
                   (from: "cache", to: "db", timeout: "3s")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("DUR")))],
    plans: [(name: "all-at-once", baseline: true, strategy: AllAtOnce)PLANS],
)"#;

fn cache(keys: &str, window: &str, dur: &str, plans: &str, engine: Engine) -> Scenario {
    let text = CACHE
        .replace("KEYS", keys)
        .replace("WINDOW", window)
        .replace("DUR", dur)
        .replace("PLANS", plans);
    load(&text, engine)
}

/// Trial `t` of plan `p` in the request engine.
fn observe(s: &Scenario, p: usize, t: u64) -> (TrialRow, Observed) {
    requests::observe(s, &s.plans[p], s.seed, t)
}

/// Arrivals at service `svc` in the storm windows `[from, to)` (window indexes).
fn arrivals(s: &Scenario, o: &Observed, svc: usize, from: usize, to: usize) -> Vec<u64> {
    let n = s.topology.services.len();
    (from..to).map(|w| o.window_arrivals[w * n + svc]).collect()
}

const DB: usize = 2;

/// An origin outage longer than `max_extension` leaves the cache cold: every read goes to the
/// origin for a TTL after it returns, where after a short outage only the misses and the
/// expired extended entries (refreshed within seconds) do. During the outage, extended
/// entries keep the users served (their hits), until the cap evicts them.
#[test]
fn an_outage_beyond_the_extension_cap_leaves_the_cache_cold() {
    // 3000 keys: after a 2-minute outage 40% are extended; each read of an expired one refreshes it.
    let short = cache("3000.0", "", "2m", "", Engine::Requests);
    let long = cache("3000.0", "", "15m", "", Engine::Requests);
    for t in 0..2 {
        let (_, os) = observe(&short, 0, t);
        let (_, ol) = observe(&long, 0, t);
        // The two minutes after the return (windows of 10 s from 5 min + outage).
        let after_short: u64 = arrivals(&short, &os, DB, 42, 54).iter().sum();
        let after_long: u64 = arrivals(&long, &ol, DB, 120, 132).iter().sum();
        // Short: ~10/s of misses for 120 s plus at most the 1200 extended keys: ~2400. Cold:
        // every read, ~100/s, bounded by what the db accepts (60/s plus a queue of 2 s): well
        // over 6000. A factor 2 leaves room for Poisson noise (a few percent here).
        assert!(
            after_long > 2 * after_short,
            "trial {t}: cold {after_long} vs warm {after_short}"
        );
        assert!(after_short < 4000, "trial {t}: {after_short}");
        // Users during the long outage: before the cap (minutes 6 to 14) the hits are served
        // stale, ~90% succeed; after it (minutes 16 to 19) the cache is cold, every read fails.
        let (row_l, _) = observe(&long, 0, t);
        let (row_s, _) = observe(&short, 0, t);
        assert!(
            row_l.get(Metric::Availability) < row_s.get(Metric::Availability) - 0.1,
            "the cold cache fails its users: {} vs {}",
            row_l.get(Metric::Availability),
            row_s.get(Metric::Availability)
        );
    }
}

/// Both engines on the same scenario (`trials` trials, full size).
fn both(text: &str, trials: u64) -> Crosscheck {
    let (flow, req) = (load(text, Engine::Flow), load(text, Engine::Requests));
    crosscheck::run(&flow, &req, flow.seed, trials, None, 1.0).expect("no trial aborted")
}

/// The mean of `metric` for plan `plan` in each engine: (flow, requests).
fn level(c: &Crosscheck, plan: &str, metric: Metric) -> (f64, f64) {
    let l = c
        .levels
        .iter()
        .find(|l| l.plan == plan && l.metric == metric)
        .unwrap_or_else(|| panic!("no level {plan} {metric:?}"));
    (l.flow, l.requests)
}

/// The plans' differences against the baseline on which the engines disagree in direction,
/// except `cascade_count`, which the engines measure differently (the flow engine from
/// instantaneous health, the request engine from failures over the trailing stability window,
/// whose first window after a fault's end does not count as a recovery window), and
/// `storm_peak_ratio` differences within the metric's tolerance (a maximum of Poisson counts
/// over windows grows with the number of windows a plan's recovery phase has, where the flow
/// engine's constant rates do not).
fn disagreements(c: &Crosscheck) -> Vec<String> {
    c.directions
        .iter()
        .filter(|d| !d.agree && d.metric != Metric::CascadeCount)
        .filter(|d| {
            let tol = crosscheck::tolerance(d.metric, d.flow.mean_diff, d.requests.mean_diff);
            d.metric != Metric::StormPeakRatio
                || (d.flow.mean_diff - d.requests.mean_diff).abs() > tol
        })
        .map(|d| {
            format!(
                "{} {}: flow {:?} requests {:?}",
                d.plan, d.metric, d.flow, d.requests
            )
        })
        .collect()
}

fn cache_text(keys: &str, window: &str, dur: &str, plans: &str) -> String {
    CACHE
        .replace("KEYS", keys)
        .replace("WINDOW", window)
        .replace("DUR", dur)
        .replace("PLANS", plans)
}

/// When the origin returns, extended entries that expire together send every read of one to
/// the origin (the stampede); an invalidation window lets them expire at an even rate, so the
/// origin's peak is far lower. Both engines agree on the peaks.
#[test]
fn entries_expiring_together_storm_the_origin_more_than_an_invalidation_window() {
    // 30000 keys, a 5-minute outage: every key is extended (TTL 5 minutes).
    let together = both(&cache_text("30000.0", "", "5m", ""), 4);
    let spread = both(
        &cache_text("30000.0", r#", invalidation_window: "20m""#, "5m", ""),
        4,
    );
    let (ft, rt) = level(&together, "all-at-once", Metric::StormPeakRatio);
    let (fs, rs) = level(&spread, "all-at-once", Metric::StormPeakRatio);
    // Together: every read (100/s) goes to the db (capacity 60), a peak of ~1.67; spread: the
    // misses (10/s) and 25 invalidated keys a second, ~0.6 at most. A factor 2 is far from
    // both noise and the model's steps.
    assert!(rt > 2.0 * rs, "requests: together {rt} spread {rs}");
    assert!(ft > 2.0 * fs, "flow: together {ft} spread {fs}");
    assert!(rt > 1.4, "requests: the stampede overloads the db: {rt}");
    // The two engines' peaks within 15% (the flow engine averages its first refresh step
    // over a storm window, as the request engine's window counts do).
    for (f, r) in [(ft, rt), (fs, rs)] {
        assert!((f - r).abs() <= 0.15 * f.max(r), "flow {f} requests {r}");
    }
}

/// A plan that holds the caches until its `InvalidateCaches` step (or paces them along its
/// traffic ramp) lowers the origin's peak after the outage, in both engines.
#[test]
fn a_plan_holding_the_caches_lowers_the_origin_peak() {
    let plans = r#",
        (name: "invalidate", strategy: Custom(steps: [RestoreAll, InvalidateCaches("20m")])),
        (name: "ramp", strategy: Custom(steps: [RestoreAll,
            RampTraffic((duration: "10m", shape: Linear))]))"#;
    let c = both(&cache_text("30000.0", "", "5m", plans), 6);
    let (fb, rb) = level(&c, "all-at-once", Metric::StormPeakRatio);
    for plan in ["invalidate", "ramp"] {
        let (f, r) = level(&c, plan, Metric::StormPeakRatio);
        // The baseline's stampede at ~1.67; spread over 10 to 20 minutes, under 1.
        assert!(r < 0.7 * rb, "{plan}: requests {r} vs baseline {rb}");
        assert!(f < 0.7 * fb, "{plan}: flow {f} vs baseline {fb}");
    }
    let bad = disagreements(&c);
    assert!(bad.is_empty(), "{}\n{}", bad.join("\n"), c.table());
}

/// api -> auth -> idp, the auth service's key provider. The idp crashes at 5 minutes for 5
/// minutes; validation degrades if `DEGRADE`; restored keys mismatch the outage tokens with
/// probability `P`; clients refresh 1% of their tokens a second.
const AUTH: &str = r#"Scenario(
    name: "auth-roles",
    horizon: "30m",
    storm_window: "10s",
    seed: 13,
    trials: 6,
    slo: (success_rate: 0.99, stability_window: "2m"),
    services: [(name: "api", capacity: 1000.0, instances: 4),
               (name: "auth", capacity: 1000.0, instances: 4,
                roles: [Auth(key_provider: "idp", degraded_validation: DEGRADE,
                             key_mismatch_probability: P, client_refresh_rate: 0.01)]),
               (name: "idp", capacity: 1000.0, instances: 4)],
    dependencies: [(from: "api", to: "auth", timeout: "3s"),
                   (from: "auth", to: "idp", timeout: "3s")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [FAILURES],
    plans: [(name: "all-at-once", baseline: true, strategy: AllAtOnce)PLANS],
)"#;

const IDP_DOWN: &str = r#"(name: "idp-down", kind: Crash(target: "idp"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("5m")))"#;

fn auth_text(degrade: bool, p: &str, failures: &str, plans: &str) -> String {
    AUTH.replace("DEGRADE", if degrade { "true" } else { "false" })
        .replace("FAILURES", failures)
        .replace("PLANS", plans)
        .replacen("P,", &format!("{p},"), 1)
}

/// Trial `t` of plan `p` in the request engine, with its trace.
fn traced(s: &Scenario, p: usize, t: u64) -> (TrialRow, Vec<TraceRecord>) {
    crate::support::requests_traced(s, p, t)
}

/// Per measuring window of the trace: (start s, users, users ok).
fn windows_of(trace: &[TraceRecord]) -> Vec<(f64, u64, u64)> {
    trace
        .iter()
        .filter_map(|r| match r.event {
            TraceEvent::Requests {
                users, users_ok, ..
            } => Some((r.t_s, users, users_ok)),
            _ => None,
        })
        .collect()
}

/// Users' failed share over `[from, to)` seconds.
fn failed_share(w: &[(f64, u64, u64)], from: f64, to: f64) -> f64 {
    let (u, ok) = w
        .iter()
        .filter(|x| x.0 >= from && x.0 < to)
        .fold((0, 0), |a, x| (a.0 + x.1, a.1 + x.2));
    1.0 - ok as f64 / u.max(1) as f64
}

/// With degraded validation, users keep succeeding while the key provider is down (the call
/// to it is skipped); without it, every request needing the provider fails.
#[test]
fn degraded_validation_keeps_users_served_during_a_provider_outage() {
    let on = load(&auth_text(true, "0.0", IDP_DOWN, ""), Engine::Requests);
    let off = load(&auth_text(false, "0.0", IDP_DOWN, ""), Engine::Requests);
    for t in 0..2 {
        let (row_on, tr_on) = traced(&on, 0, t);
        let (row_off, tr_off) = traced(&off, 0, t);
        let (w_on, w_off) = (windows_of(&tr_on), windows_of(&tr_off));
        // During the outage (minutes 5 to 10): none fail with it, all without.
        assert!(failed_share(&w_on, 300.0, 600.0) < 0.001, "trial {t}");
        assert!(failed_share(&w_off, 300.0, 600.0) > 0.999, "trial {t}");
        assert!(
            row_on.get(Metric::DegradedAuthAccepts) > 25_000.0,
            "trial {t}"
        );
        assert_eq!(row_off.get(Metric::DegradedAuthAccepts), 0.0);
        // Without a mismatch, nothing is rejected after the provider's return.
        assert_eq!(row_on.get(Metric::AuthRejectsPostRecovery), 0.0);
        assert!(failed_share(&w_on, 600.0, 1800.0) < 0.001, "trial {t}");
    }
}

/// With `key_mismatch_probability` 1, the tokens issued during the outage (a share
/// `1 - e^(-0.01 x 300)` = 0.95 of clients) are rejected after the provider returns, and the
/// rejected share decays at the clients' refresh rate; with 0, none is rejected. The decay fits
/// `0.95 e^(-0.01 t)`. Both engines count the same rejections.
#[test]
fn mismatched_keys_reject_outage_tokens_until_clients_refresh() {
    let s = load(&auth_text(true, "1.0", IDP_DOWN, ""), Engine::Requests);
    for t in 0..2 {
        let (row, tr) = traced(&s, 0, t);
        let w = windows_of(&tr);
        // Failed shares per minute after the return at 600 s, fitted by least squares on
        // their logarithms over the first 5 minutes (shares 0.95 down to 0.05; each minute
        // holds ~6000 users, so a share's noise is under 1% of it).
        let pts: Vec<(f64, f64)> = (0..5)
            .map(|k| {
                let from = 600.0 + 60.0 * k as f64;
                (from + 30.0, failed_share(&w, from, from + 60.0).ln())
            })
            .collect();
        let n = pts.len() as f64;
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / n,
            pts.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let slope = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
            / pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
        let at_return = (my - slope * (mx - 600.0)).exp();
        // The rate within 5%, the share at the return within 0.05 (a minute's mean of an
        // exponential is fitted at its middle: e^(-0.3) (1 - e^(-0.6)) / 0.6 differs from
        // e^(-0.3) by 0.5%).
        assert!(
            (slope + 0.01).abs() < 0.0005,
            "trial {t}: decay rate {}",
            -slope
        );
        assert!(
            (at_return - 0.95).abs() < 0.05,
            "trial {t}: share {at_return}"
        );
        // Rejections counted: 100/s x 0.95 / 0.01 = 9500 (less the end of the decay).
        let rejects = row.get(Metric::AuthRejectsPostRecovery);
        assert!((rejects - 9500.0).abs() < 500.0, "trial {t}: {rejects}");
    }
    let none = load(&auth_text(true, "0.0", IDP_DOWN, ""), Engine::Requests);
    let (row, _) = traced(&none, 0, 0);
    assert_eq!(row.get(Metric::AuthRejectsPostRecovery), 0.0);
    // The flow engine counts the same rejections (its stepwise mean of the same decay).
    let c = both(&auth_text(true, "1.0", IDP_DOWN, ""), 4);
    let (f, r) = level(&c, "all-at-once", Metric::AuthRejectsPostRecovery);
    assert!((f - r).abs() < 0.05 * f, "flow {f} requests {r}");
}

/// Identity pre-warming before traffic returns makes the restored keys match: no rejection,
/// where the plan without it has thousands.
#[test]
fn identity_prewarm_removes_the_rejections() {
    let plans = r#",
        (name: "prewarm", strategy: Staged(stages: [
            (stage: IdentityPrewarm, duration: Fixed("1m"), verify_probability: 1.0,
             max_repeats: 0, escalation_delay: Fixed("1m"))])),
        (name: "prewarm-step", strategy: Custom(steps: [PrewarmIdentity, RestoreAll]))"#;
    let c = both(&auth_text(true, "1.0", IDP_DOWN, plans), 4);
    let (fb, rb) = level(&c, "all-at-once", Metric::AuthRejectsPostRecovery);
    assert!(rb > 5000.0 && fb > 5000.0, "flow {fb} requests {rb}");
    for plan in ["prewarm", "prewarm-step"] {
        let (f, r) = level(&c, plan, Metric::AuthRejectsPostRecovery);
        assert_eq!((f, r), (0.0, 0.0), "{plan}");
    }
    let bad = disagreements(&c);
    assert!(bad.is_empty(), "{}\n{}", bad.join("\n"), c.table());
}

/// A key rotation retires the old keys at its end: tokens not refreshed during it
/// (`e^(-0.01 x 120)` = 0.30 of clients after a 2-minute rotation) are rejected until clients
/// refresh them. It is routine, not a failure: no incident. Both engines agree.
#[test]
fn a_key_rotation_rejects_unrefreshed_tokens_as_in_the_flow_engine() {
    let rotation = r#"(name: "rotate", kind: KeyRotation(target: "auth"),
                schedule: Once(at: Fixed("10m"), duration: Fixed("2m")))"#;
    let text = auth_text(true, "0.0", rotation, "");
    let s = load(&text, Engine::Requests);
    let (row, tr) = traced(&s, 0, 0);
    let w = windows_of(&tr);
    assert!(failed_share(&w, 0.0, 720.0) < 0.001);
    let first = failed_share(&w, 720.0, 780.0);
    // The first minute's mean of 0.30 e^(-0.01 t): 0.30 (1 - e^(-0.6)) / 0.6 = 0.226.
    assert!((first - 0.226).abs() < 0.02, "{first}");
    // 100/s x 0.30 / 0.01 = 3000 rejections (less the end of the decay, 1/300 of it).
    let rejects = row.get(Metric::AuthRejectsPostRecovery);
    assert!((rejects - 3000.0).abs() < 200.0, "{rejects}");
    let c = both(&text, 4);
    let (f, r) = level(&c, "all-at-once", Metric::AuthRejectsPostRecovery);
    assert!((f - r).abs() < 0.05 * f, "flow {f} requests {r}");
}

/// An auth service whose key provider must re-register with discovery after it is repaired
/// validates degraded until the registration completes, then validates against the provider
/// again, in both engines: restoration follows the registration, never the horizon. (The
/// request engine once left such a role degraded for ever: it re-read its provider's state at
/// faults and plan events, not when a registration completed.)
#[test]
fn an_auth_role_stops_degrading_once_its_provider_has_re_registered() {
    let text = auth_text(true, "0.0", IDP_DOWN, "").replace(
        r#"(name: "idp", capacity: 1000.0, instances: 4)"#,
        r#"(name: "idp", capacity: 1000.0, instances: 4,
                roles: [Discovery(register_time: Fixed("1m"))])"#,
    );
    assert!(text.contains("Discovery"));
    let c = both(&text, 4);
    for metric in [Metric::OperationalMttr, Metric::DegradedAuthAccepts] {
        let (flow, req) = level(&c, "all-at-once", metric);
        assert!(
            (flow - req).abs() <= 0.05 * flow,
            "{metric:?}: flow {flow}, requests {req}\n{}",
            c.table()
        );
    }
    // The provider is down from 5 to 10 minutes, then unroutable for its registration's minute:
    // degraded validation lasts about six minutes (100 requests/s), and restoration comes
    // after the registration, not at the horizon (30 minutes).
    let (_, mttr) = level(&c, "all-at-once", Metric::OperationalMttr);
    assert!((360.0..600.0).contains(&mttr), "{mttr}\n{}", c.table());
    let (_, accepts) = level(&c, "all-at-once", Metric::DegradedAuthAccepts);
    assert!(
        (34_000.0..38_000.0).contains(&accepts),
        "{accepts}\n{}",
        c.table()
    );
}
