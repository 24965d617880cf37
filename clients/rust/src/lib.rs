// SPDX-License-Identifier: MIT
//! A client of dirtyd, the daemon that harvests IOMMU dirty bitmaps and
//! serves dirty page ranges to VMMs over a Unix socket, written from
//! `protocol/PROTOCOL.md` (version 1.0) alone, with the standard library
//! only.
//!
//! Owns: the Rust binding of the protocol (`clients/rust/`).  The modules:
//! `wire` (the bytes), `client` (the session), `ranges` (what the caller
//! gets: page runs, and Cloud Hypervisor's `MemoryRangeTable`), `error`,
//! `sys` (the one `unsafe`: creating a `SOCK_SEQPACKET` socket).
//!
//! A pre-copy loop (PROTOCOL.md 8.3):
//!
//! ```no_run
//! use dirtyd::{Client, flag};
//! # fn main() -> Result<(), dirtyd::Error> {
//! let mut c = Client::connect_default()?;
//! let d = c.create_domain("0000:65:00.0", flag::CREATE_TRACKING)?.domain_id;
//! c.track_start(d)?;
//! let sub = c.subscribe(d, 0, false)?; // every mapped page starts pending
//! loop {
//!     c.sync(d)?;
//!     let r = c.get_ranges(d, false)?;
//!     for range in r.table().iter() {
//!         // copy range.gpa .. range.gpa + range.length
//!         let _ = range;
//!     }
//!     c.ack(d, r.generation)?;
//!     if r.total_pages * sub.page_size < (64 << 20) {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Not implemented: `GET_FDS` (its descriptors come as `SCM_RIGHTS`,
//! which the standard library cannot receive); `FD_PASSING` is never
//! negotiated.  Requests go one at a time (a `SYNC` blocks its caller);
//! events that arrive meanwhile are kept for [`Client::poll_event`].

#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod client;
mod error;
mod ranges;
mod sys;
pub mod wire;

pub use client::{
    feature, flag, session_flag, Client, Created, Event, Options, Ranges, Session, Subscription,
    SyncReply, DEFAULT_SOCKET, VERSION_MAJOR, VERSION_MINOR,
};
pub use error::{errno, Error, Result};
pub use ranges::{MemoryRange, MemoryRangeTable, PageRun};
pub use wire::{Device, DomainInfo, DomainStats};

#[cfg(test)]
mod tests;
