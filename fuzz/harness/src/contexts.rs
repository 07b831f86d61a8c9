//! Creating, closing and freeing contexts, checked against the model.

use usockets_core::{ContextError, ContextId};

use crate::callbacks::callbacks;
use crate::config::{Cx, CONTEXTS};
use crate::model::Life;

pub(crate) fn context_close(cx: &mut Cx, c: ContextId) {
    let w = cx.ext();
    let members = w.socks.select(|s, x| x.ctx == c && !w.closed(s));
    // Its listen sockets close first, before any callback runs; listen sockets an on_close
    // creates in this context stay open.
    let w = cx.ext_mut();
    for i in w.live_lis.snapshot() {
        if w.lis[i].ctx == c {
            w.close_lis(i);
        }
    }
    cx.context_close(c);
    for s in members.into_iter().flatten() {
        let Some(sock) = cx.ext().socks.get(s) else {
            continue;
        };
        if sock.ctx == c && !cx.ext().in_connect_error.contains(&s) {
            assert!(
                matches!(sock.life, Life::Closed | Life::Failed),
                "context_close left {s:?} open"
            );
        }
    }
}

pub(crate) fn context_free(cx: &mut Cx, c: ContextId) {
    let w = cx.ext();
    let live = w.ctx_live(c);
    // Linked sockets keep a context busy: open ones, but not one in its on_connect_error
    // (unlinked before the callback) unless the callback adopted it back into a context.
    let busy = w
        .socks
        .iter()
        .any(|(s, x)| x.ctx == c && !w.closed(s) && !x.unlinked)
        || w.live_lis.iter().any(|i| w.lis[i].ctx == c);
    let r = cx.context_free(c);
    let w = cx.ext_mut();
    match r {
        Ok(serial) => {
            assert!(
                live && !busy,
                "context_free of {c:?} succeeded (live {live}, busy {busy}: {:?})",
                w.socks
                    .iter()
                    .filter(|(_, x)| x.ctx == c)
                    .map(|(s, x)| (s, x.life, x.unlinked))
                    .collect::<Vec<_>>()
            );
            let i = w.live_ctx(c).expect("live");
            assert_eq!(serial, w.ctxs[i].serial, "context ext changed");
            w.free_ctx(i);
        }
        Err(ContextError::InvalidContext) => assert!(!live, "live context {c:?} rejected"),
        Err(ContextError::Busy) => assert!(live && busy, "context {c:?} busy, model says not"),
        Err(e) => panic!("context_free: unexpected {e}"),
    }
    // Freed handles stay rejected.
    if !cx.ext().ctx_live(c) {
        assert!(
            cx.context_ext(c).is_none(),
            "freed context {c:?} has an ext"
        );
    }
}

pub(crate) fn context_create(cx: &mut Cx) {
    let w = cx.ext_mut();
    let b = w.ops.u8();
    let parent = w.pick_ctx();
    let serial = w.next_serial();
    let live = w.live_ctxs.len();
    let child = b % 2 == 1;
    let r = match (child, parent) {
        (true, Some(p)) => cx.context_create_child(p, serial).map(|c| (c, Some(p))),
        _ => cx
            .context_create(serial, callbacks(b & 3 == 0))
            .map(|c| (c, None)),
    };
    match r {
        Ok((c, parent)) => {
            assert!(live < CONTEXTS, "more contexts than slots");
            if let Some(p) = parent {
                assert!(cx.ext().ctx_live(p), "child of a freed context");
                assert_eq!(cx.context_parent(c), Some(p));
                if let Some(cbs) = cx.context_callbacks_mut(c) {
                    *cbs = callbacks(b % 4 == 1);
                }
            }
            cx.ext_mut().add_ctx(c, serial);
        }
        Err(ContextError::Capacity) => assert_eq!(live, CONTEXTS, "context capacity"),
        Err(ContextError::InvalidContext) => {
            assert!(
                parent.is_some_and(|p| !cx.ext().ctx_live(p)),
                "parent rejected"
            )
        }
        Err(e) => panic!("context_create: unexpected {e}"),
    }
}

pub(crate) fn new_ext() -> u64 {
    0
}

/// Closes a context the input picks, if there is one.
pub(crate) fn context_close_picked(cx: &mut Cx) {
    if let Some(c) = cx.ext_mut().pick_ctx() {
        context_close(cx, c);
    }
}

/// Frees a context the input picks, if there is one.
pub(crate) fn context_free_picked(cx: &mut Cx) {
    if let Some(c) = cx.ext_mut().pick_ctx() {
        context_free(cx, c);
    }
}
