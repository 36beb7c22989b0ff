//! Builds berth-init (init/init.c), the `docker run --init` process, as a tiny static
//! executable that the library embeds (`INIT_BINARY`), the way the runtime builds its exec
//! trampoline: no libc, raw syscalls, so it runs in any image. Where it cannot be built (an
//! architecture it does not know, no C compiler), `INIT_BINARY` is empty.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=init/init.c");
    println!("cargo::rustc-check-cfg=cfg(berth_init)");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("berth-init");
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
        .arg("init/init.c")
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo:rustc-cfg=berth_init"),
        other => println!("cargo:warning=berth-init not built ({other:?}); INIT_BINARY is empty"),
    }
}
