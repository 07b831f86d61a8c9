//! Actions: what a callback (or a top-level `Sock` operation) does, read from the input.

use usockets_core::SocketId;

use crate::config::Cx;
use crate::connections::{connect, listen, listen_close_picked};
use crate::contexts::{context_close_picked, context_free_picked};
use crate::model::Life;
use crate::peers::peer_send;
use crate::polls::poll_ctl;
use crate::socket_actions::{addr, adopt, close, close_connecting, shutdown, timeout, write};
use crate::timers::{timer_close, timer_create, timer_delays, timer_set};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Act {
    Nothing,
    Write,
    Write2,
    WriteMore,
    Flush,
    Close,
    Adopt,
    AdoptOther,
    Timeout,
    LongTimeout,
    Shutdown,
    ShutdownRead,
    Pause,
    Resume,
    LowPrio,
    CloseConnecting,
    Addr,
    CloseOther,
    CtxClose,
    CtxFree,
    Listen,
    ListenClose,
    Connect,
    Wake,
    TimerCreate,
    TimerSet,
    TimerClose,
    PollCtl,
    PeerSend,
}

/// A callback's reaction: up to three actions read from the input (`0` = none; the high bit
/// chains another).
pub(crate) fn react(cx: &mut Cx, s: Option<SocketId>) {
    if !cx.ext().may_react() {
        return;
    }
    cx.ext_mut().depth += 1;
    for _ in 0..3 {
        let w = cx.ext_mut();
        let b = w.ops.u8();
        let acts = w.target.acts();
        let a = acts[usize::from(b & 0x7F) % acts.len()];
        act(cx, s, a);
        if b & 0x80 == 0 || !cx.ext().may_react() {
            break;
        }
    }
    cx.ext_mut().depth -= 1;
}

pub(crate) fn act(cx: &mut Cx, s: Option<SocketId>, a: Act) {
    let target = match s {
        Some(s) => Some(s),
        None => cx.ext_mut().pick_sock(),
    };
    if cx.ext().trace {
        eprintln!(
            "{:indent$}act {a:?} on {target:?} (iteration {}, now {})",
            "",
            cx.iteration_number(),
            cx.now_ms(),
            indent = 2 * cx.ext().depth as usize
        );
    }
    match a {
        Act::Nothing => {}
        Act::Write | Act::Write2 | Act::WriteMore => on(cx, target, |cx, t| write(cx, t, a)),
        Act::Flush => on(cx, target, |cx, t| cx.flush(t)),
        Act::Close => on(cx, target, close),
        Act::CloseOther => {
            let other = cx.ext_mut().pick_sock();
            on(cx, other, close);
        }
        Act::Adopt => on(cx, target, adopt),
        Act::AdoptOther => {
            let other = cx.ext_mut().pick_sock();
            on(cx, other, adopt);
        }
        Act::Timeout | Act::LongTimeout => on(cx, target, |cx, t| {
            timeout(cx, t, matches!(a, Act::LongTimeout));
        }),
        Act::Shutdown => on(cx, target, shutdown),
        Act::ShutdownRead => on(cx, target, |cx, t| {
            let open = cx.ext().socks.get(t).map(|x| x.life) == Some(Life::Open);
            cx.shutdown_read(t);
            if open {
                cx.ext_mut().sock(t, "shutdown_read").shut_rd = true;
            }
        }),
        Act::Pause => on(cx, target, |cx, t| cx.pause(t)),
        Act::Resume => on(cx, target, |cx, t| cx.resume(t)),
        Act::LowPrio => on(cx, target, |cx, t| {
            let on = cx.ext_mut().ops.u8() & 1 == 0;
            cx.set_low_priority(t, on);
        }),
        Act::CloseConnecting => on(cx, target, close_connecting),
        Act::Addr => on(cx, target, addr),
        Act::CtxClose => context_close_picked(cx),
        Act::CtxFree => context_free_picked(cx),
        Act::Listen => listen(cx),
        Act::ListenClose => listen_close_picked(cx),
        Act::Connect => connect(cx),
        Act::Wake => cx.wakeup(),
        Act::TimerCreate => timer_create(cx),
        Act::TimerSet => {
            if let Some(i) = cx.ext_mut().pick_timer() {
                let t = cx.ext().timers[i].id;
                let (ms, rep) = timer_delays(cx);
                timer_set(cx, t, ms, rep);
            }
        }
        Act::TimerClose => {
            if let Some(i) = cx.ext_mut().pick_timer() {
                let t = cx.ext().timers[i].id;
                timer_close(cx, t);
            }
        }
        Act::PollCtl => {
            if let Some(i) = cx.ext_mut().pick_poll() {
                poll_ctl(cx, i);
            }
        }
        Act::PeerSend => peer_send(cx),
    }
}

/// Runs `f` on socket `s`, if there is one.
fn on(cx: &mut Cx, s: Option<SocketId>, f: impl FnOnce(&mut Cx, SocketId)) {
    if let Some(s) = s {
        f(cx, s);
    }
}
