//! [`Flags`]: the small set of markers attached to a [`Transaction`](crate::Transaction).

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// A set of transaction markers; [`Flags::names`] gives their report names.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u16);

impl Flags {
    /// Bytes of this transaction were missing from the capture.
    pub const GAP: Flags = Flags(1);
    /// A message was cut short (connection closed or capture ended mid-message).
    pub const INCOMPLETE: Flags = Flags(1 << 1);
    /// 101 Switching Protocols or a successful CONNECT: HTTP parsing stopped here.
    pub const UPGRADE: Flags = Flags(1 << 2);
    /// A message could not be parsed (framing or syntax); parsing resynchronised.
    pub const MALFORMED: Flags = Flags(1 << 3);
    /// A message head exceeded the head size cap (always with [`Flags::MALFORMED`]).
    pub const OVERSIZED: Flags = Flags(1 << 4);
    /// At least one 1xx interim response preceded the final one.
    pub const INFORMATIONAL: Flags = Flags(1 << 5);
    /// The request was sent before the previous response had ended.
    pub const PIPELINED: Flags = Flags(1 << 6);
    /// A response with no request seen for it (e.g. capture started mid-connection).
    pub const NO_REQUEST: Flags = Flags(1 << 7);
    /// A request for which no response was seen, or whose response may have been
    /// among bytes skipped unparsed (mid-connection start, gap) and so is not known.
    pub const NO_RESPONSE: Flags = Flags(1 << 8);
    /// The request-target or a header was not valid UTF-8 (converted lossily).
    pub const NON_UTF8: Flags = Flags(1 << 9);

    const NAMES: [(Flags, &'static str); 10] = [
        (Flags::GAP, "gap"),
        (Flags::INCOMPLETE, "incomplete"),
        (Flags::UPGRADE, "upgrade"),
        (Flags::MALFORMED, "malformed"),
        (Flags::OVERSIZED, "oversized"),
        (Flags::INFORMATIONAL, "informational"),
        (Flags::PIPELINED, "pipelined"),
        (Flags::NO_REQUEST, "no_request"),
        (Flags::NO_RESPONSE, "no_response"),
        (Flags::NON_UTF8, "non_utf8"),
    ];

    /// The empty set.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// True if no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True if every flag of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }

    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Report names of the set flags, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
