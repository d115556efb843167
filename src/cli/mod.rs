//! The command line: clap types, command dispatch, and the mapping of failures to exit codes
//! (0 = ok, 1 = an expectation failed, 2 = bad input or usage, with the reason on stderr).

/// `print!` to standard output, where a closed pipe (the reader went away, as in
/// `aftershock generate | head -1`) ends the program quietly and any other failure exits 2 with
/// the reason ([`write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` to standard output, as [`out!`].
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod check;
mod crosscheck;
mod graph;
mod interrupt;
mod sweep;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::charts;
use crate::report::table::terminal_safe as safe;

/// The most worker threads a command starts (each has its own stack).
const MAX_THREADS: usize = 1024;

/// `--threads N`: 0 (one per core) up to [`MAX_THREADS`].
fn parse_threads(text: &str) -> Result<usize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number"))?;
    if n > MAX_THREADS {
        return Err(format!(
            "{n} threads are more than {MAX_THREADS}; results are the same for any number, so use at most one per core"
        ));
    }
    Ok(n)
}

/// The largest stack `generate` writes (about 20 MB of scenario text).
const MAX_GENERATED_SERVICES: u64 = 100_000;

/// Writes `args` to standard output and flushes it. A closed pipe ends the program with 0 and
/// no message (the reader has what it wanted); any other failure ends it with 2 and the reason.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = args.to_string();
    let text = crate::report::table::terminal_safe(&text);
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!(
            "error: cannot write to standard output: {e}\n  help: check the file, pipe or terminal standard output goes to"
        );
        std::process::exit(2);
    }
}
use crate::model::{Engine, Scenario};
use crate::report::{self, Report};
use crate::runner::{self, RunConfig};
use crate::scenario::{self, LoadError};

/// Deterministic chaos and recovery simulator: in which order do we bring things back?
#[derive(Debug, Parser)]
#[command(name = "aftershock", version, about, long_about = None)]
pub struct Cli {
    /// What to do (default: `run` on the built-in default scenario).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario's trials for every plan and write the report.
    Run(RunArgs),
    /// Check scenario files and list every problem as FILE:LINE:COL.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Validate for this engine (overrides each file's `engine`): what it does not model is
        /// refused, as `run --engine` would.
        #[arg(long, value_enum)]
        engine: Option<EngineArg>,
    },
    /// Re-run one trial with its full event trace (JSON lines).
    Replay(ReplayArgs),
    /// Combine the outputs of `run --shard K/N` into the output of the unsharded run.
    Merge(MergeArgs),
    /// Print a synthetic layered scenario of any size (for benchmarks and scaling studies).
    Generate {
        /// Number of services (12 to 100000: a larger stack is more text than a run can hold).
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(12..=MAX_GENERATED_SERVICES))]
        services: u64,
        /// Number of plans (1 to 100: all-at-once, staged, both topological orders, then
        /// runbooks).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=100))]
        plans: u64,
        /// Seed of the generator (the topology), also the scenario's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run scenarios with their expectations as CI tests (exit 0 pass, 1 fail, 2 error).
    Check(CheckArgs),
    /// Print the dependency graph as Graphviz DOT.
    Graph {
        /// Scenario file (default: the built-in default scenario).
        scenario: Option<PathBuf>,
    },
    /// Run a scenario over a grid of parameter values; write sweep.csv and charts.
    Sweep(SweepArgs),
    /// Run a scenario with both engines on the same trials and compare them metric by metric
    /// (exit 0: every plan difference has the same direction in both, 1: one does not, 2: bad
    /// input).
    #[command(
        long_about = "Run a scenario with both engines (flow and requests) on the same trials and compare them metric by metric.\n\nPrints, per plan and metric both engines report, both means, the paired difference (requests - flow) with its 95% interval, the tolerance and the verdict, then whether the engines agree on the direction of every plan's difference against the baseline.\n\nExit codes: 0 when every plan difference against the baseline has the same direction in both engines (or neither finds it significant), 1 when one does not, 2 for bad input (a scenario either engine refuses, a run budget exceeded)."
    )]
    Crosscheck(CrosscheckArgs),
}

