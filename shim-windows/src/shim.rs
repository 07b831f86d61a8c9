//! [`WindowsShim`]: core's [`OsShim`] over an I/O completion port and AFD poll requests.

use core::fmt;
use std::os::windows::io::OwnedSocket;
use std::sync::Arc;
use std::time::Instant;

use usockets_core::{
    ConnectTarget, Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr, Token,
};
use windows_sys::Win32::System::IO::OVERLAPPED_ENTRY;

use crate::afd::Afd;
use crate::error::WindowsError;
use crate::net;
use crate::port::{Port, WindowsWaker, AFD_KEY, WAKER_KEY};
use crate::slots::Slots;
use crate::sys::{self, raw};

/// The shim's descriptor: std's owned Windows socket.
pub type Fd = OwnedSocket;

/// How many completions one `wait` dequeues at most.
const ENTRIES: usize = 1024;

/// The IOCP [`OsShim`]: one per loop, used from that loop's thread.
///
/// See the [crate docs](crate) for the behaviour and the decisions behind it.
pub struct WindowsShim {
    port: Arc<Port>,
    afd: Afd,
    slots: Slots,
    entries: Vec<OVERLAPPED_ENTRY>,
    origin: Instant,
    unix: bool,
}

// SAFETY: a shim may move to another thread between calls (it is used by one thread at a time:
// every method takes `&mut self`). The completion port and the AFD handle may be used from any
// thread, and a request is cancelled by `NtCancelIoFileEx` whichever thread issued it; I/O on
// a handle tied to a completion port does not end with the thread that issued it (and were a
// request cancelled anyway, the slots take it for an ordinary cancellation and re-issue it).
// The raw pointers inside (the AFD buffers, the dequeued
// entries' completion values) are owned memory or plain numbers that are never dereferenced.
unsafe impl Send for WindowsShim {}

impl WindowsShim {
    /// Initialises Winsock (`WSAStartup`), creates the completion port and opens the AFD
    /// device. Fails where AFD polling is unavailable (Wine before 7, some sandboxes).
    pub fn new() -> Result<WindowsShim, WindowsError> {
        sys::startup()?;
        let port = Port::new()?;
        let afd = Afd::open(port.handle())?;
        Ok(WindowsShim {
            port,
            afd,
            slots: Slots::default(),
            entries: vec![OVERLAPPED_ENTRY::default(); ENTRIES],
            origin: Instant::now(),
            unix: net::has_unix_sockets(),
        })
    }

    /// Whether this Windows has unix-domain sockets (`AF_UNIX`, Windows 10 1803 and later).
    /// Without them, listening on or connecting to a [`ListenTarget::Unix`] or
    /// [`ConnectTarget::Unix`] fails with [`ErrorKind::Unsupported`](usockets_core::ErrorKind::Unsupported).
    pub fn has_unix_sockets(&self) -> bool {
        self.unix
    }

