//! Socket addresses between std's types and Winsock's `SOCKADDR_*` structures.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use usockets_core::PeerAddr;
use windows_sys::Win32::Networking::WinSock as ws;

/// A socket address as Winsock takes it: storage big enough for any family, and the length
/// of the part in use.
pub(crate) struct RawAddr {
    pub(crate) storage: ws::SOCKADDR_STORAGE,
    pub(crate) len: i32,
}

impl RawAddr {
    /// Empty storage for Winsock to fill (`accept`, `getsockname`).
    pub(crate) fn empty() -> RawAddr {
        RawAddr {
            storage: ws::SOCKADDR_STORAGE::default(),
            len: size_of::<ws::SOCKADDR_STORAGE>() as i32,
        }
    }

    /// The pointer Winsock reads or writes.
    pub(crate) fn as_ptr(&self) -> *const ws::SOCKADDR {
        (&self.storage as *const ws::SOCKADDR_STORAGE).cast()
    }

    /// The pointer Winsock writes.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut ws::SOCKADDR {
        (&mut self.storage as *mut ws::SOCKADDR_STORAGE).cast()
    }

    /// The address family.
    pub(crate) fn family(&self) -> u16 {
        self.storage.ss_family
    }

    /// An IP address in Winsock's form.
    pub(crate) fn from_ip(addr: SocketAddr) -> RawAddr {
        let mut raw = RawAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = ws::SOCKADDR_IN {
                    sin_family: ws::AF_INET,
                    sin_port: a.port().to_be(),
                    sin_addr: ws::IN_ADDR {
                        S_un: ws::IN_ADDR_0 {
                            S_addr: u32::from_ne_bytes(a.ip().octets()),
                        },
                    },
                    sin_zero: [0; 8],
                };
                raw.len = write_into(&mut raw.storage, sin);
            }
            SocketAddr::V6(a) => {
                let sin6 = ws::SOCKADDR_IN6 {
                    sin6_family: ws::AF_INET6,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: ws::IN6_ADDR {
                        u: ws::IN6_ADDR_0 {
                            Byte: a.ip().octets(),
                        },
                    },
                    Anonymous: ws::SOCKADDR_IN6_0 {
                        sin6_scope_id: a.scope_id(),
                    },
                };
                raw.len = write_into(&mut raw.storage, sin6);
            }
        }
        raw
    }

    /// A unix-domain path in Winsock's form (`SOCKADDR_UN`); `None` when it does not fit
    /// (with its terminating NUL) or holds a NUL.
    pub(crate) fn from_unix(path: &str) -> Option<RawAddr> {
        let bytes = path.as_bytes();
        let mut sun = ws::SOCKADDR_UN {
            sun_family: ws::AF_UNIX,
            sun_path: [0; 108],
        };
        if bytes.len() >= sun.sun_path.len() || bytes.contains(&0) {
            return None;
        }
        for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
            *d = *s as i8;
        }
        let mut raw = RawAddr::empty();
        write_into(&mut raw.storage, sun);
        // The family and the path with its NUL, as Windows' AF_UNIX expects.
        raw.len = (size_of::<u16>() + bytes.len() + 1) as i32;
        Some(raw)
    }

    /// What the storage holds, as core reports a peer.
    pub(crate) fn to_peer(&self) -> Option<PeerAddr> {
        match self.family() {
            ws::AF_INET => {
                let sin: ws::SOCKADDR_IN = read_from(&self.storage);
                let ip = Ipv4Addr::from(ipv4_bytes(&sin));
                Some(PeerAddr::Ip(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                ))))
            }
            ws::AF_INET6 => {
                let sin6: ws::SOCKADDR_IN6 = read_from(&self.storage);
                let ip = Ipv6Addr::from(ipv6_bytes(&sin6));
                Some(PeerAddr::Ip(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    scope_id(&sin6),
                ))))
            }
            ws::AF_UNIX => Some(PeerAddr::Unix),
            _ => None,
        }
    }
}

/// Copies a `SOCKADDR_*` into the storage; returns its size.
fn write_into<T: Copy>(storage: &mut ws::SOCKADDR_STORAGE, value: T) -> i32 {
    const { assert!(size_of::<T>() <= size_of::<ws::SOCKADDR_STORAGE>()) };
    // SAFETY: T is at most the storage's size (checked above) and SOCKADDR_STORAGE is aligned
    // for every SOCKADDR_* (that is its purpose); T is plain data.
    unsafe { std::ptr::write_unaligned((storage as *mut ws::SOCKADDR_STORAGE).cast::<T>(), value) };
    size_of::<T>() as i32
}

/// Reads a `SOCKADDR_*` out of the storage.
fn read_from<T: Copy>(storage: &ws::SOCKADDR_STORAGE) -> T {
    const { assert!(size_of::<T>() <= size_of::<ws::SOCKADDR_STORAGE>()) };
    // SAFETY: T is at most the storage's size and plain data, valid for any bytes.
    unsafe { std::ptr::read_unaligned((storage as *const ws::SOCKADDR_STORAGE).cast::<T>()) }
}

fn ipv4_bytes(sin: &ws::SOCKADDR_IN) -> [u8; 4] {
    // SAFETY: the union's variants are all plain bytes of the same 4-byte address.
    unsafe { sin.sin_addr.S_un.S_addr }.to_ne_bytes()
}

fn ipv6_bytes(sin6: &ws::SOCKADDR_IN6) -> [u8; 16] {
    // SAFETY: the union's variants are all plain bytes of the same 16-byte address.
    unsafe { sin6.sin6_addr.u.Byte }
}

fn scope_id(sin6: &ws::SOCKADDR_IN6) -> u32 {
    // SAFETY: both variants are the same plain 32-bit value.
    unsafe { sin6.Anonymous.sin6_scope_id }
}
