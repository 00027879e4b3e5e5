//! From ring frames to packet blocks: VLAN tags put back, secrets masked
//! (`--redact`), handshakes held until their connection proves to be HTTP, the owning
//! process annotated, `-c` honoured.

use std::io;

use l7rec_analyzer::decode::{tcp_segment, TcpSegment};
use l7rec_capture::{CaptureWriter, Direction, PacketOut};

use crate::afpacket::Packet;
use crate::handshakes::{Handshakes, Held};
use crate::metadata::Metadata;
use crate::output::Output;
use crate::redact::Redactor;

/// Where a frame came from.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// Interface id in the capture file.
    pub interface_id: u32,
    /// pcap link type of the interface, if it has one.
    pub linktype: Option<u16>,
    /// Loopback: direction is meaningless there.
    pub loopback: bool,
}

/// What has been written so far.
#[derive(Debug, Default)]
pub struct Written {
    /// Packets written.
    pub packets: u64,
    /// Bytes of packets written.
    pub bytes: u64,
    /// The first write error; nothing more is written after it.
    pub error: Option<io::Error>,
}

/// Turns frames into packet blocks.
pub struct Frames {
    redactor: Option<Redactor>,
    scratch: Vec<u8>,
    handshakes: Handshakes,
    /// `--all-tcp`: every packet is wanted, nothing is held.
    all_tcp: bool,
    /// `-c`: packets to write at most.
    limit: Option<u64>,
    /// Counters and the first error.
    pub written: Written,
}

impl Frames {
    /// A frame writer; `redactor` masks secrets when given.
    pub fn new(redactor: Option<Redactor>, all_tcp: bool, limit: Option<u64>) -> Self {
        Frames {
            redactor,
            scratch: Vec::new(),
            handshakes: Handshakes::default(),
            all_tcp,
            limit,
            written: Written::default(),
        }
    }

    /// Whether `-c` is reached.
    pub fn limit_reached(&self) -> bool {
        self.limit.is_some_and(|c| self.written.packets >= c)
    }

    /// Forgets handshakes of connections that never carried HTTP.
    pub fn expire(&mut self) {
        self.handshakes.expire();
    }

    /// Handles one frame from a ring.
    pub fn frame(
        &mut self,
        w: &mut CaptureWriter<Output>,
        meta: &Metadata,
        src: Source,
        p: &Packet<'_>,
    ) {
        if self.written.error.is_some() || self.limit_reached() {
            return;
        }
        // The kernel strips VLAN tags into the ring header: put them back.
        let tagged;
        let mut data = match p.vlan {
            Some(tag) if p.data.len() >= 12 => {
                tagged = [
                    &p.data[..12],
                    &tag.tpid.to_be_bytes(),
                    &tag.tci.to_be_bytes(),
                    &p.data[12..],
                ]
                .concat();
                &tagged[..]
            }
            _ => p.data,
        };
        // The redactor follows every frame in order, handshakes included.
        if let (Some(r), Some(lt)) = (self.redactor.as_mut(), src.linktype) {
            self.scratch.clear();
            self.scratch.extend_from_slice(data);
            r.redact_frame(lt, &mut self.scratch);
            data = &self.scratch[..];
        }
        let frame = Frame {
            interface_id: src.interface_id,
            ts_ns: p.ts_ns,
            orig_len: p.orig_len + (data.len() - p.data.len()) as u32,
            direction: if src.loopback {
                Direction::Unknown
            } else if p.pkt_type == libc::PACKET_OUTGOING {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
        };
        let seg = src.linktype.and_then(|lt| tcp_segment(lt, data).ok());
        if let (Some(s), false) = (&seg, self.all_tcp) {
            if s.syn && s.payload.is_empty() {
                self.handshakes.hold(
                    s.src,
                    s.dst,
                    Held {
                        frame,
                        data: data.to_vec(),
                    },
                );
                return;
            }
            // Any other frame the filter passed belongs to a kept (HTTP) connection.
            for h in self.handshakes.release(s.src, s.dst).unwrap_or_default() {
                let hseg = tcp_segment(src.linktype.unwrap_or_default(), &h.data).ok();
                emit(w, meta, &mut self.written, &h.frame, &h.data, hseg.as_ref());
            }
        }
        emit(w, meta, &mut self.written, &frame, data, seg.as_ref());
    }
}

/// A frame's packet-block fields besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Interface id in the capture file.
    pub interface_id: u32,
    /// Capture time.
    pub ts_ns: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Direction relative to the host.
    pub direction: Direction,
}

/// Writes one packet block, annotated with the process owning its connection.
fn emit(
    w: &mut CaptureWriter<Output>,
    meta: &Metadata,
    written: &mut Written,
    f: &Frame,
    data: &[u8],
    seg: Option<&TcpSegment<'_>>,
) {
    let owner = seg.and_then(|s| meta.packet_owner(s.src, s.dst));
    let out = PacketOut {
        interface_id: f.interface_id,
        ts_ns: f.ts_ns,
        data,
        orig_len: f.orig_len,
        direction: f.direction,
        process: owner.map(|o| (o.pid, o.tid)),
        comment: owner.map(|o| o.comment.as_str()),
    };
    match w.write_packet(&out) {
        Ok(()) => {
            written.packets += 1;
            written.bytes += data.len() as u64;
        }
        Err(e) => written.error = Some(e),
    }
}
