//! The hammer on the simulated OS (`usockets-shim-sim`) with every fault kind injected: by
//! seed (`cargo test`) or from raw bytes (proptest and the `hammer` fuzz target).

use usockets_shim_sim::{ByteSource, FaultCounts, Faults, SeededRng, SimNet};

use crate::dice::Dice;
use crate::run::{run, Outcome};
use crate::world::Profile;

/// The fault mix: every kind, often enough that each shows up in a run of a few hundred
/// connections.
pub fn faults() -> Faults {
    Faults {
        partial_write: 40,
        would_block_send: 20,
        reset: 3,
        refuse_connect: 30,
        emfile_accept: 30,
        spurious_readiness: 20,
        delay_delivery: 20,
        hangup_with_unread: 25,
    }
}

/// A simulated run: its outcome and the faults the network injected.
#[derive(Debug)]
pub struct SimOutcome {
    /// The run's outcome; [`run_seed`] and [`run_bytes`] add a leaked descriptor to its
    /// problems.
    pub outcome: Outcome,
    /// How often each fault kind was injected.
    pub faults: FaultCounts,
}

/// Runs `profile` on a fresh simulated network whose faults come from `fault_source`, then
/// checks that the loop left no descriptor open.
fn run_sim(
    profile: Profile,
    dice: Dice,
    fault_source: Box<dyn usockets_shim_sim::FaultSource>,
) -> SimOutcome {
    let net = SimNet::new(faults(), fault_source);
    let mut outcome = match run(net.shim(), profile, dice) {
        Ok(o) => o,
        // The simulated OS has no reason to fail a loop, a listen or a wait.
        Err(e) => panic!("hammer setup on the simulated OS failed: {e}"),
    };
    let open = net.open_fds();
    if open != 0 {
        outcome.problems.push(format!(
            "{open} descriptors left open after the loop was dropped"
        ));
    }
    SimOutcome {
        outcome,
        faults: net.fault_counts(),
    }
}

/// Runs seed `seed` with `connections` client connections. The network's faults and the
/// hammer's decisions both follow from the seed.
pub fn run_seed(seed: u64, connections: u64) -> SimOutcome {
    run_sim(
        Profile::simulated(connections),
        Dice::seeded(seed ^ 0x5EED),
        Box::new(SeededRng::new(seed)),
    )
}

/// Runs the hammer from raw bytes: byte 0 picks 1-16 connections, byte 1 where the rest
/// splits into the hammer's decisions (first part) and the network's fault decisions
/// (second part). Short inputs run out of decisions soon, and then the run winds down: no more
/// faults, and every socket closes at its next event.
pub fn run_bytes(data: &[u8]) -> SimOutcome {
    let connections = 1 + u64::from(data.first().copied().unwrap_or(0) % 16);
    let rest = data.get(2..).unwrap_or_default();
    let split = rest.len() * usize::from(data.get(1).copied().unwrap_or(128)) / 256;
    let (decisions, faults) = rest.split_at(split);
    let mut profile = Profile::simulated(connections);
    profile.chains = profile.chains.min(connections);
    run_sim(
        profile,
        Dice::from_bytes(decisions.to_vec()),
        Box::new(ByteSource::new(faults.to_vec())),
    )
}
