//! Sharded runs: `run --shard K/N` runs a fixed block of the trials and writes a partial
//! output; `merge` combines partial outputs into exactly the output of the unsharded run.
//!
//! The split is fixed and documented: of `T` trials, shard `K` of `N` (0-based) runs trials
//! `floor(K*T/N) .. floor((K+1)*T/N)`. A trial's rows depend only on (scenario, seed, trial),
//! the chart layout only on (scenario, seed, T), and the chart accumulators merge exactly
//! (integer sums), so merged shards reproduce the unsharded report, CSV and charts byte for
//! byte.
//!
//! A partial output directory holds `shard.json` (what was run), `rows.bin` (the rows, exact
//! f64 bits), `series.json` (the chart accumulators) and `scenario.ron` (the scenario text,
//! so that `merge` needs nothing else).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::{Metric, TrialRow};
use crate::model::{Engine, Scenario};
use crate::report::series::SeriesAcc;
use crate::runner::RunRows;

/// Layout version of partial outputs. Version 3: the manifest carries the size and checksum
/// of every file and a checksum of itself. Version 4: the manifest names the engine, and a row
/// holds the three latency metrics (NaN where the engine does not model them).
pub const FORMAT_VERSION: u32 = 4;

/// Which shard of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index.
    pub k: u64,
    /// Number of shards.
    pub n: u64,
}

impl Shard {
    /// Parses `K/N` (0-based K), `k8s/N` (K from the Indexed Job's `JOB_COMPLETION_INDEX`) or
    /// `slurm` (K = `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN`, N = `SLURM_ARRAY_TASK_COUNT`),
    /// reading variables through `env`.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let usage = "write K/N with 0 <= K < N (e.g. 0/8), k8s/N in a Kubernetes Indexed Job, or slurm in a Slurm job array";
        let var = |name: &str| -> Result<u64, String> {
            let v = env(name).ok_or_else(|| {
                format!(
                    "--shard {text}: the environment variable {name} is not set\n  help: {usage}"
                )
            })?;
            v.trim().parse().map_err(|_| {
                format!("--shard {text}: {name}={v} is not a whole number\n  help: {usage}")
            })
        };
        let t = text.trim();
        let shard = if t.eq_ignore_ascii_case("slurm") {
            let id = var("SLURM_ARRAY_TASK_ID")?;
            let min = match env("SLURM_ARRAY_TASK_MIN") {
                Some(_) => var("SLURM_ARRAY_TASK_MIN")?,
                None => 0,
            };
            let n = var("SLURM_ARRAY_TASK_COUNT")?;
            Shard {
                k: id.checked_sub(min).ok_or_else(|| {
                    format!("--shard slurm: SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")
                })?,
                n,
            }
        } else {
            let (k, n) = t
                .split_once('/')
                .ok_or_else(|| format!("--shard {text}: expected K/N\n  help: {usage}"))?;
            let n: u64 = n.trim().parse().map_err(|_| {
                format!("--shard {text}: `{n}` is not a whole number\n  help: {usage}")
            })?;
            let k = if k.trim().eq_ignore_ascii_case("k8s") {
                var("JOB_COMPLETION_INDEX")?
            } else {
                k.trim().parse().map_err(|_| {
                    format!("--shard {text}: `{k}` is not a whole number\n  help: {usage}")
                })?
            };
            Shard { k, n }
        };
        if shard.n == 0 || shard.k >= shard.n {
            return Err(format!(
                "--shard {text}: shard {} of {} does not exist\n  help: {usage}",
                shard.k, shard.n
            ));
        }
        if shard.n > MAX_SHARDS {
            return Err(format!(
                "--shard {text}: {} shards are more than {MAX_SHARDS}\n  help: split the run into fewer shards (each may hold millions of trials)",
                shard.n
            ));
        }
        Ok(shard)
    }

    /// The trials of this shard out of `total`: `(first, count)`.
    pub fn range(&self, total: u64) -> (u64, u64) {
        let at = |k: u64| (u128::from(k) * u128::from(total) / u128::from(self.n)) as u64;
        let (a, b) = (at(self.k), at(self.k + 1));
        (a, b - a)
    }
}

/// The most shards a run may be split into (each shard is a directory to merge).
pub const MAX_SHARDS: u64 = 1_000_000;

