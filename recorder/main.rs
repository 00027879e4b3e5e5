//! `l7rec`: record HTTP traffic with eBPF into pcapng, analyze captures offline.

mod afpacket;
mod analyze;
mod bpf;
mod cli;
mod command;
mod conn_key;
mod elf_syms;
mod files;
mod frames;
mod handshakes;
mod metadata;
mod output;
mod record;
mod redact;
mod ring_events;
mod syscalls;
mod tls;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    // `record` passes the command's exit status on, so its own failures need a code
    // of their own (125, or 126/127 when the command cannot be run); `analyze` keeps 1
    // for failures and says 3 for a report on damaged input.
    let result = match cli.command {
        cli::Command::Record(args) => record::run(args).map_err(|e| {
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<command::CommandNotRun>())
                .map_or(command::EXIT_RECORD_FAILED, |c| c.exit_code());
            (e, code)
        }),
        cli::Command::Analyze(args) => analyze::run(args).map_err(|e| (e, 1)),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err((e, code)) => {
            eprintln!("l7rec: error: {}", causes(&e));
            std::process::ExitCode::from(code)
        }
    }
}

/// The error and its causes, `: `-separated, each cause left out when the text so far
/// already says it (library errors often quote their source in their own message).
pub(crate) fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::causes;
    use std::io;

    #[test]
    fn causes_are_said_once() {
        let io = || io::Error::new(io::ErrorKind::NotFound, "no such file");
        // A message that quotes its source (thiserror's "...: {source}").
        let quoted = anyhow::Error::new(io()).context(format!("cannot read x: {}", io()));
        assert_eq!(causes(&quoted), "cannot read x: no such file");
        let plain = anyhow::Error::new(io()).context("opening the capture");
        assert_eq!(causes(&plain), "opening the capture: no such file");
    }
}
