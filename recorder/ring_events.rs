//! A BPF ring buffer whose records are decoded into events, read in batches: the
//! plumbing the syscall and TLS tracers share.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, RingBuffer, RingBufferBuilder};

/// Records of one ring buffer, decoded by a function given at creation.
pub struct DecodedRing<T> {
    ringbuf: RingBuffer<'static>,
    queue: Rc<RefCell<VecDeque<T>>>,
    malformed: Rc<Cell<u64>>,
    what: &'static str,
}

impl<T: 'static> DecodedRing<T> {
    /// Reads ring buffer `map` (named `what` in errors); records `decode` rejects are
    /// counted as malformed.
    pub fn new(
        map: &dyn MapCore,
        decode: impl Fn(&[u8]) -> Option<T> + 'static,
        what: &'static str,
    ) -> Result<Self> {
        let queue = Rc::new(RefCell::new(VecDeque::new()));
        let malformed = Rc::new(Cell::new(0u64));
        let mut builder = RingBufferBuilder::new();
        {
            let queue = Rc::clone(&queue);
            let malformed = Rc::clone(&malformed);
            builder.add(map, move |data: &[u8]| {
                match decode(data) {
                    Some(ev) => queue.borrow_mut().push_back(ev),
                    None => malformed.set(malformed.get() + 1),
                }
                0
            })?;
        }
        let ringbuf = builder
            .build()
            .with_context(|| format!("creating the {what} reader"))?;
        Ok(Self {
            ringbuf,
            queue,
            malformed,
            what,
        })
    }

    /// Waits up to `timeout` for records and hands each event to `f`; returns how many.
    /// A zero timeout reads the ring directly: no epoll_wait() per call of a busy loop.
    pub fn poll(&mut self, timeout: Duration, f: &mut impl FnMut(T)) -> Result<usize> {
        let res = if timeout.is_zero() {
            self.ringbuf.consume()
        } else {
            self.ringbuf.poll(timeout)
        };
        if let Err(e) = res {
            if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                return Err(e).with_context(|| format!("polling the {}", self.what));
            }
        }
        let mut n = 0;
        // Pop one at a time: `f` must not run while the queue is borrowed.
        loop {
            let next = self.queue.borrow_mut().pop_front();
            let Some(ev) = next else { break };
            f(ev);
            n += 1;
        }
        Ok(n)
    }

    /// Records that could not be decoded (kernel/user ABI mismatch); should be 0.
    pub fn malformed(&self) -> u64 {
        self.malformed.get()
    }
}
