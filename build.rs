//! Release builds of the `strata` binary lay out the functions a check runs
//! side by side (`scripts/link-order.txt`, made by `scripts/link-order`):
//! a check of the shared corpora then keeps far fewer pages of code
//! resident (docs/decisions/0001, "The functions a check runs, side by
//! side"). Only where the linker is known to be lld: Rust 1.90 and later
//! link x86_64 Linux programs with its bundled lld unless told otherwise.
//! `STRATA_LINK_ORDER=0` turns it off. Release builds linked by lld on
//! glibc 2.36 or later also pack their relative relocations (RELR).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=scripts/link-order.txt");
    println!("cargo:rerun-if-env-changed=STRATA_LINK_ORDER");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    // A linker given in the flags (or a non-default flavour) may not be lld.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let own_linker = flags.contains("linker") || flags.contains("link-self-contained") || !var("RUSTC_LINKER").is_empty();
    if var("PROFILE") != "release" || var("TARGET") != "x86_64-unknown-linux-gnu" || own_linker || rustc_minor().is_none_or(|m| m < 90) {
        return;
    }
    let list = Path::new(&var("CARGO_MANIFEST_DIR")).join("scripts/link-order.txt");
    if var("STRATA_LINK_ORDER") != "0" && list.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", list.display());
        // Names the list has and this build does not (code changed since the
        // list was made) are expected: they keep the linker's order.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    // The position-independent binary's 33,000 relative relocations as a
    // compact bitmap (RELR) instead of 24-byte entries: 800 KB less to read
    // at every start. The loader must know RELR: glibc 2.36 and later.
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the C library this machine runs is glibc `major.minor` or later
/// (`getconf GNU_LIBC_VERSION`: `glibc 2.36`).
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.strip_prefix("glibc ") else { return false };
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

/// The minor version of the compiler building this crate (`rustc 1.95.0`).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}
