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

/// The prost codec with small first buffers. tonic's default gives every stream an 8 KiB encode
/// buffer and an 8 KiB decode buffer up front; a coordinator holds one session stream per agent,
/// so with 10,000 agents those alone came to 160 MiB. Agent messages are mostly far smaller (a
/// heartbeat is a few dozen bytes); a buffer grows as a larger message needs it.
pub mod codec {
    use std::marker::PhantomData;

    use tonic::codec::BufferSettings;
    use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

    /// First size of a stream's encode and decode buffers.
    pub const FIRST_BUFFER: usize = 512;
    /// tonic's default: how much a streaming response batches before it yields.
    const YIELD_THRESHOLD: usize = 32 * 1024;

    fn settings() -> BufferSettings {
        BufferSettings::new(FIRST_BUFFER, YIELD_THRESHOLD)
    }

    /// `application/grpc+proto` through prost, with [`FIRST_BUFFER`]-byte first buffers.
    #[derive(Debug, Clone)]
    pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

    impl<T, U> Default for SmallBufferCodec<T, U> {
        fn default() -> Self {
            Self(PhantomData)
        }
    }

    impl<T, U> tonic::codec::Codec for SmallBufferCodec<T, U>
    where
        T: prost::Message + Send + 'static,
        U: prost::Message + Default + Send + 'static,
    {
        type Encode = T;
        type Decode = U;
        type Encoder = ProstEncoder<T>;
        type Decoder = ProstDecoder<U>;

        fn encoder(&mut self) -> Self::Encoder {
            ProstCodec::<T, U>::raw_encoder(settings())
        }

        fn decoder(&mut self) -> Self::Decoder {
            ProstCodec::<T, U>::raw_decoder(settings())
        }
    }
}
