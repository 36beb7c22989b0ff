//! Content digests (minimal stand-in for the img-manifest branch; the img-content version
//! replaces this file at merge).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Errors parsing a digest.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The string is not `<algorithm>:<hex>` with a known algorithm and the right length.
    #[error("invalid digest {input:?}: {reason}")]
    Invalid {
        /// The string given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A content digest, `sha256:<64 lowercase hex>` or `sha512:<128 hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    value: String,
    split: usize,
}

impl Digest {
    /// Parses and validates a digest string.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let bad = |reason| DigestError::Invalid {
            input: s.to_string(),
            reason,
        };
        let (alg, hex) = s.split_once(':').ok_or_else(|| bad("missing ':'"))?;
        let len = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(bad("unsupported algorithm")),
        };
        if hex.len() != len {
            return Err(bad("wrong length"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("not lowercase hex"));
        }
        Ok(Digest {
            value: s.to_string(),
            split: alg.len(),
        })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    /// The algorithm, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        &self.value[..self.split]
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.value[self.split + 1..]
    }

    /// The whole digest, `sha256:...`.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256.
#[derive(Debug, Clone)]
pub struct Hasher {
    inner: Sha256,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

impl Hasher {
    /// A new sha256 hasher.
    pub fn new() -> Hasher {
        Hasher {
            inner: Sha256::new(),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, b: &[u8]) {
        self.inner.update(b);
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let hex = hex::encode(self.inner.finalize());
        Digest {
            value: format!("sha256:{hex}"),
            split: 6,
        }
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
