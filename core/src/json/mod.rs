//! The JSON layer: a lenient reader and a writer that is byte-identical to Python's
//! `json.dumps(obj, indent=4)` (what msal's `serialize()` produces).
//!
//! Why our own and not serde_json: the cache must keep object order and duplicate-key
//! semantics exactly as Python's `json.loads` does, accept what real SDK files contain
//! (UTF-8 BOM, trailing commas, `NaN`), and write numbers and escapes the way Python
//! does. The reader also hands out raw string slices so that the common case (an ASCII
//! token with nothing to escape) is copied once, not decoded and re-encoded.

mod borrowed;
mod number;
mod parse;
mod sink;
mod value;
mod write;

pub use borrowed::{MapRef, ValueRef};
pub use parse::{ParseError, parse, parse_borrowed};
pub(crate) use parse::{Parser, Picked, pick};
#[cfg(test)]
pub(crate) use sink::ByteCounter;
pub(crate) use sink::{AsciiSliceWriter, TextSink};
pub use value::{Map, Number, Value, python_eq};
pub(crate) use write::{INDENT, escape_into, needs_escape, write_compact, write_indented};
pub use write::{to_compact_string, to_python_string};
