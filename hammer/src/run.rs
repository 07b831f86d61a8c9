//! One run of the hammer on any shim, and the invariants checked at its end.

use usockets_core::{
    Capacity, GrowingStorage, ListenOptions, ListenTarget, Loop, OsShim, Settings,
};

use crate::callbacks::{context_callbacks, loop_callbacks};
use crate::client::start_connect;
use crate::dice::Dice;
use crate::world::{Conn, Counts, Hammer, Kind, Profile, World};

/// What a run did and what it found wrong at the end. (A broken invariant inside a callback
/// panics at once instead.)
#[derive(Debug)]
pub struct Outcome {
    /// The counters.
    pub counts: Counts,
    /// Loop iterations run.
    pub iterations: u64,
    /// End-of-run invariants that failed: every connect resolved once, opens == closes on both
    /// sides, every slot free. Empty when the run was clean.
    pub problems: Vec<String>,
}

/// Runs the hammer on `shim` with `profile`, deciding with `dice`: a server, a client and a
/// child context (of the server) with their own context ext kinds; chained client connects; a
/// random operation at the end of every socket event. The loop, and with it the shim, is
/// dropped before this returns. `Err` if the loop or its listener could not be set up, or a
/// wait failed.
pub fn run<S: OsShim>(shim: S, profile: Profile, dice: Dice) -> Result<Outcome, String> {
    let storage = GrowingStorage::new(
        Capacity::new()
            .with_sockets(profile.socket_slots)
            .with_listeners(2)
            .with_contexts(3)
            .with_timers(64)
            .with_polls(1)
            .with_recv(16 * 1024)
            .with_events(256),
    );
    let mut settings = Settings::default();
    if let Some(ms) = profile.sweep_period_ms {
        settings = settings.with_sweep_period_ms(ms);
    }
    let world = World::new(profile, dice);
    let mut l: Loop<Hammer<S>> = Loop::new(shim, storage, world, loop_callbacks(), settings)
        .map_err(|e| format!("loop: {e}"))?;
    let mut ctx = [None; 3];
    for (i, kind) in [Kind::Server, Kind::Client].into_iter().enumerate() {
        let c = l
            .context_create(kind, context_callbacks())
            .map_err(|e| format!("context: {e}"))?;
        ctx[i] = Some(c);
    }
    let server = ctx[0].ok_or("no server context")?;
    let child = l
        .context_create_child(server, Kind::Child)
        .map_err(|e| format!("child context: {e}"))?;
    *l.context_callbacks_mut(child).ok_or("child callbacks")? = context_callbacks();
    ctx[2] = Some(child);
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let listen = |l: &mut Loop<Hammer<S>>| {
        let ls = l
            .listen(server, target, ListenOptions::default(), Conn::default)
            .map_err(|e| format!("listen: {e}"))?;
        match l.listen_port(ls) {
            Some(port) if port != 0 => Ok((ls, port)),
            _ => Err("listen: no ephemeral port".to_string()),
        }
    };
    // A port nobody listens on any more, for the connects that must be refused.
    let (dead, dead_port) = listen(&mut l)?;
    l.listen_close(dead);
    let (ls, port) = listen(&mut l)?;
    {
        let w = l.ext_mut();
        w.port = port;
        w.dead_port = dead_port;
        w.listener = Some(ls);
        w.ctx = ctx;
    }
    if profile.connections == 0 {
        crate::client::client_done(&mut l);
    }
    l.integrate();
    for _ in 0..profile.chains {
        start_connect(&mut l);
    }
    let mut iterations = 0u64;
    let mut problems = Vec::new();
    while l.is_alive() {
        l.run_once(None).map_err(|e| format!("wait: {e}"))?;
        iterations += 1;
        if iterations >= profile.max_iterations {
            problems.push(format!("not finished after {iterations} iterations"));
            break;
        }
    }
    // What closed since the last iteration (or before the first: a run whose connects were
    // all aborted never iterates) is released by the next one.
    l.run_once(Some(0)).map_err(|e| format!("wait: {e}"))?;
    let c = l.ext().c;
    if c.client_opens + c.connect_errors + c.aborted != profile.connections {
        problems.push(format!("client connects did not each resolve once: {c:?}"));
    }
    if c.client_opens != c.client_closes {
        problems.push(format!("client opens != closes: {c:?}"));
    }
    if c.server_opens != c.server_closes {
        problems.push(format!("server opens != closes: {c:?}"));
    }
    if l.slots_in_use() != [0, 0, 3, 0, 0] {
        problems.push(format!(
            "slots other than the three contexts remain: {:?}",
            l.slots_in_use()
        ));
    }
    for ctx in [child, ctx[1].ok_or("no client context")?, server] {
        if l.context_free(ctx).is_err() {
            problems.push("a context could not be freed".to_string());
        }
    }
    if l.slots_in_use() != [0; 5] {
        problems.push(format!(
            "slots remain after freeing the contexts: {:?}",
            l.slots_in_use()
        ));
    }
    Ok(Outcome {
        counts: c,
        iterations,
        problems,
    })
}
