//! Addresses: literal IPs only (the shim resolves no names) and conversions between smoltcp's
//! endpoints and `core::net`.

use core::net::{IpAddr, SocketAddr};

use smoltcp::wire::{IpAddress, IpEndpoint};
use usockets_core::ErrorKind;

/// A literal IPv4 or IPv6 address (IPv6 with or without brackets). Anything else is a name,
/// which this shim does not resolve: [`ErrorKind::Unsupported`] (not `NameResolution`: no
/// resolver was asked, so none failed; see the crate docs).
pub(crate) fn parse_ip(host: &str) -> Result<IpAddr, ErrorKind> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().map_err(|_| ErrorKind::Unsupported)
}

/// smoltcp's endpoint as a `core::net` socket address.
pub(crate) fn to_std(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(IpAddr::from(e.addr), e.port)
}

/// A `core::net` address as smoltcp's.
pub(crate) fn to_smol(ip: IpAddr) -> IpAddress {
    IpAddress::from(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_parse_and_names_do_not() {
        assert_eq!(parse_ip("127.0.0.1"), Ok(IpAddr::from([127, 0, 0, 1])));
        assert!(matches!(parse_ip("::1"), Ok(IpAddr::V6(_))));
        assert!(matches!(parse_ip("[::1]"), Ok(IpAddr::V6(_))));
        assert_eq!(parse_ip("localhost"), Err(ErrorKind::Unsupported));
        assert_eq!(
            parse_ip("no-such-host.invalid"),
            Err(ErrorKind::Unsupported)
        );
    }
}
