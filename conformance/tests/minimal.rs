//! The conformance suite against a minimal shim: the simulated OS with only the required
//! `OsShim` methods, so `send2` (two sends) and `flush` (a no-op) are the trait's defaults.
//! Every check passing here is what proves those defaults correct.

use usockets_conformance::{conformance_suite, ShimUnderTest};
use usockets_core::{
    ConnectTarget, Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr, Token,
};
use usockets_shim_sim::{Faults, NoFaults, SimError, SimFd, SimNet, SimShim, SimWaker};

/// [`SimShim`] behind the required methods only.
struct Minimal(SimShim);

impl OsShim for Minimal {
    type Fd = SimFd;
    type Waker = SimWaker;
    type Error = SimError;

    fn register(&mut self, fd: &SimFd, token: Token, interest: Interest) -> Result<(), SimError> {
        self.0.register(fd, token, interest)
    }
    fn modify(&mut self, fd: &SimFd, token: Token, interest: Interest) -> Result<(), SimError> {
        self.0.modify(fd, token, interest)
    }
    fn deregister(&mut self, fd: &SimFd) -> Result<(), SimError> {
        self.0.deregister(fd)
    }
    fn wait(&mut self, events: &mut [Event], timeout_ms: Option<u64>) -> Result<usize, SimError> {
        self.0.wait(events, timeout_ms)
    }
    fn waker(&mut self) -> SimWaker {
        self.0.waker()
    }
    fn now_ms(&mut self) -> u64 {
        self.0.now_ms()
    }
    fn listen(
        &mut self,
        target: ListenTarget<'_>,
        options: ListenOptions,
    ) -> Result<SimFd, SimError> {
        self.0.listen(target, options)
    }
    fn accept(&mut self, listener: &SimFd) -> Result<Option<(SimFd, PeerAddr)>, SimError> {
        self.0.accept(listener)
    }
    fn connect(&mut self, target: ConnectTarget<'_>) -> Result<SimFd, SimError> {
        self.0.connect(target)
    }
    fn connect_result(&mut self, fd: &SimFd) -> Result<(), SimError> {
        self.0.connect_result(fd)
    }
    fn adopt(&mut self, fd: &SimFd) -> Result<(), SimError> {
        self.0.adopt(fd)
    }
    fn recv(&mut self, fd: &SimFd, buf: &mut [u8]) -> Result<usize, SimError> {
        self.0.recv(fd, buf)
    }
    fn send(&mut self, fd: &SimFd, data: &[u8], more: bool) -> Result<usize, SimError> {
        self.0.send(fd, data, more)
    }
    fn shutdown_write(&mut self, fd: &SimFd) -> Result<(), SimError> {
        self.0.shutdown_write(fd)
    }
    fn shutdown_read(&mut self, fd: &SimFd) -> Result<(), SimError> {
        self.0.shutdown_read(fd)
    }
    fn close(&mut self, fd: SimFd) {
        self.0.close(fd)
    }
    fn local_addr(&mut self, fd: &SimFd) -> Result<PeerAddr, SimError> {
        self.0.local_addr(fd)
    }
    fn remote_addr(&mut self, fd: &SimFd) -> Result<PeerAddr, SimError> {
        self.0.remote_addr(fd)
    }
}

struct MinimalSim;

impl ShimUnderTest for MinimalSim {
    type Shim = Minimal;

    fn new_shim() -> Minimal {
        Minimal(SimNet::new(Faults::NONE, Box::new(NoFaults)).shim())
    }

    const SLACK_MS: u64 = 0;

    fn pipe(shim: &Minimal) -> Option<(SimFd, SimFd)> {
        Some(shim.0.net().user_pipe())
    }

    fn write_pipe(shim: &Minimal, write_end: &SimFd, data: &[u8]) {
        shim.0.net().pipe_write(write_end, data);
    }

    fn read_pipe(shim: &Minimal, read_end: &SimFd, buf: &mut [u8]) -> usize {
        shim.0.net().pipe_read(read_end, buf)
    }
}

conformance_suite!(MinimalSim);

/// The default `send2` really is two sends (this shim has no `send2` of its own), and the
/// default `flush` makes no call at all.
#[test]
fn the_defaults_are_what_runs() {
    let mut shim = MinimalSim::new_shim();
    let net = shim.0.net().clone();
    let listener = shim
        .listen(
            ListenTarget::Host {
                host: None,
                port: 0,
            },
            ListenOptions::default(),
        )
        .expect("listen");
    let port = match shim.local_addr(&listener) {
        Ok(PeerAddr::Ip(a)) => a.port(),
        other => panic!("{other:?}"),
    };
    let peer = net.peer_connect(port).expect("peer");
    let (fd, _) = shim.accept(&listener).expect("accept").expect("pending");
    let before = net.syscalls();
    assert_eq!(shim.send2(&fd, b"head", b"body"), Ok(8));
    shim.flush(&fd).expect("flush");
    let after = net.syscalls();
    assert_eq!(after.send - before.send, 2, "header, then payload");
    assert_eq!(
        after.send2, before.send2,
        "the simulator's own send2 is not used"
    );
    assert_eq!(after.flush, before.flush, "the default flush calls nothing");
    assert_eq!(net.peer_recv(peer), b"headbody");
}
