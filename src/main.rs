//! The `aftershock` binary: a thin wrapper around [`aftershock::cli`].

fn main() {
    std::process::exit(aftershock::cli::main_exit());
}
