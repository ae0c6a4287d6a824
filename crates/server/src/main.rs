//! The `kindling` binary: parses the command line and hands over to the library crates.

mod admin;
mod apigateway;
mod cli;
mod cluster;
mod code_source;
mod cpu_qos;
mod deploy;
mod deploy_cli;
mod host_limits;
mod image_source;
mod logs;
mod logs_api;
mod messaging;
mod nodes_cli;
mod observe;
mod open_files;
mod runtime_files;
mod sdks;
mod secret;
mod serve;
mod stores;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    init_tracing();
    match cli.command {
        cli::Command::Serve(args) => serve::run(*args),
        cli::Command::Logs(args) => logs::run(&args),
        cli::Command::Queue(args) => admin::queue(&args),
        cli::Command::Dlq(cmd) => admin::dlq(&cmd),
        cli::Command::Runtimes(cli::RuntimesCommand::InstallSdks(args)) => sdks::install(&args),
        cli::Command::Deploy(args) => deploy_cli::deploy(&args),
        cli::Command::DeleteStack(args) => deploy_cli::delete_stack(&args),
        cli::Command::Nodes(args) => nodes_cli::run(&args),
    }
}

/// Logs to stderr; `KINDLING_LOG` (or `RUST_LOG`) sets the filter, default `info`.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("KINDLING_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, never into files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
