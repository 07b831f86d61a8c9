//! The HTTP/1.1 keep-alive logic shared by `http_server`, `load` and the mio benchmark peer: a
//! request ends at `\r\n\r\n`, requests may be pipelined and split anywhere across reads, and
//! every request gets the same fixed response.

/// The fixed response to every request.
pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";

/// A request sent by the load generator.
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Counts complete requests in a byte stream: feed it every read; it remembers how much of a
/// terminator straddles two reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounter {
    /// How many bytes of `\r\n\r\n` the stream currently ends with.
    matched: u8,
}

impl RequestCounter {
    /// Feeds `data`; returns how many requests it completed.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        const END: &[u8; 4] = b"\r\n\r\n";
        let mut done = 0;
        let mut m = self.matched as usize;
        for &b in data {
            m = if b == END[m] {
                m + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if m == 4 {
                done += 1;
                m = 0;
            }
        }
        self.matched = m as u8;
        done
    }
}

/// Counts complete fixed responses in a byte stream, validating every byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponseChecker {
    at: usize,
}

impl ResponseChecker {
    /// Feeds `data`; returns the number of complete responses, or `Err(offset)` at the first
    /// byte that differs from [`RESPONSE`].
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, usize> {
        let mut done = 0;
        for (i, &b) in data.iter().enumerate() {
            if b != RESPONSE[self.at] {
                return Err(i);
            }
            self.at += 1;
            if self.at == RESPONSE.len() {
                self.at = 0;
                done += 1;
            }
        }
        Ok(done)
    }
}

/// How many responses one prepared batch holds.
pub const BATCH: usize = 64;

/// [`BATCH`] copies of [`RESPONSE`], prepared once, so answering a pipelined batch costs no
/// allocation: take `n * RESPONSE.len()` bytes of it.
pub fn responses(n: usize) -> &'static [u8] {
    static ALL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| RESPONSE.repeat(BATCH));
    &all[..(n.min(BATCH) * RESPONSE.len())]
}