/// The `--engine` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineArg {
    /// Traffic as rates on the dependency edges (fast).
    Flow,
    /// Every request simulated.
    Requests,
}

impl From<EngineArg> for Engine {
    fn from(e: EngineArg) -> Engine {
        match e {
            EngineArg::Flow => Engine::Flow,
            EngineArg::Requests => Engine::Requests,
        }
    }
}

/// Arguments of `run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Scenario file (default: the built-in default scenario).
    pub scenario: Option<PathBuf>,
    /// Trials per plan (default: the scenario's `trials`).
    #[arg(long)]
    pub trials: Option<u64>,
    /// Master seed (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: one per core). Results are identical for any value.
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Output directory (default: output/<scenario name>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar and no summary table.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run only shard K of N (0-based; trials floor(K*T/N)..floor((K+1)*T/N)) and write a
    /// partial output for `merge`. `k8s/N` takes K from JOB_COMPLETION_INDEX (Kubernetes
    /// Indexed Job); `slurm` takes K and N from the SLURM_ARRAY_TASK_* variables.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Simulation engine: `flow` or `requests` (default: the scenario's `engine`, else flow).
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
}

/// Arguments of `merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard output directories (every shard of one run, in any order).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged output (the same files as an unsharded `run`).
    #[arg(long)]
    pub out: PathBuf,
    /// No summary table.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Scenario file (default: the built-in default scenario).
    pub scenario: Option<PathBuf>,
    /// Trial index (0-based, as in trials.csv).
    #[arg(long)]
    pub trial: u64,
    /// Plan name (default: the baseline plan).
    #[arg(long)]
    pub plan: Option<String>,
    /// Master seed (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the trace here instead of standard output.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Also draw the trial's timeline (each service's state over time, the plan's steps
    /// marked) to FILE.svg and FILE.png (an extension given is replaced).
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    /// Simulation engine: `flow` or `requests` (default: the scenario's `engine`, else flow).
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scenario files or directories (every `*.ron` in a directory).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Trials per plan for every scenario (default: each scenario's `trials`).
    #[arg(long)]
    pub trials: Option<u64>,
    /// Master seed for every scenario (default: each scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads. Results are identical for any value.
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Write a JUnit XML file (one test case per expectation).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON journal of every expectation and baseline comparison.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Compare every metric with this stored baseline and fail on regressions.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the results of this run into the baseline file instead of comparing.
    #[arg(long, requires = "baseline")]
    pub update_baseline: bool,
    /// Allowed regression: `5%` or `0.02` for every metric, or `METRIC=5%`, `METRIC=2m` for
    /// one (repeatable; default: none, runs are deterministic).
    #[arg(long, value_name = "[METRIC=]TOL")]
    pub tolerance: Vec<String>,
    /// Print only failures and the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Simulation engine: `flow` or `requests` (default: the scenario's `engine`, else flow).
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
}

/// Arguments of `crosscheck`.
#[derive(Debug, Args)]
pub struct CrosscheckArgs {
    /// Scenario file; both engines must model it (its `engine` field is ignored).
    #[arg(value_name = "FILE")]
    pub scenario: PathBuf,
    /// Trials per engine (default: the scenario's `trials`, at most 200).
    #[arg(long)]
    pub trials: Option<u64>,
    /// Multiply every rate and capacity by F (> 0) before running, to check a large
    /// scenario at a size the request engine handles.
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = crosscheck::parse_scale)]
    pub scale: f64,
    /// Master seed (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: one per core). Results are identical for any value.
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
}

/// Arguments of `sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Scenario file (default: the built-in default scenario).
    pub scenario: Option<PathBuf>,
    /// A value of the scenario file and the values to try: `PATH=V1,V2,...`, e.g.
    /// `'failures[db-cluster-down].schedule.duration=10m,30m,1h'` (repeatable: a grid).
    #[arg(long = "set", value_name = "PATH=V1,V2,...", required = true)]
    pub sets: Vec<String>,
    /// A metric to report and chart (repeatable; default: operational_mttr_s,
    /// restoration_gap_s, availability, storm_peak_ratio, cascade_count).
    #[arg(long = "metric", value_name = "KEY")]
    pub metrics: Vec<String>,
    /// Trials per plan at every point (default: the scenario's `trials`).
    #[arg(long)]
    pub trials: Option<u64>,
    /// Master seed of every point (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: one per core). Results are identical for any value.
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Output directory (default: output/<scenario name>-sweep/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar and no table.
    #[arg(long, short)]
    pub quiet: bool,
    /// Simulation engine: `flow` or `requests` (default: the scenario's `engine`, else flow).
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
}