    /// Turns dequeued completions into events, from `events[n]` on; returns the new count.
    fn completions(&mut self, got: usize, events: &mut [Event], mut n: usize) -> usize {
        for i in 0..got {
            let entry = self.entries[i];
            match entry.lpCompletionKey {
                WAKER_KEY => {
                    self.port.woken();
                    if n < events.len() {
                        events[n] = Event::new(Token::WAKER).with_readable(true);
                        n += 1;
                    }
                }
                AFD_KEY => {
                    // The context is the slot index plus one (`Afd::submit`).
                    let index = (entry.lpOverlapped as usize).wrapping_sub(1);
                    let Some(outcome) = self.afd.outcome(index) else {
                        continue;
                    };
                    if let Some(ev) = self.slots.complete(index, outcome) {
                        if n < events.len() {
                            events[n] = ev;
                            n += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        n
    }
}

impl Drop for WindowsShim {
    /// Cancels every poll in flight and drains the completion port until the kernel holds no
    /// more of the shim's memory; only then are the poll buffers freed. Should the port fail
    /// or stay silent for a minute, the buffers are leaked rather than freed under the kernel.
    fn drop(&mut self) {
        self.slots.cancel_all(&mut self.afd);
        let mut silent_ms = 0;
        while self.slots.in_flight() > 0 {
            let room = self.entries.len();
            match self.port.dequeue(&mut self.entries[..room], 100) {
                Ok(0) if silent_ms < 60_000 => silent_ms += 100,
                Ok(got) if got > 0 => {
                    silent_ms = 0;
                    let mut none: [Event; 0] = [];
                    self.completions(got, &mut none, 0);
                }
                _ => {
                    self.afd.leak();
                    return;
                }
            }
        }
        self.afd.drained();
    }
}

impl fmt::Debug for WindowsShim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowsShim")
            .field("port", &self.port)
            .field("in_flight", &self.slots.in_flight())
            .field("unix", &self.unix)
            .finish_non_exhaustive()
    }
}

impl OsShim for WindowsShim {
    type Fd = Fd;
    type Waker = WindowsWaker;
    type Error = WindowsError;

    fn register(&mut self, fd: &Fd, token: Token, interest: Interest) -> Result<(), WindowsError> {
        let s = raw(fd);
        let base = sys::base_socket(s);
        self.slots.register(&mut self.afd, s, base, token, interest);
        Ok(())
    }

    fn modify(&mut self, fd: &Fd, token: Token, interest: Interest) -> Result<(), WindowsError> {
        self.slots.modify(&mut self.afd, raw(fd), token, interest)
    }

    fn deregister(&mut self, fd: &Fd) -> Result<(), WindowsError> {
        if self.slots.remove(&mut self.afd, raw(fd)) {
            Ok(())
        } else {
            Err(WindowsError::invalid())
        }
    }

    fn wait(
        &mut self,
        events: &mut [Event],
        timeout_ms: Option<u64>,
    ) -> Result<usize, WindowsError> {
        let mut n = 0;
        self.slots.rearm(&mut self.afd, events, &mut n);
        if n == events.len() {
            return Ok(n);
        }
        let timeout = match timeout_ms {
            _ if n > 0 => 0,
            // INFINITE is u32::MAX; a finite wait stays below it.
            None => u32::MAX,
            Some(ms) => ms.min(u64::from(u32::MAX - 1)) as u32,
        };
        let room = (events.len() - n).min(self.entries.len());
        let got = self.port.dequeue(&mut self.entries[..room], timeout)?;
        Ok(self.completions(got, events, n))
    }

    fn waker(&mut self) -> WindowsWaker {
        WindowsWaker::new(self.port.clone())
    }

    fn now_ms(&mut self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn listen(
        &mut self,
        target: ListenTarget<'_>,
        options: ListenOptions,
    ) -> Result<Fd, WindowsError> {
        net::listen(target, options, self.unix)
    }

    fn accept(&mut self, listener: &Fd) -> Result<Option<(Fd, PeerAddr)>, WindowsError> {
        net::accept(raw(listener))
    }

    fn connect(&mut self, target: ConnectTarget<'_>) -> Result<Fd, WindowsError> {
        net::connect(target, self.unix)
    }

    fn connect_result(&mut self, fd: &Fd) -> Result<(), WindowsError> {
        let s = raw(fd);
        // SO_ERROR is read (and so cleared) either way; the poll's own report (a failed
        // connect, a reset) comes first, as Winsock may leave SO_ERROR at 0 for both.
        let so_error = net::take_error(s);
        match self.slots.take_error(s) {
            Some(code) => Err(WindowsError::from_raw(code)),
            None => so_error,
        }
    }

    fn adopt(&mut self, fd: &Fd) -> Result<(), WindowsError> {
        net::adopt(raw(fd))
    }

    fn recv(&mut self, fd: &Fd, buf: &mut [u8]) -> Result<usize, WindowsError> {
        let s = raw(fd);
        if self.slots.is_read_shut(s) {
            return Ok(0);
        }
        net::recv(s, buf)
    }

    fn send(&mut self, fd: &Fd, data: &[u8], _more: bool) -> Result<usize, WindowsError> {
        net::send(raw(fd), data)
    }

    fn send2(&mut self, fd: &Fd, header: &[u8], payload: &[u8]) -> Result<usize, WindowsError> {
        net::send2(raw(fd), header, payload)
    }

    fn shutdown_write(&mut self, fd: &Fd) -> Result<(), WindowsError> {
        net::shutdown(raw(fd), windows_sys::Win32::Networking::WinSock::SD_SEND)
    }

    fn shutdown_read(&mut self, fd: &Fd) -> Result<(), WindowsError> {
        // Emulated, without `shutdown(SD_RECEIVE)`: on Windows that resets the connection
        // when more data arrives, and reports nothing to a poll. Reads see EOF from now on.
        self.slots.shut_read(&mut self.afd, raw(fd));
        Ok(())
    }

    fn close(&mut self, fd: Fd) {
        // The poll in flight is cancelled first; closing the socket would complete it too
        // (AFD_POLL_LOCAL_CLOSE). Either way its slot waits for that completion.
        self.slots.remove(&mut self.afd, raw(&fd));
        drop(fd);
    }

    fn local_addr(&mut self, fd: &Fd) -> Result<PeerAddr, WindowsError> {
        net::name(raw(fd), false)
    }

    fn remote_addr(&mut self, fd: &Fd) -> Result<PeerAddr, WindowsError> {
        net::name(raw(fd), true)
    }
}
