//! Ctrl-C, `SIGTERM` and `SIGHUP`: the process removes its temporary files and directories
//! ([`crate::report::remove_temporaries`]) and exits with 128 + the signal number, so an
//! interrupted run leaves the previous output set as it was and nothing beside it.
//!
//! The signals are blocked in every thread (worker threads inherit the mask, so this is done
//! first, before any thread starts) and one thread waits for them with `sigwait`: the
//! clean-up then runs as ordinary code, not in a signal handler.

/// Blocks the signals and starts the thread that waits for them.
#[cfg(unix)]
#[allow(unsafe_code)]
pub fn install() {
    // SAFETY: `sigset_t` is plain data that `sigemptyset` initialises; the calls only read
    // and write the set and the calling thread's mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is initialised and `sig` is a valid place for the result.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                crate::report::remove_temporaries();
                std::process::exit(128 + sig);
            }
        });
    if spawned.is_err() {
        // Without the waiting thread, let the signals act as they would have.
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// Elsewhere the default action of the signals stays (temporaries are removed on every error
/// path, but not on Ctrl-C).
#[cfg(not(unix))]
pub fn install() {}
