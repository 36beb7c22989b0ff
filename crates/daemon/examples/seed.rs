//! `cargo run --example seed -- DATA_ROOT ROOTFS.tar NAME`: an image for trying berthd by hand.

#[path = "../tests/common/seed.rs"]
mod seed;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 4 {
        eprintln!("usage: seed DATA_ROOT ROOTFS.tar NAME");
        std::process::exit(2);
    }
    let id = seed::seed_image(a[1].as_ref(), a[2].as_ref(), &a[3], &[]);
    println!("{id}");
}
