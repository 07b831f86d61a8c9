//! Draining: closing everything at the end of a run and checking that nothing is left.

use usockets_core::Loop;
use usockets_shim_sim::Faults;

use crate::checks::{check_world, run_once};
use crate::config::{CONTEXTS, H};
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
    // By index, in the order they were made: nothing here makes more of them.
    for i in 0..l.ext().timers.len() {
        let t = l.ext().timers[i];
        if !t.closed {
            timer_close(l, t.id);
        }
    }
    for i in 0..l.ext().polls.len() {
        let p = l.ext().polls[i];
        if !p.freed {
            let (ext, fd) = l.poll_free(p.id).expect("poll_free of a live poll");
            assert_eq!(ext, p.serial);
            assert_eq!(fd.map(|f| f.number()), Some(p.fd));
            l.ext_mut().free_poll(i);
        }
    }
    // Every pipe end and every taken descriptor is the harness's now: dropping closes them.
    l.ext_mut().ends.clear();
    l.ext_mut().taken.clear();
    // The live contexts (at most one per slot), in the order they were made.
    let mut ctxs = [None; CONTEXTS];
    let live = l.ext().ctxs.iter().filter(|c| !c.freed).map(|c| c.id);
    for (slot, c) in ctxs.iter_mut().zip(live) {
        *slot = Some(c);
    }
    let ctxs = ctxs.into_iter().flatten();
    for c in ctxs.clone() {
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
        w.socks.ids().collect::<Vec<_>>()
    );
    assert_eq!(
        l.slots_in_use(),
        [0, 0, ctxs.clone().count(), 0, 0],
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
