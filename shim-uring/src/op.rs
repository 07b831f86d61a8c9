//! What a completion is for: each submission's `user_data` packs the descriptor, the
//! generation of its state and the operation.
//!
//! ```text
//!  63      56 55              32 31                0
//! +----------+------------------+------------------+
//! |    op    |  generation (24) |  descriptor (32) |
//! +----------+------------------+------------------+
//! ```
//!
//! The generation changes every time a descriptor number starts a new life in the shim, so
//! a completion that arrives for an earlier life (a cancelled poll on a pipe the user has
//! since closed and the OS has reused) is recognised and its content ignored.

/// The operation a submission performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Op {
    /// A multishot receive into the provided buffer ring.
    Recv = 1,
    /// A send from the connection's slab.
    Send = 2,
    /// A multishot accept.
    Accept = 3,
    /// A connect.
    Connect = 4,
    /// A one-shot poll on a descriptor core polls for the user.
    Poll = 5,
    /// A cancel, a timeout removal or a poll removal: its completion says nothing.
    Cancel = 6,
    /// The read-readiness poll on the waker's eventfd.
    Waker = 7,
    /// The deadline's timeout (its generation is the deadline's own).
    Deadline = 8,
}

impl Op {
    fn from_bits(b: u8) -> Option<Op> {
        Some(match b {
            1 => Op::Recv,
            2 => Op::Send,
            3 => Op::Accept,
            4 => Op::Connect,
            5 => Op::Poll,
            6 => Op::Cancel,
            7 => Op::Waker,
            8 => Op::Deadline,
            _ => return None,
        })
    }
}

/// Generations are 24 bits.
pub(crate) const GEN_MASK: u32 = 0x00FF_FFFF;

/// Packs a submission's `user_data`.
#[inline]
pub(crate) const fn pack(op: Op, fd: u32, generation: u32) -> u64 {
    ((op as u64) << 56) | (((generation & GEN_MASK) as u64) << 32) | fd as u64
}

/// Unpacks a completion's `user_data`: (operation, descriptor, generation).
#[inline]
pub(crate) fn unpack(user_data: u64) -> Option<(Op, u32, u32)> {
    let op = Op::from_bits((user_data >> 56) as u8)?;
    Some((op, user_data as u32, ((user_data >> 32) as u32) & GEN_MASK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_every_field() {
        for op in [
            Op::Recv,
            Op::Send,
            Op::Accept,
            Op::Connect,
            Op::Poll,
            Op::Cancel,
        ] {
            let u = pack(op, 0xDEAD_BEEF, 0x00AB_CDEF);
            assert_eq!(unpack(u), Some((op, 0xDEAD_BEEF, 0x00AB_CDEF)));
        }
        // A generation wider than 24 bits is cut, never spills into the op.
        assert_eq!(
            unpack(pack(Op::Send, 7, u32::MAX)),
            Some((Op::Send, 7, GEN_MASK))
        );
        assert_eq!(unpack(0), None, "user_data 0 (no op) is nobody's");
    }
}
