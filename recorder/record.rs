//! `l7rec record`: the socket filter, AF_PACKET rings and syscall tracer feeding one
//! capture file, until a signal, a limit, or the end of the traced command.

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use l7rec_capture::{
    CaptureWriter, Compression, Interface, InterfaceStats, Record, RecorderStats, SourceStats,
    WriterOptions,
};

use crate::afpacket::{self, PacketSocket, RingConfig};
use crate::bpf::{FilterConfig, LinkKind, SocketFilter};
use crate::cli::{RecordArgs, SyscallMode};
use crate::command::{self, TracedCommand};
use crate::frames::{Frames, Source};
use crate::metadata::Metadata;
use crate::output::Output;
use crate::redact::{self, Redactor};
use crate::syscalls::{SyscallConfig, SyscallTracer, TraceMode};
use crate::tls::{TlsChoice, TlsRecording};

/// How often counters are written into the file and the status line refreshed.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Longest wait for packets when idle.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// After a stop is decided (signal, duration, end of the command), how long to keep
/// reading: the kernel hands over a ring block only when it fills or after its retire
/// timeout (50 ms), so stopping at once would silently lose the last packets.
const DRAIN_ON_STOP: Duration = Duration::from_millis(300);
/// Records buffered before they are written as one custom block.
const RECORDS_PER_BLOCK: usize = 512;

/// The signal that asked us to stop (0 = none yet).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// How many stop signals arrived: one more while the command is being stopped means
/// "now", and it is SIGKILLed without waiting out [`command::KILL_AFTER`].
static STOP_SIGNALS: AtomicU32 = AtomicU32::new(0);
/// Whether the last stop signal came from the kernel rather than from kill(2): a
/// terminal's Ctrl-C or hangup, which the kernel sends to the whole foreground process
/// group, so a command in l7rec's group got it already and must not get it twice
/// (a second SIGINT cuts short many programs' graceful shutdown). `sudo` does the same.
static STOP_FROM_KERNEL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let code = if info.is_null() {
        libc::SI_USER
    } else {
        // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t; reading a field
        // is async-signal-safe.
        unsafe { (*info).si_code }
    };
    STOP_FROM_KERNEL.store(code == libc::SI_KERNEL, Ordering::Relaxed);
    STOP_SIGNAL.store(sig, Ordering::Relaxed);
    STOP_SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// The syscall tracer modes to try, in order. An explicit `--syscalls` is the only one;
/// the default, connections mode, falls back to per-call tracing on kernels that lack
/// the socket tracepoints it needs (before 6.3), so attribution works wherever it can.
fn trace_modes(no_syscalls: bool, choice: Option<SyscallMode>) -> &'static [TraceMode] {
    match (no_syscalls, choice) {
        (true, _) | (_, Some(SyscallMode::Off)) => &[],
        (false, Some(SyscallMode::Calls)) => &[TraceMode::Calls],
        (false, Some(SyscallMode::Connections)) => &[TraceMode::Connections],
        (false, None) => &[TraceMode::Connections, TraceMode::Calls],
    }
}

fn install_signal_handlers() -> Result<()> {
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
    // SA_SIGINFO: the handler needs si_code (terminal or kill(2)); SA_RESTART as
    // signal(2) had, so only poll() returns early (it is never restarted).
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `action` is initialised; the handler only touches atomics, which is
        // async-signal-safe.
        let rc = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error()).context("installing signal handlers");
        }
    }
    Ok(())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One capturing interface.
struct Capture {
    iface: afpacket::Interface,
    socket: PacketSocket,
    loopback: bool,
    written: u64,
}

/// Why recording ended.
#[derive(Debug)]
enum Stop {
    Signal(i32),
    Duration,
    Count,
    CommandExited(std::process::ExitStatus),
}

