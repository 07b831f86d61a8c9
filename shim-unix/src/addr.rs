//! Socket address conversions: `std` addresses and unix paths to `sockaddr_storage` and back,
//! and name resolution with `getaddrinfo`.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ffi::CString;
use std::mem::{offset_of, size_of};
use std::ptr;

use usockets_core::PeerAddr;

use crate::error::UnixError;
use crate::stats::{Counters, Sys};

/// Longest unix path, in bytes, that fits in `sun_path` with its terminating NUL: 107 on
/// Linux, 103 on the BSDs and macOS (whose `sun_path` is 104 bytes).
pub const UNIX_PATH_MAX: usize =
    size_of::<libc::sockaddr_un>() - offset_of!(libc::sockaddr_un, sun_path) - 1;

/// Whether this system has Linux's abstract unix-socket namespace (a leading NUL byte).
const ABSTRACT_NAMES: bool = cfg!(target_os = "linux");

/// A socket address in a `sockaddr_storage`, with its length.
#[derive(Clone, Copy)]
pub struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl SockAddr {
    /// An all-zero address whose length is the full storage size, ready to be filled by
    /// `accept4`, `getsockname` or `getpeername`.
    pub fn empty() -> SockAddr {
        // SAFETY: sockaddr_storage is a plain C struct of integers; all-zero is a valid value.
        let storage = unsafe { std::mem::zeroed::<libc::sockaddr_storage>() };
        SockAddr {
            storage,
            len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    /// Stores a concrete `sockaddr_*` value `T` at the front of the storage.
    fn store<T: Copy>(value: T) -> SockAddr {
        const { assert!(size_of::<T>() <= size_of::<libc::sockaddr_storage>()) };
        let mut a = SockAddr::empty();
        let dst: *mut T = ptr::addr_of_mut!(a.storage).cast();
        // SAFETY: sockaddr_storage is, by definition, large enough (checked above) and aligned
        // for every sockaddr type, so `dst` is valid for a write of one `T`.
        unsafe { dst.write(value) };
        a.len = size_of::<T>() as libc::socklen_t;
        a
    }

    /// Reads the front of the storage as a concrete `sockaddr_*` type, if it is long enough.
    fn load<T: Copy>(&self) -> Option<T> {
        const { assert!(size_of::<T>() <= size_of::<libc::sockaddr_storage>()) };
        if (self.len as usize) < size_of::<T>() {
            return None;
        }
        let src: *const T = ptr::addr_of!(self.storage).cast();
        // SAFETY: the storage is large enough and aligned for `T` (see `store`), fully
        // initialised (it starts zeroed), and `T` is a plain C struct valid for any bits.
        Some(unsafe { src.read() })
    }

    /// The address of a `std` socket address.
    pub fn from_std(addr: &SocketAddr) -> SockAddr {
        // Field by field on a zeroed value: the BSDs' structs lead with a length byte
        // (`sin_len`, `sin6_len`) that Linux's lack, and some have padding fields of their own.
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_in is a plain C struct of integers; all-zero is valid.
                let mut sin = unsafe { std::mem::zeroed::<libc::sockaddr_in>() };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                };
                #[cfg(not(target_os = "linux"))]
                {
                    sin.sin_len = size_of::<libc::sockaddr_in>() as u8;
                }
                SockAddr::store(sin)
            }
            SocketAddr::V6(a) => {
                // SAFETY: sockaddr_in6 is a plain C struct of integers; all-zero is valid.
                let mut sin6 = unsafe { std::mem::zeroed::<libc::sockaddr_in6>() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                sin6.sin6_scope_id = a.scope_id();
                #[cfg(not(target_os = "linux"))]
                {
                    sin6.sin6_len = size_of::<libc::sockaddr_in6>() as u8;
                }
                SockAddr::store(sin6)
            }
        }
    }

    /// A unix-domain address for `path`.
    ///
    /// On Linux a path starting with a NUL byte is an abstract-namespace name (up to 108
    /// bytes, NUL included, used as is); elsewhere it is `EINVAL`. Any other path must be non-empty, hold no NUL and fit in
    /// `sun_path` with its terminating NUL (at most [`UNIX_PATH_MAX`] bytes): a longer one is
    /// `ENAMETOOLONG` ([`InvalidInput`](usockets_core::ErrorKind::InvalidInput)); it is never
    /// truncated.
    pub fn unix(path: &str) -> Result<SockAddr, UnixError> {
        let bytes = path.as_bytes();
        // SAFETY: sockaddr_un is a plain C struct of integers; all-zero is a valid value.
        let mut un = unsafe { std::mem::zeroed::<libc::sockaddr_un>() };
        let abstract_name = ABSTRACT_NAMES && bytes.first() == Some(&0);
        if bytes.is_empty() || (!abstract_name && bytes.contains(&0)) {
            return Err(UnixError::from_errno(libc::EINVAL));
        }
        let room = if abstract_name {
            un.sun_path.len()
        } else {
            un.sun_path.len() - 1
        };
        if bytes.len() > room {
            return Err(UnixError::from_errno(libc::ENAMETOOLONG));
        }
        un.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, &src) in un.sun_path.iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        let nul = usize::from(!abstract_name);
        let len = offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + nul;
        #[cfg(not(target_os = "linux"))]
        {
            // The BSDs' `sun_len`: the length of the address actually used (at most 106).
            un.sun_len = len as u8;
        }
        let mut a = SockAddr::store(un);
        a.len = len as libc::socklen_t;
        Ok(a)
    }

    /// Whether this is the wildcard IP address (`0.0.0.0` or `::`).
    pub fn is_unspecified(&self) -> bool {
        self.ip_addr().is_some_and(|a| a.ip().is_unspecified())
    }

    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`...).
    pub fn family(&self) -> i32 {
        i32::from(self.storage.ss_family)
    }

    /// A pointer for calls that read the address (`bind`, `connect`).
    pub fn as_ptr(&self) -> *const libc::sockaddr {
        ptr::addr_of!(self.storage).cast()
    }

    /// The address length.
    #[allow(clippy::len_without_is_empty)] // an address is never empty: it has a family
    pub fn len(&self) -> libc::socklen_t {
        self.len
    }

    /// Pointers for calls that fill the address (`accept4`, `getsockname`, `getpeername`).
    /// The length must be reset with [`SockAddr::empty`] before each such call.
    pub fn as_out(&mut self) -> (*mut libc::sockaddr, *mut libc::socklen_t) {
        (
            ptr::addr_of_mut!(self.storage).cast(),
            ptr::addr_of_mut!(self.len),
        )
    }

    /// The IP socket address, if this is an `AF_INET`/`AF_INET6` address.
    /// IPv4-mapped IPv6 addresses stay IPv6 (`::ffff:a.b.c.d`), as Linux reports them.
    pub fn ip_addr(&self) -> Option<SocketAddr> {
        match self.family() {
            libc::AF_INET => {
                let a: libc::sockaddr_in = self.load()?;
                let ip = Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                let a: libc::sockaddr_in6 = self.load()?;
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// The address as core reports it: [`PeerAddr::Ip`] for IP families, otherwise
    /// [`PeerAddr::Unix`] ("no IP address").
    pub fn peer_addr(&self) -> PeerAddr {
        self.ip_addr().map_or(PeerAddr::Unix, PeerAddr::Ip)
    }
}

impl core::fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SockAddr")
            .field("family", &self.family())
            .field("len", &self.len)
            .field("ip", &self.ip_addr())
            .finish()
    }
}

/// Owns a `getaddrinfo` result list and frees it once.
struct AddrInfoList(*mut libc::addrinfo);

impl Drop for AddrInfoList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a successful getaddrinfo and is freed only here.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

/// Resolves `host`:`port` for a stream socket with `getaddrinfo`. **Blocking.**
///
/// `flags` are extra `AI_*` flags (`AI_NUMERICSERV` is always added); `family` is `AF_UNSPEC`
/// or a concrete family. A failure is [`NameResolution`](usockets_core::ErrorKind::NameResolution)
/// with the `EAI_*` code; a host with a NUL byte is `EINVAL`.
pub fn resolve(
    c: &mut Counters,
    host: &str,
    port: u16,
    flags: i32,
    family: i32,
) -> Result<Vec<SockAddr>, UnixError> {
    // A literal address needs no resolver: skip getaddrinfo (and its locks and file reads).
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        let wanted = match ip {
            std::net::IpAddr::V4(_) => libc::AF_INET,
            std::net::IpAddr::V6(_) => libc::AF_INET6,
        };
        if family == libc::AF_UNSPEC || family == wanted {
            return Ok(vec![SockAddr::from_std(&SocketAddr::new(ip, port))]);
        }
    }
    let invalid = |_| UnixError::from_errno(libc::EINVAL);
    let host = CString::new(host).map_err(invalid)?;
    let service = CString::new(port.to_string()).map_err(invalid)?;
    // SAFETY: addrinfo is a plain C struct of integers and raw pointers; all-zero (null
    // pointers) is a valid value and what getaddrinfo expects in unused hint fields.
    let mut hints = unsafe { std::mem::zeroed::<libc::addrinfo>() };
    hints.ai_flags = flags | libc::AI_NUMERICSERV;
    hints.ai_family = family;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list = AddrInfoList(ptr::null_mut());
    // getaddrinfo reports errors through its return value, not -1/errno, so it cannot go
    // through `cvt`; it is counted here instead.
    c.bump(Sys::Other);
    // SAFETY: `host` and `service` are NUL-terminated and outlive the call, `hints` is a valid
    // addrinfo, and `list.0` is a valid out pointer that getaddrinfo sets on success.
    let rc = unsafe { libc::getaddrinfo(host.as_ptr(), service.as_ptr(), &hints, &mut list.0) };
    if rc != 0 {
        return Err(UnixError::from_gai(rc));
    }
    let mut out = Vec::new();
    let mut node = list.0;
    while !node.is_null() {
        // SAFETY: `node` is a node of the list getaddrinfo returned, which stays allocated
        // until `list` is dropped at the end of this function.
        let ai = unsafe { &*node };
        let len = ai.ai_addrlen as usize;
        if !ai.ai_addr.is_null() && len <= size_of::<libc::sockaddr_storage>() {
            let mut a = SockAddr::empty();
            // SAFETY: `ai_addr` points to `len` readable bytes; the destination storage is
            // at least `len` bytes long; the two cannot overlap (one is on our stack).
            unsafe {
                ptr::copy_nonoverlapping(
                    ai.ai_addr.cast::<u8>(),
                    ptr::addr_of_mut!(a.storage).cast::<u8>(),
                    len,
                )
            };
            a.len = ai.ai_addrlen;
            out.push(a);
        }
        node = ai.ai_next;
    }
    if out.is_empty() {
        return Err(UnixError::from_gai(libc::EAI_NONAME));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_round_trip() {
        for s in [
            "127.0.0.1:80",
            "[::1]:443",
            "[::ffff:10.0.0.1]:9",
            "[fe80::1%3]:7",
        ] {
            let addr: SocketAddr = s.parse().unwrap();
            let sa = SockAddr::from_std(&addr);
            assert_eq!(sa.ip_addr(), Some(addr), "{s}");
            assert_eq!(sa.peer_addr(), PeerAddr::Ip(addr));
        }
    }

    #[test]
    fn unix_paths() {
        let ok = SockAddr::unix("/tmp/x.sock").unwrap();
        assert_eq!(ok.family(), libc::AF_UNIX);
        assert_eq!(ok.len() as usize, 2 + 11 + 1);
        assert_eq!(ok.peer_addr(), PeerAddr::Unix);
        let max = "a".repeat(UNIX_PATH_MAX);
        assert!(SockAddr::unix(&max).is_ok());
        let long = "a".repeat(UNIX_PATH_MAX + 1);
        assert_eq!(SockAddr::unix(&long).unwrap_err().code, libc::ENAMETOOLONG);
        assert_eq!(SockAddr::unix("").unwrap_err().code, libc::EINVAL);
        assert_eq!(SockAddr::unix("a\0b").unwrap_err().code, libc::EINVAL);
        if ABSTRACT_NAMES {
            let abs = SockAddr::unix("\0name").unwrap();
            assert_eq!(abs.len() as usize, 2 + 5);
        } else {
            assert_eq!(SockAddr::unix("\0name").unwrap_err().code, libc::EINVAL);
        }
    }

    #[test]
    fn resolve_numeric() {
        let mut c = Counters::default();
        let v = resolve(
            &mut c,
            "127.0.0.1",
            8080,
            libc::AI_NUMERICHOST,
            libc::AF_UNSPEC,
        )
        .unwrap();
        assert_eq!(v[0].ip_addr(), Some("127.0.0.1:8080".parse().unwrap()));
        let e = resolve(
            &mut c,
            "not an address",
            1,
            libc::AI_NUMERICHOST,
            libc::AF_UNSPEC,
        );
        assert_eq!(
            e.unwrap_err().kind,
            usockets_core::ErrorKind::NameResolution
        );
    }
}
