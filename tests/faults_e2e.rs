//! The recorder under faults: two recorders side by side release every BPF program
//! and link they held; under overload (the recorder frozen while traffic flows) every
//! lost packet is counted exactly, the recorder stays responsive and its memory bounded.
//! Its output file: a failed start leaves it as it was, a second recorder on it is
//! refused, a full disk leaves it complete up to the last flush.
//!
//! Needs root, iproute2, nginx, curl, bpftool, zstd, mount. Each test has its own
//! namespace.

#[path = "common/e2e.rs"]
mod e2e;
#[path = "common/netns.rs"]
mod netns;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use e2e::*;
use netns::{require_tools, Netns};

const PORT: u16 = 8080;

/// BPF program and link ids a process holds open (from /proc/PID/fdinfo).
fn bpf_ids(pid: u32) -> (BTreeSet<u32>, BTreeSet<u32>) {
    let (mut progs, mut links) = (BTreeSet::new(), BTreeSet::new());
    let dir = format!("/proc/{pid}/fdinfo");
    for entry in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
    {
        let Ok(info) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in info.lines() {
            let mut kv = line.split(':').map(str::trim);
            match (kv.next(), kv.next().and_then(|v| v.parse().ok())) {
                (Some("prog_id"), Some(id)) => {
                    progs.insert(id);
                }
                (Some("link_id"), Some(id)) => {
                    links.insert(id);
                }
                _ => {}
            }
        }
    }
    (progs, links)
}

