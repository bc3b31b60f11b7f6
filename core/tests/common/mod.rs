//! Helpers shared by the API tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/vectors`, found from the workspace root (or `TOKENCACHE_VECTORS`).
pub fn vectors_dir() -> PathBuf {
    if let Ok(p) = std::env::var("TOKENCACHE_VECTORS") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [root.join("../shared/vectors"), root.join("shared/vectors")];
    for c in &candidates {
        if c.is_dir() {
            return c.canonicalize().unwrap();
        }
    }
    panic!("shared vectors not found (looked in {candidates:?}); set TOKENCACHE_VECTORS");
}

pub fn read(name: &str) -> String {
    let p = vectors_dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every vector file name, sorted.
pub fn vector_files() -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(vectors_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}
