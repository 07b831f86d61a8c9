//! Listening sockets: a multishot accept fills a queue core's `accept` takes from; a real
//! error (running out of descriptors above all) hands the listener to the plain syscall and
//! shim-unix's shedding until its backlog is empty, then the multishot accept is armed again.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use io_uring::{opcode, types};

use usockets_core::PeerAddr;
use usockets_shim_unix::accept::Accepted;
use usockets_shim_unix::{net, sys};

use crate::conn::Kind;
use crate::op::{pack, Op};
use crate::{UringError, UringShim};

impl UringShim {
    /// Arms `fd`'s multishot accept if it should run: registered for reading, not closing,
    /// not in the syscall fallback, its queue below the cap.
    pub(crate) fn arm_accept(&mut self, fd: u32) {
        let cap = self.config.accept_queue as usize;
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        if c.kind != Kind::Listener
            || !c.registered
            || !c.interest.is_readable()
            || c.armed
            || c.accept_fallback
            || c.is_closing()
            || c.accepted.len() >= cap
        {
            return;
        }
        let entry = opcode::AcceptMulti::new(types::Fd(fd as i32))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(pack(Op::Accept, fd, c.generation));
        // SAFETY: a multishot accept without an address carries no pointer.
        if unsafe { self.ring.push(&entry) } {
            c.armed = true;
            c.ops += 1;
        }
    }

    /// Core's `accept`: the next queued connection (with `TCP_NODELAY` and its peer address),
    /// or through the syscall while the listener is in the fallback.
    pub(crate) fn listener_accept(
        &mut self,
        fd: u32,
    ) -> Result<Option<(OwnedFd, PeerAddr)>, UringError> {
        loop {
            let Some(c) = self.table.get_mut(fd) else {
                return Ok(None);
            };
            if let Some(new) = c.accepted.pop_front() {
                if !c.armed {
                    self.arm_accept(fd);
                }
                match self.adopt_accepted(&new) {
                    Ok(addr) => return Ok(Some((new, addr))),
                    Err(_) => {
                        sys::close_owned(&mut self.c, new);
                        continue;
                    }
                }
            }
            let fallback = c.accept_fallback;
            if !fallback {
                return Ok(None);
            }
            return match self.acceptor.accept_or_shed(&mut self.c, fd as i32) {
                Ok(Accepted::Connection(new, addr)) => {
                    // Descriptors again: back to the multishot accept.
                    self.leave_fallback(fd);
                    self.table.at(new.as_raw_fd() as u32).open(Kind::Stream);
                    Ok(Some((new, addr)))
                }
                Ok(Accepted::Empty) => {
                    self.leave_fallback(fd);
                    Ok(None)
                }
                Ok(Accepted::ShedAll) => {
                    // Still out of descriptors, nothing pending: wait for the next connection
                    // with a poll (a multishot accept would fail again at once).
                    if let Some(c) = self.table.get_mut(fd) {
                        c.fallback_ready = false;
                    }
                    self.arm_fallback_poll(fd);
                    Ok(None)
                }
                Err(e) => {
                    if e.kind != usockets_core::ErrorKind::ConnectionAborted {
                        // No descriptor could be freed: core backs the listener off, and
                        // resuming it tries again.
                        if let Some(c) = self.table.get_mut(fd) {
                            c.fallback_ready = false;
                        }
                    }
                    Err(e)
                }
            };
        }
    }

    /// Descriptors are back: the multishot accept again.
    fn leave_fallback(&mut self, fd: u32) {
        if let Some(c) = self.table.get_mut(fd) {
            c.accept_fallback = false;
            c.fallback_ready = false;
        }
        self.cancel_fallback_poll(fd);
        self.arm_accept(fd);
    }

    /// In the fallback, arms a one-shot poll for the listener's next connection.
    fn arm_fallback_poll(&mut self, fd: u32) {
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        if c.fallback_poll || !c.registered || !c.interest.is_readable() || c.is_closing() {
            return;
        }
        let entry = opcode::PollAdd::new(types::Fd(fd as i32), libc::POLLIN as u32)
            .build()
            .user_data(pack(Op::Poll, fd, c.generation));
        // SAFETY: a poll carries no pointer.
        if unsafe { self.ring.push(&entry) } {
            c.fallback_poll = true;
            c.ops += 1;
        }
    }

    /// Removes the fallback's poll, if armed (its completion still comes, and is counted).
    pub(crate) fn cancel_fallback_poll(&mut self, fd: u32) {
        let Some(c) = self.table.get(fd) else { return };
        if !c.fallback_poll {
            return;
        }
        let entry = opcode::PollRemove::new(pack(Op::Poll, fd, c.generation))
            .build()
            .user_data(pack(Op::Cancel, fd, 0));
        // SAFETY: a poll removal carries no pointer.
        let _ = unsafe { self.ring.push(&entry) };
    }

    /// The fallback's poll completed: a connection is waiting (or the poll was removed).
    pub(crate) fn listener_polled(&mut self, fd: u32, generation: u32) {
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        c.fallback_poll = false;
        c.ops = c.ops.saturating_sub(1);
        if c.generation == generation && c.accept_fallback && !c.is_closing() {
            c.fallback_ready = true;
            if c.registered {
                self.mark_ready(fd);
            }
        }
        if self.table.get(fd).is_some_and(|c| c.is_closing()) {
            self.finish_close(fd);
        }
    }

    /// Readies a descriptor the multishot accept made: `TCP_NODELAY` (not for unix sockets),
    /// its state, its peer's address.
    fn adopt_accepted(&mut self, new: &OwnedFd) -> Result<PeerAddr, UringError> {
        let raw = new.as_raw_fd();
        match net::set_nodelay(&mut self.c, raw) {
            Err(e) if !net::not_applicable(&e) => return Err(e),
            _ => {}
        }
        let addr = match net::name(&mut self.c, raw, true) {
            Ok(addr) => addr,
            // Reset before core could have it: core opens it and sees the reset at once, as
            // with a plain accept; only the address is gone (unspecified, of its family).
            Err(_) => match net::name(&mut self.c, raw, false)? {
                PeerAddr::Ip(SocketAddr::V4(_)) => PeerAddr::Ip((Ipv4Addr::UNSPECIFIED, 0).into()),
                PeerAddr::Ip(SocketAddr::V6(_)) => PeerAddr::Ip((Ipv6Addr::UNSPECIFIED, 0).into()),
                PeerAddr::Unix => PeerAddr::Unix,
            },
        };
        self.table.at(raw as u32).open(Kind::Stream);
        Ok(addr)
    }
}
