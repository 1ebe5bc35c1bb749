//! Compiles the bank.v1 proto into Rust (messages, client and server) and writes
//! the encoded file-descriptor set that server reflection serves. protoc comes
//! from `protoc-bin-vendored`, so no system protoc is needed; `PROTOC` wins if set.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing reads the
        // environment concurrently.
        unsafe { env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("bank_descriptor.bin"))
        .compile_protos(&["proto/bank/v1/bank.proto"], &["proto"])?;
    Ok(())
}
