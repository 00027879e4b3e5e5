//! A zstd compression context that reads a frame's input in place.
//!
//! zstd's streaming API copies all input into a window buffer of its own before
//! compressing it (`ZSTD_limitCopy`: about 9 % of the recorder's CPU). With
//! `ZSTD_c_stableInBuffer` it compresses straight out of the caller's buffer instead,
//! and keeps pointing into it for matches until the frame ends; `zstd-safe` refuses
//! that mode because a borrowed slice cannot promise to stay put. [`InPlaceCCtx`]
//! owns the frame's input buffer for that reason and enforces the rules itself:
//! the buffer is only appended to while a frame is open, and a frame whose buffer
//! moved (a reallocation) is never handed to zstd again: it is abandoned with
//! [`InPlaceCCtx::reset`], which does not read the input.

use std::ffi::CStr;
use std::io;
use std::ptr::NonNull;

use zstd_sys::{ZSTD_EndDirective, ZSTD_cParameter, ZSTD_inBuffer, ZSTD_outBuffer};

/// `ZSTD_c_stableInBuffer` (experimental in zstd 1.5, hence not named by the bindings).
const ZSTD_C_STABLE_IN_BUFFER: ZSTD_cParameter = ZSTD_cParameter::ZSTD_c_experimentalParam9;

/// What to do after the input: as zstd's `ZSTD_EndDirective`, without `continue`
/// (which in stable mode may keep input pending, see [`InPlaceCCtx::compress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// End the current block: every byte given so far is in the output.
    Block,
    /// End the frame.
    Frame,
}

/// A `ZSTD_CCtx` in stable-input mode; see the module documentation.
pub(crate) struct InPlaceCCtx {
    cctx: NonNull<zstd_sys::ZSTD_CCtx>,
    /// Where the open frame's input lives and how much of it zstd was given; `None`
    /// between frames.
    frame: Option<(*const u8, usize)>,
}

// SAFETY: a ZSTD_CCtx has no thread affinity; it is used through `&mut self` only.
unsafe impl Send for InPlaceCCtx {}

fn check(code: usize) -> io::Result<usize> {
    // SAFETY: ZSTD_isError and ZSTD_getErrorName take any value and return a static
    // C string.
    unsafe {
        if zstd_sys::ZSTD_isError(code) == 0 {
            return Ok(code);
        }
        let name = CStr::from_ptr(zstd_sys::ZSTD_getErrorName(code));
        Err(io::Error::other(format!(
            "zstd: {}",
            name.to_string_lossy()
        )))
    }
}

impl InPlaceCCtx {
    /// A context with these parameters (`ZSTD_cParameter`, value), in stable-input mode.
    pub(crate) fn new(params: &[(ZSTD_cParameter, i32)]) -> io::Result<Self> {
        // SAFETY: no preconditions; a null result is handled.
        let raw = unsafe { zstd_sys::ZSTD_createCCtx() };
        let cctx = NonNull::new(raw).ok_or_else(|| io::Error::other("zstd: out of memory"))?;
        let ctx = InPlaceCCtx { cctx, frame: None };
        for &(p, v) in params.iter().chain(&[(ZSTD_C_STABLE_IN_BUFFER, 1)]) {
            // SAFETY: a live context; zstd validates the parameter and value.
            check(unsafe { zstd_sys::ZSTD_CCtx_setParameter(ctx.cctx.as_ptr(), p, v) })?;
        }
        Ok(ctx)
    }

    /// How much input the open frame was given; `None` between frames.
    pub(crate) fn given(&self) -> Option<usize> {
        self.frame.map(|(_, given)| given)
    }

    /// Compresses what `input` holds beyond what the open frame was given (all of it
    /// for a new frame), and ends a block or the frame; appends the output to `out`.
    /// Within a frame, `input` must be the same buffer every time, grown only at its
    /// end: otherwise this returns an error without calling zstd (the frame is then
    /// lost: [`reset`](Self::reset)).
    pub(crate) fn compress(&mut self, input: &[u8], end: End, out: &mut Vec<u8>) -> io::Result<()> {
        let given = self.given().unwrap_or(0);
        if self.moved(input) || given > input.len() {
            return Err(io::Error::other(
                "zstd: the frame's input moved or shrank while zstd still refers to it",
            ));
        }
        let directive = match end {
            End::Block => ZSTD_EndDirective::ZSTD_e_flush,
            End::Frame => ZSTD_EndDirective::ZSTD_e_end,
        };
        let mut src = ZSTD_inBuffer {
            src: input.as_ptr().cast(),
            size: input.len(),
            pos: given,
        };
        // The pointer is only recorded, never dereferenced by us.
        self.frame = Some((input.as_ptr(), input.len()));
        loop {
            // SAFETY: a compress bound has no preconditions.
            let room = unsafe { zstd_sys::ZSTD_compressBound(input.len() - src.pos) } + 1024;
            out.reserve(room);
            let mut dst = ZSTD_outBuffer {
                dst: out.as_mut_ptr().cast(),
                size: out.capacity(),
                pos: out.len(),
            };
            // SAFETY: `src` describes `input`, live for this call; in stable mode zstd
            // also reads the frame's earlier input through pointers into the same
            // buffer, which the check above proved unmoved and which callers only grow
            // (the frame's bytes before `input.len()` stay as they were). `dst`
            // describes the spare capacity of `out`.
            let left = check(unsafe {
                zstd_sys::ZSTD_compressStream2(self.cctx.as_ptr(), &mut dst, &mut src, directive)
            });
            let left = match left {
                Ok(left) => left,
                Err(e) => {
                    self.reset();
                    return Err(e);
                }
            };
            // SAFETY: zstd wrote `dst.pos - out.len()` initialized bytes after `len`,
            // within the capacity it was given.
            unsafe { out.set_len(dst.pos) };
            if src.pos == src.size && left == 0 {
                break;
            }
        }
        if end == End::Frame {
            self.frame = None;
        }
        Ok(())
    }

    /// Whether a frame is open whose input is no longer at `input`'s address.
    pub(crate) fn moved(&self, input: &[u8]) -> bool {
        matches!(self.frame, Some((at, _)) if at != input.as_ptr())
    }

    /// Drops the open frame, if any (zstd forgets its input; nothing is read from it).
    pub(crate) fn reset(&mut self) {
        // SAFETY: a live context; a session reset only clears state.
        unsafe {
            zstd_sys::ZSTD_CCtx_reset(
                self.cctx.as_ptr(),
                zstd_sys::ZSTD_ResetDirective::ZSTD_reset_session_only,
            );
        }
        self.frame = None;
    }
}

impl Drop for InPlaceCCtx {
    fn drop(&mut self) {
        // SAFETY: the context was created by ZSTD_createCCtx and is freed once.
        unsafe {
            zstd_sys::ZSTD_freeCCtx(self.cctx.as_ptr());
        }
    }
}
