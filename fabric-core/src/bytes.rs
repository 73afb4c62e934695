//! A byte buffer that serde encodes as one block, not element by element.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Binary data for arguments and results.
///
/// serde encodes a `Vec<u8>` as a sequence, one call per byte: with bincode, a 64 KiB
/// `Vec<u8>` takes about five times longer to encode and decode than the same bytes as
/// `Bytes`, which serde sees as one block. JSON writes both as an array of numbers.
///
/// ```
/// use fabric_core::{Bytes, Codec};
///
/// let blob = Bytes::from(vec![1u8, 2, 3]);
/// let encoded = Codec::Bincode.encode(&blob, "a blob")?;
/// assert_eq!(encoded.len(), 8 + 3); // a length, then the bytes
/// let decoded: Bytes = Codec::Bincode.decode(&encoded, "a blob")?;
/// assert_eq!(&decoded[..], [1, 2, 3]);
/// # Ok::<(), fabric_core::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes, taken out.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes(bytes)
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Self {
        Bytes(bytes.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(bytes: Bytes) -> Self {
        bytes.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

/// Takes bytes as a block (bincode) or as a sequence of numbers (JSON).
struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes(bytes.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(Bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;

    #[test]
    fn round_trips_in_both_codecs() {
        let blob = Bytes((0..=255).collect());
        for codec in [Codec::Bincode, Codec::Json] {
            let encoded = codec.encode(&blob, "blob").unwrap();
            assert_eq!(codec.decode::<Bytes>(&encoded, "blob").unwrap(), blob);
        }
        // A JSON array of numbers, as a Python peer sends a list of bytes.
        assert_eq!(
            Codec::Json.decode::<Bytes>(b"[1,2,3]", "blob").unwrap(),
            Bytes(vec![1, 2, 3])
        );
    }
}