/// `shard.json`: what a partial output holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `aftershock-shard`.
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The aftershock version that wrote it.
    pub tool_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Hash of the scenario text.
    pub content_hash: String,
    /// The engine that ran the trials (`flow` or `requests`): the command line's `--engine`
    /// may differ from the scenario text's, so the merge runs nothing without it.
    pub engine: String,
    /// The scenario file as given to `run` (for messages and replay commands).
    pub file: String,
    /// Master seed.
    pub seed: u64,
    /// Trials of the whole run.
    pub trials: u64,
    /// This shard.
    pub shard: u64,
    /// Number of shards.
    pub shards: u64,
    /// First trial of this shard.
    pub first_trial: u64,
    /// Trials in this shard.
    pub count: u64,
    /// Plans, in order.
    pub plans: Vec<String>,
    /// Every other file of the partial output, with its size and checksum.
    pub files: Vec<FileSum>,
    /// `fnv1a64:HEX` of this manifest's JSON with this field empty: any changed byte of the
    /// scenario name, seed, range or version is detected.
    pub checksum: String,
}

/// A file of a partial output: name, size and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// File name inside the shard directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// `fnv1a64:HEX` of the contents.
    pub fnv1a64: String,
}

/// The files of a partial output besides `shard.json`, in the order they are written.
const FILES: [&str; 3] = ["rows.bin", "series.json", "scenario.ron"];

fn hex(h: u64) -> String {
    format!("fnv1a64:{h:016x}")
}

impl Manifest {
    /// The checksum the manifest should carry ([`Manifest::checksum`]).
    pub fn expected_checksum(&self) -> String {
        let mut m = self.clone();
        m.checksum = String::new();
        hex(crate::rng::fnv1a(
            serde_json::to_string(&m).unwrap_or_default().as_bytes(),
        ))
    }
}

/// A writer that sums what passes through it (FNV-1a, as [`crate::rng::fnv1a`]).
struct Summing<W> {
    inner: W,
    h: u64,
    bytes: u64,
}

impl<W: std::io::Write> std::io::Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.h = crate::rng::fnv1a_update(self.h, &buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("{}: cannot {what}: {e}", path.display())
}

/// Writes a partial output as one set replacing `set`'s target (all old or all new, see
/// [`crate::report::OutputSet`]), with `manifest`'s file list and checksum filled in.
pub fn write_partial(
    set: crate::report::OutputSet,
    manifest: &Manifest,
    source: &str,
    rows: &RunRows,
    series: &SeriesAcc,
) -> Result<(), String> {
    let dir = set.dir().to_path_buf();
    let series_json = serde_json::to_string(series).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        let mut sum = (0, 0);
        crate::report::write_atomic(&path, |w| {
            let mut w = Summing {
                inner: w,
                h: crate::rng::FNV1A_START,
                bytes: 0,
            };
            match name {
                "rows.bin" => {
                    for r in &rows.rows {
                        for v in r.stored() {
                            w.write_all(&v.to_bits().to_le_bytes())?;
                        }
                        w.write_all(&[u8::from(r.tech_censored)
                            | (u8::from(r.aborted) << 1)
                            | (u8::from(r.op_censored) << 2)])?;
                    }
                }
                "series.json" => w.write_all(series_json.as_bytes())?,
                _ => w.write_all(source.as_bytes())?,
            }
            sum = (w.h, w.bytes);
            Ok(())
        })
        .map_err(|e| io_err(&path, "write", e))?;
        files.push(FileSum {
            name: name.into(),
            bytes: sum.1,
            fnv1a64: hex(sum.0),
        });
    }
    let mut manifest = manifest.clone();
    manifest.files = files;
    manifest.checksum = manifest.expected_checksum();
    let manifest_json = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    let path = dir.join("shard.json");
    crate::report::write_atomic(&path, |w| w.write_all(manifest_json.as_bytes()))
        .map_err(|e| io_err(&path, "write", e))?;
    let target = set.shown().to_path_buf();
    set.commit()
        .map_err(|e| io_err(&target, "replace the shard output", e))
}

/// Whether a stored row value is one a run of `engine` writes in stored column `k`: a finite
/// number for a metric the engine reports, NaN for one it does not model.
fn valid_value(engine: Engine, k: usize, v: f64) -> bool {
    let reported = Metric::ALL
        .into_iter()
        .find(|&m| TrialRow::slot(m) == Some(k))
        .is_none_or(|m| engine.reports(m));
    if reported { v.is_finite() } else { v.is_nan() }
}

