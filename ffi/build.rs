//! Gives the shared library an soname, so programs linked against it record
//! `libtokencache.so.0` and a future ABI break can ship beside it.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtokencache.so.0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
