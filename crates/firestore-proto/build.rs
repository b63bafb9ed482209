//! Generates the Rust code of `google.firestore.v1` from the vendored `.proto` files: prost
//! message types, tonic's server and client stubs, and proto3-JSON serde (pbjson). The protos
//! are compiled by protox (protoc in Rust), so no `protoc` is needed; the well-known types
//! (`google.protobuf.*`) are pbjson-types', which carry their proto3-JSON forms (timestamps as
//! RFC 3339, wrappers as bare values, `Struct`'s `NullValue`).

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = PathBuf::from("proto");
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["google/firestore/v1/firestore.proto"], [&protos])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = out.join("firestore_descriptor.bin");
    std::fs::write(&descriptors, files.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(files)?;

    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptors)?)?
        .extern_path(".google.protobuf", "::pbjson_types")
        .build(&[".google.firestore.v1", ".google.rpc", ".google.type"])?;
    Ok(())
}
