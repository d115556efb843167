//! Criterion benches: the event queue, one trial of the default scenario, and a full run.
//!
//! Run with `cargo bench --bench engine`; figures go to BENCHMARKS.md with the command and
//! machine. Timings are never asserted in tests.

use std::hint::black_box;

use aftershock::engine::{EventQueue, SimTime};
use aftershock::fault;
use aftershock::runner::{self, RunConfig};
use aftershock::sim;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The classic "hold" model: a queue holding `pending` events; each step pops the earliest
/// and pushes one a pseudo-random delay later. One element = one pop + one push.
fn event_queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("event_queue");
    for pending in [64usize, 1024] {
        const STEPS: u64 = 1_000_000;
        g.throughput(Throughput::Elements(STEPS));
        g.bench_function(format!("hold_{pending}"), |b| {
            let mut q: EventQueue<u32> = EventQueue::with_capacity(pending + 1);
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for i in 0..pending {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                q.push(SimTime(x % 1_000_000), i as u32);
            }
            b.iter(|| {
                for _ in 0..STEPS {
                    let (t, e) = q.pop().unwrap_or((SimTime(0), 0));
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    q.push(SimTime(t.0 + x % 1_000_000), black_box(e));
                }
            });
        });
    }
    g.finish();
}

fn one_trial(c: &mut Criterion) {
    let s = aftershock::scenario::default_scenario();
    let mut windows = Vec::new();
    let mut trial = 0u64;
    c.bench_function("default_scenario_one_trial_all_plans", |b| {
        b.iter(|| {
            trial += 1;
            fault::draw(&s, s.seed, trial, &mut windows);
            for plan in &s.plans {
                black_box(sim::run_trial(&s, plan, &windows, s.seed, trial, None));
            }
        });
    });
}

/// The request engine on the classic single-server outage model (`scenarios/
/// single-server-outage.ron`): one trial, its events as throughput.
fn request_trial(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/single-server-outage.ron"
    );
    let s = aftershock::scenario::load_file(std::path::Path::new(path), None).expect("valid");
    let mut windows = Vec::new();
    fault::draw(&s, s.seed, 0, &mut windows);
    let events = aftershock::requests::count_events(&s, &s.plans[0], &windows, s.seed, 0);
    let mut g = c.benchmark_group("single_server_outage");
    g.throughput(Throughput::Elements(events));
    let mut trial = 0u64;
    g.bench_function("request_engine_one_trial", |b| {
        b.iter(|| {
            trial += 1;
            fault::draw(&s, s.seed, trial, &mut windows);
            black_box(sim::run_trial(
                &s,
                &s.plans[0],
                &windows,
                s.seed,
                trial,
                None,
            ));
        });
    });
    g.finish();
}

fn full_run(c: &mut Criterion) {
    let s = aftershock::scenario::default_scenario();
    let mut g = c.benchmark_group("default_scenario_run");
    g.sample_size(10);
    for threads in [1usize, 2] {
        g.throughput(Throughput::Elements(2000));
        g.bench_function(format!("2000_trials_{threads}_threads"), |b| {
            b.iter(|| {
                let cfg = RunConfig {
                    seed: s.seed,
                    trials: 2000,
                    threads: Some(threads),
                };
                black_box(runner::run(&s, &cfg, 0, &|_| {}))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, event_queue, one_trial, request_trial, full_run);
criterion_main!(benches);
