//! The tunables of a loop.

/// Tunables of a loop. [`Settings::default`] (or [`new`](Settings::new)) gives the C library's
/// values; change them with the `with_*` setters (the struct may gain settings, so it cannot be
/// written as a literal outside core).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Settings {
    /// Period of the timeout sweep in milliseconds (`LIBUS_TIMEOUT_GRANULARITY` = 4 s). Tests
    /// shorten it; socket timeouts are always measured in real seconds and minutes.
    pub sweep_period_ms: u64,
    /// Low-priority sockets served per iteration (the C library serves 5).
    pub low_priority_budget: u32,
    /// Reads of one socket per readable event when each read fills the whole buffer.
    pub max_reads_per_event: u32,
    /// Connections accepted per listener per readable event.
    pub max_accepts_per_event: u32,
    /// How long a listener stops accepting after the OS ran out of descriptors or failed an
    /// accept in a way core does not know.
    pub accept_backoff_ms: u64,
}

impl Settings {
    /// The C library's values: a 4 s sweep, 5 low-priority reads per iteration, up to 4 reads
    /// per readable event, 256 accepts per event, a 250 ms accept back-off.
    pub const fn new() -> Settings {
        Settings {
            sweep_period_ms: 4000,
            low_priority_budget: 5,
            max_reads_per_event: 4,
            max_accepts_per_event: 256,
            accept_backoff_ms: 250,
        }
    }
    /// These settings with [`sweep_period_ms`](Settings::sweep_period_ms) = `ms`.
    #[must_use]
    pub const fn with_sweep_period_ms(mut self, ms: u64) -> Settings {
        self.sweep_period_ms = ms;
        self
    }
    /// These settings with [`low_priority_budget`](Settings::low_priority_budget) = `n`.
    #[must_use]
    pub const fn with_low_priority_budget(mut self, n: u32) -> Settings {
        self.low_priority_budget = n;
        self
    }
    /// These settings with [`max_reads_per_event`](Settings::max_reads_per_event) = `n`.
    #[must_use]
    pub const fn with_max_reads_per_event(mut self, n: u32) -> Settings {
        self.max_reads_per_event = n;
        self
    }
    /// These settings with [`max_accepts_per_event`](Settings::max_accepts_per_event) = `n`.
    #[must_use]
    pub const fn with_max_accepts_per_event(mut self, n: u32) -> Settings {
        self.max_accepts_per_event = n;
        self
    }
    /// These settings with [`accept_backoff_ms`](Settings::accept_backoff_ms) = `ms`.
    #[must_use]
    pub const fn with_accept_backoff_ms(mut self, ms: u64) -> Settings {
        self.accept_backoff_ms = ms;
        self
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::new()
    }
}
