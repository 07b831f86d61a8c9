//! Connections: two ends joined by two byte streams, each with in-flight (delayed) bytes and a FIN.

use std::collections::VecDeque;

use crate::peer::PeerId;

/// Receive capacity of one direction: unread plus in-flight bytes.
pub(crate) const CAPACITY: usize = 256 * 1024;

/// The bytes flowing one way, from the end that writes them to the end that reads them.
#[derive(Debug, Default)]
pub(crate) struct Direction {
    /// Bytes the reader can read now.
    pub visible: VecDeque<u8>,
    /// Delayed bytes and when they become visible, in order.
    in_flight: VecDeque<(u64, Vec<u8>)>,
    in_flight_bytes: usize,
    /// The writer sent FIN (after every byte it queued).
    pub fin: bool,
}

impl Direction {
    /// Makes every in-flight chunk due at `now` visible.
    pub fn settle(&mut self, now: u64) {
        while let Some((at, _)) = self.in_flight.front() {
            if *at > now {
                break;
            }
            if let Some((_, chunk)) = self.in_flight.pop_front() {
                self.in_flight_bytes -= chunk.len();
                self.visible.extend(chunk);
            }
        }
    }

    /// Unread plus in-flight bytes.
    pub fn queued(&self) -> usize {
        self.visible.len() + self.in_flight_bytes
    }

    /// How many more bytes the reader's buffer takes.
    pub fn room(&self) -> usize {
        CAPACITY.saturating_sub(self.queued())
    }

    /// Whether the FIN reached the reader (nothing is in flight ahead of it).
    pub fn fin_arrived(&self) -> bool {
        self.fin && self.in_flight.is_empty()
    }

    /// Whether the reader has read everything, FIN included.
    pub fn drained(&self) -> bool {
        self.fin_arrived() && self.visible.is_empty()
    }

    /// When the next in-flight chunk due after `now` becomes visible. Chunks already due wait
    /// only for their reader to look (see [`settle`](Self::settle)), not for time to pass.
    pub fn next_delivery_after(&self, now: u64) -> Option<u64> {
        self.in_flight
            .iter()
            .map(|(at, _)| *at)
            .find(|&at| at > now)
    }

    /// Queues bytes, visible at once or at `deliver_at`; never overtakes in-flight bytes.
    pub fn push(&mut self, data: &[u8], deliver_at: Option<u64>) {
        if data.is_empty() {
            return;
        }
        let last = self.in_flight.back().map(|(at, _)| *at);
        match (deliver_at, last) {
            (None, None) => self.visible.extend(data),
            (at, last) => {
                let at = at.unwrap_or(0).max(last.unwrap_or(0));
                self.in_flight.push_back((at, data.to_vec()));
                self.in_flight_bytes += data.len();
            }
        }
    }

    /// Moves up to `buf.len()` visible bytes into `buf`.
    pub fn read_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.visible.len());
        // Two slice copies, not a loop per byte: the fuzz targets run this instrumented, where
        // every loop iteration is a traced comparison.
        let (front, back) = self.visible.as_slices();
        let a = n.min(front.len());
        buf[..a].copy_from_slice(&front[..a]);
        buf[a..n].copy_from_slice(&back[..n - a]);
        self.visible.drain(..n);
        n
    }

    /// Drops everything queued (a reset) and releases the memory.
    pub fn clear(&mut self) {
        self.visible = VecDeque::new();
        self.in_flight = VecDeque::new();
        self.in_flight_bytes = 0;
    }
}

/// The state of one end of a connection.
#[derive(Debug, Default)]
pub(crate) struct End {
    /// The end is gone: its descriptor closed, or its peer closed or reset it.
    pub closed: bool,
    /// `shutdown(SHUT_WR)`: FIN sent.
    pub shut_wr: bool,
    /// `shutdown(SHUT_RD)`: reads give EOF.
    pub shut_rd: bool,
    /// A write hit a far end that is gone (`EPIPE`): reported as error + hangup from then on.
    pub broken: bool,
    /// The far end hung up abruptly (the `hangup_with_unread` fault): reported as hangup.
    pub hup: bool,
    /// This end stopped receiving (the far side of a `hangup_with_unread` fault).
    pub deaf: bool,
    /// The test-side peer owning this end, if it is not a core descriptor.
    pub peer: Option<PeerId>,
}

/// A connection: end `i` writes into `dirs[i]` and reads from `dirs[1 - i]`.
#[derive(Debug, Default)]
pub(crate) struct Conn {
    pub dirs: [Direction; 2],
    pub ends: [End; 2],
    /// Reset: both ends see `ECONNRESET`.
    pub reset: bool,
}

impl Conn {
    /// Resets the connection: queues dropped, both ends see an error from now on.
    pub fn do_reset(&mut self) {
        self.reset = true;
        for d in &mut self.dirs {
            d.clear();
        }
    }

    /// Closes end `side` as `close()` does: FIN after its queued bytes, or RST when it leaves
    /// unread data behind (as Linux does).
    pub fn close_end(&mut self, side: usize, now: u64) {
        let other = 1 - side;
        if !self.reset {
            self.dirs[other].settle(now);
            if self.dirs[other].queued() > 0 && self.ends[side].peer.is_none() {
                self.do_reset();
            } else {
                self.dirs[side].fin = true;
            }
        }
        self.ends[side].closed = true;
    }

    /// Whether `side` can no longer receive (sending into it fails with `EPIPE`).
    pub fn gone(&self, side: usize) -> bool {
        self.ends[side].closed || self.ends[side].deaf
    }

    /// Both ends closed: the connection can be forgotten.
    pub fn finished(&self) -> bool {
        self.ends[0].closed && self.ends[1].closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delayed_bytes_keep_order() {
        let mut d = Direction::default();
        d.push(b"ab", Some(10));
        d.push(b"cd", None);
        d.settle(9);
        assert!(d.visible.is_empty());
        assert_eq!(d.room(), CAPACITY - 4);
        d.settle(10);
        let mut buf = [0u8; 8];
        assert_eq!(d.read_into(&mut buf), 4);
        assert_eq!(&buf[..4], b"abcd");
    }
}
