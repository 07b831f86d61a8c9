//! What a run reached: how often each callback kind ran and each fault was injected.

use usockets_shim_sim::FaultCounts;

/// How often each callback kind ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `on_pre_open`.
    pub on_pre_open: u64,
    /// `on_open`.
    pub on_open: u64,
    /// `on_data`.
    pub on_data: u64,
    /// `on_writable`.
    pub on_writable: u64,
    /// `on_end`.
    pub on_end: u64,
    /// `on_timeout`.
    pub on_timeout: u64,
    /// `on_long_timeout`.
    pub on_long_timeout: u64,
    /// `on_close`.
    pub on_close: u64,
    /// `on_connect_error`.
    pub on_connect_error: u64,
    /// Timer callbacks.
    pub timer: u64,
    /// Poll callbacks.
    pub poll: u64,
    /// The loop's `wakeup` callback.
    pub wakeup: u64,
    /// The loop's `pre` callback.
    pub pre: u64,
    /// The loop's `post` callback.
    pub post: u64,
    /// The loop's `released` callback.
    pub released: u64,
}

impl Stats {
    /// Every callback kind with its count.
    pub fn kinds(&self) -> [(&'static str, u64); 15] {
        [
            ("on_pre_open", self.on_pre_open),
            ("on_open", self.on_open),
            ("on_data", self.on_data),
            ("on_writable", self.on_writable),
            ("on_end", self.on_end),
            ("on_timeout", self.on_timeout),
            ("on_long_timeout", self.on_long_timeout),
            ("on_close", self.on_close),
            ("on_connect_error", self.on_connect_error),
            ("timer", self.timer),
            ("poll", self.poll),
            ("wakeup", self.wakeup),
            ("pre", self.pre),
            ("post", self.post),
            ("released", self.released),
        ]
    }
}

/// Every fault kind of shim-sim with how often it was injected.
pub fn fault_kinds(f: &FaultCounts) -> [(&'static str, u64); 8] {
    [
        ("partial_write", f.partial_write),
        ("would_block_send", f.would_block_send),
        ("reset", f.reset),
        ("refuse_connect", f.refuse_connect),
        ("emfile_accept", f.emfile_accept),
        ("spurious_readiness", f.spurious_readiness),
        ("delay_delivery", f.delay_delivery),
        ("hangup_with_unread", f.hangup_with_unread),
    ]
}

/// What one input reached.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Callbacks that ran.
    pub stats: Stats,
    /// Faults the simulated OS injected.
    pub faults: FaultCounts,
    /// Steps (top-level operations) run.
    pub steps: usize,
}
