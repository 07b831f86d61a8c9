//! Stream checks: every byte arrives in order, unaltered and at one receiver only, and all of
//! it before the sender's FIN.

use crate::input::{parse_header, stream_mismatch, HEADER};

/// What a receiver has read of the one stream it receives.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Inbound {
    pub(crate) hdr: [u8; HEADER],
    pub(crate) n: u64,
    pub(crate) id: Option<u16>,
}

impl Inbound {
    pub(crate) fn feed(&mut self, streams: &mut [Stream], mut data: &[u8], who: &str) {
        while self.id.is_none() && !data.is_empty() {
            self.hdr[self.n as usize] = data[0];
            self.n += 1;
            data = &data[1..];
            if self.n == HEADER as u64 {
                let id = parse_header(self.hdr)
                    .unwrap_or_else(|| panic!("{who}: corrupted stream header {:?}", self.hdr));
                let st = streams
                    .get_mut(usize::from(id))
                    .unwrap_or_else(|| panic!("{who}: header of a stream never written ({id})"));
                assert!(!st.claimed, "{who}: stream {id} arrived at two receivers");
                assert!(
                    self.n <= st.sent,
                    "{who}: more of stream {id} than was written"
                );
                st.claimed = true;
                self.id = Some(id);
            }
        }
        let Some(id) = self.id else { return };
        if data.is_empty() {
            return;
        }
        if let Some(i) = stream_mismatch(id, self.n, data) {
            panic!(
                "{who}: byte {} of stream {id} differs (lost, repeated, reordered or foreign)",
                self.n + i as u64
            );
        }
        self.n += data.len() as u64;
        assert!(
            self.n <= streams[usize::from(id)].sent,
            "{who}: received more of stream {id} than its sender wrote"
        );
    }

    /// The sender's FIN arrived: every byte it wrote must have arrived before it.
    pub(crate) fn check_complete(&self, streams: &[Stream], who: &str) {
        if let Some(id) = self.id {
            let sent = streams[usize::from(id)].sent;
            assert_eq!(
                self.n, sent,
                "{who}: stream {id} ended after {} of the {sent} bytes written: bytes lost while \
                 the connection was open",
                self.n
            );
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stream {
    /// Bytes the writer was told were written.
    pub(crate) sent: u64,
    /// A receiver identified it.
    pub(crate) claimed: bool,
}
