// SPDX-License-Identifier: MIT
//! Owns: the bytes of every message and chunk (PROTOCOL.md sections 2, 3,
//! 4, 6 and 9), both ways, written from the text alone.
//!
//! [`decode`] checks everything the spec lets a receiver check (sizes,
//! reserved fields, header flags, names, text, chunks in canonical form,
//! every length against what is left): anything wrong is
//! [`Error::Malformed`], never a panic.  [`encode`] writes what a
//! conforming sender writes.  Both handle every type of section 4, also
//! those a client only sends or only receives, so that section 14's
//! examples can be read back and written again byte for byte.

use crate::error::Error;

/// The header's size (section 3).
pub const HEADER_LEN: usize = 16;
/// `PROTO_MAX_MSG`: the largest message, header included (sections 1, 12).
pub const MAX_MSG: usize = 65536;
/// `PROTO_F_MORE`: a packet of a stream, more follow (section 3).
pub const F_MORE: u16 = 0x1;
/// `CHUNK_MAX_PAGES`: the largest span of a chunk (section 9.2).
pub const CHUNK_MAX_PAGES: u32 = 32768;
/// `CHUNK_MAX_PAYLOAD` (section 9.2).
pub const CHUNK_MAX_PAYLOAD: usize = 4096;
/// A chunk's header (section 9.2).
pub const CHUNK_HEADER_LEN: usize = 16;
/// `CHUNK_RUNS` and `CHUNK_RAW` (section 9.2).
pub const CHUNK_RUNS: u8 = 0;
pub const CHUNK_RAW: u8 = 1;
/// `str64` (section 2).
pub const NAME_LEN: usize = 64;
/// The longest `ERROR` text (sections 6.15, 12).
pub const MAX_ERROR_TEXT: usize = 1024;

/// Message type codes (section 4).
pub mod ty {
    pub const HELLO: u16 = 0x0001;
    pub const LIST_DEVICES: u16 = 0x0002;
    pub const LIST_DOMAINS: u16 = 0x0003;
    pub const CREATE_DOMAIN: u16 = 0x0004;
    pub const ATTACH_DEVICE: u16 = 0x0005;
    pub const DETACH_DEVICE: u16 = 0x0006;
    pub const DESTROY_DOMAIN: u16 = 0x0007;
    pub const MAP: u16 = 0x0008;
    pub const UNMAP: u16 = 0x0009;
    pub const TRACK_START: u16 = 0x000a;
    pub const TRACK_STOP: u16 = 0x000b;
    pub const SUBSCRIBE: u16 = 0x000c;
    pub const UNSUBSCRIBE: u16 = 0x000d;
    pub const SYNC: u16 = 0x000e;
    pub const GET_RANGES: u16 = 0x000f;
    pub const ACK: u16 = 0x0010;
    pub const STATS: u16 = 0x0011;
    pub const GET_FDS: u16 = 0x0012;
    pub const DMA_WRITE: u16 = 0x0013;
    pub const HELLO_REPLY: u16 = 0x8001;
    pub const LIST_DEVICES_REPLY: u16 = 0x8002;
    pub const LIST_DOMAINS_REPLY: u16 = 0x8003;
    pub const CREATE_DOMAIN_REPLY: u16 = 0x8004;
    pub const ATTACH_DEVICE_REPLY: u16 = 0x8005;
    pub const OK: u16 = 0x80ff;
    pub const SUBSCRIBE_REPLY: u16 = 0x800c;
    pub const SYNC_REPLY: u16 = 0x800e;
    pub const RANGES: u16 = 0x800f;
    pub const STATS_REPLY: u16 = 0x8011;
    pub const GET_FDS_REPLY: u16 = 0x8012;
    pub const ERROR: u16 = 0xffff;
    pub const EV_ROUND: u16 = 0x4001;
    pub const EV_STATE_LOST: u16 = 0x4002;
}

/// A device of `LIST_DEVICES_REPLY` (section 6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub capabilities: u64,
    pub flags: u32,
    pub domain_id: u32,
    pub dev_id: u32,
}

/// A domain of `LIST_DOMAINS_REPLY` (section 6.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    pub domain_id: u32,
    pub status: u32,
    pub owner_uid: u32,
    pub devices: u32,
    pub mapped_bytes: u64,
    pub page_size: u64,
    pub generation: u64,
    pub subscribers: u32,
}

/// An entry of `STATS_REPLY` (section 6.13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainStats {
    pub domain_id: u32,
    pub status: u32,
    pub generation: u64,
    pub last_round_ns: u64,
    pub last_round_pages: u64,
    pub dirty_rate: u64,
    pub mapped_bytes: u64,
    pub pending_pages: u64,
    pub pages_sent: u64,
}

/// An entry of `GET_FDS_REPLY` (section 6.14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdDevice {
    pub name: String,
    pub dev_id: u32,
    pub fd_index: u32,
}