/// A failed command: its exit code and what to print on stderr.
#[derive(Debug)]
pub struct Failure {
    /// Exit code (1 or 2).
    pub code: i32,
    /// Message for stderr.
    pub message: String,
}

impl Failure {
    pub(crate) fn bad_input(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Failure {
        Failure::bad_input(e.to_string())
    }
}

/// `--trials 0`, refused by every command that runs trials.
pub(super) const NO_TRIALS: &str = "--trials must be at least 1\n  help: give --trials 1 or more (or leave it out for the scenario's `trials`)";

/// A usage error as clap words it, with a `help:` line like every other error: clap's
/// "For more information, try '--help'." becomes the help line, naming the subcommand.
fn usage_error(clap_text: &str) -> String {
    let commands = <Cli as clap::CommandFactory>::command();
    let sub = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .filter(|a| commands.find_subcommand(a).is_some());
    let command = sub.map_or_else(|| "aftershock".to_string(), |s| format!("aftershock {s}"));
    let body: Vec<&str> = clap_text
        .trim_end()
        .lines()
        .filter(|l| !l.starts_with("For more information"))
        .collect();
    format!(
        "{}\n  help: `{command} --help` lists the options and the values they take",
        body.join("\n").trim_end()
    )
}

/// Parses the command line and runs it; returns the process exit code.
pub fn main_exit() -> i32 {
    interrupt::install();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                // `--help`, `--version`.
                let _ = e.print();
                return 0;
            }
            eprintln!("{}", safe(&usage_error(&e.render().to_string())));
            return 2;
        }
    };
    match dispatch(cli) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("{}", safe(&f.message));
            f.code
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run(args),
        Command::Validate { files, engine } => validate(&files, engine.map(Engine::from)),
        Command::Replay(args) => replay(args),
        Command::Merge(args) => merge(args),
        Command::Generate {
            services,
            plans,
            seed,
        } => {
            out!(
                "{}",
                crate::generate::scenario(services as usize, plans as usize, seed)
            );
            Ok(())
        }
        Command::Check(args) => check::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Crosscheck(args) => crosscheck::run(args),
        Command::Graph { scenario } => {
            let s = load(scenario.as_deref(), None)?;
            out!("{}", graph::dot(&s));
            Ok(())
        }
    }
}

/// Loads a scenario file, or the built-in default; `engine` overrides the file's.
fn load(path: Option<&Path>, engine: Option<Engine>) -> Result<Scenario, Failure> {
    load_with_source(path, engine).map(|(s, _)| s)
}

/// Loads a scenario file, or the built-in default, with its text (read once); `engine` (the
/// command line's `--engine`) overrides the file's `engine`.
pub(super) fn load_with_source(
    path: Option<&Path>,
    engine: Option<Engine>,
) -> Result<(Scenario, String), Failure> {
    let (text, label) = match path {
        Some(p) => (scenario::read_file(p)?, p.display().to_string()),
        None => (
            scenario::DEFAULT_SCENARIO.to_string(),
            scenario::DEFAULT_SCENARIO_PATH.to_string(),
        ),
    };
    let s = scenario::load_str(&text, &label, engine).map_err(LoadError::Invalid)?;
    Ok((s, text))
}

fn file_label(path: Option<&Path>) -> String {
    path.map_or_else(
        || scenario::DEFAULT_SCENARIO_PATH.to_string(),
        |p| p.display().to_string(),
    )
}

