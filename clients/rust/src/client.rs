// SPDX-License-Identifier: MIT
//! Owns: a session with dirtyd (PROTOCOL.md sections 1, 5, 8): the
//! socket, `HELLO` and the negotiated features, request ids and matching
//! replies to them, streams, events that arrive between replies, and the
//! state-lost rule (section 8.5) as the caller sees it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{errno, Error, Result};
use crate::ranges::{MemoryRangeTable, PageRun, RunList};
use crate::sys;
use crate::wire::{self, ty, Chunk, Device, DomainInfo, DomainStats, Message, Packet};

/// Where dirtyd listens unless configured otherwise (section 1).
pub const DEFAULT_SOCKET: &str = "/run/dirtyd/dirtyd.sock";
/// The protocol version this crate speaks (section 5.1).
pub const VERSION_MAJOR: u16 = 1;
pub const VERSION_MINOR: u16 = 0;

/// `HELLO.features` bits (section 5.2).
pub mod feature {
    pub const RANGES_RAW: u64 = 0x1;
    pub const RESUME: u64 = 0x2;
    /// Not implemented here (`GET_FDS` needs `SCM_RIGHTS`, which the
    /// standard library cannot receive): never asked for.
    pub const FD_PASSING: u64 = 0x4;
    pub const EVENTS: u64 = 0x8;
}

/// `HELLO_REPLY.session_flags` (section 5.3).
pub mod session_flag {
    pub const RESUMED: u32 = 0x1;
    pub const STATE_LOST: u32 = 0x2;
}

/// Request flags and status bits (section 6).
pub mod flag {
    pub const CREATE_TRACKING: u32 = 0x1;
    pub const CREATE_NO_HUGE_PAGES: u32 = 0x2;
    pub const MAP_READABLE: u32 = 0x1;
    pub const MAP_WRITEABLE: u32 = 0x2;
    pub const MAP_EXTERNAL: u32 = 0x4;
    pub const SUBSCRIBE_CLEAN: u32 = 0x1;
    pub const RANGES_RESEND: u32 = 0x1;
    /// Domain status (6.3).
    pub const STATUS_ENABLED: u32 = 0x1;
    pub const STATUS_SUPPORTED: u32 = 0x2;
    pub const STATUS_UNSUPPORTED: u32 = 0x4;
    /// Device flags (6.2).
    pub const DEVICE_DIRTY_CAPABLE: u32 = 0x1;
    pub const DEVICE_BOUND: u32 = 0x2;
    pub const DEVICE_ATTACHED: u32 = 0x4;
}

/// How to open a session.
#[derive(Clone, Debug)]
pub struct Options {
    /// Features to ask for; `FD_PASSING` is always left out.
    pub features: u64,
    /// A previous session's token, to resume it (5.3); 0 for a new one.
    pub resume_token: u64,
    /// How long to wait for any reply; `None`: as long as it takes (a
    /// `SYNC` waits for a whole harvest round).
    pub timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            features: feature::RANGES_RAW | feature::RESUME | feature::EVENTS,
            resume_token: 0,
            timeout: None,
        }
    }
}

/// What `HELLO_REPLY` said (6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub major: u16,
    pub minor: u16,
    pub max_msg: u32,
    pub features: u64,
    pub session_token: u64,
    pub uid: u32,
    pub gid: u32,
    pub session_flags: u32,
}

impl Session {
    /// The kept session was resumed: everything not acknowledged is
    /// pending again; continue with `get_ranges()`.
    pub fn resumed(&self) -> bool {
        self.session_flags & session_flag::RESUMED != 0
    }
    /// The session asked to resume could not be: the caller MUST take
    /// **every page of every domain it tracked as dirty**, subscribe again
    /// and copy everything (5.3, 8.5).
    pub fn state_lost(&self) -> bool {
        self.session_flags & session_flag::STATE_LOST != 0
    }
}

/// An event (6.16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Periodic rounds added pages to the subscription.
    Round { domain_id: u32, generation: u64, round_pages: u64, pending_pages: u64 },
    /// dirtyd can no longer vouch for the subscription's state: the caller
    /// MUST treat every page of the domain as dirty.  The next
    /// `get_ranges()` of the domain delivers every mapped page and says
    /// `everything_dirty`.
    StateLost { domain_id: u32 },
}

/// `SUBSCRIBE_REPLY` (6.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub domain_id: u32,
    pub page_size: u64,
    pub max_leaf: u64,
    pub generation: u64,
}

