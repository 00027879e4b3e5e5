//! Values shared by the writer and the reader.

/// pcap link type of an interface (LINKTYPE_* numbers of the tcpdump.org registry).
pub mod linktype {
    /// BSD loopback / null: 4-byte address family in host byte order.
    pub const NULL: u16 = 0;
    /// Ethernet (also Linux `lo`, which carries a zeroed Ethernet header).
    pub const ETHERNET: u16 = 1;
    /// Raw IPv4/IPv6, no link header.
    pub const RAW: u16 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u16 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u16 = 113;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u16 = 276;
}

/// An interface as described in the capture (pcapng IDB, or the pcap file header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name (`if_name`), e.g. `lo`; empty when the file has none.
    pub name: String,
    /// Free-text description (`if_description`).
    pub description: Option<String>,
    /// Link type of its packets.
    pub linktype: u16,
    /// Maximum bytes captured per packet (0 = unlimited).
    pub snaplen: u32,
}

/// Direction of a packet relative to the capturing host (pcapng `epb_flags` bits 0-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Not recorded.
    #[default]
    Unknown,
    /// Received by the host.
    Inbound,
    /// Sent by the host.
    Outbound,
}

impl Direction {
    pub(crate) fn to_flags(self) -> u32 {
        match self {
            Direction::Unknown => 0,
            Direction::Inbound => 1,
            Direction::Outbound => 2,
        }
    }
    pub(crate) fn from_flags(flags: u32) -> Self {
        match flags & 3 {
            1 => Direction::Inbound,
            2 => Direction::Outbound,
            _ => Direction::Unknown,
        }
    }
}

/// Counters of one interface (pcapng Interface Statistics Block). `None` = not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceStats {
    /// Index of the interface in its section.
    pub interface_id: u32,
    /// When the counters were read, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Start of the counting period (`isb_starttime`), ns since the Unix epoch.
    pub start_ns: Option<u64>,
    /// End of the counting period (`isb_endtime`), ns since the Unix epoch.
    pub end_ns: Option<u64>,
    /// Packets seen by the interface (`isb_ifrecv`).
    pub if_recv: Option<u64>,
    /// Packets the interface dropped (`isb_ifdrop`).
    pub if_drop: Option<u64>,
    /// Packets accepted by the filter (`isb_filteraccept`).
    pub filter_accept: Option<u64>,
    /// Packets the OS dropped, e.g. a full capture ring (`isb_osdrop`).
    pub os_drop: Option<u64>,
    /// Packets delivered to the user (`isb_usrdeliv`).
    pub usr_deliv: Option<u64>,
}
