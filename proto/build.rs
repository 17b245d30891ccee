//! Compiles the wire contract with protox (a pure-Rust protobuf compiler: no system `protoc`), and
//! writes the descriptor set that the coordinator serves through gRPC reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "rampart/v1/agent.proto",
        "rampart/v1/chaos.proto",
        "rampart/v1/compliance.proto",
        "rampart/v1/facts.proto",
        "rampart/v1/faults.proto",
        "rampart/v1/experiments.proto",
        "rampart/v1/operator.proto",
        "rampart/v1/probes.proto",
        "rampart/v1/remediation.proto",
        "rampart/v1/threats.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("rampart_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Facts and reports have a JSON form (policies evaluate it, `-o json` prints it).
        .message_attribute(
            ".rampart.v1",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        )
        .enum_attribute(
            ".rampart.v1",
            "#[derive(serde::Serialize, serde::Deserialize)]",
        )
        // Labels in reports keep a stable (sorted) order.
        .btree_map(".rampart.v1.HostResult.labels")
        .btree_map(".rampart.v1.HostScore.labels")
        .btree_map(".rampart.v1.UnmodeledHost.labels")
        // Small first buffers per stream (see `codec`): a coordinator holds thousands of streams.
        .codec_path("crate::codec::SmallBufferCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
