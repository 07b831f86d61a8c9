//! [`run`]: one input, from decoding to draining.

use usockets_core::{ListenOptions, ListenTarget, Loop, LoopCallbacks, Settings};
use usockets_shim_sim::{ByteSource, SimNet};

use crate::callbacks::callbacks;
use crate::checks::check_world;
use crate::config::{EVENTS_MAX, H, MAX_STEPS, RECV_MAX};
use crate::contexts::new_ext;
use crate::coverage::Report;
use crate::drain::drain;
use crate::input::{split, Ops};
use crate::loop_callbacks::{on_post, on_pre, on_released, on_wakeup};
use crate::memory::Memory;
use crate::model::{Lis, World};
use crate::ops::{faults_from, step};
use crate::recycle::Spare;
use crate::target::Target;

/// Runs one input for `target`: decodes it, drives the loop, checks every invariant (panicking
/// on the first broken one), drains the loop and checks nothing is left.
pub fn run(target: Target, data: &[u8]) -> Report {
    let (ops, fault_bytes) = split(data);
    let mut ops = Ops::new(ops);
    // The same byte says whether the shim reports its deadline as an event (core waits
    // without a timeout and reads loop time when first needed) or core waits with timeouts:
    // both ways of running timers are fuzzed.
    let (sweep_period, on_timeouts) = ops.pick_and_flag(&[1000, 4000, 250, 2000]);
    let settings = Settings::default()
        .with_sweep_period_ms(sweep_period)
        .with_low_priority_budget(ops.pick(&[1, 5]))
        .with_max_reads_per_event(ops.pick(&[1, 2, 4]))
        .with_max_accepts_per_event(ops.pick(&[1, 2, 256]))
        .with_accept_backoff_ms(ops.pick(&[250, 10, 1000]));
    let recv = ops.pick(&[64, RECV_MAX]);
    let events = ops.pick(&[1, 4, EVENTS_MAX]);
    let faults = faults_from(&mut ops);
    let net = SimNet::new(faults, Box::new(ByteSource::new(fault_bytes.to_vec())));
    net.set_deadline_events(!on_timeouts);
    let storage = Memory::new(recv, events);
    let mut world = World::new(target, ops, net.clone(), Spare::take());
    // Core takes its sweep origin from the clock when the loop is built, just below.
    world.sweep_epoch = net.now_ms();
    world.sweep_period = sweep_period;
    let loop_callbacks = LoopCallbacks {
        wakeup: Some(on_wakeup),
        pre: Some(on_pre),
        post: Some(on_post),
        released: Some(on_released),
    };
    let mut l = Loop::<H>::new(net.shim(), storage, world, loop_callbacks, settings)
        .expect("loop construction");
    // A server context with a listener and a child context to adopt into.
    let serial = l.ext_mut().next_serial();
    let pre_open = l.ext_mut().ops.u8() % 2 == 1;
    let a = l
        .context_create(serial, callbacks(pre_open))
        .expect("first context");
    let serial2 = l.ext_mut().next_serial();
    let b = l.context_create_child(a, serial2).expect("child context");
    *l.context_callbacks_mut(b).expect("child") = callbacks(false);
    l.ext_mut().add_ctx(a, serial);
    l.ext_mut().add_ctx(b, serial2);
    let ls = l
        .listen(
            a,
            ListenTarget::Host {
                host: Some("127.0.0.1"),
                port: 0,
            },
            ListenOptions::default(),
            new_ext,
        )
        .expect("first listener");
    let port = l.listen_port(ls);
    l.ext_mut().add_lis(Lis::new(ls, a, port, None));
    l.integrate();
    check_world(&mut l);
    let mut steps = 0;
    while !l.ext().ops.done() && steps < MAX_STEPS {
        if !step(&mut l).leaves_loop_alone() {
            check_world(&mut l);
        }
        steps += 1;
    }
    drain(&mut l);
    let stats = l.ext().stats;
    l.ext_mut().recycle();
    drop(l);
    assert_eq!(net.open_fds(), 0, "descriptors left open after draining");
    Report {
        stats,
        faults: net.fault_counts(),
        steps,
    }
}