impl Stop {
    /// The exit status of `l7rec record` after a successful recording. When the
    /// command ended by itself, its status (code, or 128 + signal), as `time`,
    /// `timeout` and `strace` do: `l7rec record -- make test` fails when the tests do.
    /// When l7rec ended the recording (a signal, `--duration`, `--count`), 0, also if
    /// l7rec had to stop the command: its death was asked for, not a failure of it,
    /// and the recording — what l7rec was run for — is complete. So `--duration 30s
    /// -- ./server` succeeds, and 0 keeps meaning what it meant without a command.
    fn exit_code(&self) -> u8 {
        match self {
            Stop::CommandExited(status) => command::shell_status(*status),
            Stop::Signal(_) | Stop::Duration | Stop::Count => 0,
        }
    }

    /// The signal that asks the command to stop when recording stops for this reason:
    /// the one l7rec got (unless the command got it too, from the terminal); SIGTERM
    /// at the end of --duration (as `timeout`).
    fn signal_for_command(&self, cmd: &TracedCommand) -> Option<libc::c_int> {
        match self {
            Stop::Signal(sig) => {
                let already_got_it =
                    STOP_FROM_KERNEL.load(Ordering::Relaxed) && cmd.shares_process_group();
                (!already_got_it).then_some(*sig)
            }
            Stop::Duration | Stop::Count => Some(libc::SIGTERM),
            Stop::CommandExited(_) => None,
        }
    }
}

/// Where the main loop is in stopping.
enum Ending {
    /// Not stopping.
    Recording,
    /// Recording goes on (the command's shutdown traffic is recorded) until the command
    /// is gone; `signals` counts the stop signals seen when it began.
    StoppingCommand { stop: Stop, signals: u32 },
    /// Draining the rings until then.
    Draining { until: Instant, stop: Stop },
}

/// The interfaces to capture on: those named (each once), or every usable one.
fn select_interfaces(names: &[String]) -> Result<Vec<afpacket::Interface>> {
    let all = afpacket::list_interfaces().context("listing network interfaces")?;
    if names.is_empty() {
        let usable: Vec<_> = all
            .into_iter()
            .filter(|i| i.up && i.pcap_linktype().is_some())
            .collect();
        if usable.is_empty() {
            bail!("no interface that is up and of a supported type (Ethernet, loopback, raw IP)");
        }
        return Ok(usable);
    }
    let selected = names
        .iter()
        .map(|n| {
            let found = all.iter().find(|i| &i.name == n).cloned();
            let iface = found.with_context(|| {
                let known: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
                format!(
                    "unknown interface {n:?} (this namespace has: {})",
                    known.join(", ")
                )
            })?;
            if iface.pcap_linktype().is_none() {
                bail!(
                    "interface {n} has hardware type {}, which l7rec cannot capture",
                    iface.arphrd
                );
            }
            Ok(iface)
        })
        .collect::<Result<Vec<_>>>()?;
    let (unique, repeated) = dedup_interfaces(selected);
    for name in repeated {
        eprintln!("l7rec: warning: interface {name} is given more than once; capturing it once");
    }
    Ok(unique)
}

/// `-i` names each interface once: a second packet socket on the same interface would
/// store every packet twice. Repeats are dropped rather than refused since their
/// meaning is plain (the set of interfaces), they cannot be wanted, and they come
/// easily from scripts that join lists (`-i $CLIENT_IF -i $SERVER_IF`, both `lo`);
/// the warning still shows a typo. Keeps the first occurrence's order; returns the
/// kept interfaces and the names of those given more than once (each once).
fn dedup_interfaces(ifaces: Vec<afpacket::Interface>) -> (Vec<afpacket::Interface>, Vec<String>) {
    let mut unique: Vec<afpacket::Interface> = Vec::with_capacity(ifaces.len());
    let mut repeated: Vec<String> = Vec::new();
    for iface in ifaces {
        // By index: the identity of an interface in its namespace.
        if unique.iter().any(|u| u.index == iface.index) {
            if !repeated.contains(&iface.name) {
                repeated.push(iface.name);
            }
        } else {
            unique.push(iface);
        }
    }
    (unique, repeated)
}