/// One chunk of a `RANGES` packet (section 9.2), its payload as sent.
/// [`decode`] accepts only chunks in the form of section 9.3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub first: u64,
    pub span: u32,
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// Every message of section 4, without its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Hello { major: u16, minor: u16, features: u64, resume_token: u64 },
    ListDevices,
    ListDomains,
    CreateDomain { flags: u32, device: String },
    AttachDevice { domain_id: u32, device: String },
    DetachDevice { domain_id: u32, device: String },
    DestroyDomain { domain_id: u32 },
    Map { domain_id: u32, flags: u32, iova: u64, length: u64 },
    Unmap { domain_id: u32, flags: u32, iova: u64, length: u64 },
    TrackStart { domain_id: u32 },
    TrackStop { domain_id: u32 },
    Subscribe { domain_id: u32, interval_ms: u32, flags: u32 },
    Unsubscribe { domain_id: u32 },
    Sync { domain_id: u32 },
    GetRanges { domain_id: u32, flags: u32 },
    Ack { domain_id: u32, generation: u64 },
    Stats { domain_id: u32 },
    GetFds { domain_id: u32 },
    DmaWrite { domain_id: u32, flags: u32, iova: u64, length: u64 },
    HelloReply {
        major: u16,
        minor: u16,
        max_msg: u32,
        features: u64,
        session_token: u64,
        uid: u32,
        gid: u32,
        session_flags: u32,
    },
    ListDevicesReply(Vec<Device>),
    ListDomainsReply(Vec<DomainInfo>),
    CreateDomainReply { domain_id: u32, dev_id: u32, status: u32 },
    AttachDeviceReply { dev_id: u32 },
    Ok,
    SubscribeReply { domain_id: u32, page_size: u64, max_leaf: u64, generation: u64 },
    SyncReply { generation: u64, pending_pages: u64 },
    Ranges {
        generation: u64,
        domain_id: u32,
        seq: u32,
        total_pages: u64,
        chunks: Vec<Chunk>,
    },
    StatsReply(Vec<DomainStats>),
    GetFdsReply { ioas_id: u32, hwpt_id: u32, devices: Vec<FdDevice> },
    Error { errno: u32, text: String },
    EvRound { domain_id: u32, generation: u64, round_pages: u64, pending_pages: u64 },
    EvStateLost { domain_id: u32 },
}

/// A whole packet: the header's `id` and `PROTO_F_MORE`, and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub id: u64,
    pub more: bool,
    pub msg: Message,
}

impl Message {
    /// The type code of section 4.
    pub fn type_code(&self) -> u16 {
        use Message::*;
        match self {
            Hello { .. } => ty::HELLO,
            ListDevices => ty::LIST_DEVICES,
            ListDomains => ty::LIST_DOMAINS,
            CreateDomain { .. } => ty::CREATE_DOMAIN,
            AttachDevice { .. } => ty::ATTACH_DEVICE,
            DetachDevice { .. } => ty::DETACH_DEVICE,
            DestroyDomain { .. } => ty::DESTROY_DOMAIN,
            Map { .. } => ty::MAP,
            Unmap { .. } => ty::UNMAP,
            TrackStart { .. } => ty::TRACK_START,
            TrackStop { .. } => ty::TRACK_STOP,
            Subscribe { .. } => ty::SUBSCRIBE,
            Unsubscribe { .. } => ty::UNSUBSCRIBE,
            Sync { .. } => ty::SYNC,
            GetRanges { .. } => ty::GET_RANGES,
            Ack { .. } => ty::ACK,
            Stats { .. } => ty::STATS,
            GetFds { .. } => ty::GET_FDS,
            DmaWrite { .. } => ty::DMA_WRITE,
            HelloReply { .. } => ty::HELLO_REPLY,
            ListDevicesReply(_) => ty::LIST_DEVICES_REPLY,
            ListDomainsReply(_) => ty::LIST_DOMAINS_REPLY,
            CreateDomainReply { .. } => ty::CREATE_DOMAIN_REPLY,
            AttachDeviceReply { .. } => ty::ATTACH_DEVICE_REPLY,
            Ok => ty::OK,
            SubscribeReply { .. } => ty::SUBSCRIBE_REPLY,
            SyncReply { .. } => ty::SYNC_REPLY,
            Ranges { .. } => ty::RANGES,
            StatsReply(_) => ty::STATS_REPLY,
            GetFdsReply { .. } => ty::GET_FDS_REPLY,
            Error { .. } => ty::ERROR,
            EvRound { .. } => ty::EV_ROUND,
            EvStateLost { .. } => ty::EV_STATE_LOST,
        }
    }
}

/// The types that may carry `PROTO_F_MORE` (section 3).
pub fn is_stream(code: u16) -> bool {
    matches!(
        code,
        ty::LIST_DEVICES_REPLY | ty::LIST_DOMAINS_REPLY | ty::STATS_REPLY | ty::RANGES
    )
}

