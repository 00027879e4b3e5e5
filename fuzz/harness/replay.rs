//! Replays a committed corpus directory through a harness; shared by the stable
//! `fuzz_corpus` tests of each crate.

use std::path::Path;

/// Runs `run` on every file of `dir`, failing with the file's name on a panic.
pub fn replay_corpus(dir: &Path, run: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("the corpus directory exists") {
        let path = entry.expect("readable directory").path();
        let data = std::fs::read(&path).expect("readable corpus file");
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{} fails", path.display());
        n += 1;
    }
    assert!(n > 0, "empty corpus in {}", dir.display());
}