fn run(args: RunArgs) -> Result<(), Failure> {
    // The text that runs is the text the report embeds (and a shard carries for merge).
    let (s, source) = load_with_source(args.scenario.as_deref(), args.engine.map(Engine::from))?;
    let label = file_label(args.scenario.as_deref());
    let seed = args.seed.unwrap_or(s.seed);
    let trials = args.trials.unwrap_or(s.trials);
    if trials == 0 {
        return Err(Failure::bad_input(NO_TRIALS));
    }
    let shard = match &args.shard {
        Some(text) => Some(
            crate::shard::Shard::parse(text, &|v| std::env::var(v).ok())
                .map_err(Failure::bad_input)?,
        ),
        None => None,
    };
    let (first, count) = shard.map_or((0, trials), |sh| sh.range(trials));
    let budget = runner::with_threads(args.threads, || {
        runner::check_run_budget(&s, seed, trials, first, count)
    });
    if let Err(refusal) = budget {
        return Err(Failure::bad_input(format!(
            "{label}: {refusal}\n  help: {}",
            refusal.hint()
        )));
    }
    let out = args.out.clone().unwrap_or_else(|| match shard {
        Some(sh) => PathBuf::from("output").join(format!("{}-shard-{}-of-{}", s.name, sh.k, sh.n)),
        None => PathBuf::from("output").join(&s.name),
    });
    let cfg = RunConfig {
        seed,
        trials: count,
        threads: args.threads,
    };
    // Refused (or prepared) before any trial runs.
    let set = begin_set(&out)?;

    let show_bar = !args.quiet && std::io::stderr().is_terminal();
    let bar = if show_bar {
        let b = indicatif::ProgressBar::new(count);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} trials ({eta})",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b.set_message(s.name.clone());
        Some(b)
    } else {
        None
    };
    let started = Instant::now();
    // The chart layout depends on the whole run (never on the shard), so shards merge exactly.
    let layout = runner::with_threads(args.threads, || runner::series_layout(&s, seed, trials));
    let (rows, series) = runner::run_with_series(&s, &cfg, first, &layout, &|done| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let elapsed = started.elapsed();
    if let Some((trial, plan)) = rows.first_aborted() {
        return Err(Failure::bad_input(runner::aborted_message(
            &s, &label, seed, trial, plan,
        )));
    }
    let plan_trials = count * s.plans.len() as u64;
    let timing = || {
        let line = format!(
            "{} plan-trials in {:.2}s ({:.0} plan-trials/s, seed {seed}); replay one with: aftershock replay {}--trial I --plan NAME --seed {seed}",
            plan_trials,
            elapsed.as_secs_f64(),
            plan_trials as f64 / elapsed.as_secs_f64().max(1e-9),
            args.scenario
                .as_ref()
                .map_or_else(String::new, |p| format!("{} ", p.display())),
        );
        eprintln!("{}", safe(&line));
    };
    if let Some(sh) = shard {
        let manifest = crate::shard::Manifest {
            format: "aftershock-shard".into(),
            format_version: crate::shard::FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            scenario: s.name.clone(),
            content_hash: s.content_hash.clone(),
            engine: s.engine.name().into(),
            file: label.clone(),
            seed,
            trials,
            shard: sh.k,
            shards: sh.n,
            first_trial: first,
            count,
            plans: s.plans.iter().map(|p| p.name.clone()).collect(),
            files: Vec::new(),
            checksum: String::new(),
        };
        crate::shard::write_partial(set, &manifest, &source, &rows, &series)
            .map_err(Failure::bad_input)?;
        if !args.quiet {
            outln!(
                "shard {} of {}: trials {}..{} of {trials} written to {} (combine with `aftershock merge DIR... --out DIR`)",
                sh.k,
                sh.n,
                first,
                first + count,
                out.display()
            );
        }
        timing();
        return Ok(());
    }
    let result = runner::with_threads(args.threads, || {
        write_outputs(&s, &label, &source, seed, &rows, &series, set, args.quiet)
    });
    timing();
    result
}

/// Prepares the output set that replaces `out` as a whole ([`report::OutputSet`]).
pub(super) fn begin_set(out: &Path) -> Result<report::OutputSet, Failure> {
    report::OutputSet::begin(out).map_err(|e| {
        let text = e.to_string();
        if text.contains("help:") {
            Failure::bad_input(text)
        } else {
            Failure::bad_input(format!(
                "{}: cannot prepare the output directory: {e}\n  help: choose a writable directory with --out",
                out.display()
            ))
        }
    })
}

