//! Command-line interface: every setting is a flag with a `KINDLING_*` environment fallback.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kindling",
    version,
    about = "A self-hosted AWS Lambda: the Lambda API, runtimes and lifecycle on your machine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Kindling server (Lambda API, data plane and execution environments).
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the Lambda API listens on.
    #[arg(long, env = "KINDLING_LISTEN", default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
    /// Directory holding state (SQLite) and code packages.
    #[arg(long, env = "KINDLING_DATA_DIR", default_value = ".kindling")]
    pub data_dir: PathBuf,
    /// Region this server presents itself as (in ARNs).
    #[arg(long, env = "KINDLING_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Account id this server presents itself as (in ARNs).
    #[arg(long, env = "KINDLING_ACCOUNT_ID", default_value = "000000000000")]
    pub account_id: String,
    /// Account concurrency limit (ConcurrentExecutions).
    #[arg(long, env = "KINDLING_ACCOUNT_CONCURRENCY", default_value_t = 1000)]
    pub account_concurrency: u32,
    /// Concurrency that reservations must leave unreserved.
    #[arg(
        long,
        env = "KINDLING_MIN_UNRESERVED_CONCURRENCY",
        default_value_t = 100
    )]
    pub min_unreserved_concurrency: u32,
}
