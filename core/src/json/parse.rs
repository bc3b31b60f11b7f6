//! A lenient JSON reader: what Python's `json.loads` accepts, plus a UTF-8 BOM and
//! trailing commas (MSAL.NET writes files with both).

use std::borrow::Cow;
use std::fmt;

use super::borrowed::{MapRef, ValueRef};
use super::number::{canonical_from_literal, is_integer_text};
use super::value::{Number, Value};

/// Deeper nesting than this is rejected instead of risking the stack.
const MAX_DEPTH: usize = 256;

/// A syntax error with its 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What was wrong, e.g. "expected ',' or '}'".
    pub message: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} column {}", self.message, self.line, self.column)
    }
}

impl std::error::Error for ParseError {}

/// Parses one JSON document (BOM and trailing commas allowed, nothing after it but
/// whitespace).
pub fn parse(text: &str) -> Result<Value, ParseError> {
    parse_borrowed(text).map(ValueRef::into_value)
}

/// [`parse`], borrowing every string that holds no escape from `text`.
pub fn parse_borrowed(text: &str) -> Result<ValueRef<'_>, ParseError> {
    let mut p = Parser::new(text);
    let v = p.value_ref(0)?;
    p.finish()?;
    Ok(v)
}

/// The members [`pick`] was asked for.
pub(crate) struct Picked<'t, const N: usize> {
    /// Whether the object has any member at all.
    pub any: bool,
    /// The value of each name asked for, in the order asked.
    pub values: [Option<ValueRef<'t>>; N],
}

/// The members named `names` of the JSON object `text`, each with its last value
/// as Python's `json.loads` keeps it; every other member is checked as [`parse`]
/// checks it, and skipped. A reader that wants a few members (an id_token's claims)
/// builds nothing else. `Ok(None)`: `text` is valid JSON but not an object.
pub(crate) fn pick<'t, const N: usize>(text: &'t str, names: [&str; N]) -> Result<Option<Picked<'t, N>>, ParseError> {
    let mut p = Parser::new(text);
    if p.peek() != Some(b'{') {
        p.skip_value(0)?;
        p.finish()?;
        return Ok(None);
    }
    let mut picked = Picked { any: false, values: [const { None }; N] };
    p.object(0, |p, key| {
        let key = p.decode_ref(key)?;
        picked.any = true;
        // Length and first byte first: most keys are none of the names.
        let named = |n: &&str| n.len() == key.len() && n.as_bytes().first() == key.as_bytes().first() && **n == *key;
        match names.iter().position(named) {
            Some(i) => picked.values[i] = Some(p.value_ref(1)?),
            None => p.skip_value(1)?,
        }
        Ok(())
    })?;
    p.finish()?;
    Ok(Some(picked))
}

/// A string as it appears between the quotes in the input.
#[derive(Clone, Copy)]
pub(crate) struct RawStr<'a> {
    /// The bytes between the quotes, escapes not yet decoded.
    pub raw: &'a str,
    /// True when `raw` is printable ASCII with no escapes: then it is already exactly
    /// what Python's `ensure_ascii` writer would emit, and also the decoded value.
    pub plain: bool,
}

