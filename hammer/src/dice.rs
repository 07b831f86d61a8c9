//! Where the hammer's decisions come from: a seed, or raw bytes (proptest, fuzzers).

use usockets_shim_sim::{FaultSource, SeededRng};

/// The hammer's decision source. Seeded, it never runs dry; from bytes, each decision takes two
/// bytes and, once they are used up, every decision is 0: every roll succeeds and every
/// `below` is 0, which closes each socket at its next event, so a run always ends soon after
/// its input does.
#[derive(Clone, Debug)]
pub struct Dice {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Seeded(SeededRng),
    Bytes { bytes: Vec<u8>, pos: usize },
}

impl Dice {
    /// Decisions from a seeded generator: the same seed makes the same decisions.
    pub fn seeded(seed: u64) -> Dice {
        Dice {
            source: Source::Seeded(SeededRng::new(seed)),
        }
    }

    /// Decisions read from `bytes`, two per decision (little-endian), then 0 forever.
    pub fn from_bytes(bytes: Vec<u8>) -> Dice {
        Dice {
            source: Source::Bytes { bytes, pos: 0 },
        }
    }

    /// The next raw decision.
    pub fn next_u32(&mut self) -> u32 {
        match &mut self.source {
            Source::Seeded(rng) => rng.next_u32(),
            Source::Bytes { bytes, pos } => {
                let lo = bytes.get(*pos).copied().unwrap_or(0);
                let hi = bytes.get(*pos + 1).copied().unwrap_or(0);
                *pos = (*pos + 2).min(bytes.len());
                u32::from(u16::from_le_bytes([lo, hi]))
            }
        }
    }

    /// True with probability `per_mille / 1000`; 0 is always false and takes no decision.
    pub fn roll(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.next_u32() % 1000 < per_mille
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n.max(1)
    }
}
