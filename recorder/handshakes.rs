//! Handshake frames held back until their connection proves to be HTTP.
//!
//! The kernel filter classifies a flow at its first payload, after the SYN and
//! SYN-ACK went by; it passes every handshake to user space instead, and this module
//! keeps them until a kept packet of the same connection is written (then they are
//! written first, so the capture has the initial sequence numbers) or until they
//! expire (the connection carried no HTTP: its handshake never reaches the disk).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foldhash::HashMap;

use crate::conn_key::ConnKey;
use crate::frames::Frame;

/// How long a handshake waits for its connection's first HTTP message.
const HOLD_FOR: Duration = Duration::from_secs(10);
/// Connections whose handshakes are held at most (the oldest go first).
const MAX_FLOWS: usize = 16 * 1024;
/// Frames held per connection at most (SYN, SYN-ACK and a few retransmissions).
const MAX_FRAMES_PER_FLOW: usize = 4;

/// One held frame, with what its packet block needs.
#[derive(Debug, Clone)]
pub struct Held {
    /// Block fields.
    pub frame: Frame,
    /// The frame's bytes.
    pub data: Vec<u8>,
}

/// Handshakes waiting for their connection to be classified.
#[derive(Default)]
pub struct Handshakes {
    /// Per connection, the arrival of its first held frame, and the frames.
    held: HashMap<ConnKey, (Instant, Vec<Held>)>,
    /// Arrival of each connection's first held frame, oldest first. An entry is stale
    /// once its connection was released (the connection may be held again since, with
    /// a later arrival).
    order: VecDeque<(Instant, ConnKey)>,
}

impl Handshakes {
    /// Holds a handshake frame of the connection between `a` and `b`.
    pub fn hold(&mut self, a: SocketAddr, b: SocketAddr, frame: Held) {
        let key = ConnKey::either_way(a, b);
        let (_, frames) = self.held.entry(key).or_insert_with(|| {
            let now = Instant::now();
            self.order.push_back((now, key));
            (now, Vec::new())
        });
        if frames.len() < MAX_FRAMES_PER_FLOW {
            frames.push(frame);
        }
        while self.held.len() > MAX_FLOWS {
            self.evict_oldest();
        }
    }

    /// The held frames of the connection between `a` and `b`, oldest first, now that
    /// it is kept. Asked for every packet written, so an empty table costs no hashing.
    pub fn release(&mut self, a: SocketAddr, b: SocketAddr) -> Option<Vec<Held>> {
        if self.held.is_empty() {
            return None;
        }
        // The order queue entry goes stale and is skipped when it comes up.
        let (_, frames) = self.held.remove(&ConnKey::either_way(a, b))?;
        Some(frames)
    }

    /// Forgets handshakes that waited too long: their connections carried no HTTP.
    pub fn expire(&mut self) {
        while let Some((at, _)) = self.order.front() {
            if at.elapsed() < HOLD_FOR {
                break;
            }
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((at, key)) = self.order.pop_front() {
            if self.held.get(&key).is_some_and(|(since, _)| *since == at) {
                self.held.remove(&key);
            }
        }
    }

    /// Connections with held handshakes.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ts: u64) -> Held {
        Held {
            frame: Frame {
                interface_id: 0,
                ts_ns: ts,
                orig_len: 54,
                direction: l7rec_capture::Direction::Unknown,
            },
            data: vec![0; 54],
        }
    }

    fn client_and_server() -> (SocketAddr, SocketAddr) {
        (
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
        )
    }

    #[test]
    fn released_in_order_for_either_direction() {
        let (a, b) = client_and_server();
        let mut h = Handshakes::default();
        h.hold(a, b, frame(1));
        h.hold(b, a, frame(2));
        let got = h.release(a, b).unwrap();
        assert_eq!(
            got.iter().map(|f| f.frame.ts_ns).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(h.release(a, b).is_none());
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn a_connection_held_again_outlives_its_stale_queue_entry() {
        let (a, b) = client_and_server();
        let mut h = Handshakes::default();
        h.hold(a, b, frame(1));
        assert!(h.release(b, a).is_some());
        std::thread::sleep(Duration::from_millis(1));
        h.hold(a, b, frame(2));
        h.evict_oldest();
        assert_eq!(h.len(), 1, "the stale entry evicted the fresh hold");
        h.evict_oldest();
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn bounded_in_flows_and_frames() {
        let b: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let mut h = Handshakes::default();
        for port in 0..(MAX_FLOWS as u16 + 10) {
            let a = SocketAddr::new(b.ip(), 1024 + port);
            for ts in 0..10 {
                h.hold(a, b, frame(ts));
            }
        }
        assert_eq!(h.len(), MAX_FLOWS);
        let first_kept = SocketAddr::new(b.ip(), 1024 + 10);
        assert_eq!(h.release(first_kept, b).unwrap().len(), MAX_FRAMES_PER_FLOW);
    }
}