pub(crate) struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let src = text.strip_prefix('\u{feff}').unwrap_or(text);
        Parser { src, bytes: src.as_bytes(), pos: 0 }
    }

    pub(crate) fn error(&self, message: &'static str) -> ParseError {
        let upto = &self.src[..self.pos.min(self.src.len())];
        let line = upto.bytes().filter(|b| *b == b'\n').count() + 1;
        let line_start = upto.rfind('\n').map_or(0, |i| i + 1);
        // pos can sit inside a multi-byte char only if we stopped there; clamp to a boundary
        let mut end = self.pos.min(self.src.len());
        while !self.src.is_char_boundary(end) {
            end -= 1;
        }
        let column = self.src[line_start..end].chars().count() + 1;
        ParseError { line, column, message }
    }

    #[inline]
    pub(crate) fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    pub(crate) fn finish(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("extra data after the JSON value")),
        }
    }

    /// Walks the members of an object, calling `member` with each key; `member` must
    /// consume the value. Handles separators and a trailing comma.
    pub(crate) fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, RawStr<'a>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek() {
            Some(b'{') => self.pos += 1,
            None => return Err(self.error("unexpected end of input, expected '{'")),
            _ => return Err(self.error("expected '{'")),
        }
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            match self.peek() {
                Some(b'"') => {}
                None => return Err(self.error("unexpected end of input, expected a key")),
                _ => return Err(self.error("expected a string key")),
            }
            let key = self.string()?;
            match self.peek() {
                Some(b':') => self.pos += 1,
                None => return Err(self.error("unexpected end of input, expected ':'")),
                _ => return Err(self.error("expected ':'")),
            }
            member(self, key)?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    if self.peek() == Some(b'}') {
                        self.pos += 1; // trailing comma
                        return Ok(());
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                None => return Err(self.error("unexpected end of input, expected ',' or '}'")),
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    /// Parses any value.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.value_ref(depth).map(ValueRef::into_value)
    }

    /// Parses any value, borrowing its strings from the input where they hold no
    /// escape.
    pub(crate) fn value_ref(&mut self, depth: usize) -> Result<ValueRef<'a>, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek() {
            None => Err(self.error("unexpected end of input, expected a value")),
            Some(b'{') => {
                let mut map = MapRef::new();
                self.object(depth, |p, key| {
                    let k = p.decode_ref(key)?;
                    let v = p.value_ref(depth + 1)?;
                    map.push(k, v);
                    Ok(())
                })?;
                map.dedup_python_style();
                Ok(ValueRef::Object(map))
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.array(|p| {
                    items.push(p.value_ref(depth + 1)?);
                    Ok(())
                })?;
                Ok(ValueRef::Array(items))
            }
            Some(b'"') => {
                let raw = self.string()?;
                Ok(ValueRef::Str(self.decode_ref(raw)?))
            }
            Some(b't') => self.literal("true", ValueRef::Bool(true)),
            Some(b'f') => self.literal("false", ValueRef::Bool(false)),
            Some(b'n') => self.literal("null", ValueRef::Null),
            Some(b'N') => self.literal("NaN", ValueRef::Number(Number("NaN".into()))),
            Some(b'I') => self.literal("Infinity", ValueRef::Number(Number("Infinity".into()))),
            Some(b'-') if self.bytes[self.pos..].starts_with(b"-Infinity") => {
                self.literal("-Infinity", ValueRef::Number(Number("-Infinity".into())))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    /// Walks the items of an array (the parser sits on its `[`), calling `item` for
    /// each; `item` must consume it. Handles separators and a trailing comma.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Result<(), ParseError>) -> Result<(), ParseError> {
        self.pos += 1;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                None => return Err(self.error("unexpected end of input, expected ',' or ']'")),
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    /// Reads past any value, accepting exactly what [`value_ref`](Self::value_ref)
    /// accepts, and keeps nothing of it.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth, |p, key| {
                p.decode_ref(key)?;
                p.skip_value(depth + 1)
            }),
            Some(b'[') => self.array(|p| p.skip_value(depth + 1)),
            Some(b'"') => {
                let raw = self.string()?;
                self.decode_ref(raw).map(drop)
            }
            Some(b'-' | b'0'..=b'9') if !self.bytes[self.pos..].starts_with(b"-Infinity") => {
                self.number_literal().map(drop)
            }
            // Literals and errors.
            _ => self.value_ref(depth).map(drop),
        }
    }

    fn literal(&mut self, word: &'static str, v: ValueRef<'a>) -> Result<ValueRef<'a>, ParseError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn number(&mut self) -> Result<ValueRef<'a>, ParseError> {
        let lit = self.number_literal()?;
        // What tokens and timestamps hold: a plain integer that fits an i64 for sure.
        if lit.len() <= 18 && is_integer_text(lit) {
            return Ok(ValueRef::Int(lit.parse().expect("at most 18 digits")));
        }
        let canonical = canonical_from_literal(lit);
        // An integer's canonical text is what `i64` prints, when it fits one.
        Ok(match canonical.parse::<i64>() {
            Ok(n) if is_integer_text(&canonical) => ValueRef::Int(n),
            _ => ValueRef::Number(Number(canonical.into_boxed_str())),
        })
    }

    /// Reads a number (the parser sits on its first character) and returns its text.
    fn number_literal(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        let b = self.bytes;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while matches!(b.get(i), Some(b'0'..=b'9')) {
                    i += 1;
                }
            }
            _ => {
                self.pos = i;
                return Err(self.error("expected a digit"));
            }
        }
        if b.get(i) == Some(&b'.') && matches!(b.get(i + 1), Some(b'0'..=b'9')) {
            i += 1;
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if matches!(b.get(j), Some(b'0'..=b'9')) {
                while matches!(b.get(j), Some(b'0'..=b'9')) {
                    j += 1;
                }
                i = j;
            }
        }
        self.pos = i;
        Ok(&self.src[start..i])
    }

    /// Reads a string token (the parser sits on its opening quote) without decoding it.
    pub(crate) fn string(&mut self) -> Result<RawStr<'a>, ParseError> {
        debug_assert_eq!(self.bytes.get(self.pos), Some(&b'"'));
        let start = self.pos + 1;
        let mut i = start;
        let mut plain = true;
        loop {
            i = scan_plain_ascii(self.bytes, i);
            match self.bytes.get(i) {
                None => {
                    self.pos = i;
                    return Err(self.error("unterminated string"));
                }
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(RawStr { raw: &self.src[start..i], plain });
                }
                Some(b'\\') => {
                    plain = false;
                    i += 2; // skip the escaped char; validated when decoded
                }
                Some(_) => {
                    plain = false;
                    i += 1;
                }
            }
        }
    }

    /// Decodes the escapes of a string token.
    pub(crate) fn decode(&self, s: RawStr<'a>) -> Result<String, ParseError> {
        self.decode_ref(s).map(Cow::into_owned)
    }

    /// [`decode`](Self::decode), borrowing the input where there is nothing to decode.
    #[inline]
    pub(crate) fn decode_ref(&self, s: RawStr<'a>) -> Result<Cow<'a, str>, ParseError> {
        if s.plain || !s.raw.contains('\\') {
            return Ok(Cow::Borrowed(s.raw));
        }
        self.decode_escaped(s.raw)
    }

    #[cold]
    fn decode_escaped(&self, raw: &'a str) -> Result<Cow<'a, str>, ParseError> {
        decode_escapes(raw).map(Cow::Owned).map_err(|(offset, message)| {
            // Point the error at the offending escape: the raw slice lives in `src`.
            let base = raw.as_ptr() as usize - self.src.as_ptr() as usize;
            let at = Parser { src: self.src, bytes: self.bytes, pos: base + offset };
            at.error(message)
        })
    }
}

/// Index of the first byte at or after `i` that is `"`, `\`, a control char, DEL or
/// non-ASCII: the end of a run that needs neither decoding nor escaping. Tokens are
/// long runs of plain base64, so this is the reader's and the writer's inner loop.
#[inline]
pub(crate) fn scan_plain_ascii(b: &[u8], i: usize) -> usize {
    // Most strings (keys, ids, names) end within sixteen bytes: one SSE2 block finds
    // their end without the AVX2 path's check and call.
    #[cfg(target_arch = "x86_64")]
    let i = match sse2_block(b, i) {
        Some(0) => i + 16,
        Some(mask) => return i + mask.trailing_zeros() as usize,
        None => i,
    };
    #[cfg(target_arch = "x86_64")]
    let i = if b.len() - i.min(b.len()) >= 64 && has_avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        unsafe { scan_plain_ascii_avx2(b, i) }
    } else {
        i
    };
    #[cfg(target_arch = "x86_64")]
    let i = scan_plain_ascii_sse2(b, i);
    scan_plain_ascii_swar(b, i)
}