/// Runs `l7rec record`; returns its exit status (see [`Stop::exit_code`]). Errors exit
/// [`command::EXIT_RECORD_FAILED`], or 126/127 when the command cannot be run.
pub fn run(args: RecordArgs) -> Result<u8> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("l7rec record needs root (BPF programs and packet sockets); run it with sudo");
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!(
            "this kernel has no BTF (/sys/kernel/btf/vmlinux): l7rec needs CONFIG_DEBUG_INFO_BTF=y"
        );
    }
    // Checked now: the filter would otherwise wait for a process that cannot appear
    // (a new one gets a new pid) and the file would hold no attribution, silently.
    if let Some(pid) = args.pid {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            bail!("--pid {pid}: no such process");
        }
    }
    // Checked before anything is created, so a bad name leaves nothing behind.
    let redactor = if args.redact || !args.redact_headers.is_empty() {
        Some(
            Redactor::new(&args.redact_headers)
                .map_err(|e| anyhow::anyhow!("--redact-header: {e}"))?,
        )
    } else {
        None
    };
    let redact_cmdlines = redactor.is_some();
    let mut frames = Frames::new(redactor, args.all_tcp, args.count);
    let ifaces = select_interfaces(&args.interfaces)?;
    // Opened (and locked) now so an unwritable path or a file in use is reported before
    // the slow set-up, but neither truncated nor written until recording starts: a
    // failed start leaves an existing file as it was (see output.rs).
    let output = Output::open(&args.output)?;
    let out_name = output.name();

    let filter = SocketFilter::load(&FilterConfig {
        ports: args.ports.clone(),
        all_tcp: args.all_tcp,
        snaplen: args.snaplen,
        netns_inode: None,
        links: ifaces
            .iter()
            .map(|i| (i.index, LinkKind::from_arphrd(i.arphrd)))
            .collect(),
    })
    .context("loading the packet filter")?;

    let opts = WriterOptions {
        compression: if args.no_compress {
            Compression::None
        } else {
            // The recorder's CPU comes out of the traced servers' share: the fastest
            // zstd that still writes ~5 % of a plain pcap (BENCHMARKS.md).
            Compression::ZstdLive
        },
        os: Some(os_description()),
        hardware: Some(std::env::consts::ARCH.to_owned()),
        ..Default::default()
    };
    let mut writer = CaptureWriter::new(output, &opts).context("writing the capture header")?;
    // Blocks hold the largest packet; a larger snaplen needs larger blocks.
    let block_size = (args.snaplen + 4096).next_power_of_two().max(1 << 20);
    let ring = RingConfig {
        block_size,
        block_count: ((64u32 << 20) / block_size).max(8),
        snaplen: args.snaplen,
        ..Default::default()
    };
    let mut captures = Vec::new();
    for iface in ifaces {
        let socket = PacketSocket::open(Some(iface.index), Some(filter.prog_fd()), &ring)
            .with_context(|| format!("opening a packet socket on {}", iface.name))?;
        if iface.is_loopback() {
            // The filter drops loopback's sent copies anyway; this spares it the runs.
            if let Err(e) = socket.ignore_outgoing() {
                eprintln!(
                    "l7rec: {}: {e:#}; the filter drops the copies instead",
                    iface.name
                );
            }
        }
        writer.add_interface(&Interface {
            name: iface.name.clone(),
            description: None,
            linktype: iface
                .pcap_linktype()
                .unwrap_or(l7rec_capture::linktype::ETHERNET),
            snaplen: args.snaplen,
        })?;
        captures.push(Capture {
            loopback: iface.is_loopback(),
            iface,
            socket,
            written: 0,
        });
    }

    let mut tracer = None;
    let modes = trace_modes(args.no_syscalls, args.syscalls);
    for (i, &mode) in modes.iter().enumerate() {
        let flows = filter
            .flows_map_fd()
            .try_clone_to_owned()
            .context("sharing the flow map with the syscall tracer")?;
        let cfg = SyscallConfig {
            pid: args.pid,
            comm: args.comm.clone(),
            only_kept_flows: !args.all_tcp,
            mode,
            ..Default::default()
        }
        .with_flows_map(flows);
        match SyscallTracer::start(cfg).context("starting the syscall tracer") {
            Ok(t) => {
                tracer = Some(t);
                break;
            }
            Err(e) if i + 1 < modes.len() => {
                eprintln!(
                    "l7rec: {}; trying --syscalls calls instead",
                    crate::causes(&e)
                );
            }
            Err(e) => return Err(e),
        }
    }
    // TLS plaintext (recorder/tls.rs): uprobes on libssl, packets on their own interface.
    let socket_maps = match &tracer {
        Some(t) => t
            .tls_socket_maps()
            .context("sharing the TLS maps of the syscall tracer")?,
        None => None,
    };
    let mut tls = TlsRecording::start(
        &TlsChoice {
            tls: args.tls,
            no_tls: args.no_tls,
            libs: args.ssl_libs.clone(),
        },
        args.pid,
        socket_maps,
        redact_cmdlines.then_some(&args.redact_headers[..]),
        &mut writer,
    )?;
    if let Some(t) = &tls {
        let libs: Vec<String> = t
            .tracer()
            .libs()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "l7rec: TLS plaintext from {} on interface {} ({})",
            libs.join(", "),
            crate::tls::TLS_INTERFACE,
            t.tracer().attach_mode()
        );
    }

    install_signal_handlers()?;
    let mut command = match args.command.split_first() {
        Some((prog, rest)) => Some(TracedCommand::spawn(
            prog,
            rest,
            writer.get_mut().is_stdout(),
        )?),
        None => None,
    };
    // Start-up is over (the command runs, with everything attached for its first
    // packet): only now is an existing file replaced. Until here the writer's output was
    // held in memory; flushing puts the header on disk at once.
    writer.get_mut().commit().and_then(|()| {
        writer
            .flush()
            .with_context(|| format!("writing {out_name}"))
    })?;
    // Everything is attached and the file is ours: say so, so scripts can start their
    // traffic now.
    let names: Vec<&str> = captures.iter().map(|c| c.iface.name.as_str()).collect();
    eprintln!(
        "l7rec: recording on {} to {} (process attribution: {})",
        names.join(", "),
        out_name,
        tracer.as_ref().map_or("off", |t| t.mode().name()),
    );
    let started = Instant::now();
    let start_ns = now_ns();
    let status = status_line();
    let mut meta = Metadata::default();
    let mut last_stats = Instant::now();
    let mut ending = Ending::Recording;

    let stop = loop {
        let mut got = 0usize;
        for (id, c) in captures.iter_mut().enumerate() {
            let src = Source {
                interface_id: id as u32,
                linktype: c.iface.pcap_linktype(),
                loopback: c.loopback,
            };
            let n = c
                .socket
                .process_ready(|p| frames.frame(&mut writer, &meta, src, p));
            c.written += n as u64;
            got += n;
        }
        if let Some(t) = tracer.as_mut() {
            got += t
                .poll(Duration::ZERO, &mut |mut ev| {
                    if redact_cmdlines {
                        // Arguments hold tokens too (curl -H 'Authorization: ...').
                        redact::mask_event(&mut ev);
                    }
                    meta.event(ev)
                })
                .context("reading syscall events")?;
        }
        if let Some(t) = tls.as_mut() {
            match t.poll(&mut writer) {
                Ok(n) => got += n,
                Err(e) => break Err(io::Error::other(format!("{e:#}"))),
            }
        }
        if meta.pending_len() >= RECORDS_PER_BLOCK || (got == 0 && meta.pending_len() > 0) {
            if let Err(e) = writer.write_records(&meta.take_records()) {
                frames.written.error.get_or_insert(e);
            }
        }
        if let Some(e) = frames.written.error.take() {
            break Err(e);
        }
        if last_stats.elapsed() >= STATS_EVERY {
            last_stats = Instant::now();
            meta.expire();
            frames.expire();
            if let Some(t) = tls.as_mut() {
                t.expire();
            }
            if let Err(e) = write_stats(
                &mut writer,
                &mut captures,
                &filter,
                tracer.as_ref(),
                tls.as_ref(),
                &meta,
                start_ns,
            )
            .and_then(|()| writer.flush())
            {
                break Err(e);
            }
            if let Some(bar) = &status {
                bar.set_message(format!(
                    "{} packets, {} flows, {} syscall events, {} written",
                    frames.written.packets,
                    filter.counters().map_or(0, |c| c.flows_classified),
                    meta.events,
                    human_bytes(writer.written_bytes()),
                ));
            }
        }
        // Decide whether to stop; stop the command, recording meanwhile; then keep
        // draining briefly.
        let draining = |stop| Ending::Draining {
            until: Instant::now() + DRAIN_ON_STOP,
            stop,
        };
        // Asked before `should_stop` can say "signal": a command that died at the same
        // time (from the terminal's Ctrl-C) needs no stopping.
        let command_running = match (&ending, command.as_mut()) {
            (Ending::Recording, Some(cmd)) => !command_exited(cmd)?,
            _ => false,
        };
        ending = match ending {
            Ending::Recording => match should_stop(&args, started, &frames, command.as_mut())? {
                None => Ending::Recording,
                // -c asks for exactly that many packets: the rest is not wanted (the
                // command is stopped after the loop).
                Some(Stop::Count) => break Ok(Stop::Count),
                Some(stop) => match command.as_mut().filter(|_| command_running) {
                    Some(cmd) => {
                        let sig = stop.signal_for_command(cmd);
                        eprintln!(
                            "l7rec: stopping the command (pid {}){}; SIGKILL in {}s",
                            cmd.pid(),
                            sig.map_or_else(
                                || " (it got the signal from the terminal)".to_owned(),
                                |s| format!(" with {}", signal_name(s))
                            ),
                            command::KILL_AFTER.as_secs()
                        );
                        cmd.begin_stop(sig).context("stopping the command")?;
                        Ending::StoppingCommand {
                            stop,
                            signals: STOP_SIGNALS.load(Ordering::Relaxed),
                        }
                    }
                    _ => draining(stop),
                },
            },
            Ending::StoppingCommand { stop, signals } => {
                let cmd = command
                    .as_mut()
                    .context("internal error: stopping a command that was never started")?;
                // Another signal: the user does not want to wait (Ctrl-C twice).
                let now = STOP_SIGNALS.load(Ordering::Relaxed);
                if now != signals {
                    cmd.kill_now().context("killing the command")?;
                }
                match cmd.poll_stop().context("stopping the command")? {
                    Some(_) => draining(stop),
                    None => Ending::StoppingCommand { stop, signals: now },
                }
            }
            Ending::Draining { until, stop } => {
                if Instant::now() >= until {
                    break Ok(stop);
                }
                Ending::Draining { until, stop }
            }
        };
        if got == 0 {
            wait_for_packets(&captures, IDLE_POLL);
        }
    };
    if let Some(bar) = status {
        bar.finish_and_clear();
    }
    // Recording is over (--count, a write error) and the command still runs: it must
    // not outlive l7rec unrecorded.
    if let Some(cmd) = command.as_mut() {
        match cmd.try_wait() {
            Ok(Some(_)) => {}
            _ => {
                if let Err(e) = cmd.stop_blocking(libc::SIGTERM) {
                    eprintln!("l7rec: warning: stopping the command: {e}");
                }
            }
        }
    }
    if let Some(cmd) = command.as_ref().filter(|c| c.was_killed()) {
        eprintln!(
            "l7rec: the command (pid {}) did not exit when asked to; killed it with SIGKILL",
            cmd.pid()
        );
    }

    // Final counters and a clean end of the zstd frame, unless writing failed.
    let finished = match &stop {
        Ok(_) => {
            let pending = meta.take_records();
            writer
                .write_records(&pending)
                .and_then(|()| {
                    write_stats(
                        &mut writer,
                        &mut captures,
                        &filter,
                        tracer.as_ref(),
                        tls.as_ref(),
                        &meta,
                        start_ns,
                    )
                })
                .and_then(|()| writer.flush())
        }
        Err(_) => Ok(()),
    };
    // After a write error (disk full) the output may end in part of a block or zstd
    // frame, which readers report as damage: it is cut back to where the last flush
    // ended, losing at most the last second, rather than retried (a retry would
    // compress the staged data again and duplicate or misplace it).
    let (written, cut) = if stop.is_err() || finished.is_err() {
        let (out, valid, tail) = writer.abandon();
        let cut = match out.cut_back(valid, tail) {
            Ok(true) => {
                format!("it was cut back to the last flush ({valid} bytes) and reads cleanly")
            }
            Ok(false) => format!(
                "{out_name} cannot be cut back: what follows byte {valid} (the last flush) is \
                 incomplete"
            ),
            Err(e) => format!(
                "cutting it back to the last flush ({valid} bytes) failed too ({e}): what \
                 follows is incomplete"
            ),
        };
        (valid, cut)
    } else {
        let written = writer.written_bytes();
        // Already flushed: this only hands the output back, to be closed.
        if let Err(e) = writer.finish() {
            eprintln!("l7rec: warning: closing {out_name}: {e}");
        }
        (written, String::new())
    };
    let counters = filter.counters().unwrap_or_default();
    let ring_drops: u64 = captures
        .iter_mut()
        .map(|c| c.socket.stats().map_or(0, |s| s.drops))
        .sum();
    let syscall_drops = tracer.as_ref().map_or(0, |t| t.drops());
    eprintln!(
        "l7rec: {} packets ({}), {} HTTP flows, {} syscall events, drops: {} packets, {} syscall events; {} written to {} in {:.1}s",
        frames.written.packets,
        human_bytes(frames.written.bytes),
        counters.flows_classified,
        meta.events,
        ring_drops,
        syscall_drops,
        human_bytes(written),
        out_name,
        started.elapsed().as_secs_f64(),
    );
    if let Some(t) = &tls {
        eprintln!("l7rec: {}", t.summary());
    }
    if counters.flow_insert_failed > 0 {
        eprintln!(
            "l7rec: warning: the in-kernel flow table was full {} times: packets of those flows may be missing",
            counters.flow_insert_failed
        );
    }
    let stop = stop.with_context(|| format!("writing {out_name} failed (disk full?); {cut}"))?;
    finished.with_context(|| format!("finishing {out_name}; {cut}"))?;
    match &stop {
        Stop::Signal(sig) => eprintln!("l7rec: stopped by signal {sig}"),
        Stop::CommandExited(status) if !status.success() => {
            eprintln!(
                "l7rec: the command exited with {status}; exiting with {}",
                stop.exit_code()
            );
        }
        _ => {}
    }
    Ok(stop.exit_code())
}

