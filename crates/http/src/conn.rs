//! [`Connection`]: both directions of one HTTP/1 connection, request/response pairing.

use crate::body::{Body, End, Skip};
use crate::head::{self, MsgHead, Scan};
use crate::{Flags, Side, Transaction};
use std::collections::VecDeque;

/// Limits and options of a [`Connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Largest message head (start line + headers) accepted; larger ones are
    /// reported as `malformed` + `oversized` and skipped.
    pub max_head_bytes: usize,
    /// Most bytes held per direction while waiting for the other direction
    /// (a response waiting for its request to be parsed, or client bytes after an
    /// upgrade request waiting for the response). Past it, parsing goes ahead.
    pub max_deferred_bytes: usize,
    /// Most transactions kept waiting for their response; past it the oldest is
    /// reported without one.
    pub max_pending: usize,
    /// Copy request and response headers into [`Transaction`]s.
    pub capture_headers: bool,
}

impl Default for Config {
    /// 1 MiB heads, 1 MiB deferred per direction, 1024 pending transactions, headers captured.
    fn default() -> Self {
        Config {
            max_head_bytes: 1 << 20,
            max_deferred_bytes: 1 << 20,
            max_pending: 1024,
            capture_headers: true,
        }
    }
}

/// Parser state of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a message head (or the gap between messages).
    Head,
    /// Counting a body.
    Body(Body),
    /// Lost: discarding until a plausible message start at a line start.
    Resync { line_start: bool },
    /// After an upgrade or close: everything is ignored.
    Ignore,
}

/// What one side fed us, as replayed from the deferral buffer.
#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    Data(&'a [u8], u64),
    Gap(u64),
    Close(u64),
}

/// A deferred [`Item`], its data bytes stored in [`Deferred::bytes`].
#[derive(Debug, Clone, Copy)]
enum Stored {
    Data { len: usize, ts: u64 },
    Gap(u64),
    Close(u64),
}

/// Input of one side held back until the other side has caught up.
#[derive(Debug, Default)]
struct Deferred {
    bytes: Vec<u8>,
    items: Vec<Stored>,
}

impl Deferred {
    fn push(&mut self, item: Item<'_>) {
        self.items.push(match item {
            Item::Data(b, ts) => {
                self.bytes.extend_from_slice(b);
                Stored::Data { len: b.len(), ts }
            }
            Item::Gap(len) => Stored::Gap(len),
            Item::Close(ts) => Stored::Close(ts),
        });
    }
}

/// One direction.
#[derive(Debug)]
struct Dir {
    state: State,
    /// Head bytes received so far when the head spans several data calls.
    buf: Vec<u8>,
    /// Timestamp of the current head's first byte.
    head_first_ts: u64,
    /// The current head's start line was seen complete and valid.
    line_ok: bool,
    /// The current head was found by resynchronisation (reject it silently).
    tentative: bool,
    /// Id of the transaction whose body is being read.
    cur: Option<u64>,
    /// Body bytes of `cur` not yet added to it: counted here, beside the state the
    /// parser touches anyway, instead of looking the transaction up in the queue for
    /// every segment (a cache miss a third of `process`'s time went to).
    body_bytes: u64,
    deferred: Deferred,
    stalled: bool,
    /// The deferral cap was hit: parse the next head without waiting.
    force: bool,
    closed: bool,
    last_ts: u64,
    /// Latest timestamp of input that resynchronisation threw away (or of the data
    /// after a gap it could not account for) since the last head found by
    /// resynchronisation was committed. A whole message may hide in those bytes, so
    /// no response found after them may go to a request seen before them.
    skipped_ts: Option<u64>,
    /// A gap hit while resynchronising: its bytes were sent before the next data
    /// (whose timestamp bounds them, see [`Dir::note_skip`]).
    skipped_gap: bool,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            state: State::Head,
            buf: Vec::new(),
            head_first_ts: 0,
            line_ok: false,
            tentative: false,
            cur: None,
            body_bytes: 0,
            deferred: Deferred::default(),
            stalled: false,
            force: false,
            closed: false,
            last_ts: 0,
            skipped_ts: None,
            skipped_gap: false,
        }
    }

    /// Records that input of time `ts` was discarded unparsed.
    fn note_skip(&mut self, ts: u64) {
        self.skipped_ts = Some(self.skipped_ts.map_or(ts, |s| s.max(ts)));
    }

    /// Forgets the current head.
    fn reset_head(&mut self) {
        self.buf.clear();
        self.line_ok = false;
        self.tentative = false;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MethodKind {
    Head,
    Connect,
    Other,
}

/// A transaction not yet reported.
#[derive(Debug)]
struct Pending {
    tx: Transaction,
    id: u64,
    req_done: bool,
    resp_done: bool,
    resp_started: bool,
    method: MethodKind,
    /// The request asked to switch protocols (Upgrade header or CONNECT).
    wants_upgrade: bool,
}

/// Both directions of one HTTP/1.x connection. See the crate docs for the model.
#[derive(Debug)]
pub struct Connection {
    cfg: Config,
    client: Dir,
    server: Dir,
    queue: VecDeque<Pending>,
    next_id: u64,
    done: Vec<Transaction>,
    emitted: u32,
    prev_resp_last_ts: Option<u64>,
    upgraded: bool,
    /// A request line or status line parsed in either direction (see
    /// [`Connection::saw_start_line`]).
    start_line_seen: bool,
    finishing: bool,
    finished: bool,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new()
    }
}