/// Whether this CPU has AVX2 (asked once; `std` caches the answer).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// The mask of the bytes of `v` that end a plain run: below 0x20 or non-ASCII
/// (one signed compare catches both), `"`, `\` or DEL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn specials_avx2(v: std::arch::x86_64::__m256i) -> u32 {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
    };
    let low_or_high = _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v);
    let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
    let bslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
    let del = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x7f));
    _mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(low_or_high, quote), _mm256_or_si256(bslash, del))) as u32
}

/// Thirty-two bytes at a time with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_plain_ascii_avx2(b: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256};
    while i + 32 <= b.len() {
        // SAFETY: `i + 32 <= b.len()`: the unaligned load stays inside `b`.
        let mask = specials_avx2(unsafe { _mm256_loadu_si256(b.as_ptr().add(i).cast::<__m256i>()) });
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 32;
    }
    i
}

/// Copies the plain run at the start of `src` to `dst` and returns its length,
/// thirty-two bytes at a time, each block scanned and stored in one pass (a token
/// is read once instead of twice). Copies nothing without AVX2 or for short input.
///
/// # Safety
/// `dst` must have room for `src.len()` bytes.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn copy_plain_ascii(dst: *mut u8, src: &[u8]) -> usize {
    if src.len() < 64 || !has_avx2() {
        return 0;
    }
    // SAFETY: AVX2 is there (checked above); the caller vouches for `dst`.
    unsafe { copy_plain_ascii_avx2(dst, src) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn copy_plain_ascii_avx2(dst: *mut u8, src: &[u8]) -> usize {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm256_storeu_si256};
    let mut i = 0;
    while i + 32 <= src.len() {
        // SAFETY: the load stays inside `src` (`i + 32 <= src.len()`), and the store
        // inside the `src.len()` bytes the caller gave room for at `dst`.
        unsafe {
            let v = _mm256_loadu_si256(src.as_ptr().add(i).cast::<__m256i>());
            _mm256_storeu_si256(dst.add(i).cast::<__m256i>(), v);
            let mask = specials_avx2(v);
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
        }
        i += 32;
    }
    i
}

