//! File offsets of exported functions of a shared library, for uprobe.multi links.
//!
//! libbpf 1.7 resolves uprobe.multi symbol names itself but fails on every stripped
//! library (no `.symtab`: it reports ENOENT after finding them all in `.dynsym`; libbpf
//! issue #953), which is what distributions ship. So the recorder looks the functions up
//! in `.dynsym` here and hands libbpf offsets. Only 64-bit little-endian ELF is read.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

const SHT_DYNSYM: u32 = 11;
const PT_LOAD: u32 = 1;
const STT_FUNC: u8 = 2;
const SYM_SIZE: usize = 24;

/// The file offset of each function of `names` in the ELF file at `path`, in order.
pub fn function_offsets(path: &Path, names: &[&str]) -> Result<Vec<u64>> {
    let file = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    offsets_in(&file, names).with_context(|| format!("reading ELF symbols of {}", path.display()))
}

fn offsets_in(file: &[u8], names: &[&str]) -> Result<Vec<u64>> {
    let elf = Elf { file };
    if file.get(..4) != Some(b"\x7fELF".as_slice()) || elf.u8(4)? != 2 || elf.u8(5)? != 1 {
        bail!("not a 64-bit little-endian ELF file");
    }
    let mut found: Vec<Option<u64>> = vec![None; names.len()];
    let (shoff, shentsize, shnum) = (elf.u64(0x28)?, elf.u16(0x3a)?, elf.u16(0x3c)?);
    for i in 0..u64::from(shnum) {
        let sh = shoff + i * u64::from(shentsize);
        if elf.u32(sh + 4)? != SHT_DYNSYM {
            continue;
        }
        let (syms, size, strtab) = (
            elf.u64(sh + 0x18)?,
            elf.u64(sh + 0x20)?,
            elf.u32(sh + 0x28)?,
        );
        let strsh = shoff + u64::from(strtab) * u64::from(shentsize);
        let strings = elf.u64(strsh + 0x18)?;
        for s in (syms..syms + size).step_by(SYM_SIZE) {
            let (info, shndx, value) = (elf.u8(s + 4)?, elf.u16(s + 6)?, elf.u64(s + 8)?);
            if info & 0xf != STT_FUNC || shndx == 0 {
                continue;
            }
            let name = elf.c_str(strings + u64::from(elf.u32(s)?))?;
            if let Some(k) = names.iter().position(|n| n.as_bytes() == name) {
                found[k] = Some(elf.file_offset(value)?);
            }
        }
    }
    names
        .iter()
        .zip(found)
        .map(|(n, off)| off.ok_or_else(|| anyhow!("no exported function {n}")))
        .collect()
}

/// Bounds-checked little-endian reads.
struct Elf<'a> {
    file: &'a [u8],
}

impl Elf<'_> {
    fn bytes<const N: usize>(&self, at: u64) -> Result<[u8; N]> {
        usize::try_from(at)
            .ok()
            .and_then(|at| self.file.get(at..at.checked_add(N)?))
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("truncated at byte {at}"))
    }

    fn u8(&self, at: u64) -> Result<u8> {
        Ok(self.bytes::<1>(at)?[0])
    }

    fn u16(&self, at: u64) -> Result<u16> {
        self.bytes(at).map(u16::from_le_bytes)
    }

    fn u32(&self, at: u64) -> Result<u32> {
        self.bytes(at).map(u32::from_le_bytes)
    }

    fn u64(&self, at: u64) -> Result<u64> {
        self.bytes(at).map(u64::from_le_bytes)
    }

    fn c_str(&self, at: u64) -> Result<&[u8]> {
        let rest = usize::try_from(at)
            .ok()
            .and_then(|at| self.file.get(at..))
            .ok_or_else(|| anyhow!("string out of bounds at byte {at}"))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| anyhow!("unterminated string at byte {at}"))?;
        Ok(&rest[..end])
    }

    /// Where the loadable segment holding virtual address `vaddr` keeps it in the file.
    fn file_offset(&self, vaddr: u64) -> Result<u64> {
        let (phoff, phentsize, phnum) = (self.u64(0x20)?, self.u16(0x36)?, self.u16(0x38)?);
        for i in 0..u64::from(phnum) {
            let ph = phoff + i * u64::from(phentsize);
            if self.u32(ph)? != PT_LOAD {
                continue;
            }
            let (offset, start, filesz) = (
                self.u64(ph + 8)?,
                self.u64(ph + 0x10)?,
                self.u64(ph + 0x20)?,
            );
            if (start..start.saturating_add(filesz)).contains(&vaddr) {
                return Ok(vaddr - start + offset);
            }
        }
        bail!("address {vaddr:#x} is in no loadable segment")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    /// The bytes at the resolved file offset are the function's code as the dynamic
    /// loader mapped it (code is position-independent: not relocated).
    #[test]
    fn offsets_point_at_the_code_the_loader_maps() {
        let Some(lib) = crate::tls::find_libssl() else {
            eprintln!("skipped: no libssl.so.3 on this machine");
            return;
        };
        let names = ["SSL_read", "SSL_write_ex", "SSL_free"];
        let offsets = function_offsets(&lib, &names).expect("offsets");
        let file = std::fs::read(&lib).expect("read libssl");
        let path = CString::new(lib.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: loading libssl runs only its (side-effect free) initializers.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
        assert!(!handle.is_null(), "dlopen {}", lib.display());
        for (name, off) in names.iter().zip(offsets) {
            let c = CString::new(*name).expect("name");
            // SAFETY: handle is a loaded library; the symbol is a function of it.
            let addr = unsafe { libc::dlsym(handle, c.as_ptr()) };
            assert!(!addr.is_null(), "{name}");
            // SAFETY: the function's first 16 bytes are mapped, readable code.
            let code = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), 16) };
            let at = off as usize;
            assert_eq!(&file[at..at + 16], code, "{name} at file offset {off:#x}");
        }
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        assert!(offsets_in(b"", &["f"]).is_err());
        assert!(offsets_in(b"\x7fELF\x02\x01", &["f"]).is_err());
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        // No sections: the function is missing, said so.
        let err = offsets_in(&elf, &["SSL_read"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("no exported function SSL_read"),
            "{err:#}"
        );
        // Section headers beyond the end of the file.
        elf[0x28..0x30].copy_from_slice(&1000u64.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&1u16.to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        assert!(offsets_in(&elf, &["SSL_read"]).is_err());
    }
}
