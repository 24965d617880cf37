// SPDX-License-Identifier: MIT
//! Owns: the crate's only `unsafe`: creating the `AF_UNIX` `SOCK_SEQPACKET`
//! socket (PROTOCOL.md section 1), which the standard library cannot make.
//!
//! Everything else goes through `std`: the descriptor becomes a
//! [`UnixDatagram`], whose `connect`, `send`, `recv` and timeouts work on a
//! sequenced-packet socket as they do on a datagram one (one message per
//! `send`, one per `recv`).

#![allow(unsafe_code)]

use std::io;
use std::os::raw::c_int;
use std::os::unix::io::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;

#[cfg(not(target_os = "linux"))]
compile_error!("dirtyd speaks over a Linux AF_UNIX SOCK_SEQPACKET socket");

// <sys/socket.h> on Linux; SOCK_CLOEXEC is O_CLOEXEC: 0o2000000 but on sparc.
const AF_UNIX: c_int = 1;
const SOCK_SEQPACKET: c_int = 5;
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SOCK_CLOEXEC: c_int = 0o2000000;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SOCK_CLOEXEC: c_int = 0x400000;

extern "C" {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
}

/// A new, unconnected `AF_UNIX` `SOCK_SEQPACKET` socket (close-on-exec).
pub(crate) fn seqpacket() -> io::Result<UnixDatagram> {
    // SAFETY: socket(2) takes integers and touches no memory of ours.
    let fd = unsafe { socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2), is open and owned by no
    // one else: the OwnedFd takes it over and closes it once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(UnixDatagram::from(owned))
}