/// Interface statistics blocks and a recorder statistics record.
fn write_stats(
    writer: &mut CaptureWriter<Output>,
    captures: &mut [Capture],
    filter: &SocketFilter,
    tracer: Option<&SyscallTracer>,
    tls: Option<&TlsRecording>,
    meta: &Metadata,
    start_ns: u64,
) -> io::Result<()> {
    let ts_ns = now_ns();
    let mut sources = Vec::new();
    for (id, c) in captures.iter_mut().enumerate() {
        let st = c.socket.stats().map_err(io::Error::other)?;
        writer.write_interface_stats(&InterfaceStats {
            interface_id: id as u32,
            ts_ns,
            start_ns: Some(start_ns),
            end_ns: Some(ts_ns),
            if_recv: None,
            if_drop: None,
            filter_accept: Some(st.packets),
            os_drop: Some(st.drops),
            usr_deliv: Some(c.written),
        })?;
        sources.push(SourceStats {
            name: format!("packets:{}", c.iface.name),
            received: st.packets,
            dropped: st.drops,
        });
    }
    if let Some(t) = tracer {
        sources.push(SourceStats {
            name: "syscalls".into(),
            received: meta.events,
            dropped: t.drops(),
        });
    }
    if let Some(t) = tls {
        sources.extend(t.sources());
    }
    if let Ok(c) = filter.counters() {
        sources.push(SourceStats {
            name: "flow-table".into(),
            received: c.flows_classified,
            dropped: c.flow_insert_failed,
        });
    }
    writer.write_records(&[Record::Stats(RecorderStats { ts_ns, sources })])
}

