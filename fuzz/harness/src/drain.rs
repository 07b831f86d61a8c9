//! Draining: closing everything at the end of a run and checking that nothing is left.

use usockets_core::{ContextId, Loop, OsShim, TimerId};
use usockets_shim_sim::Faults;

use crate::checks::{check_world, run_once};
use crate::config::H;
use crate::contexts::{context_close, context_free};
use crate::peers::peer_recv;
use crate::timers::timer_close;

/// Closes everything, runs the loop dry and checks that nothing is left.
pub(crate) fn drain(l: &mut Loop<H>) {
    let w = l.ext_mut();
    w.draining = true;
    w.net.set_faults(Faults::NONE);
    w.net.set_fd_limit(None);
    for i in 0..w.peers.len() {
        peer_recv(l.ext_mut(), i);
    }
    let timers: Vec<TimerId> = l
        .ext()
        .timers
        .iter()
        .filter(|t| !t.closed)
        .map(|t| t.id)
        .collect();
    for t in timers {
        timer_close(l, t);
    }
    let polls = l.ext().polls.clone();
    for (i, p) in polls.iter().enumerate() {
        if !p.freed {
            assert_eq!(l.poll_free(p.id), Some(p.serial));
            l.ext_mut().polls[i].freed = true;
        }
        l.shim().close(p.read_end);
        if !p.write_closed {
            l.shim().close(p.write_end);
        }
    }
    for fd in std::mem::take(&mut l.ext_mut().taken) {
        l.shim().close(fd);
    }
    let ctxs: Vec<ContextId> = l
        .ext()
        .ctxs
        .iter()
        .filter(|c| !c.freed)
        .map(|c| c.id)
        .collect();
    for &c in &ctxs {
        context_close(l, c);
    }
    check_world(l);
    run_once(l, Some(0));
    check_world(l);
    run_once(l, Some(0));
    check_world(l);
    let w = l.ext();
    assert!(
        w.socks.is_empty(),
        "sockets left after draining: {:?}",
        w.socks.keys()
    );
    assert_eq!(
        l.slots_in_use(),
        [0, 0, ctxs.len(), 0, 0],
        "slots left after draining"
    );
    for c in ctxs {
        context_free(l, c);
    }
    assert_eq!(l.slots_in_use(), [0; 5], "every slot free");
    assert!(!l.is_alive(), "alive after draining");
    let w = l.ext_mut();
    for i in 0..w.peers.len() {
        peer_recv(w, i);
    }
}
