//! Behaviour tests of polls on user descriptors (`us_create_poll`, `us_poll_init`,
//! `us_poll_start`/`_change`/`_stop`, `us_poll_events`, `us_poll_fd`, `us_poll_ext`,
//! `us_poll_resize`, `us_poll_free`), over the simulated OS's user pipes.

mod support;

use support::{new_loop, quiet_net, Caps, SimNet};
use usockets_core::{
    CapacityError, Cx, ErrorKind, Interest, Loop, LoopCallbacks, PollError, PollId, Settings,
    TimerId,
};
use usockets_shim_sim::{SimCall, SimError, SimFd};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Fired {
    poll: PollId,
    label: Option<String>,
    ready: Interest,
    error: bool,
    iter: u64,
}

#[derive(Default)]
struct Rec {
    fired: Vec<Fired>,
    /// Polls that, when one of them fires first in an iteration, get stopped or freed.
    group: Vec<PollId>,
    /// What the first callback of the group does to the others.
    action: Action,
    acted_in: Option<u64>,
    /// A readable pipe read end for the poll created inside a callback.
    spare_fd: Option<SimFd>,
    created_in_callback: Option<PollId>,
    /// Poll freed by the timer.
    free_by_timer: Option<PollId>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Action {
    #[default]
    Nothing,
    StopOthers,
    FreeOthersAndReuse,
}

sim_config!(P {
    loop_ext: Rec,
    context_ext: (),
    socket_ext: (),
    timer_ext: (),
    poll_ext: String
});

const GUARD: u64 = 1000;

fn guard(cx: &mut Cx<P>) {
    assert!(
        cx.iteration_number() < GUARD,
        "run() did not return after {GUARD} iterations"
    );
}

fn on_poll(cx: &mut Cx<P>, p: PollId, ready: Interest, error: bool) {
    let f = Fired {
        poll: p,
        label: cx.poll_ext(p).cloned(),
        ready,
        error,
        iter: cx.iteration_number(),
    };
    cx.ext_mut().fired.push(f);
    let iter = cx.iteration_number();
    if cx.ext().acted_in.is_some() || !cx.ext().group.contains(&p) {
        return;
    }
    cx.ext_mut().acted_in = Some(iter);
    let others: Vec<PollId> = cx.ext().group.iter().copied().filter(|o| *o != p).collect();
    match cx.ext().action {
        Action::Nothing => {}
        Action::StopOthers => {
            for o in others {
                cx.poll_stop(o).expect("stop");
            }
        }
        Action::FreeOthersAndReuse => {
            for o in others {
                cx.poll_free(o).expect("free");
            }
            let fd = cx.ext_mut().spare_fd.take().expect("spare fd");
            let n = cx.poll_create(true, "newcomer".into()).expect("create");
            cx.poll_init(n, fd).expect("init");
            cx.poll_set_callback(n, on_poll).expect("cb");
            cx.poll_start(n, Interest::READABLE).expect("start");
            cx.ext_mut().created_in_callback = Some(n);
        }
    }
}

fn free_timer(cx: &mut Cx<P>, _: TimerId) {
    if let Some(p) = cx.ext_mut().free_by_timer.take() {
        assert!(cx.poll_free(p).is_some());
    }
}

fn make(net: &SimNet) -> Loop<P> {
    new_loop::<P>(
        net,
        Caps {
            polls: 4,
            ..Caps::default()
        },
        Rec::default(),
        LoopCallbacks {
            pre: Some(guard),
            ..LoopCallbacks::default()
        },
        Settings::default(),
    )
}

fn step(l: &mut Loop<P>) {
    l.run_once(Some(0)).expect("run_once");
}

/// A started readable poll on the read end of a new pipe: (poll, the read end's number, the
/// write end). The poll owns the read end.
fn readable_poll(l: &mut Loop<P>, net: &SimNet, label: &str) -> (PollId, i32, SimFd) {
    let (r, w) = net.user_pipe();
    let p = l.poll_create(true, label.into()).expect("create");
    let r_number = r.number();
    assert!(matches!(l.poll_init(p, r), Ok(None)), "init");
    l.poll_set_callback(p, on_poll).expect("callback");
    l.poll_start(p, Interest::READABLE).expect("start");
    (p, r_number, w)
}

/// The number of the descriptor a poll holds.
fn fd_number(l: &Loop<P>, p: PollId) -> Option<i32> {
    l.poll_fd(p).map(SimFd::number)
}

fn count(l: &Loop<P>, p: PollId) -> usize {
    l.ext().fired.iter().filter(|f| f.poll == p).count()
}

#[test]
fn poll_fires_readable_when_pipe_has_data() {
    let net = quiet_net();
    let mut l = make(&net);
    let (p, _r, w) = readable_poll(&mut l, &net, "reader");
    step(&mut l);
    assert!(l.ext().fired.is_empty(), "no data, no callback");
    net.pipe_write(&w, b"ping");
    step(&mut l);
    assert_eq!(
        l.ext().fired,
        vec![Fired {
            poll: p,
            label: Some("reader".into()),
            ready: Interest::READABLE,
            error: false,
            iter: l.iteration_number(),
        }]
    );
}

#[test]
fn poll_is_level_triggered_until_drained() {
    let net = quiet_net();
    let mut l = make(&net);
    let (p, _, w) = readable_poll(&mut l, &net, "reader");
    net.pipe_write(&w, b"ping");
    for n in 1..=3 {
        step(&mut l);
        assert_eq!(
            count(&l, p),
            n,
            "fires every iteration while data is pending"
        );
    }
    let mut buf = [0u8; 16];
    assert_eq!(net.pipe_read(l.poll_fd(p).expect("fd"), &mut buf), 4);
    step(&mut l);
    step(&mut l);
    assert_eq!(count(&l, p), 3, "silent once drained");
}

#[test]
fn poll_change_switches_interest_with_one_modify_and_none_when_unchanged() {
    let net = quiet_net();
    let mut l = make(&net);
    let (_r, w) = net.user_pipe();
    let p = l.poll_create(true, "writer".into()).expect("create");
    l.poll_init(p, w).expect("init");
    l.poll_set_callback(p, on_poll).expect("cb");
    l.poll_start(p, Interest::READABLE).expect("start");
    assert_eq!(l.poll_events(p), Some(Interest::READABLE));
    step(&mut l);
    assert!(l.ext().fired.is_empty(), "a write end is never readable");

    let m0 = net.syscalls().modify;
    l.poll_change(p, Interest::WRITABLE).expect("change");
    assert_eq!(net.syscalls().modify, m0 + 1);
    assert_eq!(l.poll_events(p), Some(Interest::WRITABLE));
    l.poll_change(p, Interest::WRITABLE).expect("same change");
    assert_eq!(net.syscalls().modify, m0 + 1, "no OS call when unchanged");
    step(&mut l);
    assert_eq!(l.ext().fired.len(), 1);
    assert_eq!(l.ext().fired[0].ready, Interest::WRITABLE);
    assert!(!l.ext().fired[0].error);
}

#[test]
fn poll_start_on_started_poll_changes_interest() {
    let net = quiet_net();
    let mut l = make(&net);
    let (_r, w) = net.user_pipe();
    let p = l.poll_create(true, "writer".into()).expect("create");
    l.poll_init(p, w).expect("init");
    l.poll_set_callback(p, on_poll).expect("cb");
    let r0 = net.syscalls().register;
    l.poll_start(p, Interest::NONE).expect("start");
    assert_eq!(net.syscalls().register, r0 + 1);
    l.poll_start(p, Interest::BOTH).expect("start again");
    assert_eq!(net.syscalls().register, r0 + 1, "not registered twice");
    assert_eq!(l.poll_events(p), Some(Interest::BOTH));
    step(&mut l);
    assert_eq!(l.ext().fired.len(), 1);
    assert_eq!(
        l.ext().fired[0].ready,
        Interest::WRITABLE,
        "only what is ready is reported"
    );
}

#[test]
fn poll_stop_silences_poll_even_with_data_pending_and_start_resumes() {
    let net = quiet_net();
    let mut l = make(&net);
    let (p, _r, w) = readable_poll(&mut l, &net, "reader");
    net.pipe_write(&w, b"data");
    step(&mut l);
    assert_eq!(count(&l, p), 1);
    let d0 = net.syscalls().deregister;
    l.poll_stop(p).expect("stop");
    assert_eq!(net.syscalls().deregister, d0 + 1);
    assert_eq!(l.poll_events(p), Some(Interest::NONE));
    l.poll_stop(p).expect("stop twice is fine");
    assert_eq!(
        net.syscalls().deregister,
        d0 + 1,
        "nothing to deregister twice"
    );
    for _ in 0..3 {
        step(&mut l);
    }
    assert_eq!(count(&l, p), 1, "no callbacks while stopped");
    l.poll_start(p, Interest::READABLE).expect("restart");
    step(&mut l);
    assert_eq!(count(&l, p), 2, "restarted poll fires again");
}

#[test]
fn poll_stop_inside_callback_drops_events_already_collected() {
    let net = quiet_net();
    let mut l = make(&net);
    let (a, _, wa) = readable_poll(&mut l, &net, "a");
    let (b, _, wb) = readable_poll(&mut l, &net, "b");
    net.pipe_write(&wa, b"1");
    net.pipe_write(&wb, b"2");
    l.ext_mut().group = vec![a, b];
    l.ext_mut().action = Action::StopOthers;
    let w0 = net.syscalls().wait;
    step(&mut l);
    assert_eq!(net.syscalls().wait, w0 + 1, "both ready in one wait");
    assert_eq!(
        l.ext().fired.len(),
        1,
        "the poll stopped by the first callback must not run: {:?}",
        l.ext().fired
    );
    let first = l.ext().fired[0].poll;
    let other = if first == a { b } else { a };
    assert_eq!(l.poll_events(other), Some(Interest::NONE));
    step(&mut l);
    assert_eq!(count(&l, other), 0);
    assert_eq!(count(&l, first), 2);
}

#[test]
fn poll_freed_and_slot_reused_inside_callback_never_gets_stale_event() {
    let net = quiet_net();
    let mut l = make(&net);
    let (a, _, wa) = readable_poll(&mut l, &net, "a");
    let (b, _, wb) = readable_poll(&mut l, &net, "b");
    let (spare_r, spare_w) = net.user_pipe();
    net.pipe_write(&wa, b"1");
    net.pipe_write(&wb, b"2");
    net.pipe_write(&spare_w, b"3");
    l.ext_mut().group = vec![a, b];
    l.ext_mut().action = Action::FreeOthersAndReuse;
    l.ext_mut().spare_fd = Some(spare_r);
    step(&mut l);
    let n = l.ext().created_in_callback.expect("created");
    let first = l.ext().fired[0].poll;
    let freed = if first == a { b } else { a };
    assert_eq!(n.index(), freed.index(), "the newcomer took the freed slot");
    assert_ne!(n.generation(), freed.generation());
    assert_eq!(
        l.ext().fired.len(),
        1,
        "the freed poll's collected event reached nobody: {:?}",
        l.ext().fired
    );
    step(&mut l);
    let labels: Vec<Option<String>> = l
        .ext()
        .fired
        .iter()
        .filter(|f| f.poll == n)
        .map(|f| f.label.clone())
        .collect();
    assert_eq!(
        labels,
        vec![Some("newcomer".to_string())],
        "the newcomer fires from its own registration, in the next iteration"
    );
}

#[test]
fn poll_reports_error_when_pipe_write_end_closes() {
    let net = quiet_net();
    let mut l = make(&net);
    let (p, _r, w) = readable_poll(&mut l, &net, "reader");
    drop(w);
    step(&mut l);
    let f = l.ext().fired.last().cloned().expect("fired");
    assert_eq!(f.poll, p);
    assert!(f.error, "a hang-up is reported as error/hang-up");
    assert_eq!(f.ready, Interest::READABLE, "EOF is readable");
}

#[test]
fn poll_events_fd_and_ext_accessors() {
    let net = quiet_net();
    let mut l = make(&net);
    let (r, _w) = net.user_pipe();
    let p = l.poll_create(true, "x".into()).expect("create");
    assert_eq!(l.poll_fd(p), None, "no descriptor before init");
    assert_eq!(l.poll_events(p), Some(Interest::NONE));
    let r_number = r.number();
    assert!(matches!(l.poll_init(p, r), Ok(None)), "init");
    assert_eq!(
        fd_number(&l, p),
        Some(r_number),
        "the poll lends what it was given"
    );
    assert_eq!(l.poll_ext(p).map(String::as_str), Some("x"));
    l.poll_ext_mut(p).expect("ext").push('y');
    assert_eq!(l.poll_ext(p).map(String::as_str), Some("xy"));
    l.poll_start(p, Interest::READABLE).expect("start");
    assert_eq!(l.poll_events(p), Some(Interest::READABLE));
    assert_eq!(l.poll_events(p).map(Interest::bits), Some(1));
}

#[test]
fn poll_init_on_started_poll_is_refused() {
    let net = quiet_net();
    let mut l = make(&net);
    let (p, r, _w) = readable_poll(&mut l, &net, "reader");
    let (r2, _w2) = net.user_pipe();
    let r2_number = r2.number();
    let refused = l.poll_init(p, r2).expect_err("refused while started");
    assert_eq!(refused.error, PollError::Started);
    let r2 = refused.into_fd();
    assert_eq!(r2.number(), r2_number, "the refused descriptor comes back");
    assert_eq!(fd_number(&l, p), Some(r), "descriptor unchanged");
    l.poll_stop(p).expect("stop");
    let previous = l.poll_init(p, r2).expect("init after stop");
    assert_eq!(
        previous.map(|f| f.number()),
        Some(r),
        "the replaced descriptor is given back"
    );
    assert_eq!(fd_number(&l, p), Some(r2_number));
}

#[test]
fn poll_resize_transforms_ext_and_keeps_handle_and_registration() {
    let net = quiet_net();
    let mut l = make(&net);
    let (p, _r, w) = readable_poll(&mut l, &net, "small");
    let before = net.syscalls();
    let q = l.poll_resize(p, |e| e.push_str("-and-now-much-bigger"));
    assert_eq!(q, Some(p), "same handle");
    let after = net.syscalls();
    assert_eq!(
        (after.register, after.modify, after.deregister),
        (before.register, before.modify, before.deregister),
        "registration untouched"
    );
    net.pipe_write(&w, b"x");
    step(&mut l);
    assert_eq!(l.ext().fired.len(), 1);
    assert_eq!(l.ext().fired[0].poll, p);
    assert_eq!(
        l.ext().fired[0].label.as_deref(),
        Some("small-and-now-much-bigger")
    );
}

#[test]
fn poll_free_returns_ext_frees_slot_and_leaves_descriptor_open() {
    let net = quiet_net();
    let mut l = make(&net);
    let (p, r, w) = readable_poll(&mut l, &net, "gone");
    assert_eq!(l.slots_in_use()[4], 1);
    let fds = net.open_fds();
    let d0 = net.syscalls().deregister;
    let (ext, r_back) = l.poll_free(p).expect("freed");
    assert_eq!(ext, "gone");
    let r_back = r_back.expect("the descriptor comes back");
    assert_eq!(r_back.number(), r);
    assert_eq!(l.slots_in_use()[4], 0);
    assert_eq!(
        net.syscalls().deregister,
        d0 + 1,
        "a started poll is stopped"
    );
    assert_eq!(net.open_fds(), fds, "the descriptor is the caller's");
    net.pipe_write(&w, b"x");
    step(&mut l);
    assert!(l.ext().fired.is_empty());
    let mut buf = [0u8; 4];
    assert_eq!(net.pipe_read(&r_back, &mut buf), 1, "the pipe still works");
}

#[test]
fn non_fallthrough_poll_keeps_run_alive_until_freed() {
    let net = quiet_net();
    let mut l = make(&net);
    let (r, _w) = net.user_pipe();
    let p = l.poll_create(false, "keeper".into()).expect("create");
    l.poll_init(p, r).expect("init");
    l.poll_set_callback(p, on_poll).expect("cb");
    l.poll_start(p, Interest::READABLE).expect("start");
    assert!(l.is_alive());
    let t0 = net.now_ms();
    let t = l.timer_create(true, ()).expect("timer");
    l.timer_set(t, free_timer, 25, 0);
    l.ext_mut().free_by_timer = Some(p);
    l.run().expect("run");
    assert_eq!(net.now_ms(), t0 + 25, "run lasted until the poll was freed");
    assert_eq!(l.slots_in_use()[4], 0);
    assert!(!l.is_alive());
}

#[test]
fn fallthrough_poll_does_not_keep_run_alive() {
    let net = quiet_net();
    let mut l = make(&net);
    let (_p, _r, _w) = readable_poll(&mut l, &net, "bystander");
    assert!(!l.is_alive());
    l.run().expect("run");
    assert_eq!(l.iteration_number(), 0);
}

#[test]
fn freeing_fallthrough_poll_keeps_live_count_right() {
    let net = quiet_net();
    let mut l = make(&net);
    let keeper = l.poll_create(false, "keeper".into()).expect("keeper");
    let ft = l.poll_create(true, "ft".into()).expect("ft");
    assert!(l.is_alive());
    l.poll_free(ft);
    assert!(
        l.is_alive(),
        "freeing a fallthrough poll must not drop the live count (upstream quirk)"
    );
    l.poll_free(keeper);
    assert!(!l.is_alive());
    let ft2 = l.poll_create(true, "ft2".into()).expect("ft2");
    l.poll_free(ft2);
    assert!(!l.is_alive());
    let t = l.timer_create(false, ()).expect("timer");
    assert!(l.is_alive(), "the count did not underflow");
    l.timer_close(t);
    assert!(!l.is_alive());
}

#[test]
fn poll_start_without_init_is_not_initialized() {
    let net = quiet_net();
    let mut l = make(&net);
    let p = l.poll_create(true, "bare".into()).expect("create");
    let r0 = net.syscalls().register;
    assert_eq!(
        l.poll_start(p, Interest::READABLE),
        Err(PollError::NotInitialized)
    );
    assert_eq!(
        l.poll_change(p, Interest::READABLE),
        Err(PollError::NotInitialized)
    );
    assert_eq!(net.syscalls().register, r0);
    assert_eq!(l.poll_events(p), Some(Interest::NONE));
}

#[test]
fn poll_start_propagates_poller_error() {
    let net = quiet_net();
    let mut l = make(&net);
    let p = l.poll_create(true, "bad".into()).expect("create");
    let (r, _w) = net.user_pipe();
    assert!(matches!(l.poll_init(p, r), Ok(None)));
    net.fail_next(
        SimCall::Register,
        SimError::new(ErrorKind::OutOfMemory, 12),
        1,
    );
    match l.poll_start(p, Interest::READABLE) {
        Err(PollError::Os(e)) => {
            assert_eq!(e.kind, ErrorKind::OutOfMemory);
            assert_eq!(e.code, 12, "ENOMEM from the poller");
        }
        other => panic!("expected the poller's error, got {other:?}"),
    }
    assert_eq!(l.poll_events(p), Some(Interest::NONE), "not started");
}

#[test]
fn stale_poll_handle_is_rejected_and_never_aliases() {
    let net = quiet_net();
    let mut l = make(&net);
    let (old, _r, _w) = readable_poll(&mut l, &net, "old");
    assert_eq!(l.poll_free(old).map(|(ext, _)| ext).as_deref(), Some("old"));
    let (new, new_r, new_w) = readable_poll(&mut l, &net, "new");
    assert_eq!(new.index(), old.index(), "slot reused");
    assert_ne!(new.generation(), old.generation());
    let (r3, _w3) = net.user_pipe();

    assert_eq!(
        l.poll_init(old, r3).map_err(|e| e.error),
        Err(PollError::InvalidHandle)
    );
    assert_eq!(
        l.poll_set_callback(old, on_poll),
        Err(PollError::InvalidHandle)
    );
    assert_eq!(
        l.poll_start(old, Interest::WRITABLE),
        Err(PollError::InvalidHandle)
    );
    assert_eq!(
        l.poll_change(old, Interest::WRITABLE),
        Err(PollError::InvalidHandle)
    );
    assert_eq!(l.poll_stop(old), Err(PollError::InvalidHandle));
    assert_eq!(l.poll_events(old), None);
    assert_eq!(l.poll_fd(old), None);
    assert_eq!(l.poll_ext(old), None);
    assert_eq!(l.poll_ext_mut(old), None);
    assert_eq!(l.poll_resize(old, |e| e.clear()), None);
    assert_eq!(l.poll_free(old), None);

    assert_eq!(fd_number(&l, new), Some(new_r), "the new poll is untouched");
    assert_eq!(l.poll_events(new), Some(Interest::READABLE));
    assert_eq!(l.poll_ext(new).map(String::as_str), Some("new"));
    net.pipe_write(&new_w, b"x");
    step(&mut l);
    assert_eq!(count(&l, new), 1);
}

#[test]
fn poll_create_fails_when_arena_is_full() {
    let net = quiet_net();
    let mut l = make(&net);
    let polls: Vec<PollId> = (0..4)
        .map(|i| l.poll_create(true, format!("p{i}")).expect("create"))
        .collect();
    assert_eq!(l.poll_create(true, "extra".into()), Err(CapacityError));
    l.poll_free(polls[2]);
    assert!(l.poll_create(true, "again".into()).is_ok());
}