fn should_stop(
    args: &RecordArgs,
    started: Instant,
    frames: &Frames,
    command: Option<&mut TracedCommand>,
) -> Result<Option<Stop>> {
    let sig = STOP_SIGNAL.load(Ordering::Relaxed);
    if sig != 0 {
        return Ok(Some(Stop::Signal(sig)));
    }
    if args.duration.is_some_and(|d| started.elapsed() >= d) {
        return Ok(Some(Stop::Duration));
    }
    if frames.limit_reached() {
        return Ok(Some(Stop::Count));
    }
    if let Some(command) = command {
        if let Some(status) = command.try_wait().context("waiting for the command")? {
            return Ok(Some(Stop::CommandExited(status)));
        }
    }
    Ok(None)
}

/// `SIGTERM` for 15 and so on, for the signals l7rec passes on.
fn signal_name(sig: libc::c_int) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

/// Whether the command has exited (reaping it).
fn command_exited(cmd: &mut TracedCommand) -> Result<bool> {
    Ok(cmd.try_wait().context("waiting for the command")?.is_some())
}

/// Sleeps until a packet socket has data or `timeout` passes.
fn wait_for_packets(captures: &[Capture], timeout: Duration) {
    let mut fds: Vec<libc::pollfd> = captures
        .iter()
        .map(|c| libc::pollfd {
            fd: c.socket.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: fds is a valid array of pollfd of the given length. Errors (EINTR from
    // a stop signal) just end the wait early.
    unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            timeout.as_millis() as i32,
        );
    }
}

fn status_line() -> Option<ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} recording {elapsed} {msg}").ok()?);
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn os_description() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Linux {}", release.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(index: u32, name: &str) -> afpacket::Interface {
        afpacket::Interface {
            index,
            name: name.into(),
            arphrd: libc::ARPHRD_LOOPBACK,
            up: true,
        }
    }

    #[test]
    fn repeated_interfaces_are_captured_once() {
        let (unique, repeated) = dedup_interfaces(vec![
            iface(1, "lo"),
            iface(2, "veth0"),
            iface(1, "lo"),
            iface(1, "lo"),
        ]);
        let names: Vec<&str> = unique.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo", "veth0"]);
        assert_eq!(repeated, ["lo"]);
        let (unique, repeated) = dedup_interfaces(vec![iface(2, "veth0"), iface(1, "lo")]);
        assert_eq!(unique.len(), 2);
        assert!(repeated.is_empty());
    }

    #[test]
    fn exit_code_is_the_commands_only_when_it_ended_the_recording() {
        use std::os::unix::process::ExitStatusExt;
        // Raw wait statuses: exit code in the second byte, terminating signal in the first.
        let exited = |code: i32| std::process::ExitStatus::from_raw(code << 8);
        let killed = std::process::ExitStatus::from_raw(libc::SIGKILL);
        assert_eq!(Stop::CommandExited(exited(0)).exit_code(), 0);
        assert_eq!(Stop::CommandExited(exited(7)).exit_code(), 7);
        assert_eq!(Stop::CommandExited(killed).exit_code(), 128 + 9);
        // Stopped on purpose by l7rec: the recording is what counts.
        assert_eq!(Stop::Signal(libc::SIGTERM).exit_code(), 0);
        assert_eq!(Stop::Duration.exit_code(), 0);
        assert_eq!(Stop::Count.exit_code(), 0);
    }

    #[test]
    fn default_attribution_is_connections_with_calls_as_fallback() {
        assert_eq!(
            trace_modes(false, None),
            [TraceMode::Connections, TraceMode::Calls]
        );
        assert_eq!(
            trace_modes(false, Some(SyscallMode::Calls)),
            [TraceMode::Calls]
        );
        assert_eq!(
            trace_modes(false, Some(SyscallMode::Connections)),
            [TraceMode::Connections]
        );
        assert!(trace_modes(false, Some(SyscallMode::Off)).is_empty());
        assert!(trace_modes(true, None).is_empty());
    }
}