impl Connection {
    /// A connection with the default [`Config`], both sides at a message start.
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A connection with explicit limits.
    pub fn with_config(cfg: Config) -> Self {
        Connection {
            cfg,
            client: Dir::new(),
            server: Dir::new(),
            queue: VecDeque::new(),
            next_id: 0,
            done: Vec::new(),
            emitted: 0,
            prev_resp_last_ts: None,
            upgraded: false,
            start_line_seen: false,
            finishing: false,
            finished: false,
        }
    }

    /// A connection whose capture started mid-stream: both sides start by
    /// searching for a plausible message start instead of expecting one.
    pub fn midstream() -> Self {
        Self::midstream_with_config(Config::default())
    }

    /// [`Connection::midstream`] with explicit limits.
    pub fn midstream_with_config(cfg: Config) -> Self {
        let mut c = Self::with_config(cfg);
        c.client.state = State::Resync { line_start: true };
        c.server.state = State::Resync { line_start: true };
        c
    }

    /// In-order bytes of `side`, captured at `ts_ns`.
    pub fn data(&mut self, side: Side, bytes: &[u8], ts_ns: u64) {
        if !self.finished && !bytes.is_empty() {
            self.ingest(side, Item::Data(bytes, ts_ns));
            self.pump();
        }
    }

    /// `len` bytes of `side` are missing from the capture.
    pub fn gap(&mut self, side: Side, len: u64) {
        if !self.finished && len > 0 {
            self.ingest(side, Item::Gap(len));
            self.pump();
        }
    }

    /// `side` closed (FIN or RST) at `ts_ns`: ends a close-delimited body.
    pub fn close(&mut self, side: Side, ts_ns: u64) {
        if !self.finished {
            self.ingest(side, Item::Close(ts_ns));
            self.pump();
        }
    }

