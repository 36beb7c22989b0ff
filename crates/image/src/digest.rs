//! Content digests: `<algorithm>:<hex>`, as OCI descriptors and Docker print them.
//!
//! Two algorithms are accepted, `sha256` (64 lowercase hex digits) and `sha512` (128). A
//! [`Digest`] is always valid once built, so the rest of the crate can use its hex part in
//! paths without checking it again (it contains only `[0-9a-f]`).

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// Errors from parsing a digest string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// No `:` between algorithm and hex.
    #[error("invalid digest {0:?}: missing ':' between algorithm and hex")]
    MissingSeparator(String),
    /// An algorithm other than sha256 or sha512.
    #[error("invalid digest {digest:?}: unsupported algorithm {algorithm:?} (expected sha256 or sha512)")]
    UnsupportedAlgorithm { digest: String, algorithm: String },
    /// The hex part has the wrong number of digits for its algorithm.
    #[error("invalid digest {digest:?}: {algorithm} needs {expected} hex digits, got {got}")]
    BadLength {
        digest: String,
        algorithm: String,
        expected: usize,
        got: usize,
    },
    /// The hex part holds something other than lowercase hex digits.
    #[error("invalid digest {digest:?}: hex part must be lowercase hex digits [0-9a-f]")]
    BadHex { digest: String },
}

/// A validated content digest such as `sha256:e3b0c442…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The whole string, `<alg>:<hex>`.
    full: String,
    /// Index of the ':' in `full`.
    colon: usize,
}

/// The digest algorithms we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl Digest {
    /// Parses and validates `<alg>:<hex>`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::MissingSeparator(s.to_string()));
        };
        let Some(algorithm) = Algorithm::from_name(alg) else {
            return Err(DigestError::UnsupportedAlgorithm {
                digest: s.to_string(),
                algorithm: alg.to_string(),
            });
        };
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::BadLength {
                digest: s.to_string(),
                algorithm: alg.to_string(),
                expected: algorithm.hex_len(),
                got: hex.len(),
            });
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::BadHex {
                digest: s.to_string(),
            });
        }
        Ok(Digest {
            full: s.to_string(),
            colon: alg.len(),
        })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Digest {
        let name = algorithm.name();
        Digest {
            full: format!("{name}:{}", hex::encode(raw)),
            colon: name.len(),
        }
    }

    /// The algorithm, `"sha256"` or `"sha512"`.
    pub fn algorithm(&self) -> &str {
        &self.full[..self.colon]
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.full[self.colon + 1..]
    }

    /// The whole digest, `"sha256:…"`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// A hasher of this digest's algorithm, to verify content against it.
    pub fn hasher(&self) -> Hasher {
        match Algorithm::from_name(self.algorithm()) {
            Some(Algorithm::Sha512) => Hasher::sha512(),
            _ => Hasher::new(),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.full
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone)]
enum State {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// Incremental digest computation; `new()` is sha256.
#[derive(Clone)]
pub struct Hasher {
    state: State,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alg = match self.state {
            State::Sha256(_) => "sha256",
            State::Sha512(_) => "sha512",
        };
        f.debug_struct("Hasher").field("algorithm", &alg).finish()
    }
}

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher::new()
    }
}

impl Hasher {
    /// A sha256 hasher.
    pub fn new() -> Hasher {
        Hasher {
            state: State::Sha256(sha2::Sha256::new()),
        }
    }

    /// A sha512 hasher.
    pub fn sha512() -> Hasher {
        Hasher {
            state: State::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feeds `b` into the hash.
    pub fn update(&mut self, b: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(b),
            State::Sha512(h) => h.update(b),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        match self.state {
            State::Sha256(h) => Digest::from_raw(Algorithm::Sha256, &h.finalize()),
            State::Sha512(h) => Digest::from_raw(Algorithm::Sha512, &h.finalize()),
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

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_empty_and_abc() {
        assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY);
        assert_eq!(
            Digest::sha256_of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha512_hasher() {
        let mut h = Hasher::sha512();
        h.update(b"abc");
        let d = h.finish();
        assert_eq!(d.algorithm(), "sha512");
        assert_eq!(d.hex().len(), 128);
        assert!(d.hex().starts_with("ddaf35a193617aba"));
        assert_eq!(Digest::parse(d.as_str()), Ok(d.clone()));
        assert_eq!(d.hasher().finish().algorithm(), "sha512");
    }

    #[test]
    fn parts() {
        let d = Digest::parse(EMPTY).expect("valid");
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.hex(), &EMPTY[7..]);
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(EMPTY.parse::<Digest>(), Ok(d));
    }

    #[test]
    fn bad_digests() {
        let cases: &[(&str, &str)] = &[
            ("", "missing ':'"),
            ("sha256", "missing ':'"),
            ("md5:abcd", "unsupported algorithm \"md5\""),
            ("SHA256:abcd", "unsupported algorithm"),
            (":abcd", "unsupported algorithm \"\""),
            ("sha256:abcd", "needs 64 hex digits, got 4"),
            ("sha256:", "needs 64 hex digits, got 0"),
            ("sha512:abcd", "needs 128 hex digits"),
        ];
        for (input, want) in cases {
            let err = Digest::parse(input).expect_err(input).to_string();
            assert!(
                err.starts_with(&format!("invalid digest {input:?}: ")),
                "{err}"
            );
            assert!(err.contains(want), "{input}: {err}");
        }
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        let err = Digest::parse(&upper).expect_err("upper").to_string();
        assert!(err.contains("lowercase hex"), "{err}");
        let mut nonhex = EMPTY.to_string();
        nonhex.replace_range(10..11, "g");
        assert!(matches!(
            Digest::parse(&nonhex),
            Err(DigestError::BadHex { .. })
        ));
    }

    #[test]
    fn hasher_write_and_incremental() {
        use std::io::Write;
        let mut h = Hasher::new();
        h.write_all(b"ab").expect("write");
        h.update(b"c");
        let h2 = h.clone();
        assert_eq!(h.finish(), Digest::sha256_of(b"abc"));
        assert_eq!(h2.finish(), Digest::sha256_of(b"abc"));
        assert!(format!("{:?}", Hasher::new()).contains("sha256"));
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::sha256_of(b"x");
        let json = serde_json::to_string(&d).expect("ser");
        assert_eq!(json, format!("\"{d}\""));
        let back: Digest = serde_json::from_str(&json).expect("de");
        assert_eq!(back, d);
        let err = serde_json::from_str::<Digest>("\"sha256:zz\"").expect_err("bad");
        assert!(err.to_string().contains("invalid digest"), "{err}");
    }
}
