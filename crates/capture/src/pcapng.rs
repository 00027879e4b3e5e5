//! pcapng wire constants and block encoding (little-endian sections).

/// Section Header Block type.
pub const BT_SHB: u32 = 0x0A0D_0D0A;
/// Interface Description Block type.
pub const BT_IDB: u32 = 0x0000_0001;
/// Simple Packet Block type.
pub const BT_SPB: u32 = 0x0000_0003;
/// Interface Statistics Block type.
pub const BT_ISB: u32 = 0x0000_0005;
/// Enhanced Packet Block type.
pub const BT_EPB: u32 = 0x0000_0006;
/// Custom Block type (may be copied by editors).
pub const BT_CUSTOM: u32 = 0x0000_0BAD;
/// Custom Block type (must not be copied by editors).
pub const BT_CUSTOM_NOCOPY: u32 = 0x4000_0BAD;
/// Byte-order magic of the SHB.
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Private Enterprise Number that identifies l7rec's custom blocks. 32473 is the
/// documentation PEN of RFC 5612, used until l7rec has a registered one.
pub const L7REC_PEN: u32 = 32473;

pub(crate) const OPT_ENDOFOPT: u16 = 0;
pub(crate) const OPT_COMMENT: u16 = 1;
pub(crate) const SHB_HARDWARE: u16 = 2;
pub(crate) const SHB_OS: u16 = 3;
pub(crate) const SHB_USERAPPL: u16 = 4;
pub(crate) const IF_NAME: u16 = 2;
pub(crate) const IF_DESCRIPTION: u16 = 3;
pub(crate) const IF_TSRESOL: u16 = 9;
pub(crate) const IF_TSOFFSET: u16 = 14;
pub(crate) const EPB_FLAGS: u16 = 2;
pub(crate) const EPB_PROCESSID_THREADID: u16 = 8;
pub(crate) const ISB_STARTTIME: u16 = 2;
pub(crate) const ISB_ENDTIME: u16 = 3;
pub(crate) const ISB_IFRECV: u16 = 4;
pub(crate) const ISB_IFDROP: u16 = 5;
pub(crate) const ISB_FILTERACCEPT: u16 = 6;
pub(crate) const ISB_OSDROP: u16 = 7;
pub(crate) const ISB_USRDELIV: u16 = 8;

/// Builds one block at the end of a buffer (where it will be written from, so the
/// packet bytes are copied once): header, body, padding, options, trailer.
pub(crate) struct BlockBuf<'a> {
    buf: &'a mut Vec<u8>,
    /// Where the block starts in `buf`.
    start: usize,
    has_options: bool,
}

impl<'a> BlockBuf<'a> {
    /// Starts a block of type `block_type` at the end of `buf`.
    pub(crate) fn start(buf: &'a mut Vec<u8>, block_type: u32) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&block_type.to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        BlockBuf {
            buf,
            start,
            has_options: false,
        }
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A 64-bit timestamp as pcapng stores it: high word, then low word.
    pub(crate) fn ts(&mut self, v: u64) -> &mut Self {
        self.u32((v >> 32) as u32).u32(v as u32)
    }

    /// Raw bytes followed by zero padding to a 32-bit boundary.
    pub(crate) fn padded(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    /// Appends to the body without padding (for fields built in pieces).
    pub(crate) fn bytes_mut(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    pub(crate) fn pad(&mut self) {
        let rem = (self.buf.len() - self.start) % 4;
        if rem != 0 {
            self.buf.extend_from_slice(&[0; 3][..4 - rem]);
        }
    }

    /// One option; values longer than 65535 bytes are cut (pcapng's limit).
    pub(crate) fn opt(&mut self, code: u16, value: &[u8]) -> &mut Self {
        let value = &value[..value.len().min(usize::from(u16::MAX))];
        self.has_options = true;
        self.u16(code).u16(value.len() as u16).padded(value)
    }

    /// A UTF-8 string option, cut on a character boundary if too long.
    pub(crate) fn opt_str(&mut self, code: u16, value: &str) -> &mut Self {
        let mut end = value.len().min(usize::from(u16::MAX));
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        self.opt(code, &value.as_bytes()[..end])
    }

    pub(crate) fn opt_u64(&mut self, code: u16, v: u64) -> &mut Self {
        self.opt(code, &v.to_le_bytes())
    }

    /// Closes the options list and writes both length fields; returns the block's
    /// length.
    pub(crate) fn finish(mut self) -> usize {
        if self.has_options {
            self.u16(OPT_ENDOFOPT).u16(0);
        }
        let total = self.buf.len() + 4 - self.start;
        let total_le = (total as u32).to_le_bytes();
        self.buf.extend_from_slice(&total_le);
        self.buf[self.start + 4..self.start + 8].copy_from_slice(&total_le);
        total
    }
}
