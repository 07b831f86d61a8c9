//! The receive buffer lent to `on_data`.

use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

/// Bytes of writable padding before and after the data in every `on_data` buffer
/// (`LIBUS_RECV_BUFFER_PADDING`). Parsers may write fences past the end and headers before the
/// start.
pub const RECV_PADDING: usize = 32;

/// The loop's shared receive buffer as lent to `on_data`: it dereferences to the data received,
/// and [`padded`](RecvBuf::padded) exposes the padding around it. Valid only during the call.
pub struct RecvBuf<'a> {
    whole: &'a mut [u8],
    len: usize,
    hint: Option<NonNull<()>>,
}

impl<'a> RecvBuf<'a> {
    /// `whole` holds `len` bytes at offset [`RECV_PADDING`] and the padding after them (the
    /// caller, core's read, guarantees it).
    #[inline]
    pub(crate) fn new(whole: &'a mut [u8], len: usize, hint: Option<NonNull<()>>) -> Self {
        debug_assert!(whole.len() >= len + 2 * RECV_PADDING);
        RecvBuf { whole, len, hint }
    }

    /// A buffer holding `len` bytes of data at offset [`RECV_PADDING`] of `whole`, with the
    /// padding around it: for a [`Layer`](crate::Layer) handing its own plaintext to
    /// `on_data` ([`Cx::deliver_data`](crate::Cx::deliver_data)). `None` when `whole` is
    /// shorter than `len` plus both paddings.
    pub fn from_padded(whole: &'a mut [u8], len: usize) -> Option<RecvBuf<'a>> {
        (whole.len() >= len.checked_add(2 * RECV_PADDING)?).then_some(RecvBuf {
            whole,
            len,
            hint: None,
        })
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

    /// The start of [`padded`](Self::padded), without the bounds check of slicing it (every
    /// constructor checked that the padding after the data is there): for handing the buffer
    /// to C, which gets `len` bytes at offset [`RECV_PADDING`] of it and the padding on both
    /// sides. Valid for writes while this buffer is borrowed mutably.
    #[inline]
    pub fn padded_ptr(&mut self) -> *mut u8 {
        self.whole.as_mut_ptr()
    }

    /// What [`Config::data_hint`](crate::Config::data_hint) gave for the receiving socket's
    /// ext, read by core's own `recv` for this very socket and call; `None` when it gives
    /// none, and for anything handed to [`Cx::deliver_data`](crate::Cx::deliver_data) (a
    /// [`Layer`](crate::Layer)'s plaintext), whose buffer may have come from anywhere.
    #[inline]
    pub fn hint(&self) -> Option<NonNull<()>> {
        self.hint
    }

    /// Drops the hint (a buffer handed on for another socket, or from outside core's read).
    #[inline]
    pub(crate) fn clear_hint(&mut self) {
        self.hint = None;
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
