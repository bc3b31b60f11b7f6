//! Where the document writer puts its text: a growing `String`, a counter that only
//! measures it, or a caller's buffer of exactly the right size. The last lets a
//! binding write a large document straight into its own string object (Python's
//! `str`), instead of building a `String` and copying it once more.

/// A destination for written JSON text.
pub(crate) trait TextSink {
    /// Appends `s`.
    fn push_str(&mut self, s: &str);

    /// Appends one ASCII character (the writer's punctuation).
    fn push_ascii(&mut self, c: u8);
}

impl TextSink for String {
    #[inline]
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }

    #[inline]
    fn push_ascii(&mut self, c: u8) {
        debug_assert!(c.is_ascii());
        self.push(c as char);
    }
}

/// Counts the bytes that would be written (what the documents' kept lengths are
/// checked against).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct ByteCounter(pub usize);

#[cfg(test)]
impl TextSink for ByteCounter {
    #[inline]
    fn push_str(&mut self, s: &str) {
        self.0 += s.len();
    }

    #[inline]
    fn push_ascii(&mut self, _: u8) {
        self.0 += 1;
    }
}

/// Fills a fixed buffer with ASCII text. Whatever does not fit, and any non-ASCII
/// byte, marks the result as failed instead of writing it, so a caller that wanted
/// exactly `buf.len()` ASCII bytes can tell when it did not get them.
pub(crate) struct AsciiSliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    failed: bool,
}

impl<'a> AsciiSliceWriter<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        AsciiSliceWriter { buf, len: 0, failed: false }
    }

    /// Whether the text was ASCII and filled the buffer exactly.
    pub(crate) fn filled_exactly(&self) -> bool {
        !self.failed && self.len == self.buf.len()
    }
}

impl TextSink for AsciiSliceWriter<'_> {
    #[inline]
    fn push_str(&mut self, s: &str) {
        let end = self.len + s.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) if !self.failed => {
                // The check reads what the copy reads, while it is in the cache.
                if !s.is_ascii() {
                    self.failed = true;
                }
                dst.copy_from_slice(s.as_bytes());
            }
            _ => self.failed = true,
        }
        self.len = end;
    }

    #[inline]
    fn push_ascii(&mut self, c: u8) {
        match self.buf.get_mut(self.len) {
            Some(dst) if c.is_ascii() => *dst = c,
            _ => self.failed = true,
        }
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_writer_reports_short_long_and_non_ascii_text() {
        let mut buf = [0u8; 4];
        let mut w = AsciiSliceWriter::new(&mut buf);
        w.push_str("ab");
        w.push_ascii(b'c');
        assert!(!w.filled_exactly());
        w.push_ascii(b'd');
        assert!(w.filled_exactly());
        w.push_str("e");
        assert!(!w.filled_exactly());
        assert_eq!(&buf, b"abcd");

        let mut buf = [0u8; 2];
        let mut w = AsciiSliceWriter::new(&mut buf);
        w.push_str("\u{e9}");
        assert!(!w.filled_exactly());

        let mut n = ByteCounter::default();
        n.push_str("abc");
        n.push_ascii(b'{');
        assert_eq!(n.0, 4);
    }
}
