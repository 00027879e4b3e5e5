//! `l7rec`: record HTTP traffic with eBPF into pcapng, analyze captures offline.

mod afpacket;
mod analyze;
mod bpf;
mod cli;
mod frames;
mod handshakes;
mod metadata;
mod record;
mod redact;
mod ring_events;
mod syscalls;
mod tls;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Record(args) => record::run(args),
        cli::Command::Analyze(args) => analyze::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("l7rec: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
