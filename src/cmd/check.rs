//! `herald check`: parse the config and every article, print one `path: problem` line per
//! problem and a summary. Exit code 1 when an article could not be used. The state is read
//! (so ids match what `serve` publishes) but never written.

use std::io::Write;
use std::process::ExitCode;

use crate::config::Config;
use crate::ingest;
use crate::store::state::State;

pub fn run(cfg: &Config) -> anyhow::Result<ExitCode> {
    let now = crate::dates::truncate_secs(chrono::Utc::now());
    let file = cfg.state_file();
    let mut state = if file.exists() {
        State::open(&file, &cfg.site.tag_authority)?
    } else {
        State::in_memory(&cfg.site.tag_authority)?
    };
    let ingested = ingest::full(cfg, &mut state, now, false)?;
    let mut lines: Vec<(String, String)> = ingested
        .skipped
        .iter()
        .map(|s| (s.path.clone(), s.message.clone()))
        .chain(ingested.warnings.iter().cloned())
        .collect();
    lines.sort();
    let errors = ingested
        .skipped
        .iter()
        .filter(|s| s.reason.is_error())
        .count();
    let mut out = std::io::stdout().lock();
    for (path, message) in &lines {
        writeln!(out, "{path}: {message}")?;
    }
    writeln!(
        out,
        "{} articles ok, {} unusable, {} skipped by design, {} warnings ({})",
        ingested.index.len(),
        errors,
        ingested.skipped.len() - errors,
        ingested.warnings.len(),
        cfg.content_dir.display()
    )?;
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
