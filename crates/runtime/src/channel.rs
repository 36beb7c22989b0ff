//! The socketpair between the runtime (parent) and the process it is setting up (stage 1, then
//! the container's init or an exec'd process). `SOCK_SEQPACKET` keeps message boundaries, so each
//! message is one small JSON datagram; descriptors travel alongside with `SCM_RIGHTS`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Messages from the child side to the runtime.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToParent {
    /// Stage 1 cloned the process; its pid in the runtime's pid namespace.
    Pid(i32),
    /// The init has mounted the root filesystem and waits for the runtime hooks to run.
    Mounted,
    /// Setup is done: the init now waits on `exec.fifo`, an exec'd process is about to exec.
    Ready,
    /// Setup failed; the process exits after sending this.
    Error(String),
}

/// Messages from the runtime to the child side.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToChild {
    /// Id mappings, cgroups and oom_score_adj are in place; go on. `pid` is the process's pid as
    /// the runtime sees it, for the state the hooks receive.
    Go { pid: i32 },
    /// prestart/createRuntime hooks ran.
    HooksDone,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("socketpair: {0}")]
    Create(nix::Error),
    #[error("send to {peer}: {source}")]
    Send {
        peer: &'static str,
        source: nix::Error,
    },
    #[error("receive from {peer}: {source}")]
    Recv {
        peer: &'static str,
        source: nix::Error,
    },
    #[error("{peer} closed the channel")]
    Closed { peer: &'static str },
    #[error("malformed message from {peer}: {source}")]
    Decode {
        peer: &'static str,
        source: serde_json::Error,
    },
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    peer: &'static str,
}

/// Creates both ends: `(parent_end, child_end)`. Both are close-on-exec, so a successful exec in
/// the child shows up as end-of-file at the parent.
pub fn pair() -> Result<(Channel, Channel), ChannelError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(ChannelError::Create)?;
    Ok((
        Channel {
            fd: a,
            peer: "container process",
        },
        Channel {
            fd: b,
            peer: "runtime",
        },
    ))
}

impl Channel {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), ChannelError> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd<T: Serialize>(
        &self,
        msg: &T,
        fd: Option<RawFd>,
    ) -> Result<(), ChannelError> {
        let buf = serde_json::to_vec(msg).map_err(|e| ChannelError::Decode {
            peer: self.peer,
            source: e,
        })?;
        send_raw(self.fd.as_raw_fd(), &buf, fd).map_err(|e| ChannelError::Send {
            peer: self.peer,
            source: e,
        })
    }

    /// Receives one message; `Ok(None)` when the peer closed its end (exited or exec'd).
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        let (buf, _fd) = self.recv_raw()?;
        match buf {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| ChannelError::Decode {
                    peer: self.peer,
                    source: e,
                }),
        }
    }

    /// Like [`Channel::recv`] but an end-of-file is an error.
    pub fn expect<T: DeserializeOwned>(&self) -> Result<T, ChannelError> {
        self.recv()?.ok_or(ChannelError::Closed { peer: self.peer })
    }

    fn recv_raw(&self) -> Result<(Option<Vec<u8>>, Option<OwnedFd>), ChannelError> {
        recv_raw(self.fd.as_raw_fd()).map_err(|e| ChannelError::Recv {
            peer: self.peer,
            source: e,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Sends `data`, with `fd` attached through `SCM_RIGHTS` when given.
pub fn send_raw(sock: RawFd, data: &[u8], fd: Option<RawFd>) -> nix::Result<()> {
    let iov = [IoSlice::new(data)];
    let fds = fd.map(|f| [f]);
    let cmsg: Vec<ControlMessage<'_>> = match &fds {
        Some(f) => vec![ControlMessage::ScmRights(f)],
        None => vec![],
    };
    loop {
        match sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::Error::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// Receives one datagram (up to 64 KiB) and at most one descriptor. `None` data means EOF.
pub fn recv_raw(sock: RawFd) -> nix::Result<(Option<Vec<u8>>, Option<OwnedFd>)> {
    let mut buf = vec![0u8; 65536];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::Error::EINTR) => continue,
            r => r?,
        };
        let mut fd = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for f in fds {
                    // SAFETY: the kernel just installed this descriptor in our table for us.
                    let owned = unsafe { OwnedFd::from_raw_fd(f) };
                    if fd.is_none() {
                        fd = Some(owned);
                    }
                }
            }
        }
        let n = msg.bytes;
        if n == 0 && fd.is_none() {
            return Ok((None, None));
        }
        buf.truncate(n);
        return Ok((Some(buf), fd));
    }
}