fn bad<T>(what: impl Into<String>) -> Result<T, Error> {
    Err(Error::Malformed(what.into()))
}

/// A bounds-checked little-endian reader over one body.
struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.b.len() => {
                let s = &self.b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => bad(format!(
                "{} bytes wanted at offset {}, {} left",
                n,
                self.pos,
                self.b.len().saturating_sub(self.pos)
            )),
        }
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn reserved32(&mut self) -> Result<(), Error> {
        let at = self.pos;
        match self.u32()? {
            0 => Ok(()),
            v => bad(format!("reserved field at body offset {} is {:#x}, not 0", at, v)),
        }
    }
    fn reserved64(&mut self) -> Result<(), Error> {
        let at = self.pos;
        match self.u64()? {
            0 => Ok(()),
            v => bad(format!("reserved field at body offset {} is {:#x}, not 0", at, v)),
        }
    }
    fn str64(&mut self) -> Result<String, Error> {
        name_from_str64(self.take(NAME_LEN)?)
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.pos..];
        self.pos = self.b.len();
        s
    }
    fn left(&self) -> usize {
        self.b.len() - self.pos
    }
}

fn is_control(c: char) -> bool {
    (c as u32) < 0x20 || c as u32 == 0x7f
}

/// Text that sections 2 and 6.15 allow: valid UTF-8 (RFC 3629, which
/// `str::from_utf8` enforces) without U+0000 .. U+001F or U+007F.
fn clean_text(b: &[u8], what: &str) -> Result<String, Error> {
    let s = match std::str::from_utf8(b) {
        Ok(s) => s,
        Err(_) => return bad(format!("{} is not valid UTF-8", what)),
    };
    if s.chars().any(is_control) {
        return bad(format!("{} holds a control character", what));
    }
    Ok(s.to_string())
}

/// A `str64` (section 2): 1 .. 63 bytes of text, then NULs only.
pub fn name_from_str64(b: &[u8]) -> Result<String, Error> {
    if b.len() != NAME_LEN {
        return bad("a name is not 64 bytes");
    }
    let n = match b.iter().position(|&c| c == 0) {
        Some(n) => n,
        None => return bad("a name has no NUL"),
    };
    if n == 0 {
        return bad("a name is empty");
    }
    if b[n..].iter().any(|&c| c != 0) {
        return bad("a name has bytes after its NUL");
    }
    clean_text(&b[..n], "a name")
}

fn put_str64(out: &mut Vec<u8>, name: &str) -> Result<(), Error> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() >= NAME_LEN || b.contains(&0) || name.chars().any(is_control) {
        return Err(Error::Invalid(format!(
            "{:?} is not a name: 1 .. 63 bytes of UTF-8 without control characters",
            name
        )));
    }
    out.extend_from_slice(b);
    out.resize(out.len() + NAME_LEN - b.len(), 0);
    Ok(())
}

fn p16(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_le_bytes());
}
fn p32(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_le_bytes());
}
fn p64(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_le_bytes());
}

/// Fixed body sizes (section 4); `None` for the variable ones.
fn fixed_body(code: u16) -> Option<usize> {
    Some(match code {
        ty::HELLO => 24,
        ty::LIST_DEVICES | ty::LIST_DOMAINS | ty::OK => 0,
        ty::CREATE_DOMAIN | ty::ATTACH_DEVICE | ty::DETACH_DEVICE => 72,
        ty::DESTROY_DOMAIN | ty::TRACK_START | ty::TRACK_STOP | ty::UNSUBSCRIBE | ty::SYNC => 8,
        ty::STATS | ty::GET_FDS | ty::EV_STATE_LOST => 8,
        ty::MAP | ty::UNMAP | ty::DMA_WRITE => 24,
        ty::SUBSCRIBE | ty::GET_RANGES | ty::ACK | ty::CREATE_DOMAIN_REPLY | ty::SYNC_REPLY => 16,
        ty::HELLO_REPLY => 40,
        ty::ATTACH_DEVICE_REPLY => 8,
        ty::SUBSCRIBE_REPLY | ty::EV_ROUND => 32,
        _ => return None,
    })
}

fn known(code: u16) -> bool {
    fixed_body(code).is_some()
        || matches!(
            code,
            ty::LIST_DEVICES_REPLY
                | ty::LIST_DOMAINS_REPLY
                | ty::RANGES
                | ty::STATS_REPLY
                | ty::GET_FDS_REPLY
                | ty::ERROR
        )
}

