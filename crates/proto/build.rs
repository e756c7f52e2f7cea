//! Compiles proto/baton/v1 with the protoc shipped in protoc-bin-vendored, so no system protoc is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "baton/v1/run.proto",
        "baton/v1/events.proto",
        "baton/v1/tools.proto",
        "baton/v1/agent.proto",
        "baton/v1/service.proto",
        "baton/v1/keys.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        // Deterministic encoding (labels map), so a spec has one fingerprint.
        .btree_map(".")
        .file_descriptor_set_path(out.join("baton_descriptor.bin"))
        .compile_with_config(config, &files.map(|f| root.join(f)), &[root])?;
    Ok(())
}
