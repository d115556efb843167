//! Writing one output file so that it is all old or all new, never half written, and never
//! anything but the file asked for.
//!
//! A regular file (or a path that does not exist yet) is written to a temporary file beside it,
//! created with an unpredictable name and `O_EXCL` (so it never follows a symlink planted under
//! that name, and two writers, even two processes with the same PID in two containers, never
//! share one), flushed to disk, then renamed over the target; the temporary file is removed on
//! every error. A special file (a device such as `/dev/null`, a FIFO, a socket) is written to
//! directly: replacing `/dev/null` with a regular file would break every later reader of it. A
//! symlink is written through: the file it points to is replaced (or, when special, written
//! to), and the link stays.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Links followed before giving up (as the kernel's `ELOOP` limit does).
const MAX_LINKS: usize = 40;

/// Temporary names tried before giving up when every one is taken.
pub(super) const MAX_ATTEMPTS: usize = 64;

/// Writes `path` atomically (see the module documentation).
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let target = resolve(path)?;
    match std::fs::metadata(&target) {
        Ok(m) if !m.is_file() && !m.is_dir() => {
            // A device, FIFO or socket: written as it is, never replaced.
            let file = OpenOptions::new().write(true).open(&target)?;
            let mut w = std::io::BufWriter::new(file);
            write(&mut w)?;
            w.flush()
        }
        Ok(m) if m.is_dir() => Err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "a directory is in the way of the file",
        )),
        _ => replace(&target, write),
    }
}

/// `path` with every symlink it ends in followed (relative targets are read from the link's
/// directory), so that a link is written through rather than replaced.
pub(super) fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(std::io::Error::other(
        "too many levels of symbolic links in the output path",
    ))
}

/// Writes a temporary file beside `path` and renames it over `path`.
fn replace(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let (tmp, file) = create_temporary(dir, &name)?;
    super::outset::register(&tmp);
    let result = (|| {
        let mut w = std::io::BufWriter::new(file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    super::outset::unregister(&tmp);
    result
}

/// Creates a new temporary file in `dir` for `name`, with an unpredictable suffix and
/// `O_EXCL` (an existing file or symlink of that name is never opened).
fn create_temporary(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut last = None;
    for attempt in 0..MAX_ATTEMPTS {
        let tmp = dir.join(format!(".{name}.tmp-{:016x}", unpredictable(attempt)));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary name left")))
}

/// 64 bits no other writer can predict or share: the standard library's random hash keys
/// (drawn from the operating system once per thread, then stepped for each use), mixed with
/// the process id, a per-process count and `attempt`.
pub(super) fn unpredictable(attempt: usize) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    h.write_usize(attempt);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_is_left() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("report.json");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        // A failing writer leaves the old file and no temporary.
        let err = write_atomic(&path, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_written_to_never_replaced() {
        use std::os::unix::fs::FileTypeExt;
        write_atomic(Path::new("/dev/null"), |w| w.write_all(b"thrown away")).unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(
            m.file_type().is_char_device(),
            "/dev/null is no longer a device"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let real = dir.join("real.xml");
        std::fs::write(&real, "old").unwrap();
        let link = dir.join("junit.xml");
        std::os::unix::fs::symlink("real.xml", &link).unwrap();
        write_atomic(&link, |w| w.write_all(b"new")).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A link to a device writes to the device.
        let dev = dir.join("null.json");
        std::os::unix::fs::symlink("/dev/null", &dev).unwrap();
        write_atomic(&dev, |w| w.write_all(b"x")).unwrap();
        assert!(
            std::fs::symlink_metadata(&dev)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_temporary_name_is_never_followed() {
        // Whatever an attacker plants beside the target, the temporary file is a new one.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        for k in 0..8 {
            let _ = std::os::unix::fs::symlink(&victim, dir.join(format!(".out.tmp-{k}")));
        }
        write_atomic(&dir.join("out"), |w| w.write_all(b"data")).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(dir.join("out")).unwrap(), "data");
    }

    #[test]
    fn a_directory_in_the_way_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert!(write_atomic(dir, |w| w.write_all(b"x")).is_err());
    }
}
