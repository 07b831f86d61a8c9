//! The top-level operations: decoding one from the input and applying it to the loop.

use usockets_core::Loop;
use usockets_shim_sim::Faults;

use crate::actions::{act, Act};
use crate::checks::run_once;
use crate::config::H;
use crate::connections::{adopt_accepted, connect, listen, listen_close_picked};
use crate::contexts::{context_close_picked, context_create, context_free_picked};
use crate::input::Ops;
use crate::peers::{peer_recv, peer_send};
use crate::polls::poll_create;
use crate::timers::{timer_create, timer_set};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Run,
    RunIdle,
    Advance,
    PeerConnect,
    PeerSend,
    PeerRecv,
    PeerShutdown,
    PeerClose,
    PeerReset,
    PeerAccept,
    Connect,
    Listen,
    ListenClose,
    Sock,
    Stale,
    CtxCreate,
    CtxClose,
    CtxFree,
    TimerCreate,
    TimerSet,
    TimerClose,
    TimerStale,
    PollCreate,
    PollCtl,
    PipeWrite,
    PipeClose,
    Wake,
    FdLimit,
    AdoptAccepted,
    SetFaults,
}

pub(crate) fn faults_from(ops: &mut Ops) -> Faults {
    let mut pm = || (u32::from(ops.u8()) * 4).min(1000);
    Faults {
        partial_write: pm(),
        would_block_send: pm(),
        reset: pm(),
        refuse_connect: pm(),
        emfile_accept: pm(),
        spurious_readiness: pm(),
        delay_delivery: pm(),
        hangup_with_unread: pm(),
    }
}

impl Op {
    /// Whether the operation leaves the loop alone: it acts on the simulated network (peers,
    /// pipes, the clock, fault rates, the descriptor limit) and calls nothing of the loop but
    /// accessors and `wakeup` (which only pokes the shim's waker). The loop cannot change
    /// without being called (it runs nothing by itself), so it is then exactly as the last
    /// check found it, and checking it again would find the same.
    pub(crate) fn leaves_loop_alone(self) -> bool {
        matches!(
            self,
            Op::Advance
                | Op::PeerConnect
                | Op::PeerSend
                | Op::PeerRecv
                | Op::PeerShutdown
                | Op::PeerClose
                | Op::PeerReset
                | Op::PeerAccept
                | Op::PipeWrite
                | Op::PipeClose
                | Op::Wake
                | Op::FdLimit
                | Op::SetFaults
        )
    }
}

