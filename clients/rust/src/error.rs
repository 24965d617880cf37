// SPDX-License-Identifier: MIT
//! Owns: the crate's error type: the daemon's `ERROR` (errno and text,
//! PROTOCOL.md section 7), malformed input, and the socket's failures.

use std::fmt;
use std::io;

/// Errno values PROTOCOL.md section 7 names (Linux's).
pub mod errno {
    pub const EPERM: u32 = 1;
    pub const ENOENT: u32 = 2;
    pub const EIO: u32 = 5;
    pub const ENOMEM: u32 = 12;
    pub const EACCES: u32 = 13;
    pub const EBUSY: u32 = 16;
    pub const EEXIST: u32 = 17;
    pub const EINVAL: u32 = 22;
    pub const EPROTO: u32 = 71;
    pub const EBADMSG: u32 = 74;
    pub const EUSERS: u32 = 87;
    pub const EMSGSIZE: u32 = 90;
    pub const EPROTONOSUPPORT: u32 = 93;
    pub const EOPNOTSUPP: u32 = 95;
    pub const ETIMEDOUT: u32 = 110;
    pub const EDQUOT: u32 = 122;
}

/// What can go wrong.
#[derive(Debug)]
pub enum Error {
    /// dirtyd answered `ERROR`: its errno (section 7) and its sentence.
    Daemon { errno: u32, text: String },
    /// dirtyd sent something PROTOCOL.md does not allow (a wrong size, a
    /// non-zero reserved field, a chunk not in canonical form, a gap in a
    /// stream ...).  The connection should be dropped.
    Malformed(String),
    /// The caller asked for something that cannot be sent (a name that is
    /// not a `str64`, ...): nothing was sent.
    Invalid(String),
    /// dirtyd closed the connection.
    Closed,
    /// The socket failed (or a read timed out: `WouldBlock`/`TimedOut`).
    Io(io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The daemon's errno, for `Error::Daemon`.
    pub fn errno(&self) -> Option<u32> {
        match self {
            Error::Daemon { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Daemon { errno, text } => {
                let e = io::Error::from_raw_os_error(*errno as i32);
                write!(f, "dirtyd: {} (errno {}: {})", text, errno, e)
            }
            Error::Malformed(s) => write!(f, "malformed message from dirtyd: {}", s),
            Error::Invalid(s) => write!(f, "invalid request: {}", s),
            Error::Closed => write!(f, "dirtyd closed the connection"),
            Error::Io(e) => write!(f, "dirtyd socket: {}", e),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
