//! Versioned framing of messages on QUIC streams.
//!
//! A frame is a two-byte big-endian format version followed by the postcard encoding of the message. Each request
//! travels on its own bidirectional stream (request one way, response the other, each side finishing its half);
//! each node-to-node protocol message on its own unidirectional stream. A frame larger than the caller's limit is
//! refused before it is decoded.
//!
//! A server that refuses a request as too large answers it all the same (an error saying the limit) and then stops
//! reading with [`STOP_TOO_LARGE`]; [`request`] reads that answer when its sending is stopped, so that the caller
//! learns why instead of "sending stopped by peer".

use serde::{de::DeserializeOwned, Serialize};

/// The wire format version this build speaks.
pub const WIRE_VERSION: u16 = 4;

/// Largest frame accepted by default (a request carrying a message to sign, a key list).
pub const DEFAULT_FRAME_LIMIT: usize = 4 * 1024 * 1024;

/// The code a receiver stops a stream with when the frame on it is larger than it takes ([`FrameError::TooLarge`]),
/// after answering why.
pub const STOP_TOO_LARGE: u32 = 1;

/// Why a frame could not be sent, received or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer speaks another format version.
    #[error("peer speaks wire format version {0}, this build speaks version {WIRE_VERSION}")]
    Version(u16),
    /// The bytes are not a valid message.
    #[error("malformed message: {0}")]
    Decode(String),
    /// The message could not be encoded.
    #[error("could not encode message: {0}")]
    Encode(String),
    /// The stream failed (connection lost, reset).
    #[error("stream error: {0}")]
    Stream(String),
    /// The frame is larger than the receiver takes; it was not read to its end.
    #[error("the message is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The receiver stopped reading before the end of the frame (with [`STOP_TOO_LARGE`]: it is too large).
    #[error("the peer stopped reading the message (code {code})")]
    Stopped {
        /// The code it stopped the stream with.
        code: u64,
    },
}

fn write_error(e: quinn::WriteError) -> FrameError {
    match e {
        quinn::WriteError::Stopped(code) => FrameError::Stopped { code: code.into() },
        other => FrameError::Stream(other.to_string()),
    }
}

/// Encodes `message` as a frame.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = WIRE_VERSION.to_be_bytes().to_vec();
    let body = postcard::to_stdvec(message).map_err(|e| FrameError::Encode(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a frame, refusing another version and any trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let (version, body) = match bytes {
        [a, b, body @ ..] => (u16::from_be_bytes([*a, *b]), body),
        _ => return Err(FrameError::Decode("frame shorter than its header".into())),
    };
    if version != WIRE_VERSION {
        return Err(FrameError::Version(version));
    }
    let (message, rest) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Decode(format!("{} trailing bytes", rest.len())));
    }
    Ok(message)
}

/// Writes one frame and finishes the stream.
pub async fn send<T: Serialize>(
    stream: &mut quinn::SendStream,
    message: &T,
) -> Result<(), FrameError> {
    let bytes = encode(message)?;
    stream.write_all(&bytes).await.map_err(write_error)?;
    stream
        .finish()
        .map_err(|e| FrameError::Stream(e.to_string()))
}

/// Reads one whole frame (until the peer finishes the stream) and decodes it.
pub async fn receive<T: DeserializeOwned>(
    stream: &mut quinn::RecvStream,
    limit: usize,
) -> Result<T, FrameError> {
    let bytes = stream.read_to_end(limit).await.map_err(|e| match e {
        quinn::ReadToEndError::TooLong => FrameError::TooLarge { limit },
        other => FrameError::Stream(other.to_string()),
    })?;
    decode(&bytes)
}

/// Sends a request on a new bidirectional stream of `connection` and waits for the response. If the peer stops
/// reading the request before its end (it refuses it as too large), its response still says why: that response is
/// returned, or the [`FrameError::Stopped`] if there is none.
pub async fn request<Req: Serialize, Resp: DeserializeOwned>(
    connection: &quinn::Connection,
    request: &Req,
    limit: usize,
) -> Result<Resp, FrameError> {
    let (mut send_half, mut recv_half) = connection
        .open_bi()
        .await
        .map_err(|e| FrameError::Stream(e.to_string()))?;
    match send(&mut send_half, request).await {
        Ok(()) => receive(&mut recv_half, limit).await,
        Err(stopped @ FrameError::Stopped { .. }) => {
            receive(&mut recv_half, limit).await.map_err(|_| stopped)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let frame = encode(&("hello".to_string(), 7u32)).unwrap();
        let back: (String, u32) = decode(&frame).unwrap();
        assert_eq!(back, ("hello".to_string(), 7));

        let mut other = frame.clone();
        other[1] = 9;
        assert!(matches!(
            decode::<(String, u32)>(&other),
            Err(FrameError::Version(9))
        ));

        let mut trailing = frame;
        trailing.push(0);
        assert!(matches!(
            decode::<(String, u32)>(&trailing),
            Err(FrameError::Decode(_))
        ));
        assert!(matches!(
            decode::<(String, u32)>(&[0]),
            Err(FrameError::Decode(_))
        ));
    }
}