/// Decodes one operation from the input and applies it; returns it.
pub(crate) fn step(l: &mut Loop<H>) -> Op {
    let w = l.ext_mut();
    let op = w.ops.pick(w.target.ops());
    if w.trace {
        eprintln!("op {op:?}");
    }
    match op {
        Op::Run => {
            let t = l.ext_mut().ops.pick(&[
                Some(0),
                Some(1),
                Some(10),
                Some(100),
                Some(1000),
                Some(4000),
                Some(65_000),
                None,
            ]);
            run_once(l, t);
        }
        Op::RunIdle => run_once(l, None),
        Op::Advance => {
            let w = l.ext_mut();
            let ms = w
                .ops
                .pick(&[1, 10, 250, 999, 1000, 4000, 15_000, 61_000, 250_000]);
            w.net.advance(ms);
        }
        Op::PeerConnect => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_lis() {
                let r = match (w.lis[i].port, w.lis[i].path) {
                    (Some(port), _) => w.net.peer_connect(port),
                    (None, Some(path)) => w.net.peer_connect_unix(path),
                    (None, None) => return op,
                };
                if let Ok(p) = r {
                    w.add_peer(p);
                }
            }
        }
        Op::PeerSend => peer_send(l),
        Op::PeerRecv => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_peer() {
                peer_recv(w, i);
            }
        }
        Op::PeerShutdown | Op::PeerClose | Op::PeerReset => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_peer() {
                let p = w.peers[i].id;
                match op {
                    Op::PeerShutdown => w.net.peer_shutdown(p),
                    Op::PeerClose => {
                        w.net.peer_close(p);
                        w.peers[i].gone = true;
                    }
                    _ => {
                        w.net.peer_reset(p);
                        w.peers[i].gone = true;
                    }
                }
            }
        }
        Op::PeerAccept => {
            let w = l.ext_mut();
            if let Some(port) = w.peer_port {
                if let Some(p) = w.net.peer_accept(port) {
                    w.add_peer(p);
                }
            }
        }
        Op::Connect => connect(l),
        Op::Listen => listen(l),
        Op::ListenClose => listen_close_picked(l),
        Op::Sock => {
            let w = l.ext_mut();
            if let Some(s) = w.pick_sock() {
                let acts = w.target.acts();
                let a = acts[w.ops.below(acts.len())];
                act(l, Some(s), a);
            }
        }
        Op::Stale => stale(l),
        Op::CtxCreate => context_create(l),
        Op::CtxClose => context_close_picked(l),
        Op::CtxFree => context_free_picked(l),
        Op::TimerCreate => timer_create(l),
        Op::TimerSet => act(l, None, Act::TimerSet),
        Op::TimerClose => act(l, None, Act::TimerClose),
        Op::TimerStale => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_timer() {
                let t = w.timers[i];
                if t.closed {
                    timer_set(l, t.id, 0, 1);
                    assert_eq!(l.timer_ext(t.id), None);
                    assert_eq!(l.timer_close(t.id), None);
                }
            }
        }
        Op::PollCreate => poll_create(l),
        Op::PollCtl => act(l, None, Act::PollCtl),
        Op::PipeWrite => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_poll() {
                let n = 1 + usize::from(w.ops.u8());
                crate::model::pipe_write(l, i, n, 0x44);
            }
        }
        Op::PipeClose => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_poll() {
                let pm = w.polls[i];
                // Only an end the harness owns can be closed: one a live poll watches is the
                // poll's (ownership makes closing it behind the loop's back impossible).
                let ends = &mut w.ends[i];
                for end in [&mut ends.spare, &mut ends.returned] {
                    if end.as_ref().is_some_and(|f| f.number() == pm.write_end) {
                        w.polls[i].write_closed = true;
                        drop(end.take());
                        break;
                    }
                }
            }
        }
        Op::Wake => {
            let w = l.ext_mut();
            w.wake_outside = true;
            if w.ops.u8() & 1 == 0 {
                l.wakeup();
            } else {
                usockets_core::Wake::wake(&l.waker());
            }
        }
        Op::FdLimit => {
            let w = l.ext_mut();
            let b = w.ops.u8();
            let limit = (b != 0).then(|| w.net.open_fds() + usize::from(b % 4));
            w.net.set_fd_limit(limit);
        }
        Op::AdoptAccepted => adopt_accepted(l),
        Op::SetFaults => {
            let w = l.ext_mut();
            let f = faults_from(&mut w.ops);
            w.net.set_faults(f);
        }
    }
    op
}

pub(crate) fn stale(l: &mut Loop<H>) {
    let w = l.ext_mut();
    if w.released.is_empty() {
        return;
    }
    let s = w.released[w.ops.below(w.released.len())];
    if w.socks.contains(s) {
        return;
    }
    assert_eq!(l.is_closed(s), None, "released {s:?} accepted");
    assert_eq!(l.socket_ext(s), None, "released {s:?} has an ext");
    assert_eq!(l.socket_context(s), None, "released {s:?} has a context");
    assert_eq!(l.socket_fd(s), None, "released {s:?} has a descriptor");
    let before = l.ext().stats;
    let acts = l.ext().target.acts();
    let a = acts[l.ext_mut().ops.below(acts.len())];
    if matches!(
        a,
        Act::Write
            | Act::Write2
            | Act::WriteMore
            | Act::Close
            | Act::Adopt
            | Act::Timeout
            | Act::LongTimeout
            | Act::Shutdown
            | Act::ShutdownRead
            | Act::Pause
            | Act::Resume
            | Act::LowPrio
            | Act::CloseConnecting
            | Act::Addr
            | Act::Flush
    ) {
        act(l, Some(s), a);
    }
    assert_eq!(l.ext().stats, before, "a released handle caused callbacks");
    assert_eq!(l.is_closed(s), None);
}