/// The mask of the bytes that end a plain run among the sixteen at `i`, with SSE2,
/// which every x86_64 CPU has; `None` when fewer than sixteen bytes are left.
#[cfg(target_arch = "x86_64")]
#[inline]
fn sse2_block(b: &[u8], i: usize) -> Option<u32> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    if i + 16 > b.len() {
        return None;
    }
    // SAFETY: SSE2 is in the x86_64 baseline; `i + 16 <= b.len()`, so the unaligned
    // 16-byte load stays inside `b`.
    let mask = unsafe {
        let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let bslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
        // Unsigned v <= 0x1f exactly when max(v, 0x1f) == 0x1f.
        let limit = _mm_set1_epi8(0x1f);
        let ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, limit), limit);
        let special = _mm_or_si128(_mm_or_si128(quote, bslash), _mm_or_si128(del, ctl));
        // The sign bit of each byte is set for non-ASCII.
        _mm_movemask_epi8(special) | _mm_movemask_epi8(v)
    };
    Some(mask as u32)
}

/// Sixteen bytes at a time with SSE2.
#[cfg(target_arch = "x86_64")]
#[inline]
fn scan_plain_ascii_sse2(b: &[u8], mut i: usize) -> usize {
    while let Some(mask) = sse2_block(b, i) {
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    i
}

/// Eight bytes at a time in a `u64`, then byte by byte.
#[inline]
fn scan_plain_ascii_swar(b: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while i + 8 <= b.len() {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let quote = w ^ (LO * b'"' as u64);
        let bslash = w ^ (LO * b'\\' as u64);
        let del = w ^ (LO * 0x7f);
        let has_zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
        let ctl = w.wrapping_sub(LO * 0x20) & !w & HI; // bytes < 0x20
        let special = has_zero(quote) | has_zero(bslash) | has_zero(del) | ctl | (w & HI);
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c) {
            return i;
        }
        i += 1;
    }
    i
}