/// Reads one packet: the header (section 3), then the body of its type.
pub fn decode(pkt: &[u8]) -> Result<Packet, Error> {
    if pkt.len() < HEADER_LEN {
        return bad(format!("a packet of {} bytes, shorter than a header", pkt.len()));
    }
    if pkt.len() > MAX_MSG {
        return bad(format!("a packet of {} bytes, over {}", pkt.len(), MAX_MSG));
    }
    let mut h = Rd { b: pkt, pos: 0 };
    let code = h.u16()?;
    let flags = h.u16()?;
    let length = h.u32()?;
    let id = h.u64()?;
    if length as usize != pkt.len() {
        return bad(format!("length field {} in a packet of {} bytes", length, pkt.len()));
    }
    if !known(code) {
        return bad(format!("unknown message type {:#06x}", code));
    }
    if flags & !F_MORE != 0 {
        return bad(format!("header flags {:#x}: unknown bits", flags));
    }
    let more = flags & F_MORE != 0;
    if more && !is_stream(code) {
        return bad(format!("PROTO_F_MORE on type {:#06x}, not a stream", code));
    }
    let body = &pkt[HEADER_LEN..];
    if let Some(n) = fixed_body(code) {
        if body.len() != n {
            return bad(format!(
                "type {:#06x} has a {}-byte body, {} given",
                code,
                n,
                body.len()
            ));
        }
    }
    let mut r = Rd { b: body, pos: 0 };
    let msg = decode_body(code, &mut r)?;
    if r.left() != 0 {
        return bad(format!("{} bytes after the body", r.left()));
    }
    Ok(Packet { id, more, msg })
}

