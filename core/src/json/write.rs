//! Writers byte-identical to Python's `json.dumps(obj, indent=4)` and to
//! `json.dumps(obj, separators=(",", ":"))`, both with `ensure_ascii=True`.

use super::parse::scan_plain_ascii;
use super::value::Value;

/// Python's indent unit.
pub(crate) const INDENT: &str = "    ";

/// Whether `s` needs escaping under `ensure_ascii` (anything but printable ASCII
/// other than `"` and `\`).
#[inline]
pub(crate) fn needs_escape(s: &str) -> bool {
    scan_plain_ascii(s.as_bytes(), 0) != s.len()
}

/// Appends `s` escaped the way Python's `ensure_ascii` encoder does (lower-case hex,
/// surrogate pairs above the BMP, DEL escaped), without quotes.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let b = s.as_bytes();
    #[cfg(target_arch = "x86_64")]
    let start = {
        out.reserve(b.len());
        let len = out.len();
        // SAFETY: `reserve` made room for `b.len()` more bytes at the end, and the
        // bytes copied (the length returned) are printable ASCII from a `str`.
        unsafe {
            let copied = super::parse::copy_plain_ascii(out.as_mut_vec().as_mut_ptr().add(len), b);
            out.as_mut_vec().set_len(len + copied);
            copied
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let start = 0;
    let mut run = start;
    let mut i = start;
    while i < b.len() {
        let j = scan_plain_ascii(b, i);
        if j >= b.len() {
            break;
        }
        out.push_str(&s[run..j]);
        let c = s[j..].chars().next().expect("j is a char boundary");
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    push_u_escape(out, *u);
                }
            }
        }
        i = j + c.len_utf8();
        run = i;
    }
    out.push_str(&s[run..]);
}

fn push_u_escape(out: &mut String, u: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((u >> shift) & 0xf) as usize] as char);
    }
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

fn newline_indent(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(INDENT);
    }
}

/// Writes `v` as `json.dumps(indent=4)` would when `v` sits at nesting `depth`.
pub(crate) fn write_indented(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(n.as_str()),
        Value::String(s) => push_quoted(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline_indent(out, depth + 1);
                write_indented(out, item, depth + 1);
            }
            newline_indent(out, depth);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline_indent(out, depth + 1);
                push_quoted(out, k);
                out.push_str(": ");
                write_indented(out, item, depth + 1);
            }
            newline_indent(out, depth);
            out.push('}');
        }
    }
}

/// Writes `v` with no whitespace (`separators=(",", ":")`).
pub(crate) fn write_compact(out: &mut String, v: &Value) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_quoted(out, k);
                out.push(':');
                write_compact(out, item);
            }
            out.push('}');
        }
        scalar => write_indented(out, scalar, 0),
    }
}

/// `json.dumps(v, indent=4)`.
pub fn to_python_string(v: &Value) -> String {
    let mut out = String::new();
    write_indented(&mut out, v, 0);
    out
}

/// Compact JSON (`separators=(",", ":")`, `ensure_ascii=True`).
pub fn to_compact_string(v: &Value) -> String {
    let mut out = String::new();
    write_compact(&mut out, v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn escapes_like_python() {
        let mut s = String::new();
        escape_into(&mut s, "a\"b\\c\n\u{7f}é😀\u{1}/");
        // json.dumps("a\"b\\c\n\x7fé😀\x01/") in CPython 3.11
        assert_eq!(s, r#"a\"b\\c\n\u007f\u00e9\ud83d\ude00\u0001/"#);
    }

    #[test]
    fn indent_layout_like_python() {
        let v = parse(r#"{"a": {"b": [1, {"c": null}], "d": {}, "e": []}}"#).unwrap();
        let want = "{\n    \"a\": {\n        \"b\": [\n            1,\n            {\n                \"c\": null\n            }\n        ],\n        \"d\": {},\n        \"e\": []\n    }\n}";
        assert_eq!(to_python_string(&v), want);
        assert_eq!(to_compact_string(&v), r#"{"a":{"b":[1,{"c":null}],"d":{},"e":[]}}"#);
    }
}
