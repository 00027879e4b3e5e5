//! Replays the committed fuzz corpus `fixtures/fuzz/http/` (minimized with
//! `cargo fuzz cmin`, crashers included) through the `http` fuzz harness, so
//! the stable test suite exercises the fuzz target's code paths and checks.

#[path = "../../../fuzz/harness/http.rs"]
mod harness;
#[path = "../../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn replay_http_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/fuzz/http");
    replay::replay_corpus(&dir, harness::run);
}
