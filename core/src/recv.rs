//! The receive buffer lent to `on_data`.

use core::ops::{Deref, DerefMut};

/// Bytes of writable padding before and after the data in every `on_data` buffer
/// (`LIBUS_RECV_BUFFER_PADDING`). Parsers may write fences past the end and headers before the
/// start.
pub const RECV_PADDING: usize = 32;

/// The loop's shared receive buffer as lent to `on_data`: it dereferences to the data received,
/// and [`padded`](RecvBuf::padded) exposes the padding around it. Valid only during the call.
pub struct RecvBuf<'a> {
    whole: &'a mut [u8],
    len: usize,
}

impl<'a> RecvBuf<'a> {
    #[inline]
    pub(crate) fn new(whole: &'a mut [u8], len: usize) -> Self {
        RecvBuf { whole, len }
    }

    /// A buffer holding `len` bytes of data at offset [`RECV_PADDING`] of `whole`, with the
    /// padding around it: for a [`Layer`](crate::Layer) handing its own plaintext to
    /// `on_data` ([`Cx::deliver_data`](crate::Cx::deliver_data)). `None` when `whole` is
    /// shorter than `len` plus both paddings.
    pub fn from_padded(whole: &'a mut [u8], len: usize) -> Option<RecvBuf<'a>> {
        (whole.len() >= len.checked_add(2 * RECV_PADDING)?).then_some(RecvBuf { whole, len })
    }

    /// How many bytes of data (what `len()` through the slice gives, without slicing: the
    /// hot path asks for it on every data event).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no data (never, in `on_data`).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The data together with [`RECV_PADDING`] writable bytes on each side; the data starts at
    /// offset [`RECV_PADDING`] and is as long as the data.
    #[inline]
    pub fn padded(&mut self) -> &mut [u8] {
        &mut self.whole[..RECV_PADDING + self.len + RECV_PADDING]
    }
}

impl Deref for RecvBuf<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.whole[RECV_PADDING..RECV_PADDING + self.len]
    }
}

impl DerefMut for RecvBuf<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.whole[RECV_PADDING..RECV_PADDING + self.len]
    }
}
