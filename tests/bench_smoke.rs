//! The benchmark scripts (`scripts/bench/`) in their smoke mode, so they keep working:
//! tiny inputs, one round, figures not checked (benchmarks are not timed tests), but
//! every configuration must run and find every request.

use std::path::Path;
use std::process::Command;

fn run_script(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .args(args)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One test for both: each builds the release binaries and loads the machine, so they
/// run one after the other.
#[test]
fn benchmark_scripts_smoke() {
    let analyzer = run_script(&["scripts/bench/analyzer.sh", "--smoke"]);
    assert!(
        analyzer.contains("request counts: OK"),
        "l7rec, tshark and the generator disagree:\n{analyzer}"
    );
    assert!(
        analyzer.contains("the machine's ceiling") && analyzer.contains("share of that ceiling"),
        "no side-by-side ceiling beside the speed-up:\n{analyzer}"
    );

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping the recorder benchmark smoke run: needs root (netns, BPF)");
        return;
    }
    let recorder = run_script(&["scripts/bench/recorder.sh", "--smoke", "--floor"]);
    assert!(
        recorder.contains("floor throughput / none: "),
        "no figures for the read-only ring consumer:\n{recorder}"
    );
    for config in ["l7rec", "l7rec-calls"] {
        let line = recorder
            .lines()
            .find(|l| l.starts_with(&format!("{config} drops (per round)")))
            .unwrap_or_else(|| panic!("no drops line for {config}:\n{recorder}"));
        assert!(
            line.contains("packets [ 0 ]") && line.contains("syscall events [ 0 ]"),
            "{config} dropped at smoke load: {line}"
        );
    }
    // Found / requested, in %: the smoke run is 2 s long, so allow edge effects but
    // not a broken recorder.
    for line in recorder.lines().filter(|l| l.contains("completeness")) {
        let found: Vec<f64> = line
            .split(['[', ']'])
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        assert!(
            !found.is_empty() && found.iter().all(|&p| p >= 99.0),
            "transactions missing: {line}\n{recorder}"
        );
    }
}
