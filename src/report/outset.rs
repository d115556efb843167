//! Writing a whole output set (a run's report.json, trials.csv, charts, report.html and
//! report.md; a shard's partial output) so that its directory is all old or all new.
//!
//! [`OutputSet::begin`] creates a fresh private directory beside the target
//! (`.NAME.tmp-XXXXXXXXXXXXXXXX`: an unpredictable name, `mkdir` with mode 0700, which fails
//! when the name exists and never follows a symlink planted there). Every file of the set is
//! written into it. [`OutputSet::commit`] flushes them to disk, lists them in `.aftershock-files`,
//! carries over the files of the target that aftershock did not write (a screenshot kept beside a
//! report: hard-linked, or copied), and then swaps the two directories in one step
//! (`renameat2(RENAME_EXCHANGE)` on Linux). Where the platform or file system cannot swap, the
//! old directory is renamed aside and the new one into place: for a moment the target is absent,
//! but it is never a mix. The old set, now under the temporary name, is then removed.
//!
//! A kill at any moment therefore leaves the complete old set or the complete new set at the
//! target (plus, after `kill -9`, a temporary directory beside it, which a later set of the same
//! target removes once it is a week old). Dropping an uncommitted set
//! (any error path) removes its directory, and the live temporaries are registered so that
//! Ctrl-C and `SIGTERM` remove them too ([`remove_temporaries`]).
//!
//! A target that is a symlink to a directory is written through (the directory it names is
//! swapped, the link stays). A target holding a directory or special file aftershock did not
//! write, a target that is a file, and a target containing the current directory are refused
//! before anything runs: swapping them would move or delete what is not ours.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Lists the files of a set, so that the next set knows which files were aftershock's.
pub const SET_LIST: &str = ".aftershock-files";

/// Temporary files and directories that exist right now (removed on Ctrl-C).
static TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers a temporary path for [`remove_temporaries`].
pub(crate) fn register(path: &Path) {
    if let Ok(mut t) = TEMPORARIES.lock() {
        t.push(path.to_path_buf());
    }
}

/// Forgets a temporary path (it was renamed into place or removed).
pub(crate) fn unregister(path: &Path) {
    if let Ok(mut t) = TEMPORARIES.lock() {
        if let Some(i) = t.iter().rposition(|p| p == path) {
            t.swap_remove(i);
        }
    }
}

/// Removes every live temporary file and directory (on Ctrl-C or `SIGTERM`, just before the
/// process exits). Holds the registry's lock to the end, so that a set being swapped into
/// place finishes its swap first and no later swap starts.
pub fn remove_temporaries() {
    let guard = TEMPORARIES.lock();
    let list: Vec<PathBuf> = match &guard {
        Ok(t) => t.to_vec(),
        Err(poisoned) => poisoned.get_ref().to_vec(),
    };
    for p in list {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir_all(&p);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&p);
            }
            Err(_) => {}
        }
    }
    // Keep the lock: the process is about to exit.
    std::mem::forget(guard);
}

/// Why an output directory cannot be used, with what to do instead.
fn refuse(target: &Path, why: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!(
        "{}: {why}\n  help: write the output set into a directory of its own (--out DIR); aftershock replaces that directory's files as a whole",
        target.display()
    ))
}

/// An output set being written (see the module documentation).
#[derive(Debug)]
pub struct OutputSet {
    /// The directory the set replaces (symlinks followed, absolute).
    target: PathBuf,
    /// The target as the caller named it (for messages).
    given: PathBuf,
    /// The private directory the set is written into.
    tmp: PathBuf,
    /// Whether the set was swapped into place.
    committed: bool,
}

