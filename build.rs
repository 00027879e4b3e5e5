//! Compiles every `bpf/*.bpf.c` into a libbpf-rs skeleton in `OUT_DIR`
//! (`<name>.skel.rs`), against a `vmlinux.h` dumped from the build machine's BTF.
//!
//! Needs clang and bpftool (Debian: `clang bpftool libelf-dev zlib1g-dev pkg-config`).

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=bpf");

    let vmlinux = out.join("vmlinux.h");
    dump_vmlinux_h(&vmlinux);

    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => panic!("unsupported target arch for BPF: {other}"),
        Err(e) => panic!("CARGO_CFG_TARGET_ARCH: {e}"),
    };
    let mut sources: Vec<PathBuf> = fs::read_dir("bpf")
        .expect("read bpf/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    for src in sources {
        let file = src.file_name().and_then(OsStr::to_str).expect("utf-8 name");
        let name = file.trim_end_matches(".bpf.c");
        let skel = out.join(format!("{name}.skel.rs"));
        SkeletonBuilder::new()
            .source(&src)
            .clang_args([
                OsStr::new("-I"),
                out.as_os_str(),
                OsStr::new("-I"),
                OsStr::new("bpf"),
                OsStr::new(&format!("-D__TARGET_ARCH_{arch}")),
                OsStr::new("-Wall"),
            ])
            .build_and_generate(&skel)
            .unwrap_or_else(|e| panic!("compiling {}: {e:#}", src.display()));
    }
}

/// `bpftool btf dump file /sys/kernel/btf/vmlinux format c`, the CO-RE header.
fn dump_vmlinux_h(dest: &Path) {
    println!("cargo:rerun-if-changed={KERNEL_BTF}");
    let output = Command::new("bpftool")
        .args(["btf", "dump", "file", KERNEL_BTF, "format", "c"])
        .output()
        .unwrap_or_else(|e| {
            panic!("running bpftool (apt-get install bpftool) to dump {KERNEL_BTF}: {e}")
        });
    if !output.status.success() {
        panic!(
            "bpftool btf dump {KERNEL_BTF} failed (kernel without BTF?): {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    fs::write(dest, output.stdout).expect("write vmlinux.h");
}
