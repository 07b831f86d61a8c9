//! The timer, poll and loop callbacks (`wakeup`, `pre`, `post`, `released`) and their checks.

use usockets_core::{Interest, PollId, SocketId, TimerId};

use crate::actions::react;
use crate::config::Cx;
use crate::model::{Armed, Life};
use crate::polls::poll_ctl;
use crate::timers::{timer_close, timer_delays, timer_set};

pub(crate) fn on_timer(cx: &mut Cx, t: TimerId) {
    let now = cx.now_ms();
    let iteration = cx.iteration_number();
    let ext = cx.timer_ext(t).copied();
    let w = cx.ext_mut();
    w.stats.timer += 1;
    w.after_timer_phase = true;
    let i = w
        .live_timer(t)
        .unwrap_or_else(|| panic!("callback of a closed timer {t:?}"));
    let tm = &mut w.timers[i];
    assert_eq!(ext, Some(tm.serial), "timer ext changed");
    let armed = tm
        .armed
        .unwrap_or_else(|| panic!("callback of a disarmed timer {t:?}"));
    assert!(
        now >= armed.deadline,
        "timer {t:?} fired {} ms early",
        armed.deadline - now
    );
    assert_ne!(
        tm.last_fire, iteration,
        "timer {t:?} fired twice in one pass"
    );
    tm.last_fire = iteration;
    tm.armed = (armed.repeat > 0).then(|| {
        let next = armed.deadline.saturating_add(armed.repeat);
        Armed {
            deadline: if next <= now {
                now + armed.repeat
            } else {
                next
            },
            repeat: armed.repeat,
            iteration,
            late: true,
        }
    });
    if cx.ext().may_react() {
        // Timers most often act on themselves: close or re-arm inside their own callback.
        match cx.ext_mut().ops.u8() % 4 {
            1 => timer_close(cx, t),
            2 => {
                let (ms, rep) = timer_delays(cx);
                timer_set(cx, t, ms, rep);
            }
            _ => {}
        }
    }
    react(cx, None);
}

pub(crate) fn on_poll(cx: &mut Cx, p: PollId, ready: Interest, error: bool) {
    let ext = cx.poll_ext(p).copied();
    let w = cx.ext_mut();
    w.stats.poll += 1;
    let i = w
        .live_poll(p)
        .unwrap_or_else(|| panic!("callback of a freed poll {p:?}"));
    let pm = w.polls[i];
    assert_eq!(ext, Some(pm.serial), "poll ext changed");
    assert!(pm.started, "callback of a stopped poll {p:?}");
    assert!(
        ready.bits() & !pm.interest.bits() == 0,
        "poll {p:?} ready {ready:?} outside its interest {:?}",
        pm.interest
    );
    assert!(
        !ready.is_empty() || error,
        "poll callback with nothing ready"
    );
    if ready.is_readable() && pm.fd == pm.read_end && w.ops.u8() & 1 == 0 {
        let mut buf = [0u8; 64];
        let net = w.net.clone();
        if let Some(fd) = cx.poll_fd(p) {
            while net.pipe_read(fd, &mut buf) > 0 {}
        }
    }
    if cx.ext().may_react() {
        poll_ctl(cx, i);
    }
    react(cx, None);
}

pub(crate) fn on_wakeup(cx: &mut Cx) {
    let w = cx.ext_mut();
    w.stats.wakeup += 1;
    w.wake_outside = false;
}

pub(crate) fn on_pre(cx: &mut Cx) {
    let w = cx.ext_mut();
    w.sweep_tick_ms = None;
    w.stats.pre += 1;
    w.after_timer_phase = false;
}

pub(crate) fn on_post(cx: &mut Cx) {
    let w = cx.ext_mut();
    w.sweep_tick_ms = None;
    w.stats.post += 1;
    w.after_timer_phase = true;
}

pub(crate) fn on_released(cx: &mut Cx, s: SocketId, ext: u64) {
    assert_eq!(cx.is_closed(s), None, "released {s:?} still accepted");
    let w = cx.ext_mut();
    w.sweep_tick_ms = None;
    w.stats.released += 1;
    w.after_timer_phase = true;
    let sock = w
        .release_sock(s)
        .unwrap_or_else(|| panic!("released a socket the model does not know: {s:?}"));
    assert_eq!(ext, sock.serial, "released {s:?} with another ext");
    match sock.life {
        Life::Closed => assert_eq!(sock.closes, 1, "{s:?} closed {} times", sock.closes),
        Life::Failed => assert_eq!(sock.closes, 0),
        l => panic!("released {s:?}, which is {l:?}"),
    }
}
