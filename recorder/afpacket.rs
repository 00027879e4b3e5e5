//! AF_PACKET TPACKET_V3 ring (in progress).
