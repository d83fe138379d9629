//! The `warden` command.

mod cli;

fn main() -> std::process::ExitCode {
    reset_sigpipe();
    cli::main()
}

/// Rust ignores SIGPIPE, so `warden plugin inspect NAME | head` would panic on the
/// closed pipe; a command-line tool should end quietly instead, as `cat` does.
#[expect(unsafe_code, reason = "one libc call, before any thread exists")]
fn reset_sigpipe() {
    // SAFETY: setting a signal's disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
