//! `l7rec`: record HTTP traffic with eBPF into pcapng, analyze captures offline.

mod afpacket;
mod bpf;
mod syscalls;

fn main() {}
