//! The man in the middle of the `tls_session` target: the client and the server are each
//! connected to a test-side peer of the simulated network, and the run passes the bytes between
//! those two peers itself. So it decides when records arrive and in what pieces, and it can
//! flip, drop, insert, replay and reflect bytes of real records in flight, or end a direction
//! with a FIN or a reset the sender never sent.
//!
//! Direction `d` carries what side `d` sent (0: the client, 1: the server) to side `1 - d`.

use usockets_shim_sim::{PeerId, SimNet};

/// The two peers and what is in flight between them.
#[derive(Default)]
pub(crate) struct Proxy {
    /// `peer[d]`: the peer side `d` is connected to.
    pub peer: [Option<PeerId>; 2],
    /// What side `d` sent that is not passed on yet.
    held: [Vec<u8>; 2],
    /// The last piece passed on in direction `d` (for replays and reflections).
    last: [Vec<u8>; 2],
    /// Direction `d` is finished: a FIN (or reset) went to its receiver.
    ended: [bool; 2],
    /// Bytes passed on in each direction.
    pub forwarded: [usize; 2],
    /// A digest of the pieces passed on (their lengths and edges), for determinism tests.
    pub digest: u64,
}

impl Proxy {
    /// Takes what side `d` sent into the proxy.
    pub fn pull(&mut self, net: &SimNet, d: usize) {
        if let Some(p) = self.peer[d] {
            let got = net.peer_recv(p);
            if self.held[d].is_empty() {
                self.held[d] = got;
            } else {
                self.held[d].extend_from_slice(&got);
            }
        }
    }

    /// Passes the first `n` held bytes of direction `d` on; returns how many went.
    pub fn forward(&mut self, net: &SimNet, d: usize, n: usize) -> usize {
        let n = n.min(self.held[d].len());
        let Some(to) = self.peer[1 - d] else {
            return 0;
        };
        if n == 0 || self.ended[d] {
            return 0;
        }
        let piece = &self.held[d][..n];
        net.peer_send(to, piece);
        self.forwarded[d] += n;
        self.digest = mix(self.digest, n as u64);
        let edge = |b: &[u8]| b.iter().fold(0u64, |h, &x| (h << 8) | u64::from(x));
        self.digest = mix(self.digest, edge(&piece[..n.min(8)]));
        self.digest = mix(self.digest, edge(&piece[n.saturating_sub(8)..]));
        self.last[d].clear();
        self.last[d].extend_from_slice(piece);
        self.held[d].drain(..n);
        n
    }

    /// Pulls and passes on everything of direction `d`; then, once its sender's FIN (or a
    /// reset) reached the proxy, passes that on too. Returns how many bytes went.
    pub fn pump(&mut self, net: &SimNet, d: usize) -> usize {
        self.pull(net, d);
        let n = self.forward(net, d, usize::MAX);
        let (Some(from), Some(to)) = (self.peer[d], self.peer[1 - d]) else {
            return n;
        };
        if self.ended[d] || !self.held[d].is_empty() {
            return n;
        }
        if net.peer_is_reset(from) {
            self.ended[d] = true;
            net.peer_reset(to);
        } else if net.peer_got_fin(from) {
            self.ended[d] = true;
            net.peer_shutdown(to);
        }
        n
    }

    /// Ends direction `d` now with a FIN to its receiver (what is held is dropped); returns
    /// whether it was still open.
    pub fn fin(&mut self, net: &SimNet, d: usize) -> bool {
        let (false, Some(to)) = (self.ended[d], self.peer[1 - d]) else {
            return false;
        };
        self.ended[d] = true;
        self.held[d].clear();
        net.peer_shutdown(to);
        true
    }

    /// Resets the connection of direction `d`'s receiver; returns whether it was still open.
    pub fn reset(&mut self, net: &SimNet, d: usize) -> bool {
        let (false, Some(to)) = (self.ended[d], self.peer[1 - d]) else {
            return false;
        };
        self.ended[d] = true;
        self.held[d].clear();
        net.peer_reset(to);
        true
    }

    /// Flips bit `bit` of the held byte at `pos` (modulo what is held); returns whether a byte
    /// changed.
    pub fn flip(&mut self, d: usize, pos: usize, bit: u32) -> bool {
        let held = &mut self.held[d];
        if held.is_empty() {
            return false;
        }
        let i = pos % held.len();
        held[i] ^= 1 << (bit % 8);
        true
    }

    /// Removes up to `n` held bytes from `at` on (`at` a fraction of what is held, in 255ths);
    /// returns whether any went.
    pub fn drop_bytes(&mut self, d: usize, at: u8, n: usize) -> bool {
        let held = &mut self.held[d];
        let i = scale(at, held.len());
        let end = i.saturating_add(n).min(held.len());
        held.drain(i..end);
        end > i
    }

    /// Inserts `bytes` among the held bytes of direction `d` (`at` as in
    /// [`drop_bytes`](Self::drop_bytes)); returns whether anything was inserted.
    pub fn insert(&mut self, d: usize, at: u8, bytes: &[u8]) -> bool {
        let held = &mut self.held[d];
        let i = scale(at, held.len());
        held.splice(i..i, bytes.iter().copied());
        !bytes.is_empty()
    }

    /// The last piece passed on in direction `d`.
    pub fn last(&self, d: usize) -> &[u8] {
        &self.last[d]
    }
}

/// `at` (0..=255) as a position in `len` bytes (0..=len).
fn scale(at: u8, len: usize) -> usize {
    len * usize::from(at) / 255
}

fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(23)
}
