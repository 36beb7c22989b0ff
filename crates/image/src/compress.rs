//! Compressing a layer on every core: the input is cut into 4 MiB chunks, a batch of chunks is
//! compressed at once (one thread per core), each chunk as its own gzip member, and the members
//! are emitted in order. A multi-member gzip stream is one valid gzip file (RFC 1952), which
//! Docker, containerd and our own unpacker (`MultiGzDecoder`) read as a whole.

use std::io::{self, Read, Write};

const CHUNK: usize = 4 << 20;

/// A `Read` that yields the gzip compression of `inner`, compressed in parallel.
#[derive(Debug)]
pub struct ParallelGzip<R> {
    inner: R,
    level: flate2::Compression,
    threads: usize,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
    emitted: bool,
}

impl<R: Read> ParallelGzip<R> {
    pub fn new(inner: R, level: flate2::Compression) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        ParallelGzip {
            inner,
            level,
            threads,
            out: Vec::new(),
            pos: 0,
            eof: false,
            emitted: false,
        }
    }

    /// At gzip's fast level: how berth stores the layers it makes (import, commit), where
    /// speed matters more than the last percent of size.
    pub fn fast(inner: R) -> Self {
        Self::new(inner, flate2::Compression::fast())
    }

    /// Reads up to one chunk; fewer bytes than a chunk means the input ended.
    fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0;
        while n < CHUNK {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        Ok(buf)
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunks = Vec::with_capacity(self.threads);
        while chunks.len() < self.threads {
            let c = self.read_chunk()?;
            let short = c.len() < CHUNK;
            if !c.is_empty() {
                chunks.push(c);
            }
            if short {
                self.eof = true;
                break;
            }
        }
        self.out.clear();
        self.pos = 0;
        if chunks.is_empty() {
            if !self.emitted {
                // An empty input is still a gzip file: one empty member.
                self.out = gzip(&[], self.level)?;
                self.emitted = true;
            }
            return Ok(());
        }
        let level = self.level;
        let members: Vec<io::Result<Vec<u8>>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|c| s.spawn(move || gzip(c, level)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("compression thread panicked")))
                })
                .collect()
        });
        for m in members {
            self.out.extend_from_slice(&m?);
        }
        self.emitted = true;
        Ok(())
    }
}

fn gzip(data: &[u8], level: flate2::Compression) -> io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
    e.write_all(data)?;
    e.finish()
}

impl<R: Read> Read for ParallelGzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if self.eof && self.emitted {
                return Ok(0);
            }
            self.fill()?;
            if self.out.is_empty() && self.eof {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: usize) {
        let data: Vec<u8> = (0..len)
            .map(|i| u8::try_from(i * 7 % 251).unwrap())
            .collect();
        let mut gz = Vec::new();
        ParallelGzip::new(data.as_slice(), flate2::Compression::fast())
            .read_to_end(&mut gz)
            .unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(gz.as_slice())
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data, "length {len}");
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn round_trips_at_chunk_edges() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            roundtrip(len);
        }
    }

    #[test]
    fn fast_is_the_fast_level() {
        let data = b"berth".repeat(1000);
        let mut a = Vec::new();
        let mut b = Vec::new();
        ParallelGzip::fast(&data[..]).read_to_end(&mut a).unwrap();
        ParallelGzip::new(&data[..], flate2::Compression::fast())
            .read_to_end(&mut b)
            .unwrap();
        assert_eq!(a, b);
    }
}
