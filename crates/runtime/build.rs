//! Builds the exec trampoline (dmz/dmz.c) as a tiny static executable that the runtime embeds
//! and execs from a sealed memfd (see src/dmz.rs). Where it cannot be built (an architecture the
//! trampoline does not know), the runtime falls back to re-executing itself from a sealed copy.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=dmz/dmz.c");
    println!("cargo::rustc-check-cfg=cfg(berth_dmz)");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("dmz");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" && arch != "aarch64" {
        return;
    }
    let compiler = cc::Build::new().opt_level_str("s").get_compiler();
    let status = compiler
        .to_command()
        .args([
            "-static",
            "-nostdlib",
            "-nostartfiles",
            "-ffreestanding",
            "-fno-builtin",
            "-Os",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fno-pie",
            "-no-pie",
            "-Wl,--build-id=none",
            "-s",
            "-o",
        ])
        .arg(&out)
        .arg("dmz/dmz.c")
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo:rustc-cfg=berth_dmz"),
        other => println!("cargo:warning=exec trampoline not built ({other:?}); falling back to a sealed self-copy"),
    }
}
