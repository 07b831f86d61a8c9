//! Level-triggered readiness: what `wait` reports for each registered descriptor, computed
//! afresh from the current state on every call.

use usockets_core::{Event, Interest};

use crate::fault::FaultKind;
use crate::fd::Fd;
use crate::net::{FdKind, NetState, Phase, Registration};

/// The readiness of one descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    pub readable: bool,
    pub writable: bool,
    pub error: bool,
    pub hangup: bool,
}

impl Ready {
    pub fn any(self) -> bool {
        self.readable || self.writable || self.error || self.hangup
    }
}

impl NetState {
    /// Makes the outcome of every connect started before this `wait` visible (so `on_open` is
    /// never synchronous with `connect`).
    pub fn reveal_connects(&mut self, shim: u32) {
        if self.hidden_connects == 0 {
            return;
        }
        let mut still_hidden = 0;
        for e in self.fds.values_mut() {
            let FdKind::Socket(s) = &mut e.kind else {
                continue;
            };
            let hidden = matches!(
                s.phase,
                Phase::Connecting { visible: false } | Phase::Refused { visible: false }
            );
            if !hidden {
                continue;
            }
            if e.reg.map(|r| r.shim) != Some(shim) {
                // Not watched by this shim (yet): a later wait reveals it.
                still_hidden += 1;
                continue;
            }
            s.phase = match s.phase {
                Phase::Refused { .. } => Phase::Refused { visible: true },
                _ => Phase::Connecting { visible: true },
            };
        }
        self.hidden_connects = still_hidden;
    }

    /// The readiness of `fd` under `interest`. Errors and hang-ups ignore the interest.
    pub fn readiness(&mut self, fd: Fd, interest: Interest) -> Ready {
        let now = self.now;
        let mut r = Ready::default();
        let Some(entry) = self.fds.get(&fd) else {
            return r;
        };
        let (conn, side, connecting) = match &entry.kind {
            FdKind::Listener(l) => {
                r.readable = interest.is_readable() && !l.backlog.is_empty();
                return r;
            }
            FdKind::PipeRead(id) => {
                if let Some(p) = self.pipes.get(id) {
                    r.readable = interest.is_readable() && (!p.buf.is_empty() || !p.write_open);
                    r.hangup = !p.write_open;
                }
                return r;
            }
            FdKind::PipeWrite(id) => {
                if let Some(p) = self.pipes.get(id) {
                    r.writable = interest.is_writable() && p.read_open;
                    r.error = !p.read_open;
                }
                return r;
            }
            FdKind::Socket(s) => match s.phase {
                Phase::Connecting { visible: false } | Phase::Refused { visible: false } => {
                    return r
                }
                Phase::Refused { visible: true } => {
                    return Ready {
                        readable: false,
                        writable: true,
                        error: true,
                        hangup: true,
                    };
                }
                Phase::Connecting { visible: true } => (s.conn, s.side, true),
                Phase::Connected => (s.conn, s.side, false),
            },
        };
        let Some(c) = conn.and_then(|id| self.conns.get_mut(&id)) else {
            return r;
        };
        let other = 1 - side;
        c.dirs[other].settle(now);
        let (me, incoming) = (&c.ends[side], &c.dirs[other]);
        let fin = incoming.fin_arrived();
        let readable = c.reset || me.shut_rd || !incoming.visible.is_empty() || fin;
        let writable = !c.reset && !me.shut_wr && !me.broken && c.dirs[side].room() > 0;
        r.readable = interest.is_readable() && readable;
        r.writable = connecting || (interest.is_writable() && writable);
        r.error = c.reset || me.broken;
        r.hangup = c.reset || me.broken || me.hup || (fin && me.shut_wr);
        r
    }

    /// Whether `fd` may get a spurious event: a connected socket on a live connection.
    fn spurious_candidate(&self, fd: Fd) -> bool {
        match self.fds.get(&fd).map(|e| &e.kind) {
            Some(FdKind::Socket(s)) if s.phase == Phase::Connected => s
                .conn
                .and_then(|id| self.conns.get(&id))
                .is_some_and(|c| !c.reset),
            _ => false,
        }
    }

    /// The readiness of every descriptor registered by `shim`, in ascending order starting at
    /// `cursor` and wrapping.
    ///
    /// The vector comes from (and should go back to, through
    /// [`recycle_scan`](Self::recycle_scan)) a buffer kept between waits.
    pub fn scan(&mut self, shim: u32, cursor: Fd) -> Vec<(Fd, Registration, Ready)> {
        let mut out = std::mem::take(&mut self.scan_buf);
        out.clear();
        out.extend(
            self.fds
                .range(cursor..)
                .chain(self.fds.range(..cursor))
                .filter_map(|(fd, e)| e.reg.filter(|r| r.shim == shim).map(|r| (*fd, r)))
                .map(|(fd, reg)| (fd, reg, Ready::default())),
        );
        for entry in out.iter_mut() {
            entry.2 = self.readiness(entry.0, entry.1.interest);
        }
        out
    }

    /// Takes back the vector of a [`scan`](Self::scan) for the next one.
    pub fn recycle_scan(&mut self, mut scanned: Vec<(Fd, Registration, Ready)>) {
        scanned.clear();
        self.scan_buf = scanned;
    }

    /// Fills `events` from a [`scan`](Self::scan), adding spurious events when `spurious`.
    /// Returns how many and the last descriptor reported.
    pub fn emit(
        &mut self,
        scanned: &[(Fd, Registration, Ready)],
        events: &mut [Event],
        spurious: bool,
    ) -> (usize, Option<Fd>) {
        let mut n = 0;
        let mut last = None;
        for &(fd, reg, mut r) in scanned {
            let Some(slot) = events.get_mut(n) else { break };
            if spurious
                && !r.any()
                && !reg.interest.is_empty()
                && self.spurious_candidate(fd)
                && self.roll(FaultKind::SpuriousReadiness)
            {
                r.readable = reg.interest.is_readable();
                r.writable = !r.readable;
            }
            if r.any() {
                *slot = Event::new(reg.token)
                    .with_readable(r.readable)
                    .with_writable(r.writable)
                    .with_error(r.error)
                    .with_hangup(r.hangup);
                n += 1;
                last = Some(fd);
            }
        }
        (n, last)
    }
}
