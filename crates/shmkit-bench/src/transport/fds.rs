//! Transports over file descriptors: anonymous pipes, Unix stream and seqpacket socket
//! pairs, and TCP over loopback with `TCP_NODELAY`.
//!
//! The leading process creates both ends; the peer inherits its end across `exec`.
//! Byte streams are read until the message is complete; a seqpacket message is one
//! `read`/`write`, and a short one is an error. Every call is a plain blocking system
//! call, which is what users of these mechanisms get.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{OwnedFd, RawFd};
use std::time::Instant;

use rustix::io::Errno;
use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

use super::{raw, wait_error, Endpoint, PeerSpec, Setup};
use crate::{BenchError, Result};

/// One side: a descriptor to read and one to write (the same socket, duplicated).
struct FdEnd {
    rx: OwnedFd,
    tx: OwnedFd,
    packet: bool,
}

impl Endpoint for FdEnd {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        let mut done = 0;
        while done < msg.len() {
            match rustix::io::write(&self.tx, &msg[done..]) {
                Ok(n) if self.packet && n != msg.len() => {
                    return Err(BenchError::Peer(format!(
                        "short packet write: {n} of {} bytes",
                        msg.len()
                    )))
                }
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(Errno::PIPE) | Err(Errno::CONNRESET) => {
                    return Err(wait_error("write", deadline))
                }
                Err(e) => return Err(BenchError::io("write", e.into())),
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        let want = buf.len();
        let mut done = 0;
        while done < want {
            match rustix::io::read(&self.rx, &mut buf[done..]) {
                Ok(0) => return Err(wait_error("read", deadline)),
                Ok(n) if self.packet && n != want => {
                    return Err(BenchError::Peer(format!(
                        "packet of {n} bytes where {want} were expected"
                    )))
                }
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(Errno::CONNRESET) => return Err(wait_error("read", deadline)),
                Err(e) => return Err(BenchError::io("read", e.into())),
            }
        }
        Ok(())
    }
}

fn dup(fd: &OwnedFd, what: &str) -> Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| BenchError::io(what, e.into()))
}

/// Two pipes: lead → peer and peer → lead.
pub fn setup_pipes() -> Result<Setup> {
    let (to_peer_r, to_peer_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| BenchError::io("pipe", e.into()))?;
    let (to_lead_r, to_lead_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| BenchError::io("pipe", e.into()))?;
    let peer = PeerSpec::Fds {
        rx: raw(&to_peer_r),
        tx: raw(&to_lead_w),
        packet: false,
    };
    Ok(Setup {
        local: Box::new(FdEnd {
            rx: to_lead_r,
            tx: to_peer_w,
            packet: false,
        }),
        peer,
        inherit: vec![to_peer_r, to_lead_w],
    })
}

/// A Unix socket pair, stream or seqpacket.
pub fn setup_socketpair(packet: bool) -> Result<Setup> {
    let ty = if packet {
        SocketType::SEQPACKET
    } else {
        SocketType::STREAM
    };
    let (a, b) = socketpair(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None)
        .map_err(|e| BenchError::io("socketpair", e.into()))?;
    let peer = PeerSpec::Fds {
        rx: raw(&b),
        tx: raw(&b),
        packet,
    };
    let a2 = dup(&a, "dup")?;
    Ok(Setup {
        local: Box::new(FdEnd {
            rx: a,
            tx: a2,
            packet,
        }),
        peer,
        inherit: vec![b],
    })
}

/// A TCP connection over 127.0.0.1 with `TCP_NODELAY` on both ends.
pub fn setup_tcp() -> Result<Setup> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| BenchError::io("tcp: bind 127.0.0.1:0", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::io("tcp: local_addr", e))?;
    let client = TcpStream::connect(addr).map_err(|e| BenchError::io("tcp: connect", e))?;
    let (server, _) = listener
        .accept()
        .map_err(|e| BenchError::io("tcp: accept", e))?;
    for s in [&client, &server] {
        s.set_nodelay(true)
            .map_err(|e| BenchError::io("tcp: TCP_NODELAY", e))?;
    }
    let a = OwnedFd::from(client);
    let b = OwnedFd::from(server);
    let peer = PeerSpec::Fds {
        rx: raw(&b),
        tx: raw(&b),
        packet: false,
    };
    let a2 = dup(&a, "dup")?;
    Ok(Setup {
        local: Box::new(FdEnd {
            rx: a,
            tx: a2,
            packet: false,
        }),
        peer,
        inherit: vec![b],
    })
}

/// The peer's end from inherited descriptors.
pub fn open(rx: RawFd, tx: RawFd, packet: bool) -> Result<Box<dyn Endpoint>> {
    let rx_fd = crate::peer::take_fd(rx)?;
    let tx_fd = if tx == rx {
        dup(&rx_fd, "dup")?
    } else {
        crate::peer::take_fd(tx)?
    };
    Ok(Box::new(FdEnd {
        rx: rx_fd,
        tx: tx_fd,
        packet,
    }))
}

/// The largest seqpacket message sent without raising socket buffers: half the default
/// send buffer, leaving room for the kernel's per-packet overhead.
pub fn max_packet() -> usize {
    std::fs::read_to_string("/proc/sys/net/core/wmem_default")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .map(|v| v / 2)
        .unwrap_or(65536)
}
