//! Small file-system helpers shared by the subcommands.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Whether `a` and `b` name the same file: by device and inode when both exist (other
/// names, links), else by path.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_recognized_under_another_name() {
        let dir = tempfile::tempdir().unwrap();
        let cap = dir.path().join("cap.pcap");
        std::fs::write(&cap, b"x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(same_file(&cap, &dir.path().join("sub/../cap.pcap")));
        assert!(!same_file(&cap, &dir.path().join("new.json")));
    }
}
