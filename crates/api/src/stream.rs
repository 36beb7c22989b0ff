//! The multiplexed stream of attach, logs and exec when the container has no TTY: each frame
//! is an 8-byte header (stream byte, three zero bytes, big-endian u32 length) and the payload.

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const SYSTEM: u8 = 3;

pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

pub fn header(stream: u8, len: usize) -> [u8; 8] {
    let n = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// One frame, header and payload.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&header(stream, payload.len()));
    v.extend_from_slice(payload);
    v
}

/// Incremental decoder of a multiplexed stream.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("invalid stream frame: stream byte {0}")]
    BadStream(u8),
}

impl Demuxer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, FrameError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let stream = self.buf[0];
        if stream > SYSTEM {
            return Err(FrameError::BadStream(stream));
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let payload = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        Ok(Some((stream, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_splits() {
        let mut wire = frame(STDOUT, b"hello\n");
        wire.extend(frame(STDERR, b"oops"));
        let mut d = Demuxer::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(3) {
            d.push(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![(1, b"hello\n".to_vec()), (2, b"oops".to_vec())]);
        let mut d = Demuxer::default();
        d.push(&[9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::BadStream(9)));
    }
}
