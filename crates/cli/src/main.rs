//! `mailtls`: one binary for the bridge, the scanner and the evidence of the TLS 1.0/1.1
//! retirement on mail client protocols.

mod command;
mod config;
mod pid_file;
mod run_as;

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
    /// Check a config file like check-config, then ask the running gateway (found by
    /// `[gateway] pid_file`) to reload it with SIGHUP; nothing is signalled if the file has a problem.
    Reload {
        #[arg(long, short)]
        config: PathBuf,
        /// The gateway's process id (e.g. systemd's $MAINPID) instead of the pid file's.
        #[arg(long)]
        pid: Option<i32>,
    },
    /// Check a config file and list every problem with its key and what to do.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
        /// Also print the cipher suites each TLS listener negotiates at every TLS version.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Scan mail servers: TLS versions and suites accepted, certificate, STARTTLS, verdict.
    Scan(command::scan::ScanArgs),
    /// List the clients the gateway has seen, with their TLS verdicts and owners.
    Clients(command::clients::ClientsArgs),
    /// Write the readiness and evidence report (HTML, JSON, CSV), or verify a report file.
    Report(command::report::ReportArgs),
    /// Serve the report live from the store, with a filterable client list and annotations.
    Dashboard(command::dashboard::DashboardArgs),
    /// The session store: prune old raw sessions.
    #[command(subcommand)]
    Store(command::store::StoreCommand),
    /// The TLS floor policies: why a client is allowed, warned or refused.
    #[command(subcommand)]
    Policy(command::policy::PolicyCommand),
    /// The exception register: who may stay below the floor, owned by whom, until when.
    #[command(subcommand)]
    Exceptions(command::exceptions::ExceptionsCommand),
    /// Find clients live on an interface (a mirror port): the capture analysis, continuously.
    Sensor(command::sensor::SensorArgs),
    /// Print the Argon2id hash of a password (from the terminal without echo, or the first line
    /// of standard input) for an [[account]]'s password_hash.
    Passwd,
    /// Find clients where no gateway stands: packet captures, mail server logs and Microsoft
    /// 365 exports, added to the inventory (`mailtls clients`) marked with their source.
    #[command(subcommand)]
    Import(command::import::ImportCommand),
    /// OAuth 2.0 accounts: device code sign-in and token status.
    #[command(subcommand)]
    Oauth(OAuthCommand),
}

#[derive(Subcommand)]
enum OAuthCommand {
    /// Sign an account of a device_code app in: prints a code and URL, waits for the sign-in,
    /// stores the refresh token in the encrypted token cache.
    Login {
        /// The [[account]]'s login.
        account: String,
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Every account with its token's expiry and last refresh error (never a token).
    Status {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Gateway { config } => command::gateway::run(&config),
        Command::Reload { config, pid } => command::reload::run(&config, pid),
        Command::CheckConfig { config, verbose } => command::check_config::run(&config, verbose),
        Command::Scan(args) => command::scan::run(args),
        Command::Clients(args) => command::clients::run(args),
        Command::Report(args) => command::report::run(args),
        Command::Dashboard(args) => command::dashboard::run(args),
        Command::Store(command) => command::store::run(command),
        Command::Import(command) => command::import::run(command),
        Command::Sensor(args) => command::sensor::run(args),
        Command::Passwd => command::passwd::run(),
        Command::Oauth(OAuthCommand::Login { account, config }) => {
            command::oauth::login(&config, &account)
        }
        Command::Oauth(OAuthCommand::Status { config }) => command::oauth::status(&config),
        Command::Policy(command) => command::policy::run(command),
        Command::Exceptions(command) => command::exceptions::run(command),
    }
}
