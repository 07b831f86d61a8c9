//! Loop time under `Loop::run`, which reads the clock once per iteration (when its wait
//! returns): a timeout set before the wait, in `pre`, after callbacks that took a long time,
//! still counts from the clock as it is then, never from the stale loop time of the last wait.

mod support;

use support::{new_loop, quiet_net, Caps, SimNet};
use usockets_core::{
    ContextCallbacks, Cx, ListenId, ListenOptions, ListenTarget, LoopCallbacks, Settings, SocketId,
};

struct State {
    net: SimNet,
    listener: Option<ListenId>,
    socket: Option<SocketId>,
    /// Set by `on_data`: `pre` arms the socket's timeout in the next iteration.
    arm_in_pre: bool,
    /// The clock when `pre` armed the timeout.
    armed_at: Option<u64>,
    /// Loop time when the timeout fired.
    fired_at: Option<u64>,
}

sim_config!(T {
    loop_ext: State,
    context_ext: (),
    socket_ext: (),
    timer_ext: (),
    poll_ext: ()
});

/// How long the data callback "takes": the clock jumps by this much inside it.
const SLOW_CALLBACK_MS: u64 = 10_000;
/// Longer than a sweep period, so that a sweep runs between arming and the due time.
const TIMEOUT_S: u32 = 8;

fn on_open(cx: &mut Cx<T>, s: SocketId, _: bool, _: &[u8]) {
    cx.ext_mut().socket = Some(s);
}

fn on_data(cx: &mut Cx<T>, _: SocketId, _: &mut usockets_core::RecvBuf<'_>) {
    cx.ext().net.advance(SLOW_CALLBACK_MS);
    cx.ext_mut().arm_in_pre = true;
}

fn pre(cx: &mut Cx<T>) {
    if !std::mem::take(&mut cx.ext_mut().arm_in_pre) {
        return;
    }
    let s = cx.ext().socket.expect("accepted before data");
    let armed_at = cx.ext().net.now_ms();
    cx.timeout(s, TIMEOUT_S);
    cx.ext_mut().armed_at = Some(armed_at);
}

fn on_timeout(cx: &mut Cx<T>, s: SocketId) {
    let now = cx.now_ms();
    cx.ext_mut().fired_at = Some(now);
    cx.close(s, 0, None);
    if let Some(l) = cx.ext_mut().listener.take() {
        cx.listen_close(l);
    }
}

#[test]
fn a_timeout_set_in_pre_after_a_slow_callback_is_never_early_under_run() {
    let net = quiet_net();
    let state = State {
        net: net.clone(),
        listener: None,
        socket: None,
        arm_in_pre: false,
        armed_at: None,
        fired_at: None,
    };
    let loop_callbacks = LoopCallbacks {
        pre: Some(pre),
        ..LoopCallbacks::default()
    };
    let mut l = new_loop::<T>(
        &net,
        Caps::default(),
        state,
        loop_callbacks,
        Settings::default(),
    );
    let cbs = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_timeout: Some(on_timeout),
        ..ContextCallbacks::default()
    };
    let ctx = l.context_create((), cbs).expect("context");
    let ls = l
        .listen(
            ctx,
            ListenTarget::Host {
                host: None,
                port: 0,
            },
            ListenOptions::default(),
            || (),
        )
        .expect("listen");
    l.ext_mut().listener = Some(ls);
    let port = l.listen_port(ls).expect("port");
    let peer = net.peer_connect(port).expect("peer connect");
    assert_eq!(net.peer_send(peer, b"x"), 1);
    // Runs until the timeout closes the socket and the listener.
    l.run().expect("run");
    let armed_at = l.ext().armed_at.expect("pre armed the timeout");
    let fired_at = l.ext().fired_at.expect("the timeout fired");
    let due = armed_at + u64::from(TIMEOUT_S) * 1000;
    assert!(
        fired_at >= due,
        "fired at {fired_at}, before {due} (armed at {armed_at} by the clock)"
    );
    // At most one sweep period late (4 s by default), as for any timeout.
    assert!(
        fired_at <= due + 4000,
        "fired at {fired_at}, more than a sweep period after {due}"
    );
}