/// Whether `bpftool OBJ show id ID` still finds the object.
fn bpf_object_exists(obj: &str, id: u32) -> bool {
    Command::new("bpftool")
        .args([obj, "show", "id", &id.to_string()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or_else(|e| panic!("running bpftool: {e}"))
}

fn tracefs_mounts() -> usize {
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("tracefs"))
        .count()
}

fn assert_clean_exit(exit: &RecorderExit, what: &str) {
    assert!(
        exit.status.success(),
        "{what}: exit {}: {}",
        exit.status,
        exit.stderr
    );
}

#[test]
fn two_recorders_side_by_side_release_everything() {
    require_tools(&["ip", "nginx", "curl", "bpftool"]);
    let mounts_before = tracefs_mounts();
    let ns = Netns::new();
    let www = Docroot::new();
    let _nginx = Nginx::start(&ns, &www, &[PORT]);
    let dir = temp_dir();
    let (out1, out2) = (dir.path().join("one.pcapng"), dir.path().join("two.pcapng"));
    let mut rec1 = Recorder::start(&ns, &out1, &[]);
    rec1.wait_ready(secs(10));
    // The second one in the other attribution mode: both sets of programs must go.
    let mut rec2 = Recorder::start(&ns, &out2, &["--syscalls", "calls"]);
    rec2.wait_ready(secs(10));
    let (progs1, links1) = bpf_ids(rec1.pid());
    let (progs2, links2) = bpf_ids(rec2.pid());
    assert!(
        !progs1.is_empty() && !links1.is_empty(),
        "recorder 1 holds no BPF objects?"
    );
    assert!(
        progs1.is_disjoint(&progs2),
        "the recorders share programs: {progs1:?} {progs2:?}"
    );

    for i in 0..3 {
        let run = curl(
            &ns,
            &[&format!(
                "http://127.0.0.1:{PORT}/index.html?side-by-side={i}"
            )],
        );
        assert_eq!(run.http_code, 200);
    }
    thread::sleep(Duration::from_millis(300));
    let exit1 = rec1.stop(libc::SIGINT, secs(10));
    let exit2 = rec2.stop(libc::SIGTERM, secs(10));
    assert_clean_exit(&exit1, "recorder 1");
    assert_clean_exit(&exit2, "recorder 2");

    for out in [&out1, &out2] {
        let a = analyze_json(out);
        for i in 0..3 {
            let uri = format!("/index.html?side-by-side={i}");
            assert_eq!(
                a.by_uri(&uri).len(),
                1,
                "{}: {uri} missing:\n{}",
                out.display(),
                a.listing()
            );
        }
    }
    // Every program and link either recorder held is gone with it (the kernel frees
    // them after an RCU grace period, so allow it a moment).
    let held: Vec<(&str, u32)> = progs1
        .iter()
        .chain(&progs2)
        .map(|id| ("prog", *id))
        .chain(links1.iter().chain(&links2).map(|id| ("link", *id)))
        .collect();
    let deadline = std::time::Instant::now() + secs(5);
    loop {
        let alive: Vec<_> = held
            .iter()
            .filter(|(o, id)| bpf_object_exists(o, *id))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "BPF objects outlived their recorders: {alive:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        tracefs_mounts(),
        mounts_before,
        "a tracefs mount was left behind"
    );
}

/// `VmHWM` (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

#[test]
fn overload_drops_are_counted_exactly_and_the_recorder_stays_responsive() {
    require_tools(&["ip", "nginx", "curl"]);
    let ns = Netns::new();
    let www = Docroot::new();
    let _nginx = Nginx::start(&ns, &www, &[PORT]);
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let mut rec = Recorder::start(&ns, &out, &["--port", &PORT.to_string()]);
    rec.wait_ready(secs(10));

    // Freeze the recorder while ~180 MB cross lo: far more than its 64 MiB ring holds.
    rec.signal(libc::SIGSTOP);
    let url = format!("http://127.0.0.1:{PORT}/big.bin");
    let urls: Vec<&str> = std::iter::repeat_n(url.as_str(), 200).collect();
    for _ in 0..3 {
        let mut args = vec!["-sS"];
        for u in &urls {
            args.extend(["-o", "/dev/null", u]);
        }
        ns.run(&[&["curl"][..], &args].concat(), secs(60));
    }
    rec.signal(libc::SIGCONT);
    thread::sleep(Duration::from_millis(500));
    let peak = peak_rss_kib(rec.pid());
    let exit = rec.stop(libc::SIGINT, secs(10));
    assert_clean_exit(&exit, "recorder");
    assert!(
        exit.took < secs(5),
        "the recorder took {:?} to stop after overload",
        exit.took
    );
    // The 64 MiB ring is mapped into the process; everything else must stay small.
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB under overload");

    let contents = read_capture(&out);
    assert_eq!(contents.error, None, "the file must read cleanly");
    let isb = contents
        .last_isb
        .get(&0)
        .expect("an interface statistics block");
    let (accepted, dropped, delivered) = (
        isb.filter_accept.expect("isb_filteraccept"),
        isb.os_drop.expect("isb_osdrop"),
        isb.usr_deliv.expect("isb_usrdeliv"),
    );
    assert!(
        dropped > 0,
        "overload produced no drops? {isb:?}\n{}",
        exit.stderr
    );
    // Every packet the filter accepted was either delivered or counted as dropped.
    assert_eq!(accepted, delivered + dropped, "{isb:?}");
    // The file has exactly the delivered packets (the handshakes of these keep-alive
    // connections were all kept, being HTTP).
    assert_eq!(contents.packets as u64, delivered, "{isb:?}");
    let stats = contents.stats.last().expect("a statistics record");
    let src = stats
        .sources
        .iter()
        .find(|s| s.name.starts_with("packets:"))
        .expect("a packet source in the statistics");
    assert_eq!(
        (src.received, src.dropped),
        (accepted, dropped),
        "{stats:?}"
    );
    assert!(
        exit.stderr.contains(&format!("drops: {dropped} packets")),
        "the summary must state the {dropped} dropped packets:\n{}",
        exit.stderr
    );
    // The analyzer sees the damage as gaps, and says so.
    let (status, summary, _) = analyze_summary(&out);
    assert!(status.success());
    assert!(
        summary.contains(&format!("{dropped}  dropped by the recorder: packets:lo")),
        "{summary}"
    );
}

/// `l7rec record -o OUT ARGS...` in `ns`, to its end (at most 30 s).
fn record_to_end(ns: &Netns, out: &Path, args: &[&str]) -> Output {
    let out = out.display().to_string();
    let mut full = vec![L7REC, "record", "-o", &out];
    full.extend_from_slice(args);
    ns.run_status(&full, secs(30))
}

#[test]
fn a_failed_start_leaves_the_output_as_it_was() {
    require_tools(&["ip"]);
    let ns = Netns::new();
    let dir = temp_dir();
    // The last two fail after the output is opened (TLS set-up, the command's spawn);
    // the first ones before it: a snap length no pcap reader takes (it used to fail at
    // the packet ring, naming the ring's block size instead of -s), a pid that
    // does not exist (the u32 maximum is above any pid_max).
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["-s", "999999999"],
            2,
            "'--snaplen <BYTES>': 999999999 is not in 64..=262144",
        ),
        (
            &["--pid", "4294967295"],
            125,
            "l7rec: error: --pid 4294967295: no such process",
        ),
        (
            &["--ssl-lib", "/nonexistent/libssl.so"],
            125,
            "l7rec: error:",
        ),
        (&["--", "/nonexistent/cmd"], 127, "l7rec: error:"),
    ];
    for (args, code, message) in cases {
        let keep = dir.path().join("keep.txt");
        write_file_mode(&keep, b"precious\n", 0o644);
        let o = record_to_end(&ns, &keep, args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::read(&keep).expect("keep.txt must survive"),
            b"precious\n",
            "{args:?}: a failed start destroyed the existing file"
        );
        assert_eq!(
            std::fs::metadata(&keep)
                .map(|m| m.permissions().mode() & 0o777)
                .ok(),
            Some(0o644),
            "{args:?}: a failed start changed the file's mode"
        );

        let new = dir.path().join("new.pcapng");
        let o = record_to_end(&ns, &new, args);
        assert_eq!(o.status.code(), Some(code), "{args:?}");
        assert!(
            !new.exists(),
            "{args:?}: a failed start left {} behind",
            new.display()
        );
    }
}