    /// End of capture: everything still pending is reported (flagged
    /// `incomplete` / `no_response`). Later input is ignored.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finishing = true;
        self.pump();
        for side in [Side::Client, Side::Server] {
            let ts = self.dir(side).last_ts;
            self.on_close(side, ts);
            self.flush_body(side);
        }
        for mut p in std::mem::take(&mut self.queue) {
            if !p.resp_done {
                p.tx.flags |= if p.resp_started {
                    Flags::INCOMPLETE
                } else {
                    Flags::NO_RESPONSE
                };
            }
            if !p.req_done {
                p.tx.flags |= Flags::INCOMPLETE;
            }
            self.report(p.tx);
        }
        self.finished = true;
    }

    /// True once a request line or a status line has parsed in either direction,
    /// even if the rest of that message turned out malformed, oversized or cut by a
    /// gap.
    ///
    /// This is the evidence that the connection speaks HTTP/1.x at all: bytes that
    /// never yield one (SSH, a database protocol, random binary) still produce a
    /// `malformed` transaction for the first message of each side, which a caller
    /// that sees arbitrary TCP should drop when this stays false.
    pub fn saw_start_line(&self) -> bool {
        self.start_line_seen
    }

    /// True once a 101 response or successful CONNECT stopped HTTP parsing.
    pub fn is_upgraded(&self) -> bool {
        self.upgraded
    }

    /// Transactions completed so far, in request order (removed from the connection).
    pub fn take_transactions(&mut self) -> Vec<Transaction> {
        std::mem::take(&mut self.done)
    }

    fn dir(&self, side: Side) -> &Dir {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    fn dir_mut(&mut self, side: Side) -> &mut Dir {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    // ----- deferral -------------------------------------------------------

    /// True while `side` must wait for the other one before committing a head:
    /// the server when no request awaits a response, the client after a request
    /// that may switch protocols until its response is known.
    fn blocked(&self, side: Side) -> bool {
        if self.finishing || self.upgraded || self.dir(side).force {
            return false;
        }
        match side {
            Side::Server => !self.client.closed && self.queue.iter().all(|p| p.resp_done),
            Side::Client => {
                !self.server.closed && self.queue.iter().any(|p| p.wants_upgrade && !p.resp_done)
            }
        }
    }

    fn ingest(&mut self, side: Side, item: Item<'_>) {
        let cap = self.cfg.max_deferred_bytes;
        let d = self.dir_mut(side);
        if d.stalled {
            d.deferred.push(item);
            if d.deferred.bytes.len() > cap {
                d.force = true;
            }
            return;
        }
        match item {
            Item::Data(bytes, ts) => {
                let d = self.dir_mut(side);
                d.last_ts = ts;
                if let State::Resync { .. } = d.state {
                    // A data call is a TCP segment (the reassembler keeps segment
                    // boundaries), and senders start messages at segment starts far
                    // more often than not: a body that does not end with a newline
                    // must not hide the status line right after it (capture started
                    // in such a body). The start line is still checked in full.
                    d.state = State::Resync { line_start: true };
                    if std::mem::take(&mut d.skipped_gap) {
                        // The lost bytes came before these: bounded by this time.
                        d.note_skip(ts);
                    }
                }
                self.process(side, bytes, ts);
            }
            Item::Gap(len) => {
                let d = self.dir(side);
                if d.state == State::Head && d.buf.is_empty() && self.blocked(side) {
                    let d = self.dir_mut(side);
                    d.stalled = true;
                    d.deferred.push(item);
                } else {
                    self.on_gap(side, len);
                }
            }
            Item::Close(ts) => self.on_close(side, ts),
        }
    }

    /// Replays deferred input of sides that are no longer blocked.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            for side in [Side::Client, Side::Server] {
                if self.dir(side).stalled && !self.blocked(side) {
                    progressed = true;
                    let d = self.dir_mut(side);
                    d.stalled = false;
                    let deferred = std::mem::take(&mut d.deferred);
                    let mut pos = 0;
                    for item in &deferred.items {
                        let item = match *item {
                            Stored::Data { len, ts } => {
                                pos += len;
                                Item::Data(&deferred.bytes[pos - len..pos], ts)
                            }
                            Stored::Gap(len) => Item::Gap(len),
                            Stored::Close(ts) => Item::Close(ts),
                        };
                        self.ingest(side, item);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }

    // ----- byte processing ------------------------------------------------

    fn process(&mut self, side: Side, mut data: &[u8], ts: u64) {
        while !data.is_empty() {
            if self.dir(side).stalled {
                self.dir_mut(side).deferred.push(Item::Data(data, ts));
                return;
            }
            let n = match self.dir(side).state {
                State::Ignore => return,
                State::Resync { line_start } => self.resync(side, data, line_start, ts),
                State::Head => self.head_step(side, data, ts),
                State::Body(_) => self.body_step(side, data, ts),
            };
            data = &data[n..];
        }
    }

    /// Skips to the next plausible message start (at a line start) in `data`.
    /// Bytes before a start found in the same data call are taken as the end of the
    /// message that was lost; a data call discarded to its end is noted (see
    /// [`Dir::skipped_ts`]).
    fn resync(&mut self, side: Side, data: &[u8], line_start: bool, ts: u64) -> usize {
        let candidate = |p: usize| {
            p < data.len() && !matches!(data[p], b'\r' | b'\n') && head::prefix_ok(side, &data[p..])
        };
        let found = if line_start && candidate(0) {
            Some(0)
        } else {
            memchr::memchr_iter(b'\n', data)
                .map(|i| i + 1)
                .find(|&p| candidate(p))
        };
        let d = self.dir_mut(side);
        match found {
            Some(p) => {
                d.state = State::Head;
                d.reset_head();
                d.tentative = true;
                p
            }
            None => {
                d.state = State::Resync {
                    line_start: data.last() == Some(&b'\n'),
                };
                d.note_skip(ts);
                data.len()
            }
        }
    }

    fn head_step(&mut self, side: Side, data: &[u8], ts: u64) -> usize {
        let max = self.cfg.max_head_bytes;
        let old = self.dir(side).buf.len();
        if old == 0 {
            // Message start: skip blank lines, wait for the other side if needed.
            let d = self.dir(side);
            if !d.tentative {
                let skip = data
                    .iter()
                    .position(|b| !matches!(b, b'\r' | b'\n'))
                    .unwrap_or(data.len());
                if skip > 0 {
                    return skip;
                }
            }
            if side == Side::Server {
                // Before deciding whether to wait for a request: requests whose
                // responses may have been skipped are not waiting any more.
                self.drop_skipped_responses();
            }
            if self.blocked(side) {
                self.dir_mut(side).stalled = true;
                return 0;
            }
            self.dir_mut(side).head_first_ts = ts;
        }
        let d = self.dir_mut(side);
        let (scan, taken) = if old == 0 {
            (head::scan(side, data, 0, &mut d.line_ok, max), data.len())
        } else {
            let take = data.len().min((max + 1).saturating_sub(old)).max(1);
            d.buf.extend_from_slice(&data[..take]);
            (head::scan(side, &d.buf, old, &mut d.line_ok, max), take)
        };
        // `line_ok` is set by the scan as soon as the start line is complete and
        // valid, before the head's end or its headers are known.
        let line_ok = d.line_ok;
        self.start_line_seen |= line_ok;
        let d = self.dir_mut(side);
        match scan {
            Scan::More => {
                if old == 0 {
                    d.buf.extend_from_slice(data);
                }
                taken
            }
            Scan::Done(end) => {
                let first_ts = d.head_first_ts;
                if old == 0 {
                    self.commit_head(side, &data[..end], first_ts, ts);
                } else {
                    let mut buf = std::mem::take(&mut d.buf);
                    buf.truncate(end);
                    self.commit_head(side, &buf, first_ts, ts);
                    buf.clear();
                    self.dir_mut(side).buf = buf;
                }
                end - old
            }
            Scan::Oversized { skip } => {
                let partial = if old == 0 { data } else { &d.buf[..] };
                let line_start = partial[skip - 1] == b'\n';
                if !d.tentative {
                    let start = MsgHead::from_start_line(head::partial_start_line(side, partial));
                    self.abandon(side, start, Flags::MALFORMED | Flags::OVERSIZED, ts);
                }
                let d = self.dir_mut(side);
                d.reset_head();
                d.state = State::Resync { line_start };
                skip - old
            }
            Scan::Reject => {
                if !d.tentative {
                    let partial = if old == 0 { data } else { &d.buf[..] };
                    let start = MsgHead::from_start_line(head::partial_start_line(side, partial));
                    self.abandon(side, start, Flags::MALFORMED, ts);
                }
                // Not a message start: look for one from its second byte on.
                let d = self.dir_mut(side);
                let buf = std::mem::take(&mut d.buf);
                d.reset_head();
                d.state = State::Resync { line_start: false };
                if old == 0 {
                    return 1;
                }
                let first_ts = d.head_first_ts;
                self.process(side, &buf[1..], first_ts);
                taken
            }
        }
    }

    fn body_step(&mut self, side: Side, data: &[u8], ts: u64) -> usize {
        let d = self.dir_mut(side);
        let State::Body(mut body) = d.state else {
            return 0;
        };
        let a = body.advance(data);
        d.state = State::Body(body);
        self.add_body(side, a.decoded);
        match a.end {
            End::More => {}
            End::Done => self.message_done(side, ts, State::Head),
            End::Error => {
                self.flag_cur(side, Flags::MALFORMED);
                self.message_done(side, ts, State::Resync { line_start: true });
            }
        }
        a.consumed
    }

    // ----- gaps and closes ------------------------------------------------

    fn on_gap(&mut self, side: Side, len: u64) {
        let d = self.dir_mut(side);
        let ts = d.last_ts;
        match d.state {
            State::Ignore => {}
            State::Resync { .. } => {
                d.state = State::Resync { line_start: true };
                d.skipped_gap = true;
            }
            State::Head => {
                if !d.tentative {
                    let start = MsgHead::from_start_line(head::partial_start_line(side, &d.buf));
                    self.abandon(side, start, Flags::GAP, ts);
                }
                let d = self.dir_mut(side);
                d.reset_head();
                d.state = State::Resync { line_start: true };
            }
            State::Body(mut body) => {
                let skip = body.skip(len);
                d.state = State::Body(body);
                self.flag_cur(side, Flags::GAP);
                match skip {
                    Skip::Within(n) => self.add_body(side, n),
                    Skip::Exact(n) => {
                        self.add_body(side, n);
                        self.message_done(side, ts, State::Head);
                    }
                    Skip::Lost(n) => {
                        // The gap goes on past this body: what followed it is lost.
                        self.dir_mut(side).skipped_gap = true;
                        self.add_body(side, n);
                        self.message_done(side, ts, State::Resync { line_start: true });
                    }
                }
            }
        }
    }

    fn on_close(&mut self, side: Side, ts: u64) {
        let d = self.dir_mut(side);
        if d.closed {
            return;
        }
        d.closed = true;
        let last = d.last_ts;
        match d.state {
            State::Body(Body::UntilClose) => self.message_done(side, last, State::Ignore),
            State::Body(_) => {
                self.flag_cur(side, Flags::INCOMPLETE);
                self.message_done(side, last, State::Ignore);
            }
            State::Head if !d.buf.is_empty() && !d.tentative => {
                let start = MsgHead::from_start_line(head::partial_start_line(side, &d.buf));
                self.abandon(side, start, Flags::INCOMPLETE, ts);
            }
            _ => {}
        }
        let d = self.dir_mut(side);
        d.reset_head();
        d.state = State::Ignore;
    }

    // ----- transactions ---------------------------------------------------

    fn commit_head(&mut self, side: Side, bytes: &[u8], first_ts: u64, ts: u64) {
        self.dir_mut(side).reset_head();
        self.dir_mut(side).force = false;
        let h = head::parse_head(side, bytes, self.cfg.capture_headers);
        match side {
            Side::Client => self.commit_request(h, first_ts, ts),
            Side::Server => self.commit_response(h, first_ts, ts),
        }
        // In sync again: what was skipped before this head is accounted for.
        let d = self.dir_mut(side);
        d.skipped_ts = None;
        d.skipped_gap = false;
    }

    fn commit_request(&mut self, h: MsgHead, first_ts: u64, ts: u64) {
        let method = match h.method.as_deref() {
            Some("HEAD") => MethodKind::Head,
            Some("CONNECT") => MethodKind::Connect,
            _ => MethodKind::Other,
        };
        let f = h.framing;
        let body = if h.flags.contains(Flags::MALFORMED) || f.bad_length || (f.te && !f.chunked) {
            None
        } else if f.chunked {
            Some(Body::chunked())
        } else {
            Some(Body::Length(f.content_length.unwrap_or(0)))
        };
        let id = self.push_request(h, first_ts, method);
        self.flush_body(Side::Client);
        self.client.cur = Some(id);
        match body {
            None => {
                self.flag_cur(Side::Client, Flags::MALFORMED);
                self.message_done(Side::Client, ts, State::Resync { line_start: true });
            }
            Some(Body::Length(0)) => self.message_done(Side::Client, ts, State::Head),
            Some(b) => self.client.state = State::Body(b),
        }
    }

    fn push_request(&mut self, h: MsgHead, first_ts: u64, method: MethodKind) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let tx = Transaction {
            method: h.method,
            uri: h.target,
            uri_raw: h.target_raw,
            version: h.version,
            host: h.host,
            request_headers: h.headers,
            req_first_ts: Some(first_ts),
            flags: h.flags,
            ..Transaction::default()
        };
        self.queue.push_back(Pending {
            tx,
            id,
            req_done: false,
            resp_done: false,
            resp_started: false,
            method,
            wants_upgrade: h.framing.upgrade || method == MethodKind::Connect,
        });
        if self.queue.len() > self.cfg.max_pending {
            if let Some(p) = self.queue.front_mut() {
                p.tx.flags |= if p.resp_started {
                    Flags::INCOMPLETE
                } else {
                    Flags::NO_RESPONSE
                };
                p.req_done = true;
                p.resp_done = true;
            }
            self.emit_ready();
        }
        id
    }

    /// Index of the transaction the next response belongs to; creates a
    /// `no_request` one when no request is waiting or the response began
    /// before the waiting request did.
    fn response_target(&mut self, first_ts: Option<u64>) -> usize {
        let waiting = self.queue.iter().position(|p| !p.resp_done);
        let i = match waiting {
            Some(i)
                if !matches!((first_ts, self.queue[i].tx.req_first_ts),
                             (Some(r), Some(q)) if r < q) =>
            {
                return i;
            }
            Some(i) => i,
            None => self.queue.len(),
        };
        let id = self.next_id;
        self.next_id += 1;
        let tx = Transaction {
            flags: Flags::NO_REQUEST,
            ..Transaction::default()
        };
        self.queue.insert(
            i,
            Pending {
                tx,
                id,
                req_done: true,
                resp_done: false,
                resp_started: false,
                method: MethodKind::Other,
                wants_upgrade: false,
            },
        );
        i
    }

    /// Gives up on the responses of requests seen before server bytes that were
    /// discarded unparsed ([`Dir::skipped_ts`]): their response may have been in
    /// those bytes, and pairing the next response found with them would shift every
    /// later pairing by one. Reported without a response (or `incomplete` after a
    /// 1xx) rather than with someone else's.
    fn drop_skipped_responses(&mut self) {
        let Some(skip) = self.server.skipped_ts else {
            return;
        };
        let mut dropped = false;
        for p in self.queue.iter_mut().filter(|p| !p.resp_done) {
            // Same timestamp: order unknown, so the response may be in the skip.
            if p.tx.req_first_ts.is_some_and(|r| r <= skip) {
                p.tx.flags |= if p.resp_started {
                    Flags::INCOMPLETE
                } else {
                    Flags::NO_RESPONSE
                };
                p.resp_done = true;
                dropped = true;
            }
        }
        if dropped {
            self.emit_ready();
        }
    }

    fn commit_response(&mut self, h: MsgHead, first_ts: u64, ts: u64) {
        self.flush_body(Side::Server);
        // Again here: requests may have been fed since the head started.
        self.drop_skipped_responses();
        let i = self.response_target(Some(first_ts));
        let p = &mut self.queue[i];
        p.resp_started = true;
        let status = h.status.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            p.tx.flags |= Flags::INFORMATIONAL;
            p.tx.info_code = Some(status);
            return;
        }
        let t = &mut p.tx;
        t.flags |= h.flags;
        t.status = h.status;
        t.reason = h.reason;
        t.resp_version = h.version;
        t.response_headers = h.headers;
        t.resp_first_ts = Some(first_ts);
        let id = p.id;
        self.server.cur = Some(id);
        let f = h.framing;
        let upgrade =
            status == 101 || (p.method == MethodKind::Connect && (200..300).contains(&status));
        if upgrade {
            p.tx.flags |= Flags::UPGRADE;
            self.message_done(Side::Server, ts, State::Ignore);
            self.upgrade();
            return;
        }
        let body = if h.flags.contains(Flags::MALFORMED) {
            None
        } else if p.method == MethodKind::Head || status == 204 || status == 304 {
            Some(Body::Length(0))
        } else if f.te {
            Some(if f.chunked {
                Body::chunked()
            } else {
                Body::UntilClose
            })
        } else if f.bad_length {
            None
        } else {
            Some(f.content_length.map_or(Body::UntilClose, Body::Length))
        };
        match body {
            None => {
                self.flag_cur(Side::Server, Flags::MALFORMED);
                self.message_done(Side::Server, ts, State::Resync { line_start: true });
            }
            Some(Body::Length(0)) => self.message_done(Side::Server, ts, State::Head),
            Some(b) => self.server.state = State::Body(b),
        }
    }

    /// Stops HTTP parsing: the connection switched protocols.
    fn upgrade(&mut self) {
        self.upgraded = true;
        for side in [Side::Client, Side::Server] {
            let d = self.dir_mut(side);
            d.state = State::Ignore;
            d.reset_head();
            d.deferred = Deferred::default();
            d.stalled = false;
        }
        self.flush_body(Side::Client);
        if let Some(id) = self.client.cur.take() {
            if let Some(p) = self.queue.iter_mut().find(|p| p.id == id) {
                p.req_done = true;
            }
        }
        self.emit_ready();
    }

    /// Reports a message of `side` that ended before its head was parsed
    /// (malformed, oversized, cut by a gap or a close), with what is known.
    fn abandon(&mut self, side: Side, start: MsgHead, flag: Flags, ts: u64) {
        let first_ts = self.dir(side).head_first_ts;
        let known = !self.dir(side).buf.is_empty() || flag.contains(Flags::MALFORMED);
        let first = known.then_some(first_ts);
        let mut start_flags = start.flags;
        start_flags.remove(Flags::MALFORMED);
        match side {
            Side::Client => {
                let id = self.push_request(start, first_ts, MethodKind::Other);
                if let Some(p) = self.queue.iter_mut().find(|p| p.id == id) {
                    p.tx.req_first_ts = first;
                    p.tx.req_last_ts = first.map(|_| ts);
                    p.tx.flags = start_flags | flag;
                    p.req_done = true;
                }
            }
            Side::Server => {
                let i = self.response_target(first);
                let t = &mut self.queue[i].tx;
                t.status = start.status;
                t.reason = start.reason;
                t.resp_version = start.version;
                t.resp_first_ts = first;
                t.resp_last_ts = first.map(|_| ts);
                t.flags |= start_flags | flag;
                self.queue[i].resp_started = true;
                self.queue[i].resp_done = true;
            }
        }
        self.emit_ready();
    }

    fn find(&mut self, id: Option<u64>) -> Option<&mut Pending> {
        let id = id?;
        self.queue.iter_mut().rev().find(|p| p.id == id)
    }

    /// Counts `n` body bytes for `side`'s current transaction (added to it by
    /// [`flush_body`](Self::flush_body)).
    fn add_body(&mut self, side: Side, n: u64) {
        let d = self.dir_mut(side);
        if d.cur.is_some() {
            // Saturating: gap lengths come from the caller and are not bounded here; a
            // close-delimited body that is sent gaps of 2^63 bytes overflowed (debug
            // builds panicked; found by fuzzing).
            d.body_bytes = d.body_bytes.saturating_add(n);
        }
    }

    /// Adds the body bytes counted for `side` to its current transaction: before the
    /// current transaction changes, and before anything reads the count.
    fn flush_body(&mut self, side: Side) {
        let d = self.dir_mut(side);
        let (n, cur) = (std::mem::take(&mut d.body_bytes), d.cur);
        if n == 0 {
            return;
        }
        if let Some(p) = self.find(cur) {
            let count = match side {
                Side::Client => &mut p.tx.req_body_bytes,
                Side::Server => &mut p.tx.resp_body_bytes,
            };
            *count = count.saturating_add(n);
        }
    }

    fn flag_cur(&mut self, side: Side, flag: Flags) {
        let cur = self.dir(side).cur;
        if let Some(p) = self.find(cur) {
            p.tx.flags |= flag;
        }
    }

    /// The current message of `side` ended at `ts`; the side continues in `next`.
    fn message_done(&mut self, side: Side, ts: u64, next: State) {
        self.flush_body(side);
        let d = self.dir_mut(side);
        d.state = next;
        let cur = d.cur.take();
        if let Some(p) = self.find(cur) {
            match side {
                Side::Client => {
                    p.req_done = true;
                    p.tx.req_last_ts = Some(ts);
                }
                Side::Server => {
                    p.resp_done = true;
                    p.tx.resp_last_ts = Some(ts);
                }
            }
        }
        self.emit_ready();
    }

    /// Reports finished transactions from the front of the queue.
    fn emit_ready(&mut self) {
        while self
            .queue
            .front()
            .is_some_and(|p| p.req_done && p.resp_done)
        {
            if let Some(p) = self.queue.pop_front() {
                self.report(p.tx);
            }
        }
    }

    fn report(&mut self, mut tx: Transaction) {
        if let (Some(req), Some(prev)) = (tx.req_first_ts, self.prev_resp_last_ts) {
            if req < prev {
                tx.flags |= Flags::PIPELINED;
            }
        }
        if tx.resp_last_ts.is_some() {
            self.prev_resp_last_ts = tx.resp_last_ts;
        }
        tx.index = self.emitted;
        self.emitted = self.emitted.saturating_add(1);
        self.done.push(tx);
    }
}
