//! BPF skeleton loader (in progress).
