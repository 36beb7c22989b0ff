//! Content digests ("sha256:<hex>") and a streaming hasher.
//!
//! Minimal stand-in for the registry client's build; the image owner's version replaces it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// Errors from parsing a digest string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest {0:?}: missing algorithm separator ':'")]
    MissingSeparator(String),
    #[error("invalid digest {0:?}: unsupported algorithm")]
    Algorithm(String),
    #[error("invalid digest {0:?}: wrong hex length")]
    Length(String),
    #[error("invalid digest {0:?}: not lowercase hex")]
    Hex(String),
}

/// A content digest, always "sha256:<64 lowercase hex>" or "sha512:<128 hex>".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    s: String,
    colon: usize,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let colon = s
            .find(':')
            .ok_or_else(|| DigestError::MissingSeparator(s.to_string()))?;
        let (alg, hex) = (&s[..colon], &s[colon + 1..]);
        let len = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(DigestError::Algorithm(s.to_string())),
        };
        if hex.len() != len {
            return Err(DigestError::Length(s.to_string()));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Hex(s.to_string()));
        }
        Ok(Digest {
            s: s.to_string(),
            colon,
        })
    }

    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    pub fn algorithm(&self) -> &str {
        &self.s[..self.colon]
    }

    pub fn hex(&self) -> &str {
        &self.s[self.colon + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.s
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.s)
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
        s.serialize_str(&self.s)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Streaming sha256.
#[derive(Debug, Clone)]
pub struct Hasher {
    inner: sha2::Sha256,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher {
            inner: sha2::Sha256::new(),
        }
    }

    pub fn update(&mut self, b: &[u8]) {
        self.inner.update(b);
    }

    pub fn finish(self) -> Digest {
        let s = format!("sha256:{}", hex::encode(self.inner.finalize()));
        Digest { s, colon: 6 }
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
