//! External peers: test-driven connection ends outside any loop. No faults apply to them.

use std::collections::VecDeque;

use usockets_core::ErrorKind;

use crate::addr::{self, Family};
use crate::net::{ListenKey, Listening, NetState};
use crate::SimNet;

/// A test-side connection end (a namespace apart from descriptors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

/// A peer's end: its connection while the connection lives, then its final state.
#[derive(Debug)]
pub(crate) struct PeerRec {
    pub conn: Option<u64>,
    pub side: usize,
    pub got_fin: bool,
    pub reset: bool,
}

impl NetState {
    /// The live connection and side of a peer.
    fn peer_end(&self, p: PeerId) -> Option<(u64, usize)> {
        let rec = self.peers.get(&p)?;
        Some((rec.conn?, rec.side))
    }

    fn peer_dial(&mut self, key: ListenKey) -> Result<PeerId, ErrorKind> {
        let client = match key {
            ListenKey::Port(_) => Some(addr::loopback(Family::V4, self.client_port())),
            ListenKey::Path(_) => None,
        };
        let conn = self
            .dial(&key, client, true, false)
            .ok_or(ErrorKind::ConnectionRefused)?;
        Ok(self.new_peer(conn, 0))
    }
}

impl SimNet {
    /// Connects a test-side peer to a core-side listener on `port`: it is queued in the
    /// listener's backlog at once. `Err(ConnectionRefused)` when no core listener is there or
    /// its backlog is full.
    pub fn peer_connect(&self, port: u16) -> Result<PeerId, ErrorKind> {
        self.state().peer_dial(ListenKey::Port(port))
    }

    /// Connects a test-side peer to a core-side unix listener on `path`.
    /// `Err(InvalidInput)` for a path longer than 107 bytes.
    pub fn peer_connect_unix(&self, path: &str) -> Result<PeerId, ErrorKind> {
        addr::check_unix_path(path).map_err(|e| e.kind)?;
        self.state().peer_dial(ListenKey::Path(path.to_owned()))
    }

    /// Opens a test-side listener core can connect to; port 0 picks an ephemeral one. Returns
    /// the port, or 0 when the port is already listened on (or no ephemeral port is left).
    pub fn peer_listen(&self, port: u16) -> u16 {
        let mut s = self.state();
        let port = if port == 0 {
            match s.ephemeral_listen_port() {
                Some(p) => p,
                None => return 0,
            }
        } else {
            port
        };
        let key = ListenKey::Port(port);
        if s.listeners.contains_key(&key) {
            return 0;
        }
        s.listeners.insert(key, Listening::Peer(VecDeque::new()));
        port
    }

    /// Takes one connection core made to the test-side listener on `port`, if any.
    pub fn peer_accept(&self, port: u16) -> Option<PeerId> {
        match self.state().listeners.get_mut(&ListenKey::Port(port)) {
            Some(Listening::Peer(q)) => q.pop_front(),
            _ => None,
        }
    }

    /// Queues `data` towards core (unbounded; no faults) and returns how many bytes were queued:
    /// 0 when the connection is reset or this peer shut down or closed. Sending to a core end
    /// that is closed resets the connection (as the RST a real stack answers with).
    pub fn peer_send(&self, p: PeerId, data: &[u8]) -> usize {
        let mut s = self.state();
        let Some((id, side)) = s.peer_end(p) else {
            return 0;
        };
        let Some(c) = s.conns.get_mut(&id) else {
            return 0;
        };
        if c.reset || c.ends[side].closed || c.ends[side].shut_wr {
            return 0;
        }
        if c.gone(1 - side) {
            c.do_reset();
            return 0;
        }
        c.dirs[side].push(data, None);
        data.len()
    }

    /// Takes everything core sent to this peer that is deliverable now.
    pub fn peer_recv(&self, p: PeerId) -> Vec<u8> {
        let mut s = self.state();
        let now = s.now;
        let Some((id, side)) = s.peer_end(p) else {
            return Vec::new();
        };
        let Some(c) = s.conns.get_mut(&id) else {
            return Vec::new();
        };
        let d = &mut c.dirs[1 - side];
        d.settle(now);
        // Two slice copies, not a loop per byte (see `Direction::read_into`).
        let (front, back) = d.visible.as_slices();
        let mut out = Vec::with_capacity(front.len() + back.len());
        out.extend_from_slice(front);
        out.extend_from_slice(back);
        d.visible.clear();
        out
    }

    /// Sends FIN towards core (after the queued bytes).
    pub fn peer_shutdown(&self, p: PeerId) {
        let mut s = self.state();
        let Some((id, side)) = s.peer_end(p) else {
            return;
        };
        if let Some(c) = s.conns.get_mut(&id) {
            c.ends[side].shut_wr = true;
            if !c.reset {
                c.dirs[side].fin = true;
            }
        }
    }

    /// Closes the peer gracefully: FIN towards core, which still reads the pending data first.
    /// Later sends by core fail with `EPIPE`.
    pub fn peer_close(&self, p: PeerId) {
        let mut s = self.state();
        let now = s.now;
        let Some((id, side)) = s.peer_end(p) else {
            return;
        };
        if let Some(c) = s.conns.get_mut(&id) {
            c.close_end(side, now);
        }
        s.reap(id);
    }

    /// Resets the connection (RST): core sees an error and `ECONNRESET`.
    pub fn peer_reset(&self, p: PeerId) {
        let mut s = self.state();
        let Some((id, side)) = s.peer_end(p) else {
            return;
        };
        if let Some(c) = s.conns.get_mut(&id) {
            c.do_reset();
            c.ends[side].closed = true;
        }
        s.reap(id);
    }

    /// Whether core shut down or closed its side and this peer has read everything before it.
    pub fn peer_got_fin(&self, p: PeerId) -> bool {
        let mut s = self.state();
        let now = s.now;
        let Some(rec) = s.peers.get(&p) else {
            return false;
        };
        let (conn, side, got_fin) = (rec.conn, rec.side, rec.got_fin);
        match conn.and_then(|id| s.conns.get_mut(&id)) {
            Some(c) => {
                c.dirs[1 - side].settle(now);
                c.dirs[1 - side].drained()
            }
            None => got_fin,
        }
    }

    /// Whether the connection was reset (by either side or by a fault).
    pub fn peer_is_reset(&self, p: PeerId) -> bool {
        let s = self.state();
        let Some(rec) = s.peers.get(&p) else {
            return false;
        };
        match rec.conn.and_then(|id| s.conns.get(&id)) {
            Some(c) => c.reset,
            None => rec.reset,
        }
    }
}