/// Everything `merge` needs to write the unsharded output.
pub struct Merged {
    /// The scenario.
    pub scenario: Scenario,
    /// Its text.
    pub source: String,
    /// The file name the shards were run with.
    pub file: String,
    /// Master seed.
    pub seed: u64,
    /// All rows, in trial order.
    pub rows: RunRows,
    /// All chart accumulators.
    pub series: SeriesAcc,
}

fn read_partial(dir: &Path) -> Result<(Manifest, PathBuf), String> {
    let path = dir.join("shard.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: not a shard output ({e})\n  help: pass directories written by `aftershock run --shard K/N --out DIR`",
            dir.display()
        )
    })?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a shard manifest: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    if m.format != "aftershock-shard" || m.format_version != FORMAT_VERSION {
        return Err(format!(
            "{}: shard format {} version {} is not supported (this version reads aftershock-shard version {FORMAT_VERSION})\n  help: run the shards and the merge with the same aftershock version",
            path.display(),
            m.format,
            m.format_version
        ));
    }
    if m.checksum != m.expected_checksum() {
        return Err(format!(
            "{}: the manifest does not match its checksum (it was edited or damaged)\n  help: run the shard again with the same --shard, --seed and --trials",
            path.display()
        ));
    }
    let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
    if names != FILES {
        return Err(format!(
            "{}: the manifest lists {names:?}, expected {FILES:?}\n  help: run the shard again with the same --shard, --seed and --trials",
            path.display()
        ));
    }
    Ok((m, dir.to_path_buf()))
}

const AGAIN: &str = "\n  help: the shard is damaged or was being rewritten while merge read it; run it again (or wait for it to finish) and merge again";

/// Opens file `name` of the shard in `dir`, checking its size against the manifest before
/// anything is read: the reader and the manifest's entry.
fn open_checked<'m>(
    dir: &Path,
    m: &'m Manifest,
    name: &str,
) -> Result<(std::io::BufReader<std::fs::File>, &'m FileSum), String> {
    let path = dir.join(name);
    let Some(sum) = m.files.iter().find(|f| f.name == name) else {
        return Err(format!("{}: not in the manifest{AGAIN}", path.display()));
    };
    let file = std::fs::File::open(&path).map_err(|e| io_err(&path, "read", e))?;
    let len = file.metadata().map_err(|e| io_err(&path, "read", e))?.len();
    if len != sum.bytes {
        return Err(format!(
            "{}: {len} bytes, the manifest says {}{AGAIN}",
            path.display(),
            sum.bytes
        ));
    }
    Ok((std::io::BufReader::new(file), sum))
}

/// The error for contents that do not match the manifest's checksum.
fn mismatch(path: &Path) -> String {
    format!(
        "{}: the contents do not match the manifest's checksum{AGAIN}",
        path.display()
    )
}

/// Reads file `name` of the shard in `dir` whole, checking its size (before reading) and
/// checksum against the manifest.
fn read_checked(dir: &Path, m: &Manifest, name: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let path = dir.join(name);
    let (mut r, sum) = open_checked(dir, m, name)?;
    let mut bytes = Vec::with_capacity(sum.bytes.min(1 << 30) as usize);
    r.read_to_end(&mut bytes)
        .map_err(|e| io_err(&path, "read", e))?;
    if bytes.len() as u64 != sum.bytes || hex(crate::rng::fnv1a(&bytes)) != sum.fnv1a64 {
        return Err(mismatch(&path));
    }
    Ok(bytes)
}