impl OutputSet {
    /// Checks `target` and creates the private directory beside it.
    pub fn begin(given: &Path) -> std::io::Result<OutputSet> {
        let target = absolute(&super::atomic::resolve(given)?)?;
        if let Ok(cwd) = std::env::current_dir().and_then(|d| d.canonicalize()) {
            let t = target.canonicalize().unwrap_or_else(|_| target.clone());
            if cwd.starts_with(&t) {
                return Err(refuse(
                    &target,
                    "is (or contains) the current directory, which replacing it would delete",
                ));
            }
        }
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => check_contents(&target)?,
            Ok(_) => return Err(refuse(&target, "exists and is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(refuse(&target, "has no parent directory to write beside"));
        };
        let name = name.to_string_lossy().into_owned();
        let tmp = create_private_dir(parent, &name)?;
        remove_stale(parent, &name, &tmp);
        Ok(OutputSet {
            target,
            given: given.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    /// Where the set's files are written until [`OutputSet::commit`], each with
    /// [`super::write_atomic`] (which flushes it to disk).
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// The directory the set replaces, as the caller named it.
    pub fn shown(&self) -> &Path {
        &self.given
    }

    /// Flushes the set, carries over files aftershock did not write, and swaps the set into
    /// place (see the module documentation).
    pub fn commit(mut self) -> std::io::Result<()> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(&self.tmp)? {
            names.push(e?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        let list: String = names.iter().map(|n| format!("{n}\n")).collect();
        super::write_atomic(&self.tmp.join(SET_LIST), |w| w.write_all(list.as_bytes()))?;
        let mut exists = std::fs::symlink_metadata(&self.target).is_ok();
        set_mode(&self.target, &self.tmp)?;
        // (Twice at most: another writer may create the target between the look and the
        // rename, and then this set replaces that one as it would any other.)
        for _ in 0..2 {
            if exists {
                carry_over(&self.target, &self.tmp, &names)?;
            }
            std::fs::File::open(&self.tmp)?.sync_all()?;
            // Ctrl-C waits for the swap and then removes the old set under the temporary name.
            let _held = TEMPORARIES.lock();
            let done = if exists {
                swap(&self.target, &self.tmp)
            } else {
                std::fs::rename(&self.tmp, &self.target)
            };
            match done {
                Ok(()) => {
                    self.committed = true;
                    break;
                }
                Err(_) if !exists && std::fs::symlink_metadata(&self.target).is_ok() => {
                    exists = true;
                }
                Err(e) => return Err(e),
            }
        }
        if !self.committed {
            return Err(std::io::Error::other(
                "another writer kept replacing the output directory",
            ));
        }
        if exists {
            // The old set, now under the temporary name.
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
        unregister(&self.tmp);
        if let Some(parent) = self.target.parent()
            && let Ok(d) = std::fs::File::open(parent)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
            unregister(&self.tmp);
        }
    }
}

/// Gives the new directory the old one's permissions, or for a new target those `mkdir`
/// would give (0777 less the umask) rather than the private directory's 0700.
#[cfg(unix)]
#[allow(unsafe_code, clippy::useless_conversion)] // (`mode_t` is `u16` on some platforms)
fn set_mode(target: &Path, new: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(target) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(_) => {
            // SAFETY: `umask` only sets and returns the process's file mode mask; it is put
            // back at once (no other thread creates files while a set is committed).
            let mask = unsafe {
                let m = libc::umask(0o022);
                libc::umask(m);
                m
            };
            0o777 & !u32::from(mask)
        }
    };
    std::fs::set_permissions(new, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: &Path) -> std::io::Result<()> {
    Ok(())
}

/// `path` as an absolute path whose parent exists (created) and is canonical, and whose last
/// component is a plain name: `out/..`, `.` or `/` name the directory they resolve to, so the
/// set swaps exactly the directory named.
fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let p = std::path::absolute(path)?;
    let p = match p.components().next_back() {
        Some(std::path::Component::Normal(_)) => p,
        _ => p
            .canonicalize()
            .map_err(|_| refuse(path, "does not name a directory"))?,
    };
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        return Err(refuse(path, "has no parent directory to write beside"));
    };
    std::fs::create_dir_all(parent)?;
    Ok(parent.canonicalize()?.join(name))
}

/// Whether `name` is a file an earlier set wrote: listed in `.aftershock-files`, the list
/// itself, or a temporary of an interrupted write.
fn ours(name: &str, listed: &[String]) -> bool {
    name == SET_LIST
        || listed.iter().any(|l| l == name)
        || (name.starts_with('.') && name.contains(".tmp-"))
}

/// The names an earlier set listed in `dir`.
fn listed(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(SET_LIST))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Refuses a target holding anything a set cannot carry over: a directory or special file
/// aftershock did not write.
fn check_contents(target: &Path) -> std::io::Result<()> {
    let listed = listed(target);
    for e in std::fs::read_dir(target)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if ours(&name, &listed) {
            continue;
        }
        let t = e.file_type()?;
        if !(t.is_file() || t.is_symlink()) {
            return Err(refuse(
                target,
                format!(
                    "holds `{name}`, which aftershock did not write and cannot carry into a new output set"
                ),
            ));
        }
    }
    Ok(())
}

/// Links (or copies) into `new` the files of `old` that aftershock did not write and the new
/// set does not replace.
fn carry_over(old: &Path, new: &Path, names: &[String]) -> std::io::Result<()> {
    check_contents(old)?;
    let listed = listed(old);
    for e in std::fs::read_dir(old)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if ours(&name, &listed) || names.contains(&name) {
            continue;
        }
        let (from, to) = (e.path(), new.join(e.file_name()));
        if e.file_type()?.is_symlink() {
            copy_link(&from, &to)?;
        } else if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn copy_link(from: &Path, to: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
}

#[cfg(not(unix))]
fn copy_link(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::copy(from, to).map(|_| ())
}

/// Temporaries of `name` older than this are left over by a killed process (no run takes a
/// week: the budget refuses more than a day of CPU).
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Removes the temporary directories of `name` in `dir` that a process killed with `kill -9`
/// left behind, once they are [`STALE_AFTER`] older than `fresh` (this run's own, just
/// created: its time stands for now). Best effort: what cannot be read or removed stays.
fn remove_stale(dir: &Path, name: &str, fresh: &Path) {
    let Ok(now) = std::fs::metadata(fresh).and_then(|m| m.modified()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefixes = [format!(".{name}.tmp-"), format!(".{name}.old.tmp-")];
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !prefixes.iter().any(|p| n.starts_with(p.as_str())) || e.path() == fresh {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let old = m
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if m.is_dir() && old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Creates a new private directory in `dir` for `name`, with an unpredictable suffix (an
/// existing file, directory or symlink of that name is never used), and registers it.
fn create_private_dir(dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let mut last = None;
    for attempt in 0..super::atomic::MAX_ATTEMPTS {
        let tmp = dir.join(format!(
            ".{name}.tmp-{:016x}",
            super::atomic::unpredictable(attempt)
        ));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        match b.create(&tmp) {
            Ok(()) => {
                register(&tmp);
                return Ok(tmp);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary name left")))
}

/// Swaps the directories `a` and `b`: in one step where the platform can, else by renames.
fn swap(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        match exchange(a, b) {
            Ok(()) => return Ok(()),
            // Not supported by this kernel or file system: fall through.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    swap_by_renames(a, b)
}

/// Renames `a` aside and `b` into place, then the old `a` to `b`'s name (so that the caller
/// finds the old set where it expects it). Between the first two renames `a` is absent, never
/// a mix; the first is undone when the second fails. (Called with the temporaries' registry
/// locked, so it registers nothing: the name aside is unpredictable, and renaming a directory
/// onto a symlink fails rather than follows it.)
fn swap_by_renames(a: &Path, b: &Path) -> std::io::Result<()> {
    let parent = a.parent().unwrap_or(Path::new("."));
    let name = a
        .file_name()
        .map_or_else(|| "out".to_string(), |n| n.to_string_lossy().into_owned());
    let aside = parent.join(format!(
        ".{name}.old.tmp-{:016x}",
        super::atomic::unpredictable(0)
    ));
    std::fs::rename(a, &aside)?;
    if let Err(e) = std::fs::rename(b, a) {
        let _ = std::fs::rename(&aside, a);
        return Err(e);
    }
    std::fs::rename(&aside, b)
}

/// `renameat2(a, b, RENAME_EXCHANGE)`: both names stay, their directories trade places.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_set(target: &Path, content: &str, names: &[&str]) {
        let set = OutputSet::begin(target).unwrap();
        for n in names {
            super::super::write_atomic(&set.dir().join(n), |w| w.write_all(content.as_bytes()))
                .unwrap();
        }
        set.commit().unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_set_replaces_the_old_set_and_keeps_foreign_files() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write_set(&out, "old", &["a.json", "stale.svg"]);
        std::fs::write(out.join("screenshot.png"), "mine").unwrap();
        write_set(&out, "new", &["a.json", "b.csv"]);
        assert_eq!(
            names(&out),
            [SET_LIST, "a.json", "b.csv", "screenshot.png"],
            "the stale chart of the old set is gone, the user's file stays"
        );
        assert_eq!(std::fs::read_to_string(out.join("a.json")).unwrap(), "new");
        assert_eq!(
            std::fs::read_to_string(out.join("screenshot.png")).unwrap(),
            "mine"
        );
        // Nothing is left beside the target.
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn temporaries_a_killed_run_left_are_removed_once_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let (stale, recent, other) = (
            tmp.path().join(".out.tmp-0123456789abcdef"),
            tmp.path().join(".out.tmp-fedcba9876543210"),
            tmp.path().join(".other.tmp-0123456789abcdef"),
        );
        for d in [&stale, &recent, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("report.json"), "half").unwrap();
        }
        for d in [&stale, &other] {
            // Eight days before its own creation.
            let t = std::fs::metadata(d).unwrap().modified().unwrap();
            let eight_days = std::time::Duration::from_secs(8 * 86_400);
            std::fs::File::open(d)
                .unwrap()
                .set_modified(t - eight_days)
                .unwrap();
        }
        write_set(&out, "new", &["a.json"]);
        // The stale one of this target goes; a recent one (a run in progress) and another
        // target's stay.
        assert_eq!(
            names(tmp.path()),
            [
                ".other.tmp-0123456789abcdef",
                ".out.tmp-fedcba9876543210",
                "out"
            ]
        );
    }

    #[test]
    fn an_uncommitted_set_leaves_the_old_set_and_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write_set(&out, "old", &["a.json"]);
        {
            let set = OutputSet::begin(&out).unwrap();
            std::fs::write(set.dir().join("a.json"), "half").unwrap();
            // Dropped on an error path.
        }
        assert_eq!(std::fs::read_to_string(out.join("a.json")).unwrap(), "old");
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn a_directory_the_set_did_not_write_is_refused_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(out.join("other-scenario")).unwrap();
        let err = OutputSet::begin(&out).unwrap_err().to_string();
        assert!(
            err.contains("other-scenario") && err.contains("help:"),
            "{err}"
        );
        assert!(out.join("other-scenario").is_dir());
        // A file as the target is refused too.
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        assert!(OutputSet::begin(&tmp.path().join("file")).is_err());
        assert_eq!(names(tmp.path()), ["file", "out"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_target_is_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        write_set(&real, "old", &["a.json"]);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink("real", &link).unwrap();
        write_set(&link, "new", &["a.json"]);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(real.join("a.json")).unwrap(), "new");
        assert_eq!(names(tmp.path()), ["link", "real"]);
    }

    #[test]
    fn the_fallback_swap_leaves_the_old_set_under_the_temporary_name() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("x"), "old").unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("x"), "new").unwrap();
        swap_by_renames(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(a.join("x")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(b.join("x")).unwrap(), "old");
        assert_eq!(names(tmp.path()), ["a", "b"]);
        // And the one-step swap, where there is one, does the same.
        swap(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(a.join("x")).unwrap(), "old");
        assert_eq!(std::fs::read_to_string(b.join("x")).unwrap(), "new");
        assert_eq!(names(tmp.path()), ["a", "b"]);
    }
}
