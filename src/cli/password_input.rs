//! How `users add` and `users passwd` read a new password: a hidden prompt (asked twice) when stdin
//! is a terminal, or stdin itself with `--password-stdin`. Never from the command line, where other
//! users of the machine and the shell history would see it.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};

use crate::cli::admin::read_stdin_secret;
use crate::users::rules::check_password;

/// Reads a new password for `name` and checks its length against `min` characters.
pub fn read_new_password(name: &str, password_stdin: bool, min: usize) -> anyhow::Result<String> {
    let password = if password_stdin {
        read_stdin_secret("password")?
    } else if std::io::stdin().is_terminal() {
        let first = prompt_hidden(&format!("New password for {name}: "))?;
        // Checked before the second prompt, so a short one is not typed twice.
        check_password(&first, min)?;
        let again = prompt_hidden("Repeat it: ")?;
        if first != again {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        bail!(
            "stdin is not a terminal, so there is no prompt: give the password on stdin with \
             --password-stdin (e.g. printf '%s' 'the password' | mcp-oauth users … --password-stdin)"
        );
    };
    check_password(&password, min)?;
    Ok(password)
}

/// Prints `label` on stderr and reads one line from the terminal with echo off.
#[cfg(unix)]
fn prompt_hidden(label: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};

    /// Puts the terminal back as it was, however the read ends.
    struct Restore(nix::sys::termios::Termios);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.0);
        }
    }

    let mut stderr = std::io::stderr();
    write!(stderr, "{label}").and_then(|()| stderr.flush())?;
    let original = tcgetattr(std::io::stdin()).context("reading the terminal settings")?;
    let mut hidden = original.clone();
    hidden.local_flags.remove(LocalFlags::ECHO);
    // The Enter key still ends the line on screen.
    hidden.local_flags.insert(LocalFlags::ECHONL);
    let restore = Restore(original);
    tcsetattr(std::io::stdin(), SetArg::TCSANOW, &hidden).context("turning the echo off")?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    drop(restore);
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password given");
    }
    Ok(password.to_string())
}

#[cfg(not(unix))]
fn prompt_hidden(_label: &str) -> anyhow::Result<String> {
    bail!("no hidden prompt on this platform: give the password with --password-stdin")
}
