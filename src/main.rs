//! The `packgate` binary: serve with built-in defaults, or with `--config FILE`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use packgate::config::Config;
use packgate::server::Server;
use tracing_subscriber::EnvFilter;

/// RTMP in, CMAF HLS out: a live packager gateway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; keys not given keep their defaults.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// RTMP listen address (overrides rtmp.listen).
    #[arg(long)]
    rtmp_listen: Option<SocketAddr>,
    /// HTTP listen address (overrides http.listen).
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Print the default configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> ExitCode {
    // Before any thread starts (see packgate::malloc for why and what it saves).
    let tuned = packgate::malloc::tune();
    let cli = Cli::parse();
    if cli.print_config {
        print!("{}", Config::defaults_toml());
        return ExitCode::SUCCESS;
    }
    // Logs are for the service manager's journal: stderr, and colour only on a terminal.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if !tuned {
        tracing::debug!("allocator not tuned (not glibc, or mallopt refused)");
    }
    match packgate::fdlimit::raise() {
        Ok(r) => tracing::info!(before = r.before, now = r.after, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let mut config = match cli.config.as_deref().map(Config::from_file).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("packgate: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(a) = cli.rtmp_listen {
        config.rtmp.listen = a;
    }
    if let Some(a) = cli.http_listen {
        config.http.listen = a;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("packgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let mut signals = StopSignals::new();
        // Installed before binding too: SIGHUP's default action would end the process.
        #[cfg(unix)]
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let server = match Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("packgate: {e}");
                return ExitCode::FAILURE;
            }
        };
        #[cfg(unix)]
        if let Some(hangups) = hangups {
            tokio::spawn(reload_on_hangup(hangups, server.tls().cloned()));
        }
        signals.next().await;
        tracing::info!("shutting down");
        // The drain is bounded by http.drain_timeout; a second signal cuts it short.
        tokio::select! {
            _ = server.shutdown() => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            _ = signals.next() => {
                tracing::warn!("second stop signal: exiting without finishing the drain");
                ExitCode::FAILURE
            }
        }
    });
    // Tasks still running (a connection past the drain deadline) are dropped, not awaited.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

/// SIGHUP re-reads the TLS certificate and key; a file that does not load keeps the old
/// certificate (the reload logs the error either way).
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    tls: Option<std::sync::Arc<packgate::tls::Tls>>,
) {
    while hangups.recv().await.is_some() {
        match &tls {
            Some(tls) => {
                let _ = tls.reload();
            }
            None => tracing::info!("SIGHUP: no TLS listener configured, nothing to reload"),
        }
    }
}

/// Ctrl-C and SIGTERM (what service managers send). Listened to from before the ports
/// are bound, so a signal during start-up drains instead of killing the process.
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Installs the handlers (inside the runtime).
    fn new() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            StopSignals {
                term: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// The next signal.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            if self.term.is_some() || self.interrupt.is_some() {
                tokio::select! {
                    _ = recv(&mut self.term) => {}
                    _ = recv(&mut self.interrupt) => {}
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
