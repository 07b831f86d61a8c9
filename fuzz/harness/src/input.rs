//! The input format: how a fuzzer's bytes become API calls and OS decisions.
//!
//! ```text
//! [n: u16 LE] [ops: n bytes (fewer if the input is shorter)] [faults: the rest]
//! ```
//!
//! * `ops` is read front to back by the harness: the run's settings and fault probabilities
//!   first, then one operation after another, and, inside callbacks, what each callback does.
//!   A byte past the end reads as 0, which always means "nothing" or the smallest choice, so
//!   every input is valid and every run ends.
//! * `faults` feeds shim-sim's [`ByteSource`](usockets_shim_sim::ByteSource): every fault the
//!   simulated OS injects and every amount it picks (short-write lengths, delivery delays).

/// Splits an input into its operation bytes and its fault bytes.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 2 {
        return (data, &[]);
    }
    let n = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let rest = &data[2..];
    rest.split_at(n.min(rest.len()))
}

/// Builds an input from its two parts (the inverse of [`split`]).
pub fn join(ops: &[u8], faults: &[u8]) -> Vec<u8> {
    let n = u16::try_from(ops.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(2 + ops.len() + faults.len());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&ops[..usize::from(n)]);
    out.extend_from_slice(faults);
    out
}

/// A cursor over the operation bytes; reads 0 once they are used up.
#[derive(Clone, Debug, Default)]
pub struct Ops {
    bytes: Vec<u8>,
    pos: usize,
}

impl Ops {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &[u8]) -> Ops {
        Ops {
            bytes: bytes.to_vec(),
            pos: 0,
        }
    }

    /// Whether every byte was read.
    pub fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        if self.pos < self.bytes.len() {
            self.pos += 1;
        }
        b
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// A choice among `n` (`n > 0`) from one byte.
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n.max(1)
    }

    /// One of `table`'s entries, chosen by one byte.
    pub fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[self.below(table.len())]
    }

    /// One of `table`'s entries (`table.len()` at most 128) chosen by one byte, as
    /// [`pick`](Self::pick) chooses it, and a flag from the same byte's bits above the
    /// choice: a second decision that reads no byte more, so inputs written before it existed
    /// decode as they did.
    pub fn pick_and_flag<T: Copy>(&mut self, table: &[T]) -> (T, bool) {
        let n = table.len().clamp(1, 128);
        let b = usize::from(self.u8());
        (table[b % n], (b / n) % 2 == 1)
    }
}

/// The first bytes of every stream: a tag, the stream number and a check byte. A receiver
/// learns from them which stream it is reading, so bytes can be checked wherever they end up.
pub const HEADER: usize = 4;

/// The pattern repeats with this period (a prime, so it never lines up with buffer sizes).
const PERIOD: usize = 251;

/// Byte `i` of stream `id`. Streams carry their identity in a [`HEADER`], then a pattern that
/// depends on both the stream and the position, so a lost, repeated, reordered or misdelivered
/// byte is caught (and the byte counts checked at FIN catch what a whole period could hide).
pub fn stream_byte(id: u16, i: u64) -> u8 {
    match i {
        0 => 0xA7,
        1 => id.to_le_bytes()[0],
        2 => id.to_le_bytes()[1],
        3 => header_check(id),
        _ => pattern(id, (i % PERIOD as u64) as usize),
    }
}

fn pattern(id: u16, k: usize) -> u8 {
    PATTERNS[pattern_row(id)][k]
}

/// Which row of [`PATTERNS`] stream `id` uses: only the low byte of `id * 131` shapes its bytes.
fn pattern_row(id: u16) -> usize {
    usize::from(id.wrapping_mul(131) as u8)
}

/// Every period of every stream, computed at compile time: row `r`, byte `k` is
/// `(r + 7k) ^ (k / 8)` (low byte), for the streams whose `id * 131` ends in the byte `r`.
/// Streams are made and checked with slice copies and comparisons of these rows: under the
/// fuzzer's instrumentation a loop that computes or compares byte by byte costs more than the
/// code under test.
static PATTERNS: [[u8; PERIOD]; 256] = patterns();

const fn patterns() -> [[u8; PERIOD]; 256] {
    let mut rows = [[0u8; PERIOD]; 256];
    let mut r = 0;
    while r < 256 {
        let mut k = 0;
        while k < PERIOD {
            rows[r][k] = ((r + 7 * k) ^ (k >> 3)) as u8;
            k += 1;
        }
        r += 1;
    }
    rows
}

