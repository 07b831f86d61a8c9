//! Address rules of the simulated host: one loopback world under every loopback name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::SimError;

/// The longest unix socket path (`sun_path` is 108 bytes with its terminating NUL).
pub(crate) const MAX_UNIX_PATH: usize = 107;

/// IPv4 or IPv6, as a client connects or a listener binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

/// The loopback address of a family with a port.
pub(crate) fn loopback(family: Family, port: u16) -> SocketAddr {
    match family {
        Family::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        Family::V6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
    }
}

/// `[::ffff:127.0.0.1]:port`: an IPv4 client as a dual-stack IPv6 socket sees it.
pub(crate) fn mapped_v4(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()), port)
}

/// The bound address of a listener on `host` (without the port) and its family.
pub(crate) fn listen_host(host: Option<&str>) -> Result<(IpAddr, Family), SimError> {
    match host {
        None | Some("::") => Ok((IpAddr::V6(Ipv6Addr::UNSPECIFIED), Family::V6)),
        Some("::1") => Ok((IpAddr::V6(Ipv6Addr::LOCALHOST), Family::V6)),
        Some("0.0.0.0") => Ok((IpAddr::V4(Ipv4Addr::UNSPECIFIED), Family::V4)),
        Some("127.0.0.1") | Some("localhost") => Ok((IpAddr::V4(Ipv4Addr::LOCALHOST), Family::V4)),
        Some(_) => Err(SimError::ADDR_NOT_AVAILABLE),
    }
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Resolves a connect target: the loopback names, `127.x.y.z` and `::1` resolve; nothing else.
pub(crate) fn connect_host(host: &str) -> Result<Family, SimError> {
    let host = strip_brackets(host);
    match host {
        "localhost" | "0.0.0.0" => return Ok(Family::V4),
        "::" => return Ok(Family::V6),
        _ => {}
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) if a.octets()[0] == 127 => Ok(Family::V4),
        Ok(IpAddr::V6(a)) if a.is_loopback() => Ok(Family::V6),
        _ => Err(SimError::NAME_RESOLUTION),
    }
}

/// Whether a connect's source address can be bound here (a loopback literal or `localhost`).
pub(crate) fn source_ok(source: &str) -> bool {
    let source = strip_brackets(source);
    source == "localhost"
        || match source.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => a.octets()[0] == 127,
            Ok(IpAddr::V6(a)) => a.is_loopback(),
            Err(_) => false,
        }
}

/// A unix socket path must fit `sun_path` (never truncated) and must not be empty.
pub(crate) fn check_unix_path(path: &str) -> Result<(), SimError> {
    if path.is_empty() || path.len() > MAX_UNIX_PATH {
        return Err(SimError::INVALID);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(connect_host("localhost"), Ok(Family::V4));
        assert_eq!(connect_host("127.3.2.1"), Ok(Family::V4));
        assert_eq!(connect_host("[::1]"), Ok(Family::V6));
        assert_eq!(connect_host("example.com"), Err(SimError::NAME_RESOLUTION));
        assert_eq!(connect_host("10.0.0.1"), Err(SimError::NAME_RESOLUTION));
        assert!(source_ok("127.0.0.1") && !source_ok("10.0.0.1"));
        assert_eq!(
            listen_host(Some("10.0.0.1")),
            Err(SimError::ADDR_NOT_AVAILABLE)
        );
        assert!(check_unix_path(&"x".repeat(107)).is_ok());
        assert_eq!(check_unix_path(&"x".repeat(108)), Err(SimError::INVALID));
    }
}
