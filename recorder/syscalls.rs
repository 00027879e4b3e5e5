#![allow(dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/syscalls.skel.rs"));
}
