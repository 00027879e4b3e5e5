//! Command line of the `l7rec` binary.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Record HTTP traffic with eBPF into a pcapng file that Wireshark opens, with the
/// process behind every connection; analyze such files (or any pcap) offline.
#[derive(Debug, Parser)]
#[command(name = "l7rec", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record HTTP flows and the processes behind them into a capture file (root).
    ///
    /// An eBPF socket filter keeps, in the kernel, every packet of TCP flows that carry
    /// HTTP/1.x (whole messages, both directions, handshake and teardown included);
    /// syscall tracepoints attribute them to processes. Scope: the network namespace
    /// l7rec runs in — its interfaces, and the processes whose sockets live there.
    /// Run it inside `ip netns exec NS` to record another namespace.
    ///
    /// Examples:
    ///   l7rec record -o cap.pcapng                 # until Ctrl-C
    ///   l7rec record -o cap.pcapng -- curl -s http://127.0.0.1:8080/
    ///   l7rec record -o cap.pcapng -i lo --port 8080 --duration 30s
    ///
    /// With -- CMD, recording lasts as long as the command. If recording stops first
    /// (SIGINT, SIGTERM or SIGHUP to l7rec, --duration, --count, an error), l7rec
    /// stops the command before it exits: it passes the signal on (SIGTERM for
    /// --duration and --count; a terminal's Ctrl-C is not sent twice, the command got
    /// it from the terminal), records while the command shuts down, and SIGKILLs it
    /// after 5 s (at once on a second signal). The command never outlives l7rec.
    ///
    /// Exit status:
    ///   0        recording ended as asked: a signal, --duration, --count (also when
    ///            l7rec had to stop the command: that was asked for, not a failure)
    ///   N        with -- CMD, when the command ended the recording: its status (its
    ///            exit code, or 128+S if signal S killed it), as `time` and `timeout`
    ///   2        invalid command line
    ///   125      l7rec failed (capture file, BPF, packet sockets...); the message
    ///            starts with "l7rec: error:"
    ///   126, 127 CMD cannot be run / was not found
    #[command(verbatim_doc_comment)]
    Record(RecordArgs),
    /// Report the HTTP transactions in captures (no root needed).
    ///
    /// Reads l7rec captures and any pcap/pcapng from tcpdump, tshark or Wireshark
    /// (plain, zstd or gzip), reassembles TCP streams and prints one row per HTTP
    /// request/response with status, sizes, latency and, for l7rec captures, the
    /// client and server process.
    ///
    /// A connection is HTTP once a request line or a status line parses in either
    /// direction, however damaged the rest (it is then reported, flagged malformed,
    /// gap, midstream... as needed). Connections that never show one (TLS, SSH,
    /// databases, other protocols) give no rows; --summary counts them among the TCP
    /// connections, not those "with HTTP", and an empty list comes with a note on
    /// stderr saying what the capture held instead.
    ///
    /// Rows stream out as their connections end, so memory stays bounded however
    /// large the capture: each connection's rows are in order, and each batch is
    /// sorted by start time, but a long connection's rows come after those of shorter
    /// ones that began later. For one strict order (in memory):
    ///   l7rec analyze cap.pcapng -f json | jq -s -c 'sort_by(.ts)[]'
    ///
    /// Examples:
    ///   l7rec analyze cap.pcapng
    ///   l7rec analyze cap.pcapng --format json | jq .uri
    ///   l7rec analyze cap.pcapng --summary
    ///   l7rec analyze cap.pcapng --format har -o cap.har
    ///   tcpdump -i eth0 -w - port 80 | l7rec analyze -
    ///
    /// Exit status:
    ///   0        every file was read to its end (or, compressed, to where it stops
    ///            between blocks: a recorder killed or still writing; a warning says so)
    ///   1        no report: a file cannot be opened or is not a capture, or the
    ///            report cannot be written
    ///   2        invalid command line
    ///   3        a file is cut inside a block or damaged: the report covers what
    ///            came before, a warning says where
    #[command(verbatim_doc_comment)]
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Capture file to write, or - for standard output (which must not be a terminal;
    /// with -- CMD, the command's standard output then goes to standard error).
    ///
    /// The file gets mode 0600 (captures hold cookies and tokens). An existing file is
    /// replaced only when recording starts: if start-up fails (an option, BPF, TLS, the
    /// command not found...) it is left as it was, and a file l7rec created is removed.
    /// The file is locked while written: a second l7rec record on it is refused. On a
    /// write error (disk full) l7rec stops and cuts the file back to its last flush, at
    /// most a second earlier, so it stays readable.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Interface to capture on (repeatable; one given twice is captured once, with a
    /// warning). Default: every interface of the namespace.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// Only consider TCP flows with this port on either side (repeatable).
    #[arg(long = "port", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,
    /// Only attribute syscalls of this process id (a process that exists when
    /// recording starts).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Only attribute syscalls of processes with this name (as in /proc/PID/comm; the
    /// kernel keeps 15 bytes of it, so a longer NAME is compared on those).
    #[arg(long, value_name = "NAME", value_parser = parse_comm)]
    pub comm: Option<String>,
    /// Bytes kept per packet: 64 (TCP/IP headers) to 262144, the largest that pcap
    /// readers accept and the default (as tcpdump's).
    #[arg(
        short = 's',
        long = "snaplen",
        default_value_t = MAX_SNAPLEN,
        value_parser = clap::value_parser!(u32).range(64..=i64::from(MAX_SNAPLEN)),
        value_name = "BYTES"
    )]
    pub snaplen: u32,
    /// Stop after this long (e.g. 30s, 5m, 1h; more than 0).
    #[arg(long, value_parser = parse_duration, value_name = "D")]
    pub duration: Option<Duration>,
    /// Stop after this many packets (at least 1).
    #[arg(short = 'c', long = "count", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Keep every TCP packet, not only HTTP flows.
    #[arg(long)]
    pub all_tcp: bool,
    /// Process attribution. `connections` (the default): which process uses which
    /// connection, and when it opened and closed: a client is named at connect(), any
    /// other process at its first receive on the connection (the programs run on TCP
    /// state changes and socket receives only; `analyze` needs no more; costs about
    /// what tcpdump does). `calls`: also every connect, accept, close, send and
    /// receive on a TCP socket of a kept flow, with entry/exit times, as syscall
    /// records (hooks every syscall of every task: costs a busy server a few
    /// microseconds per request, a fifth or more of its throughput). `off`: none. On
    /// kernels without the socket tracepoints (before 6.3) the default falls back to
    /// `calls`. Costs: BENCHMARKS.md.
    #[arg(long, value_enum, value_name = "MODE")]
    pub syscalls: Option<SyscallMode>,
    /// Same as `--syscalls off`.
    #[arg(long, conflicts_with = "syscalls")]
    pub no_syscalls: bool,
    /// Capture TLS plaintext from OpenSSL 3 (uprobes on libssl.so.3 SSL_read/SSL_write
    /// and their _ex forms) as synthesized TCP/IP packets on an extra interface named
    /// "l7rec-tls", with the real addresses and ports: Wireshark shows the decrypted
    /// HTTP without keys. On by default when libssl.so.3 is found; with --tls a failure
    /// is an error instead of a warning. Covers dynamically linked OpenSSL only (not
    /// static binaries, Go, BoringSSL, GnuTLS, NSS, kTLS). The ciphertext itself is not
    /// HTTP, so it is kept only with --all-tcp (e.g. --all-tcp --port 443).
    // Conflicting, not "last wins": like --no-tls with --ssl-lib and --syscalls with
    // --no-syscalls, contradictory requests are refused rather than half-obeyed.
    #[arg(long, conflicts_with = "no_tls")]
    pub tls: bool,
    /// Do not capture TLS plaintext.
    #[arg(long)]
    pub no_tls: bool,
    /// Also attach to this libssl (repeatable), e.g. one shipped with an application;
    /// implies --tls.
    #[arg(long = "ssl-lib", value_name = "PATH", conflicts_with = "no_tls")]
    pub ssl_libs: Vec<PathBuf>,
    /// Write plain pcapng instead of zstd-compressed.
    #[arg(long)]
    pub no_compress: bool,
    /// Mask secrets before they reach the disk: the values of Authorization,
    /// Proxy-Authorization, Cookie and Set-Cookie headers (and of every
    /// --redact-header) are overwritten with '*' in the stored packets, byte for byte,
    /// so lengths, TCP streams and HTTP framing stay intact (header names stay
    /// readable). Follows TCP sequence numbers: headers split over packets are found;
    /// when unsure (a gap, a connection already open) it masks more, never less.
    /// Traced command lines keep only the program name and bare options.
    #[arg(long)]
    pub redact: bool,
    /// Also mask the values of this HTTP header (case-insensitive; repeatable;
    /// implies --redact).
    #[arg(long = "redact-header", value_name = "NAME")]
    pub redact_headers: Vec<String>,
    /// Run this command and stop recording when it exits; l7rec then exits with the
    /// command's status. When recording stops first, the command is stopped (the
    /// signal l7rec got, or SIGTERM; SIGKILL 5 s later) and l7rec exits 0.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Report format of `l7rec analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for a terminal.
    Table,
    /// JSON lines, one object per transaction.
    Json,
    /// CSV with a header row.
    Csv,
    /// HAR 1.2 (importable by browser dev tools).
    Har,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng; plain, zstd or gzip); `-` reads standard input
    /// (`tcpdump -w - | l7rec analyze -`). Several are analyzed one after the other
    /// into one report, each on its own: a connection that spans two files (a rotated
    /// capture) is two partial ones; merge such files first (mergecap -w all.pcapng a
    /// b).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Format of the transaction list. Not with --summary, which has one format.
    #[arg(short = 'f', long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Print per-endpoint statistics, status codes, top clients/servers and totals
    /// instead of transactions, as text. Cannot be combined with --format.
    // A conflict, not a silent choice: `--summary -f json` used to print the text
    // summary, which a script expecting JSON only found out by failing to parse it.
    #[arg(long, conflicts_with = "format")]
    pub summary: bool,
    /// Write the report here instead of stdout (`-` is stdout).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Threads in all (default: one per core). With 2 or more, reading, parsing,
    /// processing and output run beside each other; 1 does everything on one thread.
    #[arg(long, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
}

