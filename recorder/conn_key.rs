//! Compact hash keys for TCP connections.
//!
//! The recorder looks a connection up for every packet it writes (its owner, its held
//! handshake), so the key hashes as three words instead of two `SocketAddr` enums,
//! whose derived `Hash` feeds the hasher a discriminant, a length prefix and a byte
//! slice per address (about a tenth of the recorder's CPU in a profile).

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

/// One end of a connection. IPv4 is kept in its IPv4-mapped IPv6 form, so a
/// dual-stack socket's `::ffff:a.b.c.d` and a packet's `a.b.c.d` are the same end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct End {
    ip: u128,
    port: u16,
}

impl From<SocketAddr> for End {
    fn from(a: SocketAddr) -> Self {
        let ip = match a.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        End {
            ip: ip.to_bits(),
            port: a.port(),
        }
    }
}

/// An ordered pair of connection ends: (local, remote) of a socket, (source,
/// destination) of a packet, or, from [`ConnKey::either_way`], the connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnKey {
    a: End,
    b: End,
}

impl ConnKey {
    /// The key of the pair (`a`, `b`), in that order.
    pub fn new(a: SocketAddr, b: SocketAddr) -> Self {
        ConnKey {
            a: a.into(),
            b: b.into(),
        }
    }

    /// The key of the connection between `a` and `b`, the same for either direction.
    pub fn either_way(a: SocketAddr, b: SocketAddr) -> Self {
        let (a, b) = (End::from(a), End::from(b));
        if a <= b {
            ConnKey { a, b }
        } else {
            ConnKey { a: b, b: a }
        }
    }

    /// The pair the other way round.
    pub fn reversed(self) -> Self {
        ConnKey {
            a: self.b,
            b: self.a,
        }
    }
}

impl Hash for ConnKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // Every bit still goes through the map's seeded hasher: remote peers choose
        // their addresses and ports, so a key folded down before hashing would let
        // them aim at one bucket.
        h.write_u128(self.a.ip);
        h.write_u128(self.b.ip);
        h.write_u32(u32::from(self.a.port) << 16 | u32::from(self.b.port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_same_end_as_ipv4() {
        assert_eq!(
            ConnKey::new(addr("[::ffff:10.0.0.1]:80"), addr("[::ffff:10.0.0.2]:4000")),
            ConnKey::new(addr("10.0.0.1:80"), addr("10.0.0.2:4000"))
        );
    }

    #[test]
    fn direction_matters_unless_asked_not_to() {
        let (a, b) = (addr("10.0.0.1:80"), addr("10.0.0.2:4000"));
        assert_ne!(ConnKey::new(a, b), ConnKey::new(b, a));
        assert_eq!(ConnKey::new(a, b).reversed(), ConnKey::new(b, a));
        assert_eq!(ConnKey::either_way(a, b), ConnKey::either_way(b, a));
    }

    #[test]
    fn ports_and_addresses_are_not_interchangeable() {
        // Two keys that a sum or xor of the fields would confuse.
        let k1 = ConnKey::new(addr("10.0.0.1:80"), addr("10.0.0.2:81"));
        let k2 = ConnKey::new(addr("10.0.0.1:81"), addr("10.0.0.2:80"));
        let k3 = ConnKey::new(addr("10.0.0.2:80"), addr("10.0.0.1:81"));
        assert_ne!(k1, k2);
        assert_ne!(k1, k3);
        let s = foldhash::fast::FixedState::with_seed(7);
        use std::hash::BuildHasher;
        assert_ne!(s.hash_one(k1), s.hash_one(k2));
        assert_ne!(s.hash_one(k1), s.hash_one(k3));
        assert_eq!(
            s.hash_one(k1),
            s.hash_one(ConnKey::new(addr("10.0.0.1:80"), addr("10.0.0.2:81")))
        );
    }

    #[test]
    fn ipv6_ends_keep_all_their_bits() {
        let k1 = ConnKey::new(addr("[2001:db8::1]:80"), addr("[2001:db8::2]:80"));
        let k2 = ConnKey::new(addr("[2001:db9::1]:80"), addr("[2001:db8::2]:80"));
        assert_ne!(k1, k2);
        assert_ne!(
            k1,
            ConnKey::new(addr("1.0.0.1:80"), addr("[2001:db8::2]:80"))
        );
    }
}
