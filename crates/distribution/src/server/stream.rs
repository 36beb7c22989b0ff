//! A blob file as a body stream: big reads on the blocking pool, one buffer per read handed to
//! hyper without copying.

use std::fs::File;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::task::JoinHandle;

type Pending = JoinHandle<(File, std::io::Result<Bytes>)>;

/// Streams `remaining` bytes of a file from its current position.
#[derive(Debug)]
pub struct FileStream {
    file: Option<File>,
    remaining: u64,
    chunk: usize,
    pending: Option<Pending>,
}

impl FileStream {
    pub fn new(file: File, len: u64, chunk: usize) -> FileStream {
        FileStream {
            file: Some(file),
            remaining: len,
            chunk,
            pending: None,
        }
    }
}

impl Stream for FileStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.pending.is_none() {
            if this.remaining == 0 {
                return Poll::Ready(None);
            }
            let Some(mut file) = this.file.take() else {
                return Poll::Ready(None);
            };
            let want = usize::try_from(this.remaining.min(this.chunk as u64)).unwrap_or(this.chunk);
            this.pending = Some(tokio::task::spawn_blocking(move || {
                // read_to_end fills spare capacity without zeroing it first (zeroing was a fifth
                // of the server's CPU under load), and Bytes takes the Vec without copying.
                let mut buf = Vec::with_capacity(want);
                if let Err(e) = (&mut file).take(want as u64).read_to_end(&mut buf) {
                    return (file, Err(e));
                }
                if buf.len() < want {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob shorter than its size",
                    );
                    return (file, Err(e));
                }
                (file, Ok(Bytes::from(buf)))
            }));
        }
        let Some(p) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(p).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.pending = None;
                match r {
                    Ok((file, Ok(b))) => {
                        this.file = Some(file);
                        this.remaining -= b.len() as u64;
                        Poll::Ready(Some(Ok(b)))
                    }
                    Ok((_, Err(e))) => {
                        this.remaining = 0;
                        Poll::Ready(Some(Err(e)))
                    }
                    Err(e) => {
                        this.remaining = 0;
                        Poll::Ready(Some(Err(std::io::Error::other(e.to_string()))))
                    }
                }
            }
        }
    }
}

use std::future::Future;
