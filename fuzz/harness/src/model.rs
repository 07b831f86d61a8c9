//! The reference model: what the harness expects of every socket, listener, context, timer,
//! poll and peer, kept in the loop's ext ([`World`]) together with the input cursor.

use usockets_core::{ContextId, Interest, ListenId, PollId, SocketId, TimerId};
use usockets_shim_sim::{PeerId, SimFd, SimNet};

use crate::config::{Cx, CONTEXTS, LISTENERS, MAX_DEPTH, POLLS, TIMERS};
use crate::coverage::Stats;
use crate::input::{fill_chunk, Ops};
use crate::recycle::Spare;
use crate::slots::{Changed, Live, Socks};
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

#[derive(Clone, Copy, Debug)]
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

#[derive(Clone, Copy, Debug)]
pub(crate) struct Lis {
    pub(crate) id: ListenId,
    pub(crate) ctx: ContextId,
    pub(crate) port: Option<u16>,
    pub(crate) path: Option<&'static str>,
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
    /// The loop's sweep-tick origin and period (core's `epoch` and the settings' period).
    pub(crate) sweep_epoch: u64,
    pub(crate) sweep_period: u64,
    /// While the sweep runs (from its first `on_timeout` until the iteration's `released` or
    /// `post`), the time of the tick it sweeps: timeouts set then count from it.
    pub(crate) sweep_tick_ms: Option<u64>,
    pub(crate) stats: Stats,
    pub(crate) serial: u64,
    pub(crate) socks: Socks,
    pub(crate) released: Vec<SocketId>,
    pub(crate) streams: Vec<Stream>,
    pub(crate) peers: Vec<Peer>,
    pub(crate) peer_port: Option<u16>,
    /// Every context, listener, timer and poll made so far, dead ones included (the input
    /// picks among all of them, to try dead handles too), and which of them are live.
    pub(crate) ctxs: Vec<Ctx>,
    pub(crate) lis: Vec<Lis>,
    pub(crate) timers: Vec<Tmr>,
    pub(crate) polls: Vec<Pol>,
    pub(crate) live_ctxs: Live<CONTEXTS>,
    pub(crate) live_lis: Live<LISTENERS>,
    pub(crate) live_timers: Live<TIMERS>,
    pub(crate) live_polls: Live<POLLS>,
    /// The slots of each arena that gained or lost an object since the dead handles were last
    /// checked.
    pub(crate) changed: Changed,
    /// Listen sockets closed since the last iteration (their slots are not released yet).
    pub(crate) lis_closing: usize,
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
    /// The buffer writes are made in (see [`World::next_chunk`]).
    pub(crate) chunk: Vec<u8>,
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
        path: Option<&'static str>,
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
    /// An empty model for `target`, reading `ops`, on `net` (in the vectors `spare`).
    pub(crate) fn new(target: Target, ops: Ops, net: SimNet, spare: Spare) -> World {
        World {
            target,
            ops,
            net,
            depth: 0,
            draining: false,
            after_timer_phase: false,
            sweep_epoch: 0,
            sweep_period: 4000,
            sweep_tick_ms: None,
            stats: Stats::default(),
            serial: 0,
            socks: Socks::new(),
            released: spare.released,
            streams: spare.streams,
            peers: spare.peers,
            peer_port: None,
            ctxs: spare.ctxs,
            lis: spare.lis,
            timers: spare.timers,
            polls: spare.polls,
            live_ctxs: Live::new(),
            live_lis: Live::new(),
            live_timers: Live::new(),
            live_polls: Live::new(),
            changed: Changed::default(),
            lis_closing: 0,
            ends: spare.ends,
            taken: spare.taken,
            adopting: None,
            in_connect_error: spare.in_connect_error,
            wake_outside: false,
            trace: trace_wanted(),
            chunk: spare.chunk,
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

    pub(crate) fn sock(&mut self, s: SocketId, what: &str) -> &mut Sock {
        self.socks
            .get_mut(s)
            .unwrap_or_else(|| panic!("{what} for a socket the model does not know: {s:?}"))
    }

    /// Closed as far as core's `is_closed` goes.
    pub(crate) fn closed(&self, s: SocketId) -> bool {
        self.socks.get(s).is_some_and(|x| self.is_closed(s, x))
    }

    /// Whether socket `s`, known to the model as `x`, is closed as far as core's `is_closed`
    /// goes (one inside its `on_connect_error` is not, yet).
    pub(crate) fn is_closed(&self, s: SocketId, x: &Sock) -> bool {
        match x.life {
            Life::Closed => true,
            Life::Failed => !self.in_connect_error.contains(&s),
            Life::Open | Life::Connecting => false,
        }
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
        self.socks.ids().nth(i)
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

    /// The next `len` bytes of outbound stream `out`, in the model's one write buffer, taken
    /// out of it (so the loop can be called while it is borrowed): put it back in
    /// [`World::chunk`] once written, for the next write to reuse.
    pub(crate) fn next_chunk(&mut self, out: u16, len: usize) -> Vec<u8> {
        let mut chunk = std::mem::take(&mut self.chunk);
        fill_chunk(&mut chunk, out, self.streams[usize::from(out)].sent, len);
        chunk
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

/// Writes `n` (at most 256) bytes of `fill` into the pipe of poll `i`, unless its write end is
/// closed.
pub(crate) fn pipe_write(cx: &Cx, i: usize, n: usize, fill: u8) {
    let pm = cx.ext().polls[i];
    if pm.write_closed {
        return;
    }
    if let Some(fd) = pipe_end(cx, i, pm.write_end) {
        let bytes = [fill; 256];
        assert!(n <= bytes.len(), "a pipe write of {n} bytes");
        cx.ext().net.pipe_write(fd, &bytes[..n]);
    }
}

/// Whether `USOCKETS_FUZZ_TRACE` is set, read once per process (a look-up of the environment
/// takes a lock, and a run is short).
fn trace_wanted() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("USOCKETS_FUZZ_TRACE").is_some())
}
