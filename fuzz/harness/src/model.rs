//! The reference model: what the harness expects of every socket, listener, context, timer,
//! poll and peer, kept in the loop's ext ([`World`]) together with the input cursor.

use std::collections::BTreeMap;

use usockets_core::{ContextId, Interest, ListenId, PollId, SocketId, TimerId};
use usockets_shim_sim::{PeerId, SimFd, SimNet};

use crate::config::{Cx, MAX_DEPTH};
use crate::coverage::Stats;
use crate::input::{stream_chunk, Ops};
use crate::streams::{Inbound, Stream};
use crate::target::Target;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    Connecting,
    Open,
    /// `on_close` ran (or is running); released at the end of the iteration.
    Closed,
    /// The connect failed (`on_connect_error`) or was aborted (`close_connecting`).
    Failed,
}

#[derive(Clone, Debug)]
pub(crate) struct Sock {
    pub(crate) serial: u64,
    pub(crate) life: Life,
    pub(crate) ctx: ContextId,
    pub(crate) out: u16,
    pub(crate) inb: Inbound,
    pub(crate) shut_wr: bool,
    pub(crate) shut_rd: bool,
    pub(crate) got_end: bool,
    pub(crate) want_writable: bool,
    pub(crate) timeout: Option<u64>,
    pub(crate) long_timeout: Option<u64>,
    /// The code and reason of a close the harness asked for, until `on_close` shows them.
    pub(crate) closing: Option<(i32, u32)>,
    pub(crate) closes: u32,
    /// Out of its context's list while still open (inside `on_connect_error`).
    pub(crate) unlinked: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) id: PeerId,
    pub(crate) out: u16,
    pub(crate) inb: Inbound,
    /// The harness closed or reset it: it no longer counts on receiving everything.
    pub(crate) gone: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    pub(crate) id: ContextId,
    pub(crate) serial: u64,
    pub(crate) freed: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Lis {
    pub(crate) id: ListenId,
    pub(crate) ctx: ContextId,
    pub(crate) port: Option<u16>,
    pub(crate) path: Option<String>,
    pub(crate) closed: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Armed {
    pub(crate) deadline: u64,
    pub(crate) repeat: u64,
    /// The iteration it was armed in, and whether that was at or after that iteration's timer
    /// pass (then it may wait for the next pass).
    pub(crate) iteration: u64,
    pub(crate) late: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Tmr {
    pub(crate) id: TimerId,
    pub(crate) serial: u64,
    pub(crate) fallthrough: bool,
    pub(crate) closed: bool,
    pub(crate) armed: Option<Armed>,
    pub(crate) last_fire: u64,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Pol {
    pub(crate) id: PollId,
    pub(crate) serial: u64,
    pub(crate) fallthrough: bool,
    pub(crate) freed: bool,
    /// The number of the polled descriptor and of the ends of the pipe it belongs to. The
    /// poll owns the polled end (until `poll_free` gives it back); [`World::ends`] holds the rest.
    pub(crate) fd: i32,
    pub(crate) read_end: i32,
    pub(crate) write_end: i32,
    pub(crate) write_closed: bool,
    pub(crate) started: bool,
    pub(crate) interest: Interest,
}

/// The pipe ends the harness owns for one poll: the end it did not give the poll, and the polled
/// end once `poll_free` gave it back. Dropping one closes it.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    pub(crate) spare: Option<SimFd>,
    pub(crate) returned: Option<SimFd>,
}

/// The reference model and the input cursor: the loop's ext.
pub struct World {
    pub(crate) target: Target,
    pub(crate) ops: Ops,
    pub(crate) net: SimNet,
    pub(crate) depth: u32,
    pub(crate) draining: bool,
    pub(crate) after_timer_phase: bool,
    pub(crate) stats: Stats,
    pub(crate) serial: u64,
    pub(crate) socks: BTreeMap<SocketId, Sock>,
    pub(crate) released: Vec<SocketId>,
    pub(crate) streams: Vec<Stream>,
    pub(crate) peers: Vec<Peer>,
    pub(crate) peer_port: Option<u16>,
    pub(crate) ctxs: Vec<Ctx>,
    pub(crate) lis: Vec<Lis>,
    /// Listen sockets closed since the last iteration (their slots are not released yet).
    pub(crate) lis_closing: usize,
    pub(crate) timers: Vec<Tmr>,
    pub(crate) polls: Vec<Pol>,
    /// The pipe ends of each poll (same index) that the poll does not own.
    pub(crate) ends: Vec<Ends>,
    /// Descriptors taken in `on_pre_open`, ours to adopt or close (dropping closes).
    pub(crate) taken: Vec<SimFd>,
    /// The serial given to `adopt_accepted`, until its `on_open`.
    pub(crate) adopting: Option<u64>,
    /// The socket whose `on_connect_error` is running.
    pub(crate) in_connect_error: Vec<SocketId>,
    /// A wake-up from outside the loop that the next iteration must deliver.
    pub(crate) wake_outside: bool,
    /// Print every operation and action (`USOCKETS_FUZZ_TRACE=1`), to read a failing input.
    pub(crate) trace: bool,
}

impl Sock {
    /// A socket the model just learned of, with a fresh outbound stream `out`.
    pub(crate) fn new(serial: u64, life: Life, ctx: ContextId, out: u16) -> Sock {
        Sock {
            serial,
            life,
            ctx,
            out,
            inb: Inbound::default(),
            shut_wr: false,
            shut_rd: false,
            got_end: false,
            want_writable: false,
            timeout: None,
            long_timeout: None,
            closing: None,
            closes: 0,
            unlinked: false,
        }
    }

    /// Its timeout or its long timeout.
    pub(crate) fn timeout_mut(&mut self, long: bool) -> &mut Option<u64> {
        if long {
            &mut self.long_timeout
        } else {
            &mut self.timeout
        }
    }
}

impl Ctx {
    /// A live context.
    pub(crate) fn new(id: ContextId, serial: u64) -> Ctx {
        Ctx {
            id,
            serial,
            freed: false,
        }
    }
}

impl Lis {
    /// An open listener.
    pub(crate) fn new(
        id: ListenId,
        ctx: ContextId,
        port: Option<u16>,
        path: Option<String>,
    ) -> Lis {
        Lis {
            id,
            ctx,
            port,
            path,
            closed: false,
        }
    }
}

impl World {
    /// An empty model for `target`, reading `ops`, on `net`.
    pub(crate) fn new(target: Target, ops: Ops, net: SimNet) -> World {
        World {
            target,
            ops,
            net,
            depth: 0,
            draining: false,
            after_timer_phase: false,
            stats: Stats::default(),
            serial: 0,
            socks: BTreeMap::new(),
            released: Vec::new(),
            streams: Vec::new(),
            peers: Vec::new(),
            peer_port: None,
            ctxs: Vec::new(),
            lis: Vec::new(),
            lis_closing: 0,
            timers: Vec::new(),
            polls: Vec::new(),
            ends: Vec::new(),
            taken: Vec::new(),
            adopting: None,
            in_connect_error: Vec::new(),
            wake_outside: false,
            trace: std::env::var_os("USOCKETS_FUZZ_TRACE").is_some(),
        }
    }

    pub(crate) fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    pub(crate) fn new_stream(&mut self) -> u16 {
        self.streams.push(Stream::default());
        u16::try_from(self.streams.len() - 1).unwrap_or(u16::MAX)
    }

    pub(crate) fn ctx_live(&self, c: ContextId) -> bool {
        self.ctxs.iter().any(|x| x.id == c && !x.freed)
    }

    pub(crate) fn sock(&mut self, s: SocketId, what: &str) -> &mut Sock {
        self.socks
            .get_mut(&s)
            .unwrap_or_else(|| panic!("{what} for a socket the model does not know: {s:?}"))
    }

    /// Closed as far as core's `is_closed` goes.
    pub(crate) fn closed(&self, s: SocketId) -> bool {
        match self.socks.get(&s).map(|x| x.life) {
            Some(Life::Closed) => true,
            Some(Life::Failed) => !self.in_connect_error.contains(&s),
            _ => false,
        }
    }

    pub(crate) fn keepalive(&self) -> usize {
        let socks = self
            .socks
            .values()
            .filter(|x| matches!(x.life, Life::Open | Life::Connecting))
            .count();
        let lis = self.lis.iter().filter(|x| !x.closed).count();
        let timers = self
            .timers
            .iter()
            .filter(|x| !x.closed && !x.fallthrough)
            .count();
        let polls = self
            .polls
            .iter()
            .filter(|x| !x.freed && !x.fallthrough)
            .count();
        socks + lis + timers + polls
    }

    pub(crate) fn may_react(&self) -> bool {
        !self.draining && self.depth < MAX_DEPTH && !self.ops.done()
    }

    /// Reads one byte and picks with it one of `n` items (none if there are none; the byte is
    /// read either way).
    fn pick_index(&mut self, n: usize) -> Option<usize> {
        let i = self.ops.u8() as usize;
        (n != 0).then(|| i % n)
    }

    pub(crate) fn pick_sock(&mut self) -> Option<SocketId> {
        let i = self.pick_index(self.socks.len())?;
        self.socks.keys().nth(i).copied()
    }

    pub(crate) fn pick_ctx(&mut self) -> Option<ContextId> {
        let i = self.pick_index(self.ctxs.len())?;
        Some(self.ctxs[i].id)
    }

    pub(crate) fn pick_lis(&mut self) -> Option<usize> {
        self.pick_index(self.lis.len())
    }

    pub(crate) fn pick_timer(&mut self) -> Option<usize> {
        self.pick_index(self.timers.len())
    }

    pub(crate) fn pick_poll(&mut self) -> Option<usize> {
        self.pick_index(self.polls.len())
    }

    pub(crate) fn pick_peer(&mut self) -> Option<usize> {
        self.pick_index(self.peers.len())
    }

    /// A new peer with a fresh outbound stream.
    pub(crate) fn add_peer(&mut self, id: PeerId) {
        let out = self.new_stream();
        self.peers.push(Peer {
            id,
            out,
            inb: Inbound::default(),
            gone: false,
        });
    }

    /// The next `len` bytes of outbound stream `out`.
    pub(crate) fn next_chunk(&self, out: u16, len: usize) -> Vec<u8> {
        stream_chunk(out, self.streams[usize::from(out)].sent, len)
    }

    /// The writer of stream `out` was told `n` more bytes were written.
    pub(crate) fn wrote(&mut self, out: u16, n: usize) {
        self.streams[usize::from(out)].sent += n as u64;
    }
}

/// The descriptor numbered `number` of poll `i`'s pipe, wherever it is now: with the harness,
/// or lent by the poll that owns it.
pub(crate) fn pipe_end(cx: &Cx, i: usize, number: i32) -> Option<&SimFd> {
    let pm = cx.ext().polls[i];
    let ends = &cx.ext().ends[i];
    [ends.spare.as_ref(), ends.returned.as_ref()]
        .into_iter()
        .flatten()
        .chain(cx.poll_fd(pm.id).filter(|_| !pm.freed))
        .find(|fd| fd.number() == number)
}

/// Writes `n` bytes of `fill` into the pipe of poll `i`, unless its write end is closed.
pub(crate) fn pipe_write(cx: &Cx, i: usize, n: usize, fill: u8) {
    let pm = cx.ext().polls[i];
    if pm.write_closed {
        return;
    }
    let net = cx.ext().net.clone();
    if let Some(fd) = pipe_end(cx, i, pm.write_end) {
        net.pipe_write(fd, &vec![fill; n]);
    }
}
