//! Rampart's wire contract, generated from `rampart/v1/*.proto`. Nothing else in the workspace
//! defines messages; this crate holds no logic.

/// Version 1 of the protocol.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("rampart.v1");
}

/// Encoded `FileDescriptorSet` of every Rampart service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/rampart_descriptor.bin"));

/// The largest message either side accepts or sends (4 MiB): bounded so a peer cannot make us
/// buffer without limit.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
