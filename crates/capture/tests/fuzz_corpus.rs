//! Replays the committed fuzz corpus `fixtures/fuzz/capture_reader/` (minimized with
//! `cargo fuzz cmin`, crashers included) through the `capture_reader` fuzz harness, so
//! the stable test suite exercises the fuzz target's code paths and checks.

#[path = "../../../fuzz/harness/capture_reader.rs"]
mod harness;

#[test]
fn replay_capture_reader_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/fuzz/capture_reader");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory exists") {
        let path = entry.expect("readable directory").path();
        let data = std::fs::read(&path).expect("readable corpus file");
        let result = std::panic::catch_unwind(|| harness::run(&data));
        assert!(result.is_ok(), "{} fails", path.display());
        n += 1;
    }
    assert!(n > 0, "empty corpus in {}", dir.display());
}