/// `SYNC_REPLY` (6.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReply {
    pub generation: u64,
    pub pending_pages: u64,
}

/// `CREATE_DOMAIN_REPLY` (6.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub domain_id: u32,
    pub dev_id: u32,
    pub status: u32,
}

/// One generation of dirty pages (a whole `RANGES` stream, 6.11).
#[derive(Clone, Debug)]
pub struct Ranges {
    /// The generation to `ack()` once every page is copied.
    pub generation: u64,
    pub domain_id: u32,
    pub total_pages: u64,
    /// Bytes one page stands for.
    pub page_size: u64,
    /// An `EV_STATE_LOST` of the domain arrived before this request: the
    /// caller MUST treat every page of the domain as dirty (dirtyd marked
    /// every mapped page pending, so the runs hold them all).
    pub everything_dirty: bool,
    /// Packets and chunks the stream took.
    pub packets: u32,
    pub chunks: u32,
    runs: Vec<PageRun>,
    table: MemoryRangeTable,
}

impl Ranges {
    /// The dirty pages as runs of page numbers, increasing, maximal.
    pub fn runs(&self) -> &[PageRun] {
        &self.runs
    }
    /// The dirty pages in bytes (IOVA = page * page_size).
    pub fn table(&self) -> &MemoryRangeTable {
        &self.table
    }
    pub fn into_table(self) -> MemoryRangeTable {
        self.table
    }
}

/// A connection to dirtyd, after `HELLO`.  Requests are made one at a
/// time; events that arrive meanwhile are kept for [`Client::poll_event`].
pub struct Client {
    sock: UnixDatagram,
    session: Session,
    next_id: u64,
    timeout: Option<Duration>,
    events: VecDeque<Event>,
    lost: HashSet<u32>,
    page_size: HashMap<u32, u64>,
    buf: Vec<u8>,
}

fn unexpected<T>(want: &str, got: &Message) -> Result<T> {
    Err(Error::Malformed(format!(
        "{} expected, type {:#06x} received",
        want,
        got.type_code()
    )))
}

impl Client {
    /// Connects to dirtyd at `path` and says `HELLO` with the default
    /// options (RANGES_RAW, RESUME, EVENTS; a new session).
    pub fn connect<P: AsRef<Path>>(path: P) -> Result<Client> {
        Self::connect_with(path, &Options::default())
    }

    /// The same at the default socket, `/run/dirtyd/dirtyd.sock`.
    pub fn connect_default() -> Result<Client> {
        Self::connect(DEFAULT_SOCKET)
    }

    /// Connects and says `HELLO` with `opts`.  A major version dirtyd does
    /// not speak is `Error::Daemon` with `EPROTONOSUPPORT`.
    pub fn connect_with<P: AsRef<Path>>(path: P, opts: &Options) -> Result<Client> {
        let sock = sys::seqpacket()?;
        sock.connect(path)?;
        Self::from_socket(sock, opts)
    }

    /// Says `HELLO` on a socket already connected to dirtyd (an `AF_UNIX`
    /// `SOCK_SEQPACKET` socket made elsewhere, e.g. passed by a service
    /// manager; `UnixDatagram` is how the standard library holds one).
    pub fn from_socket(sock: UnixDatagram, opts: &Options) -> Result<Client> {
        sock.set_read_timeout(opts.timeout)?;
        let mut c = Client {
            sock,
            session: Session {
                major: 0,
                minor: 0,
                max_msg: 0,
                features: 0,
                session_token: 0,
                uid: 0,
                gid: 0,
                session_flags: 0,
            },
            next_id: 1,
            timeout: opts.timeout,
            events: VecDeque::new(),
            lost: HashSet::new(),
            page_size: HashMap::new(),
            buf: vec![0u8; wire::MAX_MSG + 1],
        };
        let asked = opts.features & !feature::FD_PASSING;
        let hello = Message::Hello {
            major: VERSION_MAJOR,
            minor: VERSION_MINOR,
            features: asked,
            resume_token: opts.resume_token,
        };
        match c.call(hello)? {
            Message::HelloReply { major, minor, max_msg, features, session_token, uid, gid, session_flags } => {
                if major != VERSION_MAJOR {
                    return Err(Error::Malformed(format!(
                        "HELLO_REPLY of major version {} to a HELLO of {}",
                        major, VERSION_MAJOR
                    )));
                }
                if features & !asked != 0 {
                    return Err(Error::Malformed(format!(
                        "HELLO_REPLY features {:#x} beyond those asked, {:#x}",
                        features, asked
                    )));
                }
                if (features & feature::RESUME != 0) != (session_token != 0) {
                    return Err(Error::Malformed(format!(
                        "session token {:#x} with features {:#x}",
                        session_token, features
                    )));
                }
                c.session =
                    Session { major, minor, max_msg, features, session_token, uid, gid, session_flags };
                Ok(c)
            }
            m => unexpected("HELLO_REPLY", &m),
        }
    }

