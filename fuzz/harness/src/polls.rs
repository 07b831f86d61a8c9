//! Creating, starting, stopping and freeing polls on user pipes, checked against the model.

use usockets_core::{Interest, Loop, PollError};

use crate::config::{Cx, H, POLLS};
use crate::loop_callbacks::on_poll;
use crate::model::{pipe_write, Ends, Pol};

pub(crate) fn poll_ctl(cx: &mut Cx, i: usize) {
    let w = cx.ext_mut();
    let pm = w.polls[i];
    let how = w.ops.u8() % 6;
    let interest = [Interest::READABLE, Interest::WRITABLE, Interest::BOTH][usize::from(how % 3)];
    let p = pm.id;
    match how {
        0..=3 => {
            let (r, started, interest, (what, done)) = if how < 3 {
                (
                    cx.poll_start(p, interest),
                    true,
                    interest,
                    ("start", "started"),
                )
            } else {
                (cx.poll_stop(p), false, Interest::NONE, ("stop", "stopped"))
            };
            match r {
                Ok(()) => {
                    assert!(!pm.freed, "freed poll {p:?} {done}");
                    let x = &mut cx.ext_mut().polls[i];
                    x.started = started;
                    x.interest = interest;
                }
                Err(PollError::InvalidHandle) => assert!(pm.freed, "live poll {p:?} rejected"),
                Err(e) => panic!("poll_{what}: {e}"),
            }
        }
        4 => {
            let r = cx.poll_free(p);
            let w = cx.ext_mut();
            match r {
                None => assert!(pm.freed, "live poll {p:?} not freed"),
                Some((ext, fd)) => {
                    assert!(!pm.freed, "freed poll {p:?} freed again");
                    assert_eq!(ext, pm.serial, "poll_free ext");
                    let fd = fd.expect("poll_free gives the descriptor back");
                    assert_eq!(
                        fd.number(),
                        pm.fd,
                        "poll_free gives back the descriptor given"
                    );
                    w.ends[i].returned = Some(fd);
                    w.free_poll(i);
                }
            }
        }
        _ => {
            let n = 1 + usize::from(cx.ext_mut().ops.u8() % 32);
            pipe_write(cx, i, n, 0x33);
        }
    }
    if pm.freed {
        assert_eq!(cx.poll_ext(p), None, "freed poll {p:?} has an ext");
    }
}

pub(crate) fn poll_create(l: &mut Loop<H>) {
    let w = l.ext_mut();
    let fallthrough = w.ops.u8() % 2 == 1;
    let read = w.ops.below(3) != 0;
    let serial = w.next_serial();
    let live = w.live_polls.len();
    let p = match l.poll_create(fallthrough, serial) {
        Ok(p) => p,
        Err(_) => {
            assert_eq!(live, POLLS, "poll capacity");
            return;
        }
    };
    assert!(live < POLLS, "more polls than slots");
    let (r, wr) = l.ext().net.user_pipe();
    let (read_end, write_end) = (r.number(), wr.number());
    let (watched, spare) = if read { (r, wr) } else { (wr, r) };
    let fd = watched.number();
    assert!(
        matches!(l.poll_init(p, watched), Ok(None)),
        "poll_init of a fresh poll"
    );
    l.poll_set_callback(p, on_poll).expect("poll_set_callback");
    assert_eq!(l.poll_fd(p).map(|f| f.number()), Some(fd));
    l.ext_mut().add_poll(
        Pol {
            id: p,
            serial,
            fallthrough,
            freed: false,
            fd,
            read_end,
            write_end,
            write_closed: false,
            started: false,
            interest: Interest::NONE,
        },
        Ends {
            spare: Some(spare),
            returned: None,
        },
    );
}
