//! Fault injection: where decisions come from, how likely each fault is, and what was injected.

/// A source of decisions. Every fault and every random amount the simulation picks comes from
/// here, so a seed (or a fuzzer's input) fully determines a run.
pub trait FaultSource {
    /// The next raw 32-bit decision value.
    fn next_u32(&mut self) -> u32;

    /// True with probability `per_mille / 1000`. `per_mille == 0` returns false without
    /// consuming any input, so fault kinds that are off never shift other decisions.
    fn chance(&mut self, per_mille: u32) -> bool {
        if per_mille == 0 {
            return false;
        }
        self.next_u32() % 1000 < per_mille
    }
}

/// A seeded pseudo-random source (splitmix64): the same seed gives the same decisions.
#[derive(Clone, Debug)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator seeded with `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        SeededRng { state: seed }
    }

    /// The next 64-bit value (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl FaultSource for SeededRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

/// Decisions read from raw bytes, so a fuzzer's input drives every decision. `next_u32` takes
/// four bytes (little-endian, zero-padded at the end), `chance` takes two. Once the bytes are
/// used up `next_u32` returns 0 forever and `chance` returns false: no faults after the input.
#[derive(Clone, Debug)]
pub struct ByteSource {
    bytes: Vec<u8>,
    pos: usize,
}

impl ByteSource {
    /// A source reading `bytes` front to back.
    pub fn new(bytes: Vec<u8>) -> Self {
        ByteSource { bytes, pos: 0 }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> u32 {
        let mut v = 0u32;
        for i in 0..n {
            let b = self.bytes.get(self.pos).copied().unwrap_or(0);
            if self.pos < self.bytes.len() {
                self.pos += 1;
            }
            v |= u32::from(b) << (8 * i);
        }
        v
    }
}

impl FaultSource for ByteSource {
    fn next_u32(&mut self) -> u32 {
        self.take(4)
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        if per_mille == 0 || self.remaining() == 0 {
            return false;
        }
        self.take(2) % 1000 < per_mille
    }
}

/// A source that never injects anything (`chance` is always false, `next_u32` always 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFaults;

impl FaultSource for NoFaults {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn chance(&mut self, _per_mille: u32) -> bool {
        false
    }
}

/// Per-mille probabilities of each injected fault kind (0 = never).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// A `send` of 2 or more bytes takes only a random 1..len-1 of them.
    pub partial_write: u32,
    /// A `send` returns `WouldBlock` although there is room.
    pub would_block_send: u32,
    /// A `send` or `recv` resets the connection: both ends see `ECONNRESET` (104) from then on
    /// and are reported readable + error + hangup.
    pub reset: u32,
    /// A connect to a live listener is refused: the next `wait` reports writable + error and
    /// `connect_result` gives `ECONNREFUSED` (111).
    pub refuse_connect: u32,
    /// `accept` fails with `EMFILE` (24) while a connection is pending; it stays pending.
    pub emfile_accept: u32,
    /// `wait` reports a registered, connected socket that is not ready as readable (or
    /// writable, if it has only writable interest); the following `recv` gives `WouldBlock`.
    /// Spurious events only ride along with real ones (or come after the clock moved): they
    /// never keep a `wait` from letting time pass.
    pub spurious_readiness: u32,
    /// Bytes of a `send` become visible to the receiver only 1..=50 ms of virtual time later
    /// (order is kept: later bytes never overtake delayed ones).
    pub delay_delivery: u32,
    /// After a `send`, the far end hangs up abruptly but gracefully: it stops receiving (further
    /// sends give `EPIPE`) and sends FIN after whatever it had already sent. The sender's
    /// descriptor then reports `hangup` alongside readable while that unread data is pending,
    /// then reads it, then EOF.
    pub hangup_with_unread: u32,
}

impl Faults {
    /// No faults at all.
    pub const NONE: Faults = Faults {
        partial_write: 0,
        would_block_send: 0,
        reset: 0,
        refuse_connect: 0,
        emfile_accept: 0,
        spurious_readiness: 0,
        delay_delivery: 0,
        hangup_with_unread: 0,
    };

    /// A moderate mix of every fault kind (each between 5 and 50 per mille), for stress tests.
    pub fn chaos() -> Faults {
        Faults {
            partial_write: 40,
            would_block_send: 20,
            reset: 5,
            refuse_connect: 30,
            emfile_accept: 30,
            spurious_readiness: 20,
            delay_delivery: 20,
            hangup_with_unread: 5,
        }
    }

    pub(crate) fn per_mille(&self, kind: FaultKind) -> u32 {
        match kind {
            FaultKind::PartialWrite => self.partial_write,
            FaultKind::WouldBlockSend => self.would_block_send,
            FaultKind::Reset => self.reset,
            FaultKind::RefuseConnect => self.refuse_connect,
            FaultKind::EmfileAccept => self.emfile_accept,
            FaultKind::SpuriousReadiness => self.spurious_readiness,
            FaultKind::DelayDelivery => self.delay_delivery,
            FaultKind::HangupWithUnread => self.hangup_with_unread,
        }
    }
}

/// How many times each fault kind was injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Short writes injected.
    pub partial_write: u64,
    /// Would-block sends injected.
    pub would_block_send: u64,
    /// Connections reset.
    pub reset: u64,
    /// Connects refused.
    pub refuse_connect: u64,
    /// Accepts failed with `EMFILE`.
    pub emfile_accept: u64,
    /// Spurious readiness events reported.
    pub spurious_readiness: u64,
    /// Sends whose delivery was delayed.
    pub delay_delivery: u64,
    /// Abrupt hang-ups injected.
    pub hangup_with_unread: u64,
}

impl FaultCounts {
    pub(crate) fn bump(&mut self, kind: FaultKind) {
        let c = match kind {
            FaultKind::PartialWrite => &mut self.partial_write,
            FaultKind::WouldBlockSend => &mut self.would_block_send,
            FaultKind::Reset => &mut self.reset,
            FaultKind::RefuseConnect => &mut self.refuse_connect,
            FaultKind::EmfileAccept => &mut self.emfile_accept,
            FaultKind::SpuriousReadiness => &mut self.spurious_readiness,
            FaultKind::DelayDelivery => &mut self.delay_delivery,
            FaultKind::HangupWithUnread => &mut self.hangup_with_unread,
        };
        *c += 1;
    }
}

/// One fault kind, for drawing and counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    PartialWrite,
    WouldBlockSend,
    Reset,
    RefuseConnect,
    EmfileAccept,
    SpuriousReadiness,
    DelayDelivery,
    HangupWithUnread,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_per_mille_consumes_nothing() {
        let mut b = ByteSource::new(vec![0, 0, 0, 0]);
        assert!(!b.chance(0));
        assert_eq!(b.remaining(), 4);
        assert!(b.chance(1000));
        assert_eq!(b.remaining(), 2);
    }

    #[test]
    fn exhausted_bytes_never_fault() {
        let mut b = ByteSource::new(vec![1]);
        assert_eq!(b.next_u32(), 1);
        assert_eq!(b.remaining(), 0);
        assert_eq!(b.next_u32(), 0);
        assert!(!b.chance(1000));
    }

    #[test]
    fn seeded_rng_repeats_and_differs_by_seed() {
        let a: Vec<u32> = (0..8)
            .scan(SeededRng::new(7), |r, _| Some(r.next_u32()))
            .collect();
        let b: Vec<u32> = (0..8)
            .scan(SeededRng::new(7), |r, _| Some(r.next_u32()))
            .collect();
        let c: Vec<u32> = (0..8)
            .scan(SeededRng::new(8), |r, _| Some(r.next_u32()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
