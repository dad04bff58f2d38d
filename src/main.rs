//! The `herald` binary: parse the command line, set up logging, run the subcommand, and turn
//! errors into an exit code (2 for fatal errors; `check` returns 1 for unusable articles).
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use herald::cli::{Cli, Command};
use herald::config::{Config, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let overrides = cli.overrides();
    let cfg = Config::load(&overrides)?;
    init_logging(&cfg);
    match cli.command {
        Command::Build { out } => herald::cmd::build::run(&cfg, &out).map(|()| ExitCode::SUCCESS),
        Command::Check => herald::cmd::check::run(&cfg),
        Command::Serve { .. } => {
            herald::cmd::serve::run(cfg, overrides).map(|()| ExitCode::SUCCESS)
        }
    }
}

/// Logs go to stderr, one line per event; RUST_LOG overrides the configured level. No ANSI
/// colours unless stderr is a terminal (journald), and no timestamps under journald.
fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let ansi = std::io::stderr().is_terminal();
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    let _ = match (cfg.log.format, journald) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().try_init(),
        (LogFormat::Text, false) => builder.try_init(),
    };
}
