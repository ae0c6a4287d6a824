//! `cargo run --release -p kindling-package --example verify -- PACKAGE.zip [DEST]`: verifies a
//! package as CreateFunction does (and extracts it into DEST, which must not exist), printing
//! the time each took.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: verify PACKAGE.zip [DEST]")?;
    let limits = kindling_package::Limits::new(262_144_000);
    let bytes = std::fs::read(&path)?;
    let started = Instant::now();
    let verified = kindling_package::verify_bytes(&bytes, &limits)?;
    println!(
        "verified {} bytes zipped, {} entries, {} bytes unzipped in {:?}",
        bytes.len(),
        verified.entries,
        verified.unzipped_size,
        started.elapsed()
    );
    if let Some(dest) = args.next() {
        let started = Instant::now();
        let done = kindling_package::extract(&[path.as_ref()], dest.as_ref(), &limits)?;
        println!("extracted {} files in {:?}", done.files, started.elapsed());
    }
    Ok(())
}