    /// What `HELLO_REPLY` said: features, token, whether the session was
    /// resumed or its state lost.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// How long any later request waits for its reply (`None`: forever).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.sock.set_read_timeout(timeout)?;
        self.timeout = timeout;
        Ok(())
    }

    fn send(&mut self, msg: Message) -> Result<u64> {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let bytes = wire::encode(&Packet { id, more: false, msg })?;
        let n = self.sock.send(&bytes)?;
        if n != bytes.len() {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::WriteZero,
                "a request was cut short by the socket",
            )));
        }
        Ok(id)
    }

    fn recv_packet(&mut self) -> Result<Packet> {
        // one byte more than the largest message: a packet that fills it
        // was longer (a SOCK_SEQPACKET read cuts what does not fit)
        let n = self.sock.recv(&mut self.buf)?;
        if n == 0 {
            return Err(Error::Closed);
        }
        if n > wire::MAX_MSG {
            return Err(Error::Malformed(format!("a packet over {} bytes", wire::MAX_MSG)));
        }
        wire::decode(&self.buf[..n])
    }

    fn note_event(&mut self, ev: Event) {
        // at most one of each kind per domain: dirtyd sends no other
        // EV_ROUND until asked, so only the latest one means anything
        let same = |e: &Event| match (e, &ev) {
            (Event::Round { domain_id: a, .. }, Event::Round { domain_id: b, .. }) => a == b,
            (Event::StateLost { domain_id: a }, Event::StateLost { domain_id: b }) => a == b,
            _ => false,
        };
        self.events.retain(|e| !same(e));
        if let Event::StateLost { domain_id } = ev {
            self.lost.insert(domain_id);
        }
        self.events.push_back(ev);
    }

    /// An event (kept: `None`), or a packet for request `want`; packets of
    /// requests given up (a timeout) are dropped.
    fn next_packet(&mut self, want: Option<u64>) -> Result<Option<Packet>> {
        let p = self.recv_packet()?;
        match p.msg {
            Message::EvRound { domain_id, generation, round_pages, pending_pages } if p.id == 0 => {
                self.note_event(Event::Round { domain_id, generation, round_pages, pending_pages });
                Ok(None)
            }
            Message::EvStateLost { domain_id } if p.id == 0 => {
                self.note_event(Event::StateLost { domain_id });
                Ok(None)
            }
            Message::EvRound { .. } | Message::EvStateLost { .. } => {
                Err(Error::Malformed(format!("an event with id {}", p.id)))
            }
            Message::Error { errno, text } if p.id == 0 || want == Some(p.id) => {
                // id 0: an error about the connection (EUSERS, ETIMEDOUT)
                Err(Error::Daemon { errno, text })
            }
            _ if p.id != 0 && want == Some(p.id) => Ok(Some(p)),
            _ if p.id != 0 && p.id < self.next_id => Ok(None), // a request given up
            _ => Err(Error::Malformed(format!(
                "a reply (type {:#06x}) with id {}, for no request sent",
                p.msg.type_code(),
                p.id
            ))),
        }
    }

    fn wait(&mut self, id: u64) -> Result<Packet> {
        loop {
            if let Some(p) = self.next_packet(Some(id))? {
                return Ok(p);
            }
        }
    }

    /// One request answered by one packet.
    fn call(&mut self, msg: Message) -> Result<Message> {
        let id = self.send(msg)?;
        let p = self.wait(id)?;
        if p.more {
            return Err(Error::Malformed(format!(
                "PROTO_F_MORE on type {:#06x}",
                p.msg.type_code()
            )));
        }
        Ok(p.msg)
    }

    fn call_ok(&mut self, msg: Message) -> Result<()> {
        match self.call(msg)? {
            Message::Ok => Ok(()),
            m => unexpected("OK", &m),
        }
    }

    /// Any request: every packet of its reply (one, or a whole stream).
    /// For requests this crate has no call for; `Error::Daemon` for an
    /// `ERROR`.
    pub fn request(&mut self, msg: Message) -> Result<Vec<Packet>> {
        let id = self.send(msg)?;
        let mut v = Vec::new();
        loop {
            let p = self.wait(id)?;
            let more = p.more;
            v.push(p);
            if !more {
                return Ok(v);
            }
        }
    }

    /// A list stream (8.2): the entries of every packet, in order.
    fn list<T>(&mut self, msg: Message, mut take: impl FnMut(Message) -> Option<Vec<T>>) -> Result<Vec<T>> {
        let want = match msg {
            Message::ListDevices => ty::LIST_DEVICES_REPLY,
            Message::ListDomains => ty::LIST_DOMAINS_REPLY,
            _ => ty::STATS_REPLY,
        };
        let mut all = Vec::new();
        for p in self.request(msg)? {
            let code = p.msg.type_code();
            match take(p.msg) {
                Some(v) => all.extend(v),
                None => {
                    return Err(Error::Malformed(format!(
                        "type {:#06x} in a stream of {:#06x}",
                        code, want
                    )))
                }
            }
        }
        Ok(all)
    }

    /// `LIST_DEVICES` (6.2).
    pub fn list_devices(&mut self) -> Result<Vec<Device>> {
        self.list(Message::ListDevices, |m| match m {
            Message::ListDevicesReply(v) => Some(v),
            _ => None,
        })
    }

    /// `LIST_DOMAINS` (6.3): the domains this client may see.
    pub fn list_domains(&mut self) -> Result<Vec<DomainInfo>> {
        let v = self.list(Message::ListDomains, |m| match m {
            Message::ListDomainsReply(v) => Some(v),
            _ => None,
        })?;
        for d in &v {
            self.page_size.insert(d.domain_id, d.page_size);
        }
        Ok(v)
    }

    /// `STATS` (6.13) of one domain, or of every visible one (`domain_id` 0).
    pub fn stats(&mut self, domain_id: u32) -> Result<Vec<DomainStats>> {
        self.list(Message::Stats { domain_id }, |m| match m {
            Message::StatsReply(v) => Some(v),
            _ => None,
        })
    }

    /// `CREATE_DOMAIN` (6.4) for `device`, with `flag::CREATE_*` flags.
    pub fn create_domain(&mut self, device: &str, flags: u32) -> Result<Created> {
        match self.call(Message::CreateDomain { flags, device: device.to_string() })? {
            Message::CreateDomainReply { domain_id, dev_id, status } => {
                Ok(Created { domain_id, dev_id, status })
            }
            m => unexpected("CREATE_DOMAIN_REPLY", &m),
        }
    }

    /// `ATTACH_DEVICE` (6.5): the device's `dev_id`.
    pub fn attach_device(&mut self, domain_id: u32, device: &str) -> Result<u32> {
        match self.call(Message::AttachDevice { domain_id, device: device.to_string() })? {
            Message::AttachDeviceReply { dev_id } => Ok(dev_id),
            m => unexpected("ATTACH_DEVICE_REPLY", &m),
        }
    }

    /// `DETACH_DEVICE` (6.5).
    pub fn detach_device(&mut self, domain_id: u32, device: &str) -> Result<()> {
        self.call_ok(Message::DetachDevice { domain_id, device: device.to_string() })
    }

    /// `DESTROY_DOMAIN` (6.6).
    pub fn destroy_domain(&mut self, domain_id: u32) -> Result<()> {
        self.page_size.remove(&domain_id);
        self.call_ok(Message::DestroyDomain { domain_id })
    }

    /// `MAP` (6.7) with `flag::MAP_*` flags.
    pub fn map(&mut self, domain_id: u32, iova: u64, length: u64, flags: u32) -> Result<()> {
        self.call_ok(Message::Map { domain_id, flags, iova, length })
    }

    /// `UNMAP` (6.7); `flags` 0 or `flag::MAP_EXTERNAL`.
    pub fn unmap(&mut self, domain_id: u32, iova: u64, length: u64, flags: u32) -> Result<()> {
        self.call_ok(Message::Unmap { domain_id, flags, iova, length })
    }

    /// `DMA_WRITE` (6.7): the domain's first device writes the range (the
    /// simulated backend and the mock IOMMU only).
    pub fn dma_write(&mut self, domain_id: u32, iova: u64, length: u64) -> Result<()> {
        self.call_ok(Message::DmaWrite { domain_id, flags: 0, iova, length })
    }

    /// `TRACK_START` (6.8).
    pub fn track_start(&mut self, domain_id: u32) -> Result<()> {
        self.call_ok(Message::TrackStart { domain_id })
    }

    /// `TRACK_STOP` (6.8).
    pub fn track_stop(&mut self, domain_id: u32) -> Result<()> {
        self.call_ok(Message::TrackStop { domain_id })
    }

    /// `SUBSCRIBE` (6.9): `interval_ms` 0 for no periodic rounds; `clean`
    /// to start with nothing pending (else every mapped page is).
    pub fn subscribe(&mut self, domain_id: u32, interval_ms: u32, clean: bool) -> Result<Subscription> {
        let flags = if clean { flag::SUBSCRIBE_CLEAN } else { 0 };
        match self.call(Message::Subscribe { domain_id, interval_ms, flags })? {
            Message::SubscribeReply { domain_id: d, page_size, max_leaf, generation } => {
                if d != domain_id {
                    return Err(Error::Malformed(format!(
                        "SUBSCRIBE_REPLY of domain {} to a SUBSCRIBE of {}",
                        d, domain_id
                    )));
                }
                if !page_size.is_power_of_two() || !max_leaf.is_power_of_two() || max_leaf < page_size {
                    return Err(Error::Malformed(format!(
                        "page_size {} and max_leaf {}: powers of two, max_leaf >= page_size",
                        page_size, max_leaf
                    )));
                }
                self.page_size.insert(domain_id, page_size);
                Ok(Subscription { domain_id, page_size, max_leaf, generation })
            }
            m => unexpected("SUBSCRIBE_REPLY", &m),
        }
    }

    /// `UNSUBSCRIBE` (6.9).
    pub fn unsubscribe(&mut self, domain_id: u32) -> Result<()> {
        self.call_ok(Message::Unsubscribe { domain_id })?;
        self.lost.remove(&domain_id);
        Ok(())
    }

    /// `SYNC` (6.10): waits for a harvest round that begins after it.
    pub fn sync(&mut self, domain_id: u32) -> Result<SyncReply> {
        match self.call(Message::Sync { domain_id })? {
            Message::SyncReply { generation, pending_pages } => Ok(SyncReply { generation, pending_pages }),
            m => unexpected("SYNC_REPLY", &m),
        }
    }

    /// `GET_RANGES` (6.11): everything pending, as one generation; with
    /// `resend`, every unacknowledged generation is put back first
    /// (`PROTO_RANGES_RESEND`).  The whole stream is read and checked
    /// (sections 8.2, 9): packets numbered from 0, the same generation,
    /// domain and `total_pages` in each, chunks in order, their pages
    /// adding up to `total_pages`.
    pub fn get_ranges(&mut self, domain_id: u32, resend: bool) -> Result<Ranges> {
        // an EV_STATE_LOST read before the request is this generation's;
        // one read while the stream comes is the next one's.  On failure
        // the flag stays for the next call
        let everything_dirty = self.lost.remove(&domain_id);
        let r = self.take_ranges(domain_id, resend, everything_dirty);
        if r.is_err() && everything_dirty {
            self.lost.insert(domain_id);
        }
        r
    }

    fn take_ranges(&mut self, domain_id: u32, resend: bool, everything_dirty: bool) -> Result<Ranges> {
        let flags = if resend { flag::RANGES_RESEND } else { 0 };
        let raw_ok = self.session.features & feature::RANGES_RAW != 0;
        let id = self.send(Message::GetRanges { domain_id, flags })?;
        let mut runs = RunList::default();
        let mut head: Option<(u64, u64)> = None; // generation, total_pages
        let (mut packets, mut nchunks) = (0u32, 0u32);
        let mut end: Option<u64> = None; // where the last span ended
        loop {
            let p = self.wait(id)?;
            let (generation, d, seq, total_pages, chunks) = match p.msg {
                Message::Ranges { generation, domain_id, seq, total_pages, chunks } => {
                    (generation, domain_id, seq, total_pages, chunks)
                }
                m => return unexpected("RANGES", &m),
            };
            if d != domain_id {
                return Err(Error::Malformed(format!("RANGES of domain {} for domain {}", d, domain_id)));
            }
            if seq != packets {
                return Err(Error::Malformed(format!("RANGES seq {} where {} was due", seq, packets)));
            }
            match head {
                None => head = Some((generation, total_pages)),
                Some(h) if h != (generation, total_pages) => {
                    return Err(Error::Malformed(format!(
                        "RANGES packet {} of generation {} ({} pages) in a stream of {} ({} pages)",
                        seq, generation, total_pages, h.0, h.1
                    )))
                }
                Some(_) => {}
            }
            packets += 1;
            for c in &chunks {
                self.take_chunk(c, raw_ok, &mut end, &mut runs)?;
                nchunks = nchunks.saturating_add(1);
            }
            if runs.pages > total_pages {
                return Err(Error::Malformed(format!(
                    "RANGES hold more than total_pages {}",
                    total_pages
                )));
            }
            if !p.more {
                break;
            }
        }
        let (generation, total_pages) = head.unwrap_or((0, 0));
        if runs.pages != total_pages {
            return Err(Error::Malformed(format!(
                "RANGES hold {} pages, total_pages says {}",
                runs.pages, total_pages
            )));
        }
        let page_size = self.page_size_of(domain_id)?;
        let table = runs.table(page_size)?;
        Ok(Ranges {
            generation,
            domain_id,
            total_pages,
            page_size,
            everything_dirty,
            packets,
            chunks: nchunks,
            runs: runs.runs,
            table,
        })
    }

    fn take_chunk(&self, c: &Chunk, raw_ok: bool, end: &mut Option<u64>, runs: &mut RunList) -> Result<()> {
        if c.kind == wire::CHUNK_RAW && !raw_ok {
            return Err(Error::Malformed("a RAW chunk without PROTO_FEAT_RANGES_RAW".into()));
        }
        if let Some(e) = *end {
            if c.first < e {
                return Err(Error::Malformed(format!(
                    "a chunk at page {:#x} before the previous span's end {:#x}",
                    c.first, e
                )));
            }
        }
        *end = Some(c.first + c.span as u64); // decode checked the overflow
        for (off, n) in c.runs()? {
            runs.add(c.first + off as u64, n as u64)?;
        }
        Ok(())
    }

    /// The domain's page size: from its `SUBSCRIBE_REPLY`, else (a resumed
    /// session never saw one) from `LIST_DOMAINS`.
    fn page_size_of(&mut self, domain_id: u32) -> Result<u64> {
        if let Some(&s) = self.page_size.get(&domain_id) {
            return Ok(s);
        }
        self.list_domains()?;
        match self.page_size.get(&domain_id) {
            Some(&s) if s.is_power_of_two() => Ok(s),
            Some(&s) => Err(Error::Malformed(format!("domain {} has page_size {}", domain_id, s))),
            None => Err(Error::Daemon {
                errno: errno::ENOENT,
                text: format!("domain {} is not in LIST_DOMAINS (destroyed meanwhile?)", domain_id),
            }),
        }
    }

    /// `ACK` (6.12): the caller has copied every page of `generation`.
    pub fn ack(&mut self, domain_id: u32, generation: u64) -> Result<()> {
        self.call_ok(Message::Ack { domain_id, generation })
    }

    /// The next event: one kept while waiting for replies, else one read
    /// within `timeout` (`None`: wait as long as it takes).  `Ok(None)`
    /// when none came in time.
    pub fn poll_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let result = loop {
            // once the time is up, one more look without waiting: what is
            // already in the socket is taken, a zero timeout included
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let now_only = left == Some(Duration::ZERO);
            let set = if now_only {
                self.sock.set_nonblocking(true)
            } else {
                self.sock.set_read_timeout(left)
            };
            if let Err(e) = set {
                break Err(e.into());
            }
            // every request has been answered: only events (and packets of
            // requests given up) can come
            match self.next_packet(None) {
                Ok(_) => {
                    if let Some(e) = self.events.pop_front() {
                        break Ok(Some(e));
                    }
                }
                Err(Error::Io(e))
                    if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
                {
                    if now_only || deadline.is_none() {
                        break Ok(None);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        self.sock.set_nonblocking(false)?;
        self.sock.set_read_timeout(self.timeout)?;
        result
    }

    /// Whether an `EV_STATE_LOST` of the domain arrived that no
    /// `get_ranges()` has reported yet.
    pub fn state_lost(&self, domain_id: u32) -> bool {
        self.lost.contains(&domain_id)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .field("events", &self.events)
            .finish()
    }
}
