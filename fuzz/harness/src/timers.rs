//! Creating, arming and closing timers, checked against the model.

use usockets_core::TimerId;

use crate::config::{Cx, TIMERS};
use crate::loop_callbacks::on_timer;
use crate::model::{Armed, Tmr};

pub(crate) fn timer_delays(cx: &mut Cx) -> (u64, u64) {
    let w = cx.ext_mut();
    let ms = w.ops.pick(&[0, 1, 5, 50, 250, 999, 1000, 4000, 60_000, 7]);
    let rep = w.ops.pick(&[0, 0, 0, 1, 10, 100, 1000]);
    (ms, rep)
}

pub(crate) fn timer_create(cx: &mut Cx) {
    let w = cx.ext_mut();
    let fallthrough = w.ops.u8() % 2 == 1;
    let serial = w.next_serial();
    let live = w.live_timers.len();
    match cx.timer_create(fallthrough, serial) {
        Ok(t) => {
            assert!(live < TIMERS, "more timers than slots");
            assert_eq!(cx.timer_is_armed(t), Some(false));
            cx.ext_mut().add_timer(Tmr {
                id: t,
                serial,
                fallthrough,
                closed: false,
                armed: None,
                last_fire: 0,
            });
        }
        Err(_) => assert_eq!(live, TIMERS, "timer capacity"),
    }
}

pub(crate) fn timer_set(cx: &mut Cx, t: TimerId, ms: u64, repeat: u64) {
    cx.timer_set(t, on_timer, ms, repeat);
    let iteration = cx.iteration_number();
    let w = cx.ext_mut();
    let now = w.net.now_ms();
    let late = w.after_timer_phase;
    if let Some(i) = w.live_timer(t) {
        w.timers[i].armed = (ms != 0 || repeat != 0).then(|| Armed {
            deadline: now.saturating_add(ms),
            repeat,
            iteration,
            late,
        });
    } else {
        assert_eq!(cx.timer_is_armed(t), None, "closed timer {t:?} armed");
    }
}

pub(crate) fn timer_close(cx: &mut Cx, t: TimerId) {
    let r = cx.timer_close(t);
    let w = cx.ext_mut();
    match w.live_timer(t) {
        Some(i) => {
            assert_eq!(r, Some(w.timers[i].serial), "timer_close ext");
            w.close_timer(i);
        }
        None => assert_eq!(r, None, "closed timer {t:?} closed again"),
    }
    assert_eq!(cx.timer_ext(t), None, "closed timer {t:?} has an ext");
}
