//! One file per subcommand: glue between the CLI and the library, nothing else.

pub mod build;
pub mod check;
pub mod serve;
