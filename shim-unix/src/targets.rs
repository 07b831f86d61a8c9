//! What core asks `listen` and `connect` for ([`ListenTarget`], [`ConnectTarget`]), turned
//! into socket calls: name resolution, the dual-stack wildcard, unix paths.

use std::os::fd::OwnedFd;

use usockets_core::{ConnectTarget, ListenOptions, ListenTarget};

use crate::addr::{self, SockAddr};
use crate::error::UnixError;
use crate::net;
use crate::stats::Counters;

/// A listening socket for `target`: every interface, dual-stack, for no host (or an empty
/// one); the first resolved address that binds for a host name (`AI_PASSIVE`); a unix socket
/// for a path. `SO_REUSEPORT` unless the options ask for an exclusive port.
pub fn listen(
    c: &mut Counters,
    target: ListenTarget<'_>,
    options: ListenOptions,
) -> Result<OwnedFd, UnixError> {
    let (reuse_port, backlog) = (!options.exclusive_port, options.backlog);
    match target {
        ListenTarget::Host { host: None, port }
        | ListenTarget::Host {
            host: Some(""),
            port,
        } => net::listen_any(c, port, reuse_port, backlog),
        ListenTarget::Host {
            host: Some(host),
            port,
        } => {
            let addrs = addr::resolve(c, host, port, libc::AI_PASSIVE, libc::AF_UNSPEC)?;
            let mut last = UnixError::from_gai(libc::EAI_NONAME);
            for a in &addrs {
                match net::listen_ip(c, a, reuse_port, backlog) {
                    Ok(fd) => return Ok(fd),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        ListenTarget::Unix(path) => {
            let addr = SockAddr::unix(path)?;
            net::listen_unix(c, path, &addr, options.unix_mode, backlog)
        }
    }
}

/// A connecting socket for `target`: to the first address a host name resolves to, bound
/// first to `source` (a numeric address of the same family) if given; or to a unix path.
pub fn connect(c: &mut Counters, target: ConnectTarget<'_>) -> Result<OwnedFd, UnixError> {
    let (to, from) = connect_addrs(c, target)?;
    net::connect(c, &to, from.as_ref())
}

/// Where a connect to `target` goes and what it binds first: the first address a host name
/// resolves to and `source` (a numeric address of the same family), or a unix path.
pub fn connect_addrs(
    c: &mut Counters,
    target: ConnectTarget<'_>,
) -> Result<(SockAddr, Option<SockAddr>), UnixError> {
    match target {
        ConnectTarget::Host { host, port, source } => {
            let to = addr::resolve(c, host, port, 0, libc::AF_UNSPEC)?[0];
            let from = match source {
                Some(s) if !s.is_empty() => {
                    let flags = libc::AI_NUMERICHOST | libc::AI_PASSIVE;
                    Some(addr::resolve(c, s, 0, flags, to.family())?[0])
                }
                _ => None,
            };
            Ok((to, from))
        }
        ConnectTarget::Unix(path) => Ok((SockAddr::unix(path)?, None)),
    }
}