/// Largest `--snaplen`: libpcap's and Wireshark's maximum; readers reject larger
/// packets as corrupt.
pub const MAX_SNAPLEN: u32 = 262_144;

/// `--comm`: a process name. Empty (an unset shell variable) would match nothing the
/// user meant; refused rather than taken as "every process".
fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a process name is needed (as in /proc/PID/comm)".to_owned());
    }
    Ok(s.to_owned())
}

/// Parses `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds; 0 is refused (it
/// would stop before anything is recorded).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (try 30s, 5m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    // Bounded so that Duration::from_secs_f64 cannot overflow (it would panic).
    if !(0.0..=1e12).contains(&secs) {
        return Err(format!("invalid duration {s:?}"));
    }
    let d = Duration::from_secs_f64(secs);
    if d.is_zero() {
        return Err(format!("{s:?} would stop before recording anything"));
    }
    Ok(d)
}

/// `l7rec record --syscalls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyscallMode {
    /// Which process uses which connection, opened and closed when (the default).
    Connections,
    /// Also every socket call (connect, accept, close, send, receive), with its times.
    Calls,
    /// No process attribution.
    Off,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("0ms").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn an_empty_process_name_is_refused() {
        use clap::Parser;
        let parse =
            |name: &str| Cli::try_parse_from(["l7rec", "record", "-o", "f", "--comm", name]);
        assert!(
            parse("").is_err(),
            "an unset variable must not mean every process"
        );
        assert!(parse("nginx").is_ok());
    }

    #[test]
    fn port_zero_is_refused() {
        use clap::Parser;
        let parse =
            |port: &str| Cli::try_parse_from(["l7rec", "record", "-o", "f", "--port", port]);
        assert!(parse("0").is_err(), "port 0 matches nothing");
        assert!(parse("65536").is_err());
        assert!(parse("8080").is_ok());
    }

    #[test]
    fn contradictory_options_are_refused() {
        use clap::error::ErrorKind;
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut argv = vec!["l7rec", "record", "-o", "f"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(drop).map_err(|e| e.kind())
        };
        for pair in [
            ["--tls", "--no-tls"],
            ["--no-tls", "--tls"],
            ["--no-tls", "--ssl-lib=/x/libssl.so.3"],
            ["--syscalls=off", "--no-syscalls"],
        ] {
            assert_eq!(parse(&pair), Err(ErrorKind::ArgumentConflict), "{pair:?}");
        }
        assert_eq!(parse(&["--tls"]), Ok(()));
        assert_eq!(parse(&["--no-tls"]), Ok(()));
        assert_eq!(parse(&["--tls", "--ssl-lib=/x/libssl.so.3"]), Ok(()));
    }

    #[test]
    fn summary_refuses_a_format() {
        use clap::{error::ErrorKind, Parser};
        let parse = |extra: &[&str]| {
            let mut argv = vec!["l7rec", "analyze", "f"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(drop).map_err(|e| e.kind())
        };
        for args in [
            &["--summary", "-f", "json"][..],
            &["--format=csv", "--summary"],
            &["--summary", "--format", "table"],
        ] {
            assert_eq!(parse(args), Err(ErrorKind::ArgumentConflict), "{args:?}");
        }
        assert_eq!(parse(&["--summary"]), Ok(()));
        assert_eq!(parse(&["-f", "har"]), Ok(()));
    }

    #[test]
    fn zero_threads_is_refused() {
        use clap::Parser;
        let parse = |n: &str| Cli::try_parse_from(["l7rec", "analyze", "f", "--threads", n]);
        assert!(parse("0").is_err(), "no thread would analyze anything");
        assert!(parse("1").is_ok());
    }
}
