//! The whole conformance suite over shim-smoltcp on the fixed loopback device: both ends of
//! every connection in one loop, one smoltcp stack. Unix sockets, name resolution and
//! `shutdown_read` are declared missing; the suite checks they are refused cleanly.

mod common;

use common::Shim;
use usockets_conformance::ShimUnderTest;
use usockets_shim_smoltcp::SmolConfig;

/// Sockets per shim: the 200-connection check needs two per connection plus listening pools.
const SOCKETS: usize = 480;

type HostShim = Shim<SOCKETS>;

struct Smol;

impl ShimUnderTest for Smol {
    type Shim = HostShim;
    /// Each socket's send buffer.
    const FRESH_SEND_BYTES: usize = common::BUFFER;
    fn new_shim() -> HostShim {
        // One loopback poll takes at most a queue's worth of frames: a pool that large never
        // answers a burst of SYNs with resets.
        common::shim::<SOCKETS>(SmolConfig::new().with_listen_pool(32))
    }
    fn unix_sockets(_: &HostShim) -> bool {
        false
    }
    fn resolves_names(_: &HostShim) -> bool {
        false
    }
    fn shutdown_read(_: &HostShim) -> bool {
        false
    }
}

usockets_conformance::conformance_suite!(Smol);
