//! `mailtls`: one binary for the bridge, the scanner and the evidence of the TLS 1.0/1.1
//! retirement on mail client protocols.

mod command;
mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mailtls",
    version,
    about = "Carries mail clients through the retirement of TLS 1.0 and 1.1"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: accept legacy IMAP/POP3 clients, log them in upstream over TLS 1.2+.
    Gateway {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config file and list every problem with its key and what to do.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Scan mail servers: TLS versions and suites accepted, certificate, STARTTLS, verdict.
    Scan(command::scan::ScanArgs),
    /// List the clients the gateway has seen, with their TLS verdicts and owners.
    Clients(command::clients::ClientsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Gateway { config } => command::gateway::run(&config),
        Command::CheckConfig { config } => command::check_config::run(&config),
        Command::Scan(args) => command::scan::run(args),
        Command::Clients(args) => command::clients::run(args),
    }
}
