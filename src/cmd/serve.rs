//! `herald serve`: not yet implemented.

use crate::config::Config;

pub fn run(_cfg: Config) -> anyhow::Result<()> {
    anyhow::bail!("serve is not implemented yet")
}
