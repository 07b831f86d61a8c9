//! A small growable bit set indexed by descriptor number.

/// Descriptors with a flag set (in the shims: "holding data back for a `more` hint").
#[derive(Debug, Default)]
pub struct FdSet {
    words: Vec<u64>,
    /// How many flags are set: an empty set answers `remove` without touching `words`, so
    /// the common send (no `MSG_MORE` anywhere) costs one compare.
    len: usize,
}

impl FdSet {
    fn split(fd: i32) -> Option<(usize, u64)> {
        let fd = usize::try_from(fd).ok()?;
        Some((fd / 64, 1 << (fd % 64)))
    }

    /// Sets the flag of `fd` (grows the set on first use of a high descriptor number).
    pub fn insert(&mut self, fd: i32) {
        let Some((word, bit)) = FdSet::split(fd) else {
            return;
        };
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.len += 1;
        }
    }

    /// Whether no flag is set.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the flag of `fd` is set (one compare while the set is empty).
    #[inline]
    pub fn contains(&self, fd: i32) -> bool {
        if self.len == 0 {
            return false;
        }
        FdSet::split(fd)
            .and_then(|(word, bit)| self.words.get(word).map(|w| w & bit != 0))
            .unwrap_or(false)
    }

    /// Clears the flag of `fd` and says whether it was set.
    #[inline]
    pub fn remove(&mut self, fd: i32) -> bool {
        if self.len == 0 {
            return false;
        }
        let Some((word, bit)) = FdSet::split(fd) else {
            return false;
        };
        match self.words.get_mut(word) {
            Some(w) => {
                let was = *w & bit != 0;
                *w &= !bit;
                self.len -= usize::from(was);
                was
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FdSet;

    #[test]
    fn insert_remove() {
        let mut s = FdSet::default();
        assert!(!s.remove(5));
        s.insert(5);
        s.insert(5);
        s.insert(700);
        s.insert(-1);
        assert!(s.contains(5) && s.contains(700) && !s.contains(6) && !s.contains(-1));
        assert_eq!(
            s.len, 2,
            "a flag set twice counts once; -1 is no descriptor"
        );
        assert!(s.remove(5));
        assert!(!s.remove(5));
        assert_eq!(s.len, 1);
        assert!(s.remove(700));
        assert!(!s.remove(-1));
        assert_eq!(s.len, 0);
    }
}
