//! Joins l7rec's connection and process records to transactions: who was the client
//! process and who the server process.

use foldhash::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use l7rec_capture::{ConnectionInfo, ProcessInfo, Role};

use crate::transaction::{ProcessRef, Transaction};

/// A socket's lifetime as recorded.
#[derive(Debug, Clone, Copy)]
struct Ownership {
    pid: u32,
    role: Role,
    open_ns: u64,
    close_ns: u64,
}

/// Process metadata gathered from a capture's custom blocks.
#[derive(Debug, Default)]
pub struct Attribution {
    /// (local, remote) → sockets that had that 4-tuple.
    sockets: HashMap<(SocketAddr, SocketAddr), Vec<Ownership>>,
    comms: HashMap<u32, Arc<str>>,
}

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) compare as IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

impl Attribution {
    /// Whether the capture carried any connection records.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Adds a process description (the latest one for a pid wins: exec renames).
    pub fn add_process(&mut self, p: &ProcessInfo) {
        self.comms.insert(p.pid, Arc::from(p.comm.as_str()));
    }

    /// Adds a connection open or close record.
    pub fn add_connection(&mut self, c: &ConnectionInfo) {
        let key = (canonical(c.local), canonical(c.remote));
        let list = self.sockets.entry(key).or_default();
        // A close record completes the matching open record of the same process.
        if c.close_ns != 0 {
            if let Some(o) = list
                .iter_mut()
                .rev()
                .find(|o| o.pid == c.pid && o.close_ns == 0)
            {
                o.close_ns = c.close_ns;
                if o.role == Role::Unknown {
                    o.role = c.role;
                }
                return;
            }
        }
        list.push(Ownership {
            pid: c.pid,
            role: c.role,
            open_ns: c.open_ns,
            close_ns: c.close_ns,
        });
    }

    /// Fills `client_process` and `server_process` of `tx` where the records say.
    pub fn attribute(&self, tx: &mut Transaction) {
        let at = tx.ts_ns().unwrap_or(0);
        tx.client_process = self.owner(tx.client, tx.server, Role::Server, at);
        tx.server_process = self.owner(tx.server, tx.client, Role::Client, at);
    }

    /// The process that had socket (local, remote) at time `at`, excluding sockets
    /// recorded with role `not`: the socket whose lifetime contains `at`, else the one
    /// whose lifetime is nearest (a server's accept() returns after the request's first
    /// packet; ports are reused over time).
    fn owner(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        not: Role,
        at: u64,
    ) -> Option<ProcessRef> {
        let list = self.sockets.get(&(canonical(local), canonical(remote)))?;
        let distance = |o: &Ownership| {
            let close = if o.close_ns == 0 {
                u64::MAX
            } else {
                o.close_ns
            };
            o.open_ns.saturating_sub(at).max(at.saturating_sub(close))
        };
        let o = list
            .iter()
            .filter(|o| o.role != not)
            .min_by_key(|o| distance(o))?;
        Some(ProcessRef {
            pid: o.pid,
            comm: self.comms.get(&o.pid).cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(
        pid: u32,
        role: Role,
        local: &str,
        remote: &str,
        open: u64,
        close: u64,
    ) -> ConnectionInfo {
        ConnectionInfo {
            pid,
            fd: 3,
            netns: 1,
            role,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            open_ns: open,
            close_ns: close,
        }
    }

    #[test]
    fn client_and_server_by_tuple_and_time() {
        let mut a = Attribution::default();
        a.add_process(&ProcessInfo {
            pid: 10,
            comm: "curl".into(),
            ..Default::default()
        });
        a.add_connection(&conn(
            10,
            Role::Client,
            "127.0.0.1:5000",
            "127.0.0.1:80",
            100,
            0,
        ));
        a.add_connection(&conn(
            10,
            Role::Client,
            "127.0.0.1:5000",
            "127.0.0.1:80",
            0,
            200,
        ));
        // Same 4-tuple reused later by another process.
        a.add_connection(&conn(
            11,
            Role::Client,
            "127.0.0.1:5000",
            "127.0.0.1:80",
            300,
            0,
        ));
        a.add_connection(&conn(
            20,
            Role::Server,
            "[::ffff:127.0.0.1]:80",
            "[::ffff:127.0.0.1]:5000",
            0,
            0,
        ));
        let mut tx = Transaction {
            flow_id: 0,
            client: "127.0.0.1:5000".parse().unwrap(),
            server: "127.0.0.1:80".parse().unwrap(),
            method: None,
            host: None,
            uri: None,
            version: None,
            status: None,
            reason: None,
            request_headers: vec![],
            response_headers: vec![],
            req_body_bytes: None,
            resp_body_bytes: None,
            req_first_ns: Some(150),
            req_last_ns: None,
            resp_first_ns: None,
            resp_last_ns: None,
            client_process: None,
            server_process: None,
            flags: vec![],
        };
        a.attribute(&mut tx);
        assert_eq!(
            tx.client_process,
            Some(ProcessRef {
                pid: 10,
                comm: Some("curl".into())
            })
        );
        assert_eq!(
            tx.server_process,
            Some(ProcessRef {
                pid: 20,
                comm: None
            })
        );
        tx.req_first_ns = Some(350);
        a.attribute(&mut tx);
        assert_eq!(tx.client_process.as_ref().unwrap().pid, 11);
        // A request whose first byte precedes connect()'s return is still the client's.
        tx.req_first_ns = Some(90);
        a.attribute(&mut tx);
        assert_eq!(tx.client_process.unwrap().pid, 10);
    }
}
