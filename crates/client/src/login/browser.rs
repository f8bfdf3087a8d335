//! Browser login: the authorization URL is opened with the platform's opener started directly
//! (`xdg-open`, `open`, `explorer.exe`; never through `sh -c` or `cmd /c`: MCP security best
//! practices, *OAuth Authorization URL Validation*), and always printed so a user without a
//! browser here can open it elsewhere. A spinner shows on a terminal while the callback is awaited.

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use url::Url;

/// Prints the URL to stderr and, when `open`, starts the system browser on it. Returns whether a
/// browser was started.
pub fn show(url: &Url, open: bool) -> bool {
    eprintln!("To log in, open this URL in a browser:\n\n  {url}\n");
    if !open || !has_display() {
        return false;
    }
    let opener: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else if cfg!(windows) {
        &["explorer.exe"]
    } else {
        &["xdg-open"]
    };
    let started = Command::new(opener[0])
        .arg(url.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok();
    if started {
        eprintln!("(A browser window was opened.)");
    }
    started
}

fn has_display() -> bool {
    if cfg!(target_os = "linux") {
        ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()))
    } else {
        true
    }
}

/// A spinner on stderr until `stop` is cancelled (nothing when stderr is not a terminal).
pub fn spinner(stop: CancellationToken) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    tokio::spawn(async move {
        let frames = ['|', '/', '-', '\\'];
        let mut i = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(120)) => {}
            }
            let mut err = std::io::stderr();
            let _ = write!(
                err,
                "\r{} waiting for the login to finish in the browser…",
                frames[i % 4]
            );
            let _ = err.flush();
            i += 1;
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    });
}
