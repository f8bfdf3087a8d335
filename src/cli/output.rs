//! What the commands print on stdout, and the error report on stderr.
//!
//! Output goes through [`say!`](crate::say), not `println!`: `println!` panics (exit 101) when the
//! reader has gone, as in `mcp-oauth config check | head -1`. A closed stdout ends the command quietly
//! with [`BROKEN_PIPE_EXIT`], the status a process killed by SIGPIPE reports in a shell.
//!
//! [`error_report`] prints an error with its causes, each said once.

use std::io::Write;

/// Exit status when stdout was closed by its reader (128 + SIGPIPE, as shells report it).
pub const BROKEN_PIPE_EXIT: i32 = 141;

/// Writes one line to stdout. A reader that has gone ends the process with [`BROKEN_PIPE_EXIT`]
/// (there is nobody left to tell); any other write error is reported on stderr, once.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(err) = written {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        eprintln!("error: writing to stdout: {err}");
        std::process::exit(1);
    }
}

/// `println!` for command output; see the module documentation.
#[macro_export]
macro_rules! say {
    () => {
        $crate::cli::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}

/// An error and its causes, joined by ": ", each said once: a cause whose text the message above it
/// already holds is left out (database drivers repeat their cause in their own message), and the
/// Postgres server's " at line N" (a line of its C source) is dropped.
pub fn error_report(err: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = strip_source_line(text.trim()).to_string();
        if text.is_empty() || said.iter().any(|s| s.contains(&text)) {
            continue;
        }
        said.push(text);
    }
    said.join(": ")
}

/// `"… at line 948"` → `"…"`.
fn strip_source_line(text: &str) -> &str {
    if let Some(at) = text.rfind(" at line ") {
        let digits = &text[at + " at line ".len()..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return &text[..at];
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("database \"x\" does not exist at line 948")
        }
    }
    impl std::error::Error for Inner {}

    /// Like sqlx's error: its message repeats its source.
    #[derive(Debug)]
    struct Repeats(Inner);
    impl std::fmt::Display for Repeats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error returned from database: {}", self.0)
        }
    }
    impl std::error::Error for Repeats {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let err = anyhow::Error::new(Repeats(Inner))
            .context("connect")
            .context("reading the schema of the postgres database x on 127.0.0.1:5432");
        assert_eq!(
            error_report(&err),
            "reading the schema of the postgres database x on 127.0.0.1:5432: connect: error \
             returned from database: database \"x\" does not exist"
        );
        let plain = anyhow::anyhow!("a").context("b");
        assert_eq!(error_report(&plain), "b: a");
        assert_eq!(strip_source_line("at line 12x"), "at line 12x");
    }
}
