//! Command line: `herald serve | build | check` with the flags that override the config.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "Publish a directory of articles as RSS, Atom and JSON Feed"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Common {
    /// Config file (default: ./config/herald.toml when present).
    #[arg(long, global = true, env = "HERALD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Content directory (overrides content.dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub content: Option<PathBuf>,
    /// Public base URL (overrides site.base_url).
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// State directory (overrides state.dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the content directory and serve the feeds over HTTP.
    Serve {
        /// Address to listen on; may be repeated (overrides server.listen).
        #[arg(long, value_name = "ADDR")]
        listen: Vec<SocketAddr>,
    },
    /// Render every feed and page once into a directory.
    Build {
        /// Output directory.
        #[arg(long, value_name = "DIR", default_value = "public")]
        out: PathBuf,
    },
    /// Report problems with the config and every article; exit 1 if an article is unusable.
    Check,
}

impl Cli {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.common.config.clone(),
            content: self.common.content.clone(),
            base_url: self.common.base_url.clone(),
            state_dir: self.common.state_dir.clone(),
            listen: match &self.command {
                Command::Serve { listen } => listen.clone(),
                _ => Vec::new(),
            },
        }
    }
}
