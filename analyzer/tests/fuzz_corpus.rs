//! Replays the committed fuzz corpus `fixtures/fuzz/analyzer_pcap/` (minimized with
//! `cargo fuzz cmin`, crashers included) through the `analyzer_pcap` fuzz harness, so
//! the stable test suite exercises the fuzz target's code paths and checks.

#[path = "../../fuzz/harness/analyzer_pcap.rs"]
mod harness;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn replay_analyzer_pcap_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fuzz/analyzer_pcap");
    replay::replay_corpus(&dir, harness::run);
}