/// `count`, reserved, then exactly `count` entries of `size` bytes.
fn entries<T>(
    r: &mut Rd<'_>,
    size: usize,
    mut one: impl FnMut(&mut Rd<'_>) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let count = r.u32()? as usize;
    r.reserved32()?;
    if count.checked_mul(size) != Some(r.left()) {
        return bad(format!(
            "count {} of {}-byte entries does not fill the {} bytes left",
            count,
            size,
            r.left()
        ));
    }
    let mut v = Vec::with_capacity(count);
    for _ in 0..count {
        v.push(one(r)?);
    }
    Ok(v)
}

fn decode_body(code: u16, r: &mut Rd<'_>) -> Result<Message, Error> {
    use Message as M;
    Ok(match code {
        ty::HELLO => {
            let major = r.u16()?;
            let minor = r.u16()?;
            r.reserved32()?;
            M::Hello { major, minor, features: r.u64()?, resume_token: r.u64()? }
        }
        ty::LIST_DEVICES => M::ListDevices,
        ty::LIST_DOMAINS => M::ListDomains,
        ty::CREATE_DOMAIN => {
            let flags = r.u32()?;
            r.reserved32()?;
            M::CreateDomain { flags, device: r.str64()? }
        }
        ty::ATTACH_DEVICE | ty::DETACH_DEVICE => {
            let domain_id = r.u32()?;
            r.reserved32()?;
            let device = r.str64()?;
            if code == ty::ATTACH_DEVICE {
                M::AttachDevice { domain_id, device }
            } else {
                M::DetachDevice { domain_id, device }
            }
        }
        ty::DESTROY_DOMAIN | ty::TRACK_START | ty::TRACK_STOP | ty::UNSUBSCRIBE | ty::SYNC
        | ty::STATS | ty::GET_FDS | ty::EV_STATE_LOST => {
            let domain_id = r.u32()?;
            r.reserved32()?;
            match code {
                ty::DESTROY_DOMAIN => M::DestroyDomain { domain_id },
                ty::TRACK_START => M::TrackStart { domain_id },
                ty::TRACK_STOP => M::TrackStop { domain_id },
                ty::UNSUBSCRIBE => M::Unsubscribe { domain_id },
                ty::SYNC => M::Sync { domain_id },
                ty::STATS => M::Stats { domain_id },
                ty::GET_FDS => M::GetFds { domain_id },
                _ => M::EvStateLost { domain_id },
            }
        }
        ty::MAP | ty::UNMAP | ty::DMA_WRITE => {
            let domain_id = r.u32()?;
            let flags = r.u32()?;
            let iova = r.u64()?;
            let length = r.u64()?;
            match code {
                ty::MAP => M::Map { domain_id, flags, iova, length },
                ty::UNMAP => M::Unmap { domain_id, flags, iova, length },
                _ => M::DmaWrite { domain_id, flags, iova, length },
            }
        }
        ty::SUBSCRIBE => {
            let domain_id = r.u32()?;
            let interval_ms = r.u32()?;
            let flags = r.u32()?;
            r.reserved32()?;
            M::Subscribe { domain_id, interval_ms, flags }
        }
        ty::GET_RANGES => {
            let domain_id = r.u32()?;
            let flags = r.u32()?;
            r.reserved64()?;
            M::GetRanges { domain_id, flags }
        }
        ty::ACK => {
            let domain_id = r.u32()?;
            r.reserved32()?;
            M::Ack { domain_id, generation: r.u64()? }
        }
        ty::HELLO_REPLY => {
            let major = r.u16()?;
            let minor = r.u16()?;
            let max_msg = r.u32()?;
            let features = r.u64()?;
            let session_token = r.u64()?;
            let uid = r.u32()?;
            let gid = r.u32()?;
            let session_flags = r.u32()?;
            r.reserved32()?;
            M::HelloReply { major, minor, max_msg, features, session_token, uid, gid, session_flags }
        }
        ty::LIST_DEVICES_REPLY => M::ListDevicesReply(entries(r, 88, |r| {
            let name = r.str64()?;
            let capabilities = r.u64()?;
            let flags = r.u32()?;
            let domain_id = r.u32()?;
            let dev_id = r.u32()?;
            r.reserved32()?;
            Ok(Device { name, capabilities, flags, domain_id, dev_id })
        })?),
        ty::LIST_DOMAINS_REPLY => M::ListDomainsReply(entries(r, 48, |r| {
            let d = DomainInfo {
                domain_id: r.u32()?,
                status: r.u32()?,
                owner_uid: r.u32()?,
                devices: r.u32()?,
                mapped_bytes: r.u64()?,
                page_size: r.u64()?,
                generation: r.u64()?,
                subscribers: r.u32()?,
            };
            r.reserved32()?;
            Ok(d)
        })?),
        ty::STATS_REPLY => M::StatsReply(entries(r, 64, |r| {
            Ok(DomainStats {
                domain_id: r.u32()?,
                status: r.u32()?,
                generation: r.u64()?,
                last_round_ns: r.u64()?,
                last_round_pages: r.u64()?,
                dirty_rate: r.u64()?,
                mapped_bytes: r.u64()?,
                pending_pages: r.u64()?,
                pages_sent: r.u64()?,
            })
        })?),
        ty::CREATE_DOMAIN_REPLY => {
            let domain_id = r.u32()?;
            let dev_id = r.u32()?;
            let status = r.u32()?;
            r.reserved32()?;
            M::CreateDomainReply { domain_id, dev_id, status }
        }
        ty::ATTACH_DEVICE_REPLY => {
            let dev_id = r.u32()?;
            r.reserved32()?;
            M::AttachDeviceReply { dev_id }
        }
        ty::OK => M::Ok,
        ty::SUBSCRIBE_REPLY => {
            let domain_id = r.u32()?;
            r.reserved32()?;
            M::SubscribeReply {
                domain_id,
                page_size: r.u64()?,
                max_leaf: r.u64()?,
                generation: r.u64()?,
            }
        }
        ty::SYNC_REPLY => M::SyncReply { generation: r.u64()?, pending_pages: r.u64()? },
        ty::RANGES => {
            let generation = r.u64()?;
            let domain_id = r.u32()?;
            let seq = r.u32()?;
            let total_pages = r.u64()?;
            let nchunks = r.u32()?;
            r.reserved32()?;
            // every chunk takes at least 17 bytes: a count beyond that is a lie
            if nchunks as usize > r.left() / (CHUNK_HEADER_LEN + 1) {
                return bad(format!("nchunks {} cannot fit in {} bytes", nchunks, r.left()));
            }
            let mut chunks = Vec::with_capacity(nchunks as usize);
            let mut pages: u64 = 0;
            let mut end: u64 = 0;
            for i in 0..nchunks {
                let c = decode_chunk(r)?;
                if i > 0 && c.first < end {
                    return bad(format!(
                        "chunk at page {:#x} overlaps or precedes the previous span (ends {:#x})",
                        c.first, end
                    ));
                }
                end = c.first + c.span as u64;
                pages += c.page_count()?;
                if pages > total_pages {
                    return bad(format!("chunks hold more than total_pages {}", total_pages));
                }
                chunks.push(c);
            }
            if r.left() != 0 {
                return bad(format!("{} bytes after nchunks {} chunks", r.left(), nchunks));
            }
            M::Ranges { generation, domain_id, seq, total_pages, chunks }
        }
        ty::GET_FDS_REPLY => {
            let ioas_id = r.u32()?;
            let hwpt_id = r.u32()?;
            let n = r.u32()? as usize;
            r.reserved32()?;
            if n.checked_mul(72) != Some(r.left()) {
                return bad(format!("ndevices {} does not fill {} bytes", n, r.left()));
            }
            let mut devices = Vec::with_capacity(n);
            for _ in 0..n {
                let name = r.str64()?;
                let dev_id = r.u32()?;
                let fd_index = r.u32()?;
                if fd_index == 0 || fd_index as usize > n {
                    return bad(format!("fd_index {} outside 1 .. {}", fd_index, n));
                }
                devices.push(FdDevice { name, dev_id, fd_index });
            }
            M::GetFdsReply { ioas_id, hwpt_id, devices }
        }
        ty::ERROR => {
            let errno = r.u32()?;
            r.reserved32()?;
            if !(1..=4095).contains(&errno) {
                return bad(format!("ERROR errno {} outside 1 .. 4095", errno));
            }
            let t = r.rest();
            if t.len() > MAX_ERROR_TEXT {
                return bad(format!("ERROR text of {} bytes, over {}", t.len(), MAX_ERROR_TEXT));
            }
            M::Error { errno, text: clean_text(t, "ERROR text")? }
        }
        ty::EV_ROUND => {
            let domain_id = r.u32()?;
            r.reserved32()?;
            M::EvRound {
                domain_id,
                generation: r.u64()?,
                round_pages: r.u64()?,
                pending_pages: r.u64()?,
            }
        }
        _ => return bad(format!("unknown message type {:#06x}", code)),
    })
}

fn decode_chunk(r: &mut Rd<'_>) -> Result<Chunk, Error> {
    let first = r.u64()?;
    let span = r.u32()?;
    let kind = r.u8()?;
    let reserved = r.u8()?;
    let len = r.u16()? as usize;
    if span == 0 || span > CHUNK_MAX_PAGES {
        return bad(format!("chunk span {} outside 1 .. {}", span, CHUNK_MAX_PAGES));
    }
    if first.checked_add(span as u64).is_none() {
        return bad("chunk first + span overflows");
    }
    if kind != CHUNK_RUNS && kind != CHUNK_RAW {
        return bad(format!("chunk kind {}", kind));
    }
    if reserved != 0 {
        return bad("chunk reserved byte not 0");
    }
    if len == 0 || len > CHUNK_MAX_PAYLOAD {
        return bad(format!("chunk len {} outside 1 .. {}", len, CHUNK_MAX_PAYLOAD));
    }
    let payload = r.take(len)?.to_vec();
    let c = Chunk { first, span, kind, payload };
    c.check()?;
    Ok(c)
}

/// One unsigned LEB128 number of at most 3 bytes (section 9.3).
fn leb128(p: &[u8], pos: &mut usize) -> Result<u32, Error> {
    let mut v: u32 = 0;
    for i in 0..3 {
        let b = match p.get(*pos) {
            Some(&b) => b,
            None => return bad("RUNS payload ends inside a number"),
        };
        *pos += 1;
        v |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    bad("RUNS number longer than 3 LEB128 bytes")
}

fn put_leb128(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

impl Chunk {
    /// The dirty runs, as (offset in the span, pages), checked against
    /// section 9.3: in order, maximal, within the span.
    pub fn runs(&self) -> Result<Vec<(u32, u32)>, Error> {
        let mut v = Vec::new();
        match self.kind {
            CHUNK_RUNS => {
                let p = &self.payload;
                let mut pos = 0;
                let mut cursor: u64 = 0;
                while pos < p.len() {
                    let gap = leb128(p, &mut pos)?;
                    if pos >= p.len() {
                        return bad("RUNS payload ends after a gap, before its run");
                    }
                    let run = leb128(p, &mut pos)?;
                    if run == 0 {
                        return bad("a RUNS run of 0 pages");
                    }
                    if gap == 0 && !v.is_empty() {
                        return bad("a RUNS gap of 0 after the first pair (runs touch)");
                    }
                    let start = cursor + gap as u64;
                    let end = start + run as u64;
                    if end > self.span as u64 {
                        return bad(format!("a run ends at {} beyond the span {}", end, self.span));
                    }
                    v.push((start as u32, run));
                    cursor = end;
                }
            }
            CHUNK_RAW => {
                let p = &self.payload;
                let max = (self.span as usize + 7) / 8;
                if p.len() > max {
                    return bad(format!("RAW len {} over ceil(span/8) = {}", p.len(), max));
                }
                if p.last() == Some(&0) {
                    return bad("RAW payload's last byte is 0");
                }
                let mut run: Option<(u32, u32)> = None;
                for (i, &byte) in p.iter().enumerate() {
                    for bit in 0..8 {
                        let page = (i * 8 + bit) as u32;
                        if byte & (1 << bit) == 0 {
                            if let Some(r) = run.take() {
                                v.push(r);
                            }
                            continue;
                        }
                        if page >= self.span {
                            return bad(format!("RAW bit {} at or beyond span {}", page, self.span));
                        }
                        run = match run {
                            Some((s, n)) => Some((s, n + 1)),
                            None => Some((page, 1)),
                        };
                    }
                }
                if let Some(r) = run {
                    v.push(r);
                }
            }
            k => return bad(format!("chunk kind {}", k)),
        }
        if v.is_empty() {
            // only RUNS can get here (a RAW payload's last byte is non-zero,
            // a RUNS payload of at least one byte holds a pair or fails)
            return bad("a chunk with no dirty page");
        }
        Ok(v)
    }

    fn check(&self) -> Result<(), Error> {
        self.runs().map(|_| ())
    }

    /// Dirty pages in the chunk.
    pub fn page_count(&self) -> Result<u64, Error> {
        Ok(self.runs()?.iter().map(|&(_, n)| n as u64).sum())
    }

    /// The chunk of a span whose dirty pages are `runs` (offsets in the
    /// span, in order, not touching), RUNS when strictly smaller than RAW,
    /// as section 9.3's encoder picks.  `None` without a dirty page, or
    /// when the runs do not fit a single chunk.
    pub fn encode(first: u64, span: u32, runs: &[(u32, u32)]) -> Option<Chunk> {
        let raw = Self::encode_raw(first, span, runs)?;
        match Self::encode_runs(first, span, runs) {
            Some(c) if c.payload.len() < raw.payload.len() => Some(c),
            _ => Some(raw),
        }
    }

    /// The RUNS form (shortest LEB128), if it fits a chunk.
    pub fn encode_runs(first: u64, span: u32, runs: &[(u32, u32)]) -> Option<Chunk> {
        let mut payload = Vec::new();
        let mut cursor = 0u32;
        for &(s, n) in runs {
            if s < cursor || n == 0 || (s == cursor && cursor != 0) {
                return None;
            }
            put_leb128(&mut payload, s - cursor);
            put_leb128(&mut payload, n);
            cursor = s.checked_add(n)?;
        }
        if payload.is_empty() || payload.len() > CHUNK_MAX_PAYLOAD || cursor > span {
            return None;
        }
        Some(Chunk { first, span, kind: CHUNK_RUNS, payload })
    }

    /// The RAW form.
    pub fn encode_raw(first: u64, span: u32, runs: &[(u32, u32)]) -> Option<Chunk> {
        if span == 0 || span > CHUNK_MAX_PAGES {
            return None;
        }
        let mut payload = vec![0u8; (span as usize + 7) / 8];
        for &(s, n) in runs {
            let end = s.checked_add(n)?;
            if end > span {
                return None;
            }
            for p in s..end {
                payload[p as usize / 8] |= 1 << (p % 8);
            }
        }
        while payload.last() == Some(&0) {
            payload.pop();
        }
        if payload.is_empty() {
            return None;
        }
        Some(Chunk { first, span, kind: CHUNK_RAW, payload })
    }

    fn put(&self, out: &mut Vec<u8>) {
        p64(out, self.first);
        p32(out, self.span);
        out.push(self.kind);
        out.push(0);
        p16(out, self.payload.len() as u16);
        out.extend_from_slice(&self.payload);
    }
}

/// Writes one packet.  `Error::Invalid` for what cannot be sent: a name
/// that is not a `str64`, text over 1024 bytes, a packet over 65536 bytes.
pub fn encode(p: &Packet) -> Result<Vec<u8>, Error> {
    use Message as M;
    let code = p.msg.type_code();
    if p.more && !is_stream(code) {
        return Err(Error::Invalid(format!("PROTO_F_MORE on type {:#06x}", code)));
    }
    let mut o = Vec::with_capacity(64);
    p16(&mut o, code);
    p16(&mut o, if p.more { F_MORE } else { 0 });
    p32(&mut o, 0); // length, below
    p64(&mut o, p.id);
    match &p.msg {
        M::Hello { major, minor, features, resume_token } => {
            p16(&mut o, *major);
            p16(&mut o, *minor);
            p32(&mut o, 0);
            p64(&mut o, *features);
            p64(&mut o, *resume_token);
        }
        M::ListDevices | M::ListDomains | M::Ok => {}
        M::CreateDomain { flags, device } => {
            p32(&mut o, *flags);
            p32(&mut o, 0);
            put_str64(&mut o, device)?;
        }
        M::AttachDevice { domain_id, device } | M::DetachDevice { domain_id, device } => {
            p32(&mut o, *domain_id);
            p32(&mut o, 0);
            put_str64(&mut o, device)?;
        }
        M::DestroyDomain { domain_id }
        | M::TrackStart { domain_id }
        | M::TrackStop { domain_id }
        | M::Unsubscribe { domain_id }
        | M::Sync { domain_id }
        | M::Stats { domain_id }
        | M::GetFds { domain_id }
        | M::EvStateLost { domain_id } => {
            p32(&mut o, *domain_id);
            p32(&mut o, 0);
        }
        M::Map { domain_id, flags, iova, length }
        | M::Unmap { domain_id, flags, iova, length }
        | M::DmaWrite { domain_id, flags, iova, length } => {
            p32(&mut o, *domain_id);
            p32(&mut o, *flags);
            p64(&mut o, *iova);
            p64(&mut o, *length);
        }
        M::Subscribe { domain_id, interval_ms, flags } => {
            p32(&mut o, *domain_id);
            p32(&mut o, *interval_ms);
            p32(&mut o, *flags);
            p32(&mut o, 0);
        }
        M::GetRanges { domain_id, flags } => {
            p32(&mut o, *domain_id);
            p32(&mut o, *flags);
            p64(&mut o, 0);
        }
        M::Ack { domain_id, generation } => {
            p32(&mut o, *domain_id);
            p32(&mut o, 0);
            p64(&mut o, *generation);
        }
        M::HelloReply { major, minor, max_msg, features, session_token, uid, gid, session_flags } => {
            p16(&mut o, *major);
            p16(&mut o, *minor);
            p32(&mut o, *max_msg);
            p64(&mut o, *features);
            p64(&mut o, *session_token);
            p32(&mut o, *uid);
            p32(&mut o, *gid);
            p32(&mut o, *session_flags);
            p32(&mut o, 0);
        }
        M::ListDevicesReply(v) => {
            p32(&mut o, v.len() as u32);
            p32(&mut o, 0);
            for d in v {
                put_str64(&mut o, &d.name)?;
                p64(&mut o, d.capabilities);
                p32(&mut o, d.flags);
                p32(&mut o, d.domain_id);
                p32(&mut o, d.dev_id);
                p32(&mut o, 0);
            }
        }
        M::ListDomainsReply(v) => {
            p32(&mut o, v.len() as u32);
            p32(&mut o, 0);
            for d in v {
                p32(&mut o, d.domain_id);
                p32(&mut o, d.status);
                p32(&mut o, d.owner_uid);
                p32(&mut o, d.devices);
                p64(&mut o, d.mapped_bytes);
                p64(&mut o, d.page_size);
                p64(&mut o, d.generation);
                p32(&mut o, d.subscribers);
                p32(&mut o, 0);
            }
        }
        M::StatsReply(v) => {
            p32(&mut o, v.len() as u32);
            p32(&mut o, 0);
            for s in v {
                p32(&mut o, s.domain_id);
                p32(&mut o, s.status);
                for x in [
                    s.generation,
                    s.last_round_ns,
                    s.last_round_pages,
                    s.dirty_rate,
                    s.mapped_bytes,
                    s.pending_pages,
                    s.pages_sent,
                ] {
                    p64(&mut o, x);
                }
            }
        }
        M::CreateDomainReply { domain_id, dev_id, status } => {
            p32(&mut o, *domain_id);
            p32(&mut o, *dev_id);
            p32(&mut o, *status);
            p32(&mut o, 0);
        }
        M::AttachDeviceReply { dev_id } => {
            p32(&mut o, *dev_id);
            p32(&mut o, 0);
        }
        M::SubscribeReply { domain_id, page_size, max_leaf, generation } => {
            p32(&mut o, *domain_id);
            p32(&mut o, 0);
            p64(&mut o, *page_size);
            p64(&mut o, *max_leaf);
            p64(&mut o, *generation);
        }
        M::SyncReply { generation, pending_pages } => {
            p64(&mut o, *generation);
            p64(&mut o, *pending_pages);
        }
        M::Ranges { generation, domain_id, seq, total_pages, chunks } => {
            p64(&mut o, *generation);
            p32(&mut o, *domain_id);
            p32(&mut o, *seq);
            p64(&mut o, *total_pages);
            p32(&mut o, chunks.len() as u32);
            p32(&mut o, 0);
            for c in chunks {
                if c.payload.is_empty() || c.payload.len() > CHUNK_MAX_PAYLOAD {
                    return Err(Error::Invalid("chunk payload outside 1 .. 4096".into()));
                }
                c.put(&mut o);
            }
        }
        M::GetFdsReply { ioas_id, hwpt_id, devices } => {
            p32(&mut o, *ioas_id);
            p32(&mut o, *hwpt_id);
            p32(&mut o, devices.len() as u32);
            p32(&mut o, 0);
            for d in devices {
                put_str64(&mut o, &d.name)?;
                p32(&mut o, d.dev_id);
                p32(&mut o, d.fd_index);
            }
        }
        M::Error { errno, text } => {
            if text.len() > MAX_ERROR_TEXT || text.chars().any(is_control) {
                return Err(Error::Invalid("ERROR text over 1024 bytes or with a control".into()));
            }
            p32(&mut o, *errno);
            p32(&mut o, 0);
            o.extend_from_slice(text.as_bytes());
        }
        M::EvRound { domain_id, generation, round_pages, pending_pages } => {
            p32(&mut o, *domain_id);
            p32(&mut o, 0);
            p64(&mut o, *generation);
            p64(&mut o, *round_pages);
            p64(&mut o, *pending_pages);
        }
    }
    if o.len() > MAX_MSG {
        return Err(Error::Invalid(format!("a message of {} bytes, over {}", o.len(), MAX_MSG)));
    }
    let len = (o.len() as u32).to_le_bytes();
    o[4..8].copy_from_slice(&len);
    Ok(o)
}
