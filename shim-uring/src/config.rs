//! The shim's capacities, fixed when it is created: the ring, the receive buffers, the send
//! pool and the per-connection caps.

/// How big a [`UringShim`](crate::UringShim)'s rings and pools are. Everything is allocated
/// once, by [`UringShim::with_config`](crate::UringShim::with_config); nothing grows per
/// request. Start from [`UringConfig::default`] and change what you need.
///
/// Memory: `recv_buffers × recv_buffer_size` for receives plus `send_chunks × send_chunk` for
/// sends, reserved up front and touched (made resident) only as it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UringConfig {
    /// Submission queue entries (the completion queue gets four times as many). Rounded up to
    /// a power of two by the kernel. Default 1024.
    pub entries: u32,
    /// Buffers in the provided buffer ring that every multishot receive draws from; a power
    /// of two, at most 32768. Default 1024.
    pub recv_buffers: u16,
    /// Bytes per receive buffer. Default 4096.
    pub recv_buffer_size: u32,
    /// Received-but-unread bytes a connection may hold before its multishot receive is
    /// cancelled (re-armed once core has read below the cap), so that a slow or paused
    /// connection cannot take the ring's buffers from the others. Default 64 KiB.
    pub unread_cap: u32,
    /// Bytes of a connection's send slab: what one connection can have queued or in flight.
    /// "Writable" means room in it. Default 64 KiB.
    pub send_chunk: u32,
    /// Slabs in the shared send pool: at most this many connections have sends queued or in
    /// flight at once; the others see would-block until one is given back. Default 1024.
    pub send_chunks: u32,
    /// Accepted connections a listener queues for core before its multishot accept is
    /// cancelled (the kernel's backlog holds the rest until core catches up). Default 256.
    pub accept_queue: u32,
    /// How long a closed socket's queued bytes may take to go out before they are given up
    /// and the descriptor closed: the close waits for them (as the kernel sends what is in a
    /// closed socket's buffer), but a peer that never reads must not keep the descriptor and
    /// the slab forever. Default 10 s.
    pub close_linger_ms: u64,
}

impl UringConfig {
    /// The defaults (see each field): about 4 MiB of receive buffers and 64 MiB of send
    /// slabs reserved, resident only as used.
    pub const fn new() -> UringConfig {
        UringConfig {
            entries: 1024,
            recv_buffers: 1024,
            recv_buffer_size: 4096,
            unread_cap: 64 * 1024,
            send_chunk: 64 * 1024,
            send_chunks: 1024,
            accept_queue: 256,
            close_linger_ms: 10_000,
        }
    }

    /// This configuration with `n` submission queue entries.
    #[must_use]
    pub const fn with_entries(mut self, n: u32) -> UringConfig {
        self.entries = n;
        self
    }

    /// This configuration with `count` receive buffers of `size` bytes.
    #[must_use]
    pub const fn with_recv_buffers(mut self, count: u16, size: u32) -> UringConfig {
        self.recv_buffers = count;
        self.recv_buffer_size = size;
        self
    }

    /// This configuration with a per-connection unread cap of `bytes`.
    #[must_use]
    pub const fn with_unread_cap(mut self, bytes: u32) -> UringConfig {
        self.unread_cap = bytes;
        self
    }

    /// This configuration with `count` send slabs of `size` bytes.
    #[must_use]
    pub const fn with_send_pool(mut self, count: u32, size: u32) -> UringConfig {
        self.send_chunks = count;
        self.send_chunk = size;
        self
    }

    /// This configuration with an accept queue of `n` per listener.
    #[must_use]
    pub const fn with_accept_queue(mut self, n: u32) -> UringConfig {
        self.accept_queue = n;
        self
    }

    /// This configuration with a close linger of `ms` milliseconds.
    #[must_use]
    pub const fn with_close_linger_ms(mut self, ms: u64) -> UringConfig {
        self.close_linger_ms = ms;
        self
    }

    /// Whether the values can be used: a power-of-two buffer count of 1..=32768 and non-zero
    /// sizes that fit the kernel's 32-bit lengths.
    pub(crate) fn valid(&self) -> bool {
        self.entries > 0
            && self.recv_buffers.is_power_of_two()
            && self.recv_buffers <= 32768
            && self.recv_buffer_size > 0
            && self.recv_buffer_size <= i32::MAX as u32
            && self.unread_cap > 0
            && self.send_chunk > 0
            && self.send_chunk <= i32::MAX as u32
            && self.send_chunks > 0
            && self.accept_queue > 0
    }
}

impl Default for UringConfig {
    fn default() -> Self {
        UringConfig::new()
    }
}
