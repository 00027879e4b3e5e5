//! Replays the committed fuzz corpus `fixtures/fuzz/reassembly/` (minimized with
//! `cargo fuzz cmin`, crashers included) through the `reassembly` fuzz harness, so
//! the stable test suite exercises the fuzz target's code paths and checks.

#[path = "../../../fuzz/harness/reassembly.rs"]
mod harness;
#[path = "../../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn replay_reassembly_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/fuzz/reassembly");
    replay::replay_corpus(&dir, harness::run);
}