fn hex4(s: &[u8], at: usize) -> Option<u32> {
    let h = s.get(at..at + 4)?;
    let mut v = 0u32;
    for &c in h {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Decodes JSON escapes; on error returns the byte offset in `raw` and a message.
fn decode_escapes(raw: &str) -> Result<String, (usize, &'static str)> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    let mut run = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&raw[run..i]);
        let esc = *b.get(i + 1).ok_or((i, "invalid escape"))?;
        i += 2;
        match esc {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hi = hex4(b, i).ok_or((i - 2, "invalid \\u escape"))?;
                i += 4;
                let c = if (0xD800..0xDC00).contains(&hi) {
                    let lo = if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
                        hex4(b, i + 2).filter(|lo| (0xDC00..0xE000).contains(lo))
                    } else {
                        None
                    };
                    let lo = lo.ok_or((i - 6, "unpaired surrogate in \\u escape"))?;
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..0xE000).contains(&hi) {
                    return Err((i - 6, "unpaired surrogate in \\u escape"));
                } else {
                    hi
                };
                out.push(char::from_u32(c).ok_or((i - 6, "invalid \\u escape"))?);
            }
            _ => return Err((i - 2, "invalid escape")),
        }
        run = i;
    }
    out.push_str(&raw[run..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_agrees_with_a_byte_loop() {
        // Every special byte at every position of a 40-byte run, against the obvious loop.
        let naive =
            |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c)).unwrap_or(b.len());
        for special in [b'"', b'\\', 0x00, 0x1f, 0x7f, 0x80, 0xff, b'a'] {
            for pos in 0..40 {
                let mut buf = vec![b'x'; 40];
                buf[pos] = special;
                for start in [0, 1, 7] {
                    assert_eq!(
                        scan_plain_ascii(&buf, start),
                        start + naive(&buf[start..]),
                        "{special} at {pos} from {start}"
                    );
                }
            }
        }
    }

    #[test]
    fn scan_finds_specials() {
        let s = b"abcdefghijklmnop\"rest";
        assert_eq!(scan_plain_ascii(s, 0), 16);
        assert_eq!(scan_plain_ascii(b"abc\x7fdefghijk", 0), 3);
        assert_eq!(scan_plain_ascii(b"abcdefgh\x01", 0), 8);
        assert_eq!(scan_plain_ascii("abcdefgé".as_bytes(), 0), 7);
        assert_eq!(scan_plain_ascii(b"abcdefgh", 0), 8);
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("{\n  \"a\": tru\n}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
        let e = parse("{\"a\": 1").unwrap_err();
        assert!(e.message.contains("end of input"));
        assert!(parse("[1,2,]").is_ok());
        assert!(parse("\u{feff}{}").is_ok());
        assert!(parse("{} x").is_err());
        assert!(parse("\"\\ud800\"").is_err());
        assert_eq!(parse("\"\\ud83d\\ude00\"").unwrap(), Value::String("😀".into()));
    }

    #[test]
    fn duplicate_keys_keep_first_position_last_value() {
        let v = parse(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        let m = v.as_object().unwrap();
        let keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(m.get("a"), Some(&Value::from(3)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let s = "[".repeat(100_000);
        assert!(parse(&s).is_err());
    }

    #[test]
    fn pick_accepts_what_parse_accepts_and_finds_what_it_finds() {
        let deep = format!("{{\"a\": {}1{}}}", "[".repeat(300), "]".repeat(300));
        let texts = [
            r#"{"sub":"s","n":[1,2.5,-0,1e400,{"x":null}],"oid":"o","sub":"last"}"#,
            r#"{"a":"\u00e9\n","upn":"\u0075@c","preferred_username":null,}"#,
            r#"{"s\u0075b":1,"b":[true,false,NaN,-Infinity,Infinity,[]],"c":{}}"#,
            r#"{"x":12345678901234567890123,"y":-12,"z":0.1e-5}"#,
            r#"  {"sub": "x" }  "#,
            "{}",
            "[]",
            "\"s\"",
            "12",
            r#"{"a":tru}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":[1,]"#,
            r#"{"a":-}"#,
            r#"{"a":01}"#,
            r#"{"a":1} x"#,
            r#"{"sub":{"deep":["#,
            &deep,
        ];
        for text in texts {
            let parsed = parse_borrowed(text);
            let picked = pick(text, ["sub", "oid", "upn", "preferred_username"]);
            match (&parsed, &picked) {
                (Ok(ValueRef::Object(m)), Ok(Some(p))) => {
                    assert_eq!(p.any, !m.is_empty(), "{text}");
                    for (name, got) in ["sub", "oid", "upn", "preferred_username"].iter().zip(&p.values) {
                        let want = m.get(name).map(|v| v.clone().into_value());
                        assert_eq!(got.clone().map(ValueRef::into_value), want, "{text} {name}");
                    }
                }
                (Ok(_), Ok(None)) | (Err(_), Err(_)) => {}
                _ => panic!("parse and pick disagree on {text}"),
            }
        }
    }

    #[test]
    fn the_wide_scan_and_copy_agree_with_a_byte_loop() {
        // Runs longer than the vector paths take, with a special byte at every
        // position, including each block's edges.
        let naive =
            |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c)).unwrap_or(b.len());
        for special in [b'"', b'\\', 0x00, 0x1f, 0x7f, 0x80, 0xff] {
            for len in [64, 65, 95, 96, 200] {
                for pos in (0..len).chain([len]) {
                    let mut buf = vec![b'x'; len];
                    if pos < len {
                        buf[pos] = special;
                    }
                    assert_eq!(scan_plain_ascii(&buf, 0), naive(&buf), "{special:#x} at {pos} of {len}");
                    #[cfg(target_arch = "x86_64")]
                    {
                        let mut dst = vec![0u8; len];
                        // SAFETY: `dst` has room for `len` bytes.
                        let n = unsafe { copy_plain_ascii(dst.as_mut_ptr(), &buf) };
                        assert!(n <= naive(&buf), "{special:#x} at {pos} of {len}");
                        assert_eq!(&dst[..n], &buf[..n]);
                    }
                }
            }
        }
        let mut out = String::new();
        crate::json::escape_into(&mut out, &format!("{}\"{}\u{e9}", "a".repeat(100), "b".repeat(70)));
        assert_eq!(out, format!("{}\\\"{}\\u00e9", "a".repeat(100), "b".repeat(70)));
    }
}
