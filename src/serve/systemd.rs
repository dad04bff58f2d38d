//! systemd integration: readiness, status, watchdog, reload and stop notifications
//! (`sd_notify`), and listening sockets passed by socket activation (`LISTEN_FDS`). Every
//! function is a no-op when herald is not run by systemd (no `NOTIFY_SOCKET`/`LISTEN_FDS`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::debug;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "sd_notify failed");
    }
}

/// Set once `READY=1` has been sent: watchdog pings only make sense after it.
static READY_SENT: AtomicBool = AtomicBool::new(false);

/// `READY=1` with a status line: the first index is built and the listeners accept.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
    READY_SENT.store(true, Ordering::SeqCst);
}

/// `RELOADING=1` + `MONOTONIC_USEC=` (required by `Type=notify-reload`).
pub fn reloading() {
    send(&[
        NotifyState::Reloading,
        NotifyState::monotonic_usec_now().unwrap_or(NotifyState::MonotonicUsec(0)),
    ]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is set for us.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// `WATCHDOG=1`, at most once per interval. Called from the engine's loop, so a stuck engine
/// (not just a live accept loop) gets the daemon restarted.
pub fn watchdog() {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let Some(every) = watchdog_interval() else {
        return;
    };
    if !READY_SENT.load(Ordering::SeqCst) {
        return;
    }
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_none_or(|l| l.elapsed() >= every) {
        *last = Some(Instant::now());
        send(&[NotifyState::Watchdog]);
    }
}

/// Listening TCP sockets passed by systemd socket activation, in order, with their names
/// (`LISTEN_FDNAMES`). Empty when not socket-activated.
pub fn activated_listeners() -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut out = Vec::new();
    for i in 0..fds.len() {
        if let Some(l) = fds.take_tcp_listener(i)? {
            // tokio requires non-blocking sockets.
            l.set_nonblocking(true)?;
            out.push(l);
        }
    }
    Ok(out)
}
