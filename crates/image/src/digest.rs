//! Content digests (minimal stand-in on the img-layers branch; the img-content branch owns
//! the real module).

use sha2::{Digest as _, Sha256};
use std::fmt;

/// A content digest, "sha256:<64 lowercase hex>" or "sha512:<128 hex>".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    value: String,
    colon: usize,
}

/// Why a digest string was refused.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected <algorithm>:<hex>")]
    Format(String),
    #[error("invalid digest {0:?}: unsupported algorithm")]
    Algorithm(String),
    #[error("invalid digest {0:?}: wrong hex length or characters")]
    Hex(String),
}

impl Digest {
    /// Parses "sha256:<hex>" or "sha512:<hex>".
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Format(s.to_string()))?;
        let len = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(DigestError::Algorithm(s.to_string())),
        };
        if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::Hex(s.to_string()));
        }
        Ok(Digest {
            value: s.to_string(),
            colon: alg.len(),
        })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    /// "sha256".
    pub fn algorithm(&self) -> &str {
        &self.value[..self.colon]
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.value[self.colon + 1..]
    }

    /// "sha256:...".
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// A streaming sha256 hasher.
#[derive(Debug, Clone, Default)]
pub struct Hasher {
    inner: Sha256,
}

impl Hasher {
    /// A sha256 hasher.
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
            colon: 6,
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