/// Reads and checks shard outputs: one run (same scenario, seed, trials, version), every shard
/// present exactly once.
pub fn merge(dirs: &[PathBuf]) -> Result<Merged, String> {
    let mut parts = Vec::new();
    for d in dirs {
        parts.push(read_partial(d)?);
    }
    let Some((first, _)) = parts.first().cloned() else {
        return Err("no shard directories given\n  help: aftershock merge DIR... --out DIR".into());
    };
    for (m, dir) in &parts {
        // (Checked before anything is sized from them.)
        if m.shards == 0 || m.shards > MAX_SHARDS || m.shard >= m.shards {
            return Err(format!(
                "{}: the manifest names shard {} of {}, which `run --shard` never writes\n  help: pass the directories `run --shard K/N` wrote, unchanged",
                dir.display(),
                m.shard,
                m.shards
            ));
        }
        if m.trials == 0 || m.trials > crate::scenario::validate::MAX_TRIALS {
            return Err(format!(
                "{}: the manifest's trial count {} is outside 1..={}\n  help: pass the directories `run --shard K/N` wrote, unchanged",
                dir.display(),
                m.trials,
                crate::scenario::validate::MAX_TRIALS
            ));
        }
        let differs = |what: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
            format!(
                "{}: {what} {a} differs from {} in {} ({b})\n  help: merge only the shards of one run",
                dir.display(),
                what,
                parts[0].1.display()
            )
        };
        if m.tool_version != first.tool_version {
            return Err(differs(
                "aftershock version",
                &m.tool_version,
                &first.tool_version,
            ));
        }
        if m.content_hash != first.content_hash || m.scenario != first.scenario {
            return Err(differs(
                "scenario",
                &format!("{} ({})", m.scenario, m.content_hash),
                &format!("{} ({})", first.scenario, first.content_hash),
            ));
        }
        if m.engine != first.engine {
            return Err(differs("engine", &m.engine, &first.engine));
        }
        if m.seed != first.seed {
            return Err(differs("seed", &m.seed, &first.seed));
        }
        if m.trials != first.trials {
            return Err(differs("trial count", &m.trials, &first.trials));
        }
        if m.shards != first.shards {
            return Err(differs("shard count", &m.shards, &first.shards));
        }
    }
    parts.sort_by_key(|(m, _)| m.shard);
    for w in parts.windows(2) {
        if w[0].0.shard == w[1].0.shard {
            return Err(format!(
                "{} and {} are both shard {} of {}\n  help: pass each shard once",
                w[0].1.display(),
                w[1].1.display(),
                w[0].0.shard,
                w[0].0.shards
            ));
        }
    }
    let missing: Vec<String> = (0..first.shards)
        .filter(|k| !parts.iter().any(|(m, _)| m.shard == *k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shard(s) {} of {} missing\n  help: run them with --shard K/{} and pass every shard directory",
            missing.join(", "),
            first.shards,
            first.shards
        ));
    }
    let source_path = parts[0].1.join("scenario.ron");
    let source = String::from_utf8(read_checked(&parts[0].1, &parts[0].0, "scenario.ron")?)
        .map_err(|e| io_err(&source_path, "read the scenario", e))?;
    let Some(engine) = Engine::from_name(&first.engine) else {
        return Err(format!(
            "{}: the engine `{}` is not one this version runs (flow, requests)\n  help: run the shards and the merge with the same aftershock version",
            parts[0].1.join("shard.json").display(),
            first.engine
        ));
    };
    // With the engine the shards ran, whatever the text says (`--engine` overrides it).
    let scenario =
        crate::scenario::load_str(&source, &first.file, Some(engine)).map_err(|e| e.to_string())?;
    if scenario.content_hash != first.content_hash {
        return Err(format!(
            "{}: the scenario text does not match its manifest's hash\n  help: pass the directories `run --shard K/N` wrote, unchanged",
            source_path.display()
        ));
    }
    if let Err(refusal) = crate::budget::check_budget(&scenario, first.trials) {
        return Err(format!(
            "{}: {refusal}\n  help: {}",
            source_path.display(),
            refusal.hint()
        ));
    }
    // The layout every shard must have: the unsharded run's (it depends on the scenario, seed
    // and trial count only).
    let layout = crate::runner::series_layout(&scenario, first.seed, first.trials);
    let plans = scenario.plans.len();
    if first.plans
        != scenario
            .plans
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    {
        return Err(format!(
            "{}: the manifest's plans {:?} are not the scenario's\n  help: pass the directories `run --shard K/N` wrote, unchanged",
            parts[0].1.display(),
            first.plans
        ));
    }
    let width = TrialRow::STORED * 8 + 1;
    let mut rows = Vec::with_capacity(first.trials as usize * plans);
    let mut series: Option<SeriesAcc> = None;
    for (m, dir) in &parts {
        let shard = Shard {
            k: m.shard,
            n: m.shards,
        };
        if shard.range(m.trials) != (m.first_trial, m.count) || m.plans.len() != plans {
            return Err(format!(
                "{}: shard {} of {} should hold trials {:?}",
                dir.display(),
                m.shard,
                m.shards,
                shard.range(m.trials)
            ));
        }
        // Streamed (the rows are the run's largest data), checked as they are read.
        let path = dir.join("rows.bin");
        let (mut bin, sum) = open_checked(dir, m, "rows.bin")?;
        let expected = m.count as u128 * plans as u128 * width as u128;
        if u128::from(sum.bytes) != expected {
            return Err(format!(
                "{}: {} bytes, expected {} rows of {width} bytes: the file is truncated or from another version{AGAIN}",
                path.display(),
                sum.bytes,
                m.count as u128 * plans as u128
            ));
        }
        let mut h = crate::rng::FNV1A_START;
        let mut bad = None;
        let mut chunk = vec![0u8; width];
        for _ in 0..m.count as usize * plans {
            use std::io::Read;
            bin.read_exact(&mut chunk)
                .map_err(|e| io_err(&path, "read", e))?;
            h = crate::rng::fnv1a_update(h, &chunk);
            let mut values = [0.0; TrialRow::STORED];
            for (i, v) in values.iter_mut().enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(&chunk[i * 8..i * 8 + 8]);
                *v = f64::from_bits(u64::from_le_bytes(b));
            }
            let flags = chunk[width - 1];
            // (Reported after the checksum: a damaged file is named as damaged first.)
            if let Some(k) = (0..values.len()).find(|&k| !valid_value(engine, k, values[k]))
                && bad.is_none()
            {
                bad = Some(format!(
                    "{}: row {} holds {} in column {k}, which no run writes\n  help: run the shard again; merge refuses damaged rows rather than report them",
                    path.display(),
                    rows.len(),
                    values[k]
                ));
            }
            if flags > 7 && bad.is_none() {
                bad = Some(format!(
                    "{}: row {} has flags {flags}, which no run writes\n  help: run the shard again",
                    path.display(),
                    rows.len()
                ));
            }
            rows.push(TrialRow::from_stored(
                values,
                flags & 1 != 0,
                flags & 4 != 0,
                flags & 2 != 0,
            ));
        }
        if hex(h) != sum.fnv1a64 {
            return Err(mismatch(&path));
        }
        if let Some(bad) = bad {
            return Err(bad);
        }
        let path = dir.join("series.json");
        let text = read_checked(dir, m, "series.json")?;
        let acc: SeriesAcc = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{}: not chart series: {e}\n  help: run the shard again",
                path.display()
            )
        })?;
        if !layout.same_shape(&acc) {
            return Err(format!(
                "{}: the chart layout is not this run's (scenario, seed and trial count fix it)\n  help: run the shard again with this aftershock version",
                path.display()
            ));
        }
        match &mut series {
            None => series = Some(acc),
            Some(s) => s.merge(&acc),
        }
    }
    let series = series.ok_or("no shards")?;
    Ok(Merged {
        scenario,
        source,
        file: first.file,
        seed: first.seed,
        rows: RunRows {
            first_trial: 0,
            plans,
            rows,
        },
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn shards_cover_every_trial_once() {
        for (t, n) in [(10u64, 3u64), (2000, 8), (5, 7), (1, 1)] {
            let mut next = 0;
            for k in 0..n {
                let (a, c) = Shard { k, n }.range(t);
                assert_eq!(a, next);
                next = a + c;
            }
            assert_eq!(next, t);
        }
    }

    #[test]
    fn shard_syntax_and_scheduler_variables() {
        assert_eq!(Shard::parse("2/8", &none), Ok(Shard { k: 2, n: 8 }));
        assert!(Shard::parse("8/8", &none).is_err());
        assert!(Shard::parse("x/8", &none).is_err());
        assert!(
            Shard::parse("k8s/8", &none)
                .unwrap_err()
                .contains("JOB_COMPLETION_INDEX")
        );
        let k8s = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "5".to_string());
        assert_eq!(Shard::parse("k8s/8", &k8s), Ok(Shard { k: 5, n: 8 }));
        let slurm = |v: &str| match v {
            "SLURM_ARRAY_TASK_ID" => Some("4".to_string()),
            "SLURM_ARRAY_TASK_MIN" => Some("1".to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some("4".to_string()),
            _ => None,
        };
        assert_eq!(Shard::parse("slurm", &slurm), Ok(Shard { k: 3, n: 4 }));
    }
}
