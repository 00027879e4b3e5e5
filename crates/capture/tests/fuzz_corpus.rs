//! Replays the committed fuzz corpus `fixtures/fuzz/capture_reader/` (minimized with
//! `cargo fuzz cmin`, crashers included) through the `capture_reader` fuzz harness, so
//! the stable test suite exercises the fuzz target's code paths and checks.

#[path = "../../../fuzz/harness/capture_reader.rs"]
mod harness;
#[path = "../../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn replay_capture_reader_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/fuzz/capture_reader");
    replay::replay_corpus(&dir, harness::run);
}
