//! A loopback device with fixed storage: every frame sent is received back. For tests and for
//! a firmware whose server and client share one loop; smoltcp's own `Loopback` needs an
//! allocator.

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A loopback device holding up to `FRAMES` frames of up to `MTU` bytes (IP medium: no link
/// header, no ARP). A frame sent while the queue is full is dropped, as a real NIC drops it;
/// TCP retransmits.
pub struct LoopbackDevice<const FRAMES: usize, const MTU: usize> {
    frames: [[u8; MTU]; FRAMES],
    lens: [usize; FRAMES],
    head: usize,
    queued: usize,
    /// Where a frame that finds the queue full is built, then forgotten.
    scratch: [u8; MTU],
}

impl<const FRAMES: usize, const MTU: usize> core::fmt::Debug for LoopbackDevice<FRAMES, MTU> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LoopbackDevice")
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

impl<const FRAMES: usize, const MTU: usize> Default for LoopbackDevice<FRAMES, MTU> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const FRAMES: usize, const MTU: usize> LoopbackDevice<FRAMES, MTU> {
    /// An empty queue. `const`, so that a firmware can put the device in a `static`.
    pub const fn new() -> Self {
        LoopbackDevice {
            frames: [[0; MTU]; FRAMES],
            lens: [0; FRAMES],
            head: 0,
            queued: 0,
            scratch: [0; MTU],
        }
    }
    /// How many frames wait to be received.
    pub fn queued(&self) -> usize {
        self.queued
    }
}

/// Receives one queued frame.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Queues one frame when consumed: the free slot at the tail (none when the queue is full:
/// the frame is built in scratch space and dropped).
pub struct TxToken<'a> {
    slot: Option<TxSlot<'a>>,
    scratch: &'a mut [u8],
}

struct TxSlot<'a> {
    buf: &'a mut [u8],
    len: &'a mut usize,
    queued: &'a mut usize,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self.slot {
            Some(slot) if len <= slot.buf.len() => {
                *slot.len = len;
                *slot.queued += 1;
                f(&mut slot.buf[..len])
            }
            // Dropped (a full queue, or a frame over the MTU, which smoltcp never asks for):
            // built in scratch space and forgotten.
            _ => {
                let n = len.min(self.scratch.len());
                f(&mut self.scratch[..n])
            }
        }
    }
}

/// `&a[i]` and `&mut b[j]` of one array, `i != j`.
fn two<T>(items: &mut [T], i: usize, j: usize) -> (&T, &mut T) {
    if i < j {
        let (lo, hi) = items.split_at_mut(j);
        (&lo[i], &mut hi[0])
    } else {
        let (lo, hi) = items.split_at_mut(i);
        (&hi[0], &mut lo[j])
    }
}

impl<const FRAMES: usize, const MTU: usize> Device for LoopbackDevice<FRAMES, MTU> {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        if self.queued == 0 {
            return None;
        }
        let at = self.head;
        self.head = (self.head + 1) % FRAMES;
        self.queued -= 1;
        let n = self.lens[at];
        // The reply goes to the tail, a slot other than the one lent for reading unless the
        // queue was full (then the reply is dropped).
        let tail = (self.head + self.queued) % FRAMES;
        let scratch = &mut self.scratch[..];
        if tail == at {
            let rx = RxToken {
                frame: &self.frames[at][..n],
            };
            return Some((
                rx,
                TxToken {
                    slot: None,
                    scratch,
                },
            ));
        }
        let (rx, buf) = two(&mut self.frames[..], at, tail);
        let (_, len) = two(&mut self.lens[..], at, tail);
        Some((
            RxToken { frame: &rx[..n] },
            TxToken {
                slot: Some(TxSlot {
                    buf: &mut buf[..],
                    len,
                    queued: &mut self.queued,
                }),
                scratch,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        if self.queued == FRAMES {
            // Busy: smoltcp keeps the packet and tries again at its next poll, after the
            // receive side has drained the queue.
            return None;
        }
        let tail = (self.head + self.queued) % FRAMES;
        Some(TxToken {
            slot: Some(TxSlot {
                buf: &mut self.frames[tail][..],
                len: &mut self.lens[tail],
                queued: &mut self.queued,
            }),
            scratch: &mut self.scratch[..],
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps
    }
}

/// A device in a `static` (a firmware's `&'static mut`) works as well as one owned by the
/// shim.
impl<const FRAMES: usize, const MTU: usize> Device for &mut LoopbackDevice<FRAMES, MTU> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        (**self).receive(now)
    }
    fn transmit(&mut self, now: Instant) -> Option<TxToken<'_>> {
        (**self).transmit(now)
    }
    fn capabilities(&self) -> DeviceCapabilities {
        (**self).capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::{RxToken as _, TxToken as _};

    fn send<const F: usize, const M: usize>(d: &mut LoopbackDevice<F, M>, byte: u8) -> bool {
        match d.transmit(Instant::from_millis(0)) {
            Some(t) => {
                t.consume(3, |b| b.fill(byte));
                true
            }
            None => false,
        }
    }

    fn recv<const F: usize, const M: usize>(d: &mut LoopbackDevice<F, M>) -> Option<[u8; 3]> {
        let (rx, _) = d.receive(Instant::from_millis(0))?;
        Some(rx.consume(|b| {
            let mut out = [0; 3];
            out.copy_from_slice(b);
            out
        }))
    }

    #[test]
    fn frames_come_back_in_order_and_a_full_queue_takes_none() {
        let mut d = LoopbackDevice::<2, 64>::new();
        assert!(send(&mut d, 1));
        assert!(send(&mut d, 2));
        assert!(!send(&mut d, 3), "full: smoltcp keeps the packet for later");
        assert_eq!(recv(&mut d), Some([1; 3]));
        assert!(send(&mut d, 4));
        assert_eq!(recv(&mut d), Some([2; 3]));
        assert_eq!(recv(&mut d), Some([4; 3]));
        assert_eq!(recv(&mut d), None);
        assert_eq!(d.queued(), 0);
    }

    #[test]
    fn a_reply_while_reading_goes_to_the_tail_or_nowhere_when_full() {
        let mut d = LoopbackDevice::<3, 64>::new();
        assert!(send(&mut d, 1));
        {
            let (rx, tx) = d.receive(Instant::from_millis(0)).expect("a frame");
            rx.consume(|b| assert_eq!(b, [1; 3]));
            tx.consume(3, |b| b.fill(9));
        }
        assert_eq!(recv(&mut d), Some([9; 3]), "the reply was queued");
        // A full queue: the frame read frees no slot for the reply (it is dropped).
        for byte in 1..=3 {
            assert!(send(&mut d, byte));
        }
        {
            let (rx, tx) = d.receive(Instant::from_millis(0)).expect("a frame");
            rx.consume(|b| assert_eq!(b, [1; 3]));
            tx.consume(3, |b| b.fill(7));
        }
        assert_eq!(recv(&mut d), Some([2; 3]));
        assert_eq!(recv(&mut d), Some([3; 3]));
        assert_eq!(recv(&mut d), None, "the reply to a full queue was dropped");
    }

    #[test]
    fn an_unused_transmit_token_queues_nothing() {
        let mut d = LoopbackDevice::<2, 64>::new();
        let unused = d.transmit(Instant::from_millis(0));
        assert!(unused.is_some(), "room for a frame");
        assert_eq!(d.queued(), 0);
        assert_eq!(recv(&mut d), None);
    }
}
