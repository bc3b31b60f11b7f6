//! Numbers as Python's `json` module reads and writes them.

/// Canonical text for a JSON number literal as Python would re-serialize it:
/// integers keep their digits (`-0` becomes `0`), anything with a fraction or an
/// exponent becomes a float printed with `repr`.
pub(crate) fn canonical_from_literal(lit: &str) -> String {
    if is_integer_text(lit) {
        if lit == "-0" {
            return "0".into();
        }
        return lit.into();
    }
    // A syntactically valid JSON number always parses as f64 (overflow gives inf).
    let f: f64 = lit.parse().unwrap_or(f64::NAN);
    python_float_repr(f)
}

pub(crate) fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn is_zero(s: &str) -> bool {
    match s {
        "Infinity" | "-Infinity" | "NaN" => false,
        _ => s.parse::<f64>().map(|f| f == 0.0).unwrap_or(false),
    }
}

pub(crate) fn to_i64(s: &str) -> Option<i64> {
    if is_integer_text(s) {
        return s.parse().ok();
    }
    let f: f64 = s.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let t = f.trunc();
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t) { Some(t as i64) } else { None }
}

/// Python's `int(str)`: surrounding whitespace, an optional sign, digits with single
/// underscores between them.
pub(crate) fn parse_python_int_str(s: &str) -> Option<i64> {
    let t = s.trim_matches(|c: char| c.is_whitespace());
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let mut acc: i64 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(10)? as i64;
        acc = acc.checked_mul(10)?.checked_add(d)?;
    }
    Some(if neg { -acc } else { acc })
}

/// Python's `repr(float)` as `json.dumps` writes floats (`allow_nan=True`).
pub(crate) fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digit count, e.g. "1.2345e-5"; but
    // where two candidates of that length are equally close it may pick either, while
    // Python picks the correctly rounded one (ties to even). `{:.N$e}` rounds exactly.
    let shortest = format!("{:e}", f.abs());
    let n = shortest.split_once('e').map_or(1, |(m, _)| m.chars().filter(char::is_ascii_digit).count());
    let sci = format!("{:.*e}", n.saturating_sub(1), f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    // Python's decpt: value = 0.DIGITS * 10^decpt
    let decpt = exp + 1;
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    let n = digits.len() as i32;
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..(-decpt) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if decpt >= n {
            out.push_str(&digits);
            for _ in 0..(decpt - n) {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", e.abs()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::excessive_precision)] // the ties need every digit
    fn float_repr_matches_python() {
        // Each pair checked against CPython 3.11 `json.dumps(float(x))`.
        for (x, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5, "-2.5"),
            (1e300, "1e+300"),
            (1700000000.5, "1700000000.5"),
            (-0.0, "-0.0"),
            (1125899906842624.25, "1125899906842624.2"),
            (756716708459839.25, "756716708459839.2"),
            (-34144067629171.0625, "-34144067629171.062"),
            (5e-324, "5e-324"),
            (1e23, "1e+23"),
        ] {
            assert_eq!(python_float_repr(x), want, "{x}");
        }
        assert_eq!(python_float_repr(f64::INFINITY), "Infinity");
        assert_eq!(python_float_repr(f64::NAN), "NaN");
    }

    #[test]
    fn literals_become_python_text() {
        assert_eq!(canonical_from_literal("-0"), "0");
        assert_eq!(canonical_from_literal("12345678901234567890123"), "12345678901234567890123");
        assert_eq!(canonical_from_literal("1E5"), "100000.0");
        assert_eq!(canonical_from_literal("1e400"), "Infinity");
        assert_eq!(canonical_from_literal("2.50"), "2.5");
    }

    #[test]
    fn python_int_of_strings() {
        assert_eq!(parse_python_int_str(" 3599 "), Some(3599));
        assert_eq!(parse_python_int_str("+7"), Some(7));
        assert_eq!(parse_python_int_str("1_000"), Some(1000));
        assert_eq!(parse_python_int_str("1.5"), None);
        assert_eq!(parse_python_int_str("abc"), None);
        assert_eq!(parse_python_int_str(""), None);
        assert_eq!(to_i64("1.9"), Some(1));
        assert_eq!(to_i64("-1.9"), Some(-1));
    }
}