fn header_check(id: u16) -> u8 {
    (id.wrapping_mul(37) as u8) ^ 0x5C
}

/// Decodes a complete header; `None` when it is not one.
pub fn parse_header(h: [u8; HEADER]) -> Option<u16> {
    let id = u16::from_le_bytes([h[1], h[2]]);
    (h[0] == 0xA7 && h[3] == header_check(id)).then_some(id)
}

/// Bytes `from..from + len` of stream `id`.
pub fn stream_chunk(id: u16, from: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    fill_chunk(&mut out, id, from, len);
    out
}

/// Replaces the contents of `out` with bytes `from..from + len` of stream `id` (no allocation
/// once `out` has the room).
pub fn fill_chunk(out: &mut Vec<u8>, id: u16, from: u64, len: usize) {
    out.clear();
    let row = &PATTERNS[pattern_row(id)];
    let mut at = (from % PERIOD as u64) as usize;
    while out.len() < len {
        let n = (PERIOD - at).min(len - out.len());
        out.extend_from_slice(&row[at..at + n]);
        at = 0;
    }
    if from < HEADER as u64 {
        for (i, b) in out.iter_mut().enumerate().take(HEADER - from as usize) {
            *b = stream_byte(id, from + i as u64);
        }
    }
}

/// Where `data` first differs from stream `id` read from byte `from` on (`from` past the
/// header); `None` when it is exactly that part of the stream.
pub fn stream_mismatch(id: u16, from: u64, data: &[u8]) -> Option<usize> {
    debug_assert!(from >= HEADER as u64, "the header is checked on its own");
    let row = &PATTERNS[pattern_row(id)];
    let mut at = (from % PERIOD as u64) as usize;
    let mut done = 0;
    while done < data.len() {
        let n = (PERIOD - at).min(data.len() - done);
        let (got, want) = (&data[done..done + n], &row[at..at + n]);
        if got != want {
            return got
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .map(|i| done + i);
        }
        done += n;
        at = 0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_round_trip() {
        let input = join(&[1, 2, 3], &[9, 9]);
        assert_eq!(split(&input), (&[1u8, 2, 3][..], &[9u8, 9][..]));
        assert_eq!(split(&[5]), (&[5u8][..], &[][..]));
        assert_eq!(split(&[0xFF, 0xFF, 1]), (&[1u8][..], &[][..]));
    }

    #[test]
    fn the_table_is_the_formula() {
        for id in [0u16, 1, 2, 255, 256, 300, 4097, u16::MAX] {
            for k in 0..PERIOD {
                let formula = (usize::from(id)
                    .wrapping_mul(131)
                    .wrapping_add(k.wrapping_mul(7))
                    ^ (k >> 3)) as u8;
                assert_eq!(pattern(id, k), formula, "stream {id}, byte {k}");
            }
        }
    }

    #[test]
    fn mismatches_are_found_where_they_are() {
        let good = stream_chunk(5, 4, 700);
        assert_eq!(stream_mismatch(5, 4, &good), None);
        assert_eq!(stream_mismatch(5, 4, &[]), None);
        assert_eq!(stream_mismatch(6, 4, &good), Some(0), "another stream");
        for at in [0, 1, 250, 251, 252, 699] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            assert_eq!(stream_mismatch(5, 4, &bad), Some(at));
        }
        assert_eq!(stream_mismatch(5, 5, &good[..10]), Some(0), "one byte late");
    }

    #[test]
    fn chunks_match_bytes() {
        for (id, from, len) in [
            (7u16, 0u64, 600usize),
            (9, 2, 10),
            (1, 250, 3),
            (3, 1000, 1),
        ] {
            let want: Vec<u8> = (0..len as u64).map(|i| stream_byte(id, from + i)).collect();
            assert_eq!(stream_chunk(id, from, len), want);
        }
    }

    #[test]
    fn headers_identify_streams() {
        for id in [0u16, 1, 300, u16::MAX] {
            let h = [0, 1, 2, 3].map(|i| stream_byte(id, i));
            assert_eq!(parse_header(h), Some(id));
        }
        assert_eq!(parse_header([0, 0, 0, 0]), None);
    }
}
