//! `l7rec`: record HTTP traffic with eBPF into pcapng, analyze captures offline.

mod afpacket;
mod bpf;

fn main() {}
