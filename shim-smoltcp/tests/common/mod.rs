//! A shim over the fixed loopback device for host tests: a std clock, a sleep in short
//! slices, memory leaked once per shim (a test process lives briefly); and a virtual clock.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use usockets_shim_smoltcp::smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use usockets_shim_smoltcp::smoltcp::time::Instant as SmolInstant;
use usockets_shim_smoltcp::smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use usockets_shim_smoltcp::{LoopbackDevice, Platform, SmolConfig, SmolShim, WakeFlag};

/// Bytes of each socket's buffer, each way.
pub const BUFFER: usize = 4096;

/// The loopback device of the host tests.
pub type Device = LoopbackDevice<32, 1500>;
/// The shim of the host tests, with `N` sockets.
pub type Shim<const N: usize> = SmolShim<'static, Device, HostPlatform, N, 8>;

/// `Instant` for the clock; sleeps in slices of at most a millisecond so that a wake from
/// another thread ends the sleep promptly. Counts the `after_poll` calls.
#[derive(Debug)]
pub struct HostPlatform(Instant, pub usize);

impl Platform for HostPlatform {
    fn after_poll(&mut self, _: &mut Interface, _: &mut SocketSet<'_>) {
        self.1 += 1;
    }
    fn now_ms(&mut self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
    fn idle(&mut self, until_ms: Option<u64>) {
        let now = self.now_ms();
        let ms = until_ms.map_or(1, |u| u.saturating_sub(now).min(1));
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
}

/// A fresh shim of `N` sockets of [`BUFFER`] bytes each way, on its own loopback interface
/// with 127.0.0.1/8 and ::1/128.
pub fn shim<const N: usize>(config: SmolConfig) -> Shim<N> {
    shim_with_extra::<N>(config, 0)
}

/// [`shim`], with `extra` socket storage entries beyond the `N` TCP sockets.
pub fn shim_with_extra<const N: usize>(config: SmolConfig, extra: usize) -> Shim<N> {
    build::<N, _>(config, extra, HostPlatform(Instant::now(), 0))
}

/// A clock that only moves when the shim sleeps: `idle` jumps to its deadline. For the
/// shim's time-outs (seconds and minutes) in a test that takes milliseconds.
#[derive(Debug, Default)]
pub struct VirtualClock(pub u64);

impl Platform for VirtualClock {
    fn now_ms(&mut self) -> u64 {
        self.0
    }
    fn idle(&mut self, until_ms: Option<u64>) {
        self.0 = until_ms.unwrap_or(self.0 + 1_000).max(self.0 + 1);
    }
}

/// A shim on a [`VirtualClock`].
pub type VirtualShim<const N: usize> = SmolShim<'static, Device, VirtualClock, N, 8>;

/// [`shim`] on a [`VirtualClock`].
pub fn virtual_shim<const N: usize>(config: SmolConfig) -> VirtualShim<N> {
    build::<N, _>(config, 0, VirtualClock::default())
}

/// A shim of `N` sockets and `extra` spare storage entries on `platform`.
pub fn build<const N: usize, P: Platform>(
    config: SmolConfig,
    extra: usize,
    platform: P,
) -> SmolShim<'static, Device, P, N, 8> {
    let mut device = Device::new();
    let mut iface = Interface::new(
        Config::new(HardwareAddress::Ip),
        &mut device,
        SmolInstant::from_millis(0),
    );
    iface.update_ip_addrs(|addrs| {
        addrs
            .push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8))
            .expect("room for IPv4");
        addrs
            .push(IpCidr::new(IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1), 128))
            .expect("room for IPv6");
    });
    let storage: &'static mut [SocketStorage<'static>] =
        Box::leak((0..N + extra).map(|_| SocketStorage::EMPTY).collect());
    let buffers: &'static mut [u8] = Box::leak(vec![0u8; N * 2 * BUFFER].into_boxed_slice());
    let wake: &'static WakeFlag = Box::leak(Box::new(WakeFlag::new()));
    SmolShim::new(device, iface, platform, wake, storage, buffers, config).expect("a shim")
}