#[test]
fn a_second_recorder_on_the_same_file_is_refused() {
    require_tools(&["ip", "nginx", "curl"]);
    let ns = Netns::new();
    let www = Docroot::new();
    let _nginx = Nginx::start(&ns, &www, &[PORT]);
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let mut first = Recorder::start(&ns, &out, &[]);
    first.wait_ready(secs(10));
    // Bounded in case it is not refused: then it records 3 s and exits 0.
    let second = record_to_end(&ns, &out, &["--duration", "3s"]);
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(
        second.status.code(),
        Some(125),
        "a second recorder on the same file must fail: {said}"
    );
    assert!(
        said.contains(&out.display().to_string()) && said.contains("another"),
        "the error must name the file and say it is in use: {said}"
    );
    let run = curl(
        &ns,
        &[&format!("http://127.0.0.1:{PORT}/index.html?first=1")],
    );
    assert_eq!(run.http_code, 200);
    thread::sleep(Duration::from_millis(300));
    let exit = first.stop(libc::SIGINT, secs(10));
    assert_clean_exit(&exit, "the first recorder");
    // The first recorder's file is whole: nothing of the second one's in it.
    let contents = read_capture(&out);
    assert_eq!(contents.error, None, "the file must read cleanly");
    assert_eq!(contents.last_event, "records:Stats", "{contents:?}");
    let a = analyze_json(&out);
    assert!(a.status.success() && a.stderr.is_empty(), "{}", a.stderr);
    assert_eq!(a.by_uri("/index.html?first=1").len(), 1, "{}", a.listing());
}

/// Fills a 2 MiB disk through a recorder run with `args`; returns its exit and the file.
fn fill_disk(ns: &Netns, fs: &Tmpfs, args: &[&str]) -> (RecorderExit, std::path::PathBuf) {
    let out = fs.path().join("cap.pcapng");
    let mut rec = Recorder::start(ns, &out, args);
    rec.wait_ready(secs(10));
    let deadline = Instant::now() + secs(60);
    for n in 0.. {
        // Ten downloads a round: big.bin compresses well, the disk takes many.
        let urls: Vec<String> = (0..10)
            .map(|i| format!("http://127.0.0.1:{PORT}/big.bin?n={n}-{i}"))
            .collect();
        let mut args = vec!["curl", "-sS"];
        for u in &urls {
            args.extend(["-o", "/dev/null", u.as_str()]);
        }
        ns.run(&args, secs(30));
        // Paced so that flushes (every second at most) fall between rounds: the file is
        // cut back to the last one, so a disk filled within a second holds nothing.
        thread::sleep(Duration::from_millis(250));
        if let Some(exit) = rec.try_wait() {
            return (exit, out);
        }
        assert!(
            Instant::now() < deadline,
            "the 2 MiB disk never filled after {n} rounds of downloads; recorder said:\n{}",
            rec.stderr()
        );
    }
    unreachable!("the loop returns or fails")
}

/// The recorder's claim on a full disk holds: the file, cut back to the last flush,
/// is a complete zstd stream (no frame cut in half) and reads without any warning.
#[test]
fn a_full_disk_leaves_a_complete_zstd_file() {
    require_tools(&["ip", "nginx", "curl", "zstd", "mount", "umount"]);
    let ns = Netns::new();
    let www = Docroot::new();
    let _nginx = Nginx::start(&ns, &www, &[PORT]);
    let fs = Tmpfs::mount("2m");
    let (exit, out) = fill_disk(&ns, &fs, &[]);
    assert_eq!(exit.status.code(), Some(125), "{}", exit.stderr);
    let t = run_with_timeout(Command::new("zstd").arg("-tq").arg(&out), secs(30));
    assert!(
        t.status.success(),
        "zstd -t must accept the file: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    let contents = read_capture(&out);
    assert_eq!(contents.error, None, "the file must read cleanly");
    assert!(contents.packets > 0, "{contents:?}");
    let a = analyze_json(&out);
    assert!(
        a.status.success() && a.stderr.is_empty(),
        "analyze must read the file without a warning: {}",
        a.stderr
    );
    assert!(
        a.rows.iter().any(|r| r["status"].as_u64() == Some(200)),
        "no complete transaction before the failure:\n{}",
        a.listing()
    );
    assert!(
        exit.stderr.contains("No space left on device")
            && exit.stderr.contains("cut back to the last flush"),
        "the error must name the full disk and the cut: {}",
        exit.stderr
    );
}