/// Writes a finished run's outputs as one set replacing `set`'s target: report.json,
/// trials.csv, the charts, report.html and report.md; prints the summary unless `quiet`; maps
/// expectations to the exit code. Shared by `run` and `merge`, so a merged run writes the same
/// bytes.
#[allow(clippy::too_many_arguments)]
fn write_outputs(
    s: &Scenario,
    label: &str,
    source: &str,
    seed: u64,
    rows: &runner::RunRows,
    series: &crate::report::series::SeriesAcc,
    set: report::OutputSet,
    quiet: bool,
) -> Result<(), Failure> {
    let out = set.shown().to_path_buf();
    let dir = set.dir().to_path_buf();
    let mut report = Report::build(s, seed, rows);
    report.attach_series(s, series);
    let json = report::json::render(&report);
    let io = |what: &str, e: std::io::Error| {
        Failure::bad_input(format!(
            "{}: cannot write {what}: {e}\n  help: choose a writable directory with --out",
            out.display()
        ))
    };
    report::write_atomic(&dir.join("report.json"), |w| w.write_all(json.as_bytes()))
        .map_err(|e| io("report.json", e))?;
    report::write_atomic(&dir.join("trials.csv"), |w| report::csv::write(w, s, rows))
        .map_err(|e| io("trials.csv", e))?;
    let figures = write_charts(&report, s, &dir).map_err(|e| io("the charts", e))?;
    let html = report::html::render_html(&report, s, source, &figures);
    report::write_atomic(&dir.join("report.html"), |w| w.write_all(html.as_bytes()))
        .map_err(|e| io("report.html", e))?;
    let md = report::html::render_md(&report, s, &figures);
    report::write_atomic(&dir.join("report.md"), |w| w.write_all(md.as_bytes()))
        .map_err(|e| io("report.md", e))?;
    set.commit().map_err(|e| io("the output set", e))?;
    if !quiet {
        out!("{}", report::table::render(&report));
        outln!(
            "\nwrote {}, trials.csv, report.html, report.md and {} charts (PNG and SVG) in {}",
            out.join("report.json").display(),
            figures.len(),
            out.display()
        );
    }
    let errors: Vec<String> = report
        .expectations
        .iter()
        .filter_map(|e| {
            e.error.as_ref().map(|why| {
                format!(
                    "{label}: expectation `{}` cannot be evaluated: {why}",
                    e.expr
                )
            })
        })
        .collect();
    let failed = report.expectations.iter().filter(|e| !e.passed).count();
    if !errors.is_empty() {
        return Err(Failure::bad_input(format!(
            "{}\n  help: remove the expectation or use a metric the {} engine reports: {}",
            errors.join("\n"),
            s.engine,
            s.engine
                .reported()
                .iter()
                .map(|m| m.key())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if failed > 0 {
        return Err(Failure {
            code: 1,
            message: format!(
                "{failed} of {} expectation(s) failed\n  help: the summary above (and report.md) shows each expectation with the value it was checked against",
                report.expectations.len()
            ),
        });
    }
    Ok(())
}

fn merge(args: MergeArgs) -> Result<(), Failure> {
    let set = begin_set(&args.out)?;
    let m = crate::shard::merge(&args.dirs).map_err(Failure::bad_input)?;
    if let Some((trial, plan)) = m.rows.first_aborted() {
        return Err(Failure::bad_input(runner::aborted_message(
            &m.scenario,
            &m.file,
            m.seed,
            trial,
            plan,
        )));
    }
    write_outputs(
        &m.scenario,
        &m.file,
        &m.source,
        m.seed,
        &m.rows,
        &m.series,
        set,
        args.quiet,
    )
}

/// Draws the run's charts into `out` (PNG and SVG each) and returns them for the HTML report.
fn write_charts(
    report: &Report,
    s: &Scenario,
    out: &Path,
) -> std::io::Result<Vec<report::html::Figure>> {
    let meta = charts::Meta {
        scenario: s.name.clone(),
        seed: report.seed,
        trials: report.trials,
    };
    let mut specs = vec![
        (
            "availability",
            charts::Chart::Line(charts::availability_spec(&meta, &report.series)),
        ),
        (
            "load",
            charts::Chart::Line(charts::load_spec(&meta, &report.series)),
        ),
        (
            "mttr",
            charts::Chart::Line(charts::mttr_spec(&meta, &report.distributions)),
        ),
    ];
    if report.plans.len() > 1 {
        specs.push((
            "comparison",
            charts::Chart::Forest(charts::comparison_spec(&meta, report)),
        ));
    }
    let mut figures = Vec::new();
    for r in charts::render_all(&specs).map_err(std::io::Error::other)? {
        charts::write(out, &r)?;
        figures.push(report::html::Figure {
            name: r.name,
            title: r.title,
            svg: r.svg,
        });
    }
    Ok(figures)
}

fn validate(files: &[PathBuf], engine: Option<Engine>) -> Result<(), Failure> {
    let mut failed = 0;
    for f in files {
        match scenario::load_file(f, engine) {
            Ok(s) => {
                outln!(
                    "{}: ok ({} engine, {} services, {} dependencies, {} failures, {} plans)",
                    f.display(),
                    s.engine,
                    s.topology.services.len(),
                    s.topology.deps.len(),
                    s.failures.len(),
                    s.plans.len()
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("{}", safe(&e.to_string()));
            }
        }
    }
    if failed > 0 {
        return Err(Failure::bad_input(format!(
            "{failed} of {} scenario file(s) have problems",
            files.len()
        )));
    }
    Ok(())
}

fn replay(args: ReplayArgs) -> Result<(), Failure> {
    let s = load(args.scenario.as_deref(), args.engine.map(Engine::from))?;
    let plan = match &args.plan {
        None => s.baseline,
        Some(name) => s
            .plans
            .iter()
            .position(|p| &p.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = s.plans.iter().map(|p| p.name.as_str()).collect();
                Failure::bad_input(format!(
                    "unknown plan `{name}`\n  help: {}",
                    scenario::suggest::hint(name, names.iter().copied(), "plan")
                ))
            })?,
    };
    let seed = args.seed.unwrap_or(s.seed);
    let (row, trace) = runner::replay(&s, seed, args.trial, plan);
    if row.aborted {
        eprintln!(
            "warning: the trial exceeded {} events and was stopped: its metrics are not valid (a model bug worth reporting)",
            crate::flow::MAX_EVENTS_PER_TRIAL
        );
    }
    let mut lines = String::new();
    for r in &trace {
        lines.push_str(&serde_json::to_string(r).unwrap_or_default());
        lines.push('\n');
    }
    let csv = format!(
        "{}\n{}\n",
        report::csv::header(),
        report::csv::row(args.trial, &s.plans[plan].name, &row, s.engine)
    );
    if let Some(path) = &args.chart {
        let meta = charts::Meta {
            scenario: s.name.clone(),
            seed,
            trials: 1,
        };
        let services: Vec<String> = s.topology.services.iter().map(|x| x.name.clone()).collect();
        let spec = charts::timeline_spec(
            &meta,
            &s.plans[plan].name,
            args.trial,
            s.horizon.as_secs_f64(),
            &services,
            &trace,
        );
        let stem = path.with_extension("");
        let name = stem.file_name().map_or_else(
            || "timeline".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let dir = stem
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let rendered = charts::render(&name, &charts::Chart::Timeline(spec))
            .map_err(|e| {
                Failure::bad_input(format!(
                    "cannot draw the timeline: {e}\n  help: replay without --chart for the trace alone, and report this"
                ))
            })?;
        charts::write(&dir, &rendered).map_err(|e| {
            Failure::bad_input(format!(
                "{}: cannot write the chart: {e}\n  help: choose a writable path with --chart",
                stem.display()
            ))
        })?;
        eprintln!(
            "{}",
            safe(&format!(
                "wrote {}.svg and {}.png",
                stem.display(),
                stem.display()
            ))
        );
    }
    match &args.trace {
        Some(path) => {
            report::write_atomic(path, |w| w.write_all(lines.as_bytes())).map_err(|e| {
                Failure::bad_input(format!(
                    "{}: cannot write the trace: {e}\n  help: choose a writable path with --trace",
                    path.display()
                ))
            })?;
            out!("{csv}");
        }
        None => {
            out!("{lines}");
            eprint!("{csv}");
        }
    }
    Ok(())
}
