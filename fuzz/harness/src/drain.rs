//! Draining: closing everything at the end of a run and checking that nothing is left.

use usockets_core::{ContextId, Loop, TimerId};
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
            let (ext, fd) = l.poll_free(p.id).expect("poll_free of a live poll");
            assert_eq!(ext, p.serial);
            assert_eq!(fd.map(|f| f.number()), Some(p.fd));
            l.ext_mut().polls[i].freed = true;
        }
    }
    // Every pipe end and every taken descriptor is the harness's now: dropping closes them.
    l.ext_mut().ends.clear();
    l.ext_mut().taken.clear();
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
