//! The random operation run at the end of every socket event.

use usockets_core::{OsShim, SocketId, TimerId};

use crate::client::{abort_pending, below, client_write, is_client};
use crate::world::{Kind, Role, Ticket, C};

/// One random operation on `s`, if it is still open: close with a code and reason, adopt into
/// another context, write (clients), shut down, set a timeout and wake the loop, set a long
/// timeout, pause until a timeout resumes it, start a timer, or abort some other client's
/// pending connect.
pub(crate) fn random_op<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    if cx.is_closed(s) != Some(false) {
        return;
    }
    let longest = cx.ext().profile.longest_timeout_s;
    let idle = cx.ext().profile.idle_s;
    match below(cx, 1000) {
        0..=14 => {
            let code = below(cx, 1000) as i32 + 1;
            let reason = below(cx, 1 << 20);
            if let Some(e) = cx.socket_ext_mut(s) {
                e.closing = Some((code, reason));
            }
            cx.close(s, code, Some(reason));
        }
        15..=59 => adopt(cx, s),
        60..=89 if is_client(cx, s) => client_write(cx, s),
        90..=104 if is_client(cx, s) => {
            cx.shutdown(s);
            let secs = below(cx, longest) + 1;
            cx.timeout(s, secs);
        }
        105..=119 => {
            let secs = below(cx, longest) + 1;
            cx.timeout(s, secs);
            cx.wakeup();
        }
        120..=124 => cx.long_timeout(s, 1),
        125..=134 => {
            // The timeout resumes it (see `on_timeout`); until then nothing may be read.
            cx.pause(s);
            if let Some(e) = cx.socket_ext_mut(s) {
                e.paused = true;
            }
            cx.ext_mut().c.pauses += 1;
            let secs = below(cx, idle) + 1;
            cx.timeout(s, secs);
        }
        135..=139 => start_timer(cx),
        140..=144 => abort_pending(cx),
        _ => {}
    }
}

/// Moves `s` to another context, transforming its ext on the way.
fn adopt<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    let (role, ctx) = match cx.socket_ext(s) {
        Some(e) => (e.role, e.ctx),
        None => return,
    };
    let kind = match (role, ctx) {
        (Role::Server, Kind::Child) => Kind::Server,
        (Role::Client, Kind::Child) => Kind::Client,
        _ => Kind::Child,
    };
    let to = cx.ext().context(kind);
    let back = cx.adopt_with(s, to, |e| e.ctx = kind);
    assert_eq!(back, Some(s), "adopting an open socket keeps its handle");
    cx.ext_mut().c.adoptions += 1;
    // Adoption resets timeouts; keep an idle timeout so the run ends.
    let idle = cx.ext().profile.idle_s;
    cx.timeout(s, idle);
}

/// Starts a timer that fires once or up to three times, then closes itself. It must never fire
/// before it is due.
fn start_timer<S: OsShim>(cx: &mut C<S>) {
    let most = cx.ext().profile.longest_timeout_s * 1000;
    let ms = u64::from(below(cx, most));
    let repeat_ms = match below(cx, 2) {
        0 => 0,
        _ => u64::from(below(cx, most)) + 1,
    };
    let now = cx.clock_ms();
    let ticket = Ticket {
        // `timer_set` reads the same clock after this: its deadline is at least this.
        due: now + ms,
        repeat_ms,
        fired: 0,
    };
    // A full timer arena refuses: the hammer just does without this timer.
    let Ok(t) = cx.timer_create(false, ticket) else {
        return;
    };
    if ms == 0 && repeat_ms == 0 {
        // (0, 0) disarms: a timer that never fires would keep the run alive.
        cx.timer_close(t);
        return;
    }
    cx.timer_set(t, on_timer::<S>, ms, repeat_ms);
}

/// A hammer timer fired: never early. A one-shot closes itself now, a repeating one after its
/// third firing; its handle is then stale, so a late extra firing would find no ext.
fn on_timer<S: OsShim>(cx: &mut C<S>, t: TimerId) {
    let now = cx.clock_ms();
    let ticket = *cx.timer_ext(t).expect("a firing timer has its ext");
    assert!(
        now >= ticket.due,
        "timer fired at {now} ms, due at {}",
        ticket.due
    );
    cx.ext_mut().c.timer_fires += 1;
    if ticket.repeat_ms == 0 || ticket.fired == 2 {
        cx.timer_close(t);
        return;
    }
    if let Some(e) = cx.timer_ext_mut(t) {
        e.fired += 1;
        e.due = ticket.due + ticket.repeat_ms;
    }
}
