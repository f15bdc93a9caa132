//! `mailtls import SOURCE FILE...`: clients found outside the gateway (packet captures, server
//! logs, Microsoft 365 exports) written to the session store, marked with their source, so
//! they join the same inventory.

pub mod pcap;

use std::process::ExitCode;

use clap::Subcommand;

/// The sources `mailtls import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// TLS handshakes and plaintext logins in pcap or pcapng captures (tcpdump, Wireshark).
    Pcap(pcap::PcapArgs),
}

/// Runs `mailtls import SOURCE`.
pub fn run(command: ImportCommand) -> ExitCode {
    match command {
        ImportCommand::Pcap(args) => pcap::run(args),
    }
}
