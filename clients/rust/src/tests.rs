// SPDX-License-Identifier: MIT
//! The codec against PROTOCOL.md: every example of section 14, read from
//! the spec itself, decoded and encoded again byte for byte; the fields
//! its comments name; and malformed input of every kind section 9.3 and
//! section 3 name, which must be an error and never a panic.

use crate::error::Error;
use crate::ranges::RunList;
use crate::wire::{self, decode, encode, ty, Chunk, Message, Packet};
use crate::{MemoryRange, PageRun};

const SPEC: &str = include_str!("../../../protocol/PROTOCOL.md");

/// (title, bytes) of every ```hex block of section 14.
fn examples() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut title: Option<String> = None;
    let mut bytes: Option<Vec<u8>> = None;
    for line in SPEC.lines() {
        if let Some(t) = line.strip_prefix("Example: ") {
            title = Some(t.trim().to_string());
        } else if line.trim() == "```hex" {
            bytes = Some(Vec::new());
        } else if line.trim() == "```" {
            if let Some(b) = bytes.take() {
                v.push((title.take().expect("a hex block without a title"), b));
            }
        } else if let Some(b) = bytes.as_mut() {
            let data = line.split('#').next().unwrap();
            for w in data.split_whitespace() {
                b.push(u8::from_str_radix(w, 16).expect("a hex byte"));
            }
        }
    }
    v
}

fn type_named(name: &str) -> u16 {
    match name {
        "HELLO" => ty::HELLO,
        "LIST_DEVICES" => ty::LIST_DEVICES,
        "LIST_DOMAINS" => ty::LIST_DOMAINS,
        "CREATE_DOMAIN" => ty::CREATE_DOMAIN,
        "ATTACH_DEVICE" => ty::ATTACH_DEVICE,
        "DETACH_DEVICE" => ty::DETACH_DEVICE,
        "DESTROY_DOMAIN" => ty::DESTROY_DOMAIN,
        "MAP" => ty::MAP,
        "UNMAP" => ty::UNMAP,
        "TRACK_START" => ty::TRACK_START,
        "TRACK_STOP" => ty::TRACK_STOP,
        "SUBSCRIBE" => ty::SUBSCRIBE,
        "UNSUBSCRIBE" => ty::UNSUBSCRIBE,
        "SYNC" => ty::SYNC,
        "GET_RANGES" => ty::GET_RANGES,
        "ACK" => ty::ACK,
        "STATS" => ty::STATS,
        "GET_FDS" => ty::GET_FDS,
        "DMA_WRITE" => ty::DMA_WRITE,
        "HELLO_REPLY" => ty::HELLO_REPLY,
        "LIST_DEVICES_REPLY" => ty::LIST_DEVICES_REPLY,
        "LIST_DOMAINS_REPLY" => ty::LIST_DOMAINS_REPLY,
        "CREATE_DOMAIN_REPLY" => ty::CREATE_DOMAIN_REPLY,
        "ATTACH_DEVICE_REPLY" => ty::ATTACH_DEVICE_REPLY,
        "OK" => ty::OK,
        "SUBSCRIBE_REPLY" => ty::SUBSCRIBE_REPLY,
        "SYNC_REPLY" => ty::SYNC_REPLY,
        "RANGES" => ty::RANGES,
        "STATS_REPLY" => ty::STATS_REPLY,
        "GET_FDS_REPLY" => ty::GET_FDS_REPLY,
        "ERROR" => ty::ERROR,
        "EV_ROUND" => ty::EV_ROUND,
        "EV_STATE_LOST" => ty::EV_STATE_LOST,
        _ => panic!("an example titled {:?}", name),
    }
}

fn example(name: &str, nth: usize) -> Vec<u8> {
    examples()
        .into_iter()
        .filter(|(t, _)| t == name)
        .nth(nth)
        .unwrap_or_else(|| panic!("no example {} #{}", name, nth))
        .1
}

fn malformed(b: &[u8]) -> String {
    match decode(b) {
        Err(Error::Malformed(s)) => s,
        other => panic!("decoded as {:?}", other),
    }
}

#[test]
fn every_example_decodes_and_encodes_back_byte_for_byte() {
    let ex = examples();
    assert_eq!(ex.len(), 25, "section 14 has 25 packets");
    for (title, bytes) in &ex {
        let p = decode(bytes).unwrap_or_else(|e| panic!("{}: {}", title, e));
        assert_eq!(p.msg.type_code(), type_named(title), "{}", title);
        assert_eq!(encode(&p).unwrap(), *bytes, "{} re-encoded", title);
    }
}

#[test]
fn every_example_chunk_encodes_back_from_its_runs() {
    let mut seen = 0;
    for (_, bytes) in examples() {
        if let Message::Ranges { chunks, .. } = decode(&bytes).unwrap().msg {
            for c in chunks {
                let runs = c.runs().unwrap();
                assert_eq!(Chunk::encode(c.first, c.span, &runs).unwrap(), c);
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 2);
}

#[test]
fn hello_and_hello_reply_fields() {
    let p = decode(&example("HELLO", 0)).unwrap();
    assert_eq!(p.id, 1);
    assert_eq!(p.msg, Message::Hello { major: 1, minor: 0, features: 0x1f, resume_token: 0 });
    let p = decode(&example("HELLO_REPLY", 0)).unwrap();
    assert_eq!(
        p.msg,
        Message::HelloReply {
            major: 1,
            minor: 0,
            max_msg: 65536,
            features: 0x1b,
            session_token: 0x9408b1d3eb2de6e4,
            uid: 1000,
            gid: 1000,
            session_flags: 0
        }
    );
    // the reconnection: the old token, STATE_LOST
    let p = decode(&example("HELLO", 1)).unwrap();
    assert_eq!(p.msg, Message::Hello { major: 1, minor: 0, features: 0xb, resume_token: 0x9408b1d3eb2de6e4 });
    match decode(&example("HELLO_REPLY", 1)).unwrap().msg {
        Message::HelloReply { session_token, session_flags, .. } => {
            assert_eq!(session_token, 0x95fe510d7f8053d1);
            assert_eq!(session_flags, crate::session_flag::STATE_LOST);
        }
        m => panic!("{:?}", m),
    }
}

#[test]
fn lists_error_and_replies_fields() {
    match decode(&example("LIST_DEVICES_REPLY", 0)).unwrap().msg {
        Message::ListDevicesReply(v) => {
            assert_eq!(v.len(), 2);
            assert_eq!(v[0].name, "sim0");
            assert_eq!((v[0].capabilities, v[0].flags), (1, 1));
            assert_eq!(v[1].name, "sim-legacy0");
            assert_eq!((v[1].capabilities, v[1].flags, v[1].domain_id, v[1].dev_id), (0, 0, 0, 0));
        }
        m => panic!("{:?}", m),
    }
    let p = decode(&example("CREATE_DOMAIN", 0)).unwrap();
    assert_eq!(p.msg, Message::CreateDomain { flags: 1, device: "sim-legacy0".into() });
    let p = decode(&example("ERROR", 0)).unwrap();
    assert_eq!(p.id, 3);
    match p.msg {
        Message::Error { errno, text } => {
            assert_eq!(errno, crate::errno::EOPNOTSUPP);
            assert_eq!(text.len(), 174);
            assert!(text.starts_with("device sim-legacy0 cannot track dirty pages"));
        }
        m => panic!("{:?}", m),
    }
    assert_eq!(
        decode(&example("CREATE_DOMAIN_REPLY", 0)).unwrap().msg,
        Message::CreateDomainReply { domain_id: 1, dev_id: 1, status: 2 }
    );
    assert_eq!(
        decode(&example("MAP", 0)).unwrap().msg,
        Message::Map { domain_id: 1, flags: 3, iova: 0x40000000, length: 0x40000000 }
    );
    assert_eq!(decode(&example("OK", 0)).unwrap(), Packet { id: 5, more: false, msg: Message::Ok });
    assert_eq!(
        decode(&example("SUBSCRIBE_REPLY", 0)).unwrap().msg,
        Message::SubscribeReply { domain_id: 1, page_size: 4096, max_leaf: 4096, generation: 1 }
    );
    assert_eq!(
        decode(&example("SYNC_REPLY", 0)).unwrap().msg,
        Message::SyncReply { generation: 2, pending_pages: 39 }
    );
    assert_eq!(
        decode(&example("ACK", 0)).unwrap().msg,
        Message::Ack { domain_id: 1, generation: 2 }
    );
    match decode(&example("STATS_REPLY", 0)).unwrap().msg {
        Message::StatsReply(v) => {
            assert_eq!(v.len(), 1);
            assert_eq!((v[0].domain_id, v[0].status, v[0].generation), (1, 3, 2));
            assert_eq!((v[0].last_round_pages, v[0].mapped_bytes, v[0].pages_sent), (39, 1 << 30, 39));
        }
        m => panic!("{:?}", m),
    }
    assert_eq!(
        decode(&example("EV_ROUND", 0)).unwrap(),
        Packet {
            id: 0,
            more: false,
            msg: Message::EvRound { domain_id: 1, generation: 3, round_pages: 12, pending_pages: 12 }
        }
    );
    assert_eq!(decode(&example("EV_STATE_LOST", 0)).unwrap().msg, Message::EvStateLost { domain_id: 1 });
}

/// The pages section 14 says the device wrote, as runs.
fn example_runs() -> Vec<PageRun> {
    [(0x40000, 3), (0x40010, 1), (0x403f9, 16), (0x48000, 10), (0x4800b, 9)]
        .iter()
        .map(|&(first, count)| PageRun { first, count })
        .collect()
}

#[test]
fn ranges_example_is_the_39_pages_written() {
    let p = decode(&example("RANGES", 0)).unwrap();
    assert_eq!(p.id, 14);
    assert!(!p.more);
    let (chunks, total) = match p.msg {
        Message::Ranges { generation: 2, domain_id: 1, seq: 0, total_pages, chunks } => (chunks, total_pages),
        m => panic!("{:?}", m),
    };
    assert_eq!(total, 39);
    assert_eq!(chunks[0].kind, wire::CHUNK_RUNS);
    assert_eq!(chunks[1].kind, wire::CHUNK_RAW);
    let mut l = RunList::default();
    for c in &chunks {
        for (off, n) in c.runs().unwrap() {
            l.add(c.first + off as u64, n as u64).unwrap();
        }
    }
    assert_eq!(l.pages, 39);
    assert_eq!(l.runs, example_runs());
    let t = l.table(4096).unwrap();
    assert_eq!(t.regions()[0], MemoryRange { gpa: 0x40000000, length: 0x3000 });
    assert_eq!(t.regions()[2], MemoryRange { gpa: 0x403f9000, length: 0x10000 });
    assert_eq!(t.iter().count(), 5);
    assert_eq!(t.effective_size(), 39 * 4096);
    assert_eq!(t.length(), 5 * 16);
    assert!(!t.is_empty());
}

#[test]
fn runs_touching_across_chunks_merge() {
    // page 32767 ends one span, 32768 starts the next: one range
    let a = Chunk::encode(0, 32768, &[(32760, 8)]).unwrap();
    let b = Chunk::encode(32768, 32768, &[(0, 4), (10, 1)]).unwrap();
    let mut l = RunList::default();
    for c in [&a, &b] {
        for (off, n) in c.runs().unwrap() {
            l.add(c.first + off as u64, n as u64).unwrap();
        }
    }
    assert_eq!(l.runs, vec![PageRun { first: 32760, count: 12 }, PageRun { first: 32778, count: 1 }]);
    // a page twice, or going back, is malformed
    assert!(matches!(l.add(32778, 1), Err(Error::Malformed(_))));
    assert!(matches!(l.add(5, 1), Err(Error::Malformed(_))));
    // an address beyond 64 bits
    let mut l = RunList::default();
    l.add(u64::MAX / 4096, 1).unwrap();
    assert!(l.table(4096).is_ok());
    l.add(u64::MAX / 4096 + 1, 1).unwrap();
    assert!(matches!(l.table(4096), Err(Error::Malformed(_))));
}

/// A RANGES packet holding `chunks` raw (header and payload given).
fn ranges_packet(total: u64, chunks: &[(u64, u32, u8, u8, &[u8])]) -> Vec<u8> {
    let mut b = vec![0x0f, 0x80, 0, 0, 0, 0, 0, 0, 14, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&2u64.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    for &(first, span, kind, reserved, payload) in chunks {
        b.extend_from_slice(&first.to_le_bytes());
        b.extend_from_slice(&span.to_le_bytes());
        b.push(kind);
        b.push(reserved);
        b.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        b.extend_from_slice(payload);
    }
    let n = b.len() as u32;
    b[4..8].copy_from_slice(&n.to_le_bytes());
    b
}

#[test]
fn chunks_outside_the_canonical_form_are_malformed() {
    // the well-formed one first
    assert!(decode(&ranges_packet(3, &[(0, 100, 0, 0, &[0, 3])])).is_ok());
    assert!(decode(&ranges_packet(4, &[(0, 100, 0, 0, &[0x80, 0x80, 0x00, 0x04])])).is_ok(), "a long LEB128 is accepted");
    let cases: &[(&str, Vec<u8>)] = &[
        ("span 0", ranges_packet(1, &[(0, 0, 0, 0, &[0, 1])])),
        ("span 32769", ranges_packet(1, &[(0, 32769, 0, 0, &[0, 1])])),
        ("first + span overflows", ranges_packet(1, &[(u64::MAX - 5, 10, 0, 0, &[0, 1])])),
        ("kind 2", ranges_packet(1, &[(0, 10, 2, 0, &[0, 1])])),
        ("reserved byte", ranges_packet(1, &[(0, 10, 0, 1, &[0, 1])])),
        ("len 0", ranges_packet(0, &[(0, 10, 0, 0, &[])])),
        ("run 0", ranges_packet(1, &[(0, 10, 0, 0, &[0, 0])])),
        ("second gap 0", ranges_packet(3, &[(0, 10, 0, 0, &[0, 1, 0, 2])])),
        ("run past the span", ranges_packet(4, &[(0, 10, 0, 0, &[8, 4])])),
        ("4-byte LEB128", ranges_packet(1, &[(0, 10, 0, 0, &[0x80, 0x80, 0x80, 0x00, 1])])),
        ("payload ends after a gap", ranges_packet(1, &[(0, 10, 0, 0, &[0, 1, 2])])),
        ("payload ends inside a number", ranges_packet(1, &[(0, 10, 0, 0, &[0, 0x81])])),
        ("RAW last byte 0", ranges_packet(1, &[(0, 16, 1, 0, &[1, 0])])),
        ("RAW longer than the span", ranges_packet(1, &[(0, 8, 1, 0, &[0, 1])])),
        ("RAW bit beyond the span", ranges_packet(1, &[(0, 4, 1, 0, &[0x10])])),
        ("more pages than total_pages", ranges_packet(2, &[(0, 10, 0, 0, &[0, 3])])),
        ("chunks out of order", ranges_packet(2, &[(100, 10, 0, 0, &[0, 1]), (0, 10, 0, 0, &[0, 1])])),
        ("overlapping spans", ranges_packet(2, &[(0, 10, 0, 0, &[0, 1]), (9, 10, 0, 0, &[0, 1])])),
    ];
    for (what, b) in cases {
        let why = malformed(b);
        assert!(!why.is_empty(), "{}", what);
    }
    // nchunks that does not fill the packet, both ways
    let mut b = ranges_packet(1, &[(0, 10, 0, 0, &[0, 1])]);
    b[40] = 2;
    malformed(&b);
    b[40] = 0;
    malformed(&b);
    // a chunk's len past the packet's end
    let mut b = ranges_packet(1, &[(0, 10, 0, 0, &[0, 1])]);
    b[48 + 14] = 3;
    malformed(&b);
}

#[test]
fn headers_and_bodies_outside_the_spec_are_malformed() {
    let ok = example("OK", 0);
    for n in 0..16 {
        malformed(&ok[..n]); // shorter than a header, empty too
    }
    let mut b = ok.clone();
    b[4] = 17; // length field other than the packet's size
    malformed(&b);
    let mut b = ok.clone();
    b[2] = 1; // PROTO_F_MORE on OK
    malformed(&b);
    let mut b = ok.clone();
    b[2] = 2; // an unknown header flag
    malformed(&b);
    let mut b = ok.clone();
    b[0] = 0x77; // an unknown type
    malformed(&b);
    let mut b = ok.clone();
    b.push(0); // a body where none belongs
    b[4] = 17;
    malformed(&b);
    // over 65536 bytes
    let mut big = vec![0u8; wire::MAX_MSG + 1];
    big[..16].copy_from_slice(&ok);
    big[4..8].copy_from_slice(&((wire::MAX_MSG + 1) as u32).to_le_bytes());
    malformed(&big);
    // a reserved field (SUBSCRIBE_REPLY body offset 4)
    let mut b = example("SUBSCRIBE_REPLY", 0);
    b[16 + 4] = 1;
    malformed(&b);
    // a list whose count does not fill the packet
    let mut b = example("LIST_DEVICES_REPLY", 0);
    b[16] = 3;
    malformed(&b);
    // names: no NUL, bytes after the NUL, empty, not UTF-8, a control
    let good = example("LIST_DEVICES_REPLY", 0);
    for (at, byte) in [(24 + 63, b'x'), (24 + 10, b'x'), (24, 0), (24, 0xff), (25, 0x07), (25, 0x7f)] {
        let mut b = good.clone();
        if at == 24 + 63 {
            for i in 24..24 + 64 {
                b[i] = b'a';
            }
        }
        b[at] = byte;
        malformed(&b);
    }
    // ERROR: errno 0, a control character in the text, over 1024 bytes
    let e = example("ERROR", 0);
    let mut b = e.clone();
    b[16] = 0;
    malformed(&b);
    let mut b = e.clone();
    b[30] = b'\n';
    malformed(&b);
    let mut b = e[..24].to_vec();
    b.extend(std::iter::repeat(b'a').take(1025));
    let n = b.len() as u32;
    b[4..8].copy_from_slice(&n.to_le_bytes());
    malformed(&b);
}

#[test]
fn no_input_makes_the_decoder_panic() {
    // every byte of every example set to a few telling values, and every
    // truncation: an answer (Ok or Err) each time, never a panic
    for (_, bytes) in examples() {
        for n in 0..bytes.len() {
            let _ = decode(&bytes[..n]);
        }
        for i in 0..bytes.len() {
            for v in [0x00u8, 0x01, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                if let Ok(p) = decode(&b) {
                    if let Message::Ranges { chunks, .. } = &p.msg {
                        for c in chunks {
                            c.runs().unwrap();
                        }
                    }
                    // what decodes encodes back to the same bytes
                    assert_eq!(encode(&p).unwrap(), b);
                }
            }
        }
    }
}

#[test]
fn requests_that_cannot_be_sent_are_refused() {
    for name in ["", "a\nb", &"x".repeat(64), "a\0b"] {
        let p = Packet { id: 1, more: false, msg: Message::CreateDomain { flags: 1, device: name.into() } };
        assert!(matches!(encode(&p), Err(Error::Invalid(_))), "{:?}", name);
    }
    let p = Packet { id: 1, more: true, msg: Message::Ok };
    assert!(matches!(encode(&p), Err(Error::Invalid(_))));
}

#[test]
fn encoder_picks_runs_only_when_strictly_smaller() {
    // 8 pages: RAW is 1 byte, RUNS (0,8) is 2: RAW
    assert_eq!(Chunk::encode(0, 8, &[(0, 8)]).unwrap().kind, wire::CHUNK_RAW);
    // page 100 alone: RUNS (100,1) 2 bytes, RAW 13: RUNS
    assert_eq!(Chunk::encode(0, 200, &[(100, 1)]).unwrap().kind, wire::CHUNK_RUNS);
    // a tie (2 bytes each) goes RAW
    assert_eq!(Chunk::encode(0, 16, &[(8, 1)]).unwrap().kind, wire::CHUNK_RAW);
    assert!(Chunk::encode(0, 16, &[]).is_none());
}

/// The session's rules against a scripted daemon on the other end of a
/// socket pair (datagrams keep packet boundaries as SOCK_SEQPACKET does):
/// what the sim cannot produce (EV_STATE_LOST, multi-packet streams of
/// chosen shape, a daemon breaking the rules).
mod session {
    use super::*;
    use crate::{flag, Client, Event, Options};
    use std::os::unix::net::UnixDatagram;
    use std::thread;

    struct Fake(UnixDatagram);

    impl Fake {
        fn recv(&self) -> Packet {
            let mut b = vec![0u8; 70000];
            let n = self.0.recv(&mut b).unwrap();
            decode(&b[..n]).unwrap()
        }
        fn send(&self, id: u64, more: bool, msg: Message) {
            self.raw(&encode(&Packet { id, more, msg }).unwrap());
        }
        fn raw(&self, b: &[u8]) {
            self.0.send(b).unwrap();
        }
        /// Answers HELLO with `features` (those asked, masked).
        fn hello(&self, features: u64) {
            let p = self.recv();
            let asked = match p.msg {
                Message::Hello { major: 1, minor: 0, features, resume_token: 0 } => features,
                m => panic!("{:?}", m),
            };
            assert_eq!(asked & crate::feature::FD_PASSING, 0, "never asked");
            self.send(
                p.id,
                false,
                Message::HelloReply {
                    major: 1,
                    minor: 0,
                    max_msg: 65536,
                    features: asked & features,
                    session_token: if asked & features & 2 != 0 { 77 } else { 0 },
                    uid: 1000,
                    gid: 1000,
                    session_flags: 0,
                },
            );
        }
        /// Answers SUBSCRIBE with a 4 KiB page.
        fn subscribe(&self) {
            let p = self.recv();
            assert!(matches!(p.msg, Message::Subscribe { domain_id: 1, .. }));
            self.send(p.id, false, Message::SubscribeReply { domain_id: 1, page_size: 4096, max_leaf: 4096, generation: 1 });
        }
    }

    fn with_daemon(features: u64, script: impl FnOnce(Fake) + Send + 'static) -> (Client, thread::JoinHandle<()>) {
        let (a, b) = UnixDatagram::pair().unwrap();
        let t = thread::spawn(move || {
            let f = Fake(b);
            f.hello(features);
            script(f)
        });
        (Client::from_socket(a, &Options::default()).unwrap(), t)
    }

    fn ranges(generation: u64, seq: u32, total: u64, chunks: Vec<Chunk>) -> Message {
        Message::Ranges { generation, domain_id: 1, seq, total_pages: total, chunks }
    }

    #[test]
    fn state_lost_and_events_reach_the_caller_and_runs_merge_across_packets() {
        let (mut c, t) = with_daemon(0xb, |f| {
            f.subscribe();
            let p = f.recv(); // SYNC: events first, between request and reply
            f.send(0, false, Message::EvRound { domain_id: 1, generation: 2, round_pages: 5, pending_pages: 5 });
            f.send(0, false, Message::EvStateLost { domain_id: 1 });
            f.send(p.id, false, Message::SyncReply { generation: 3, pending_pages: 65536 });
            let p = f.recv(); // GET_RANGES: a failure
            f.send(p.id, false, Message::Error { errno: 5, text: "harvest failed".into() });
            let p = f.recv(); // GET_RANGES: every page of two spans, in two packets
            assert_eq!(p.msg, Message::GetRanges { domain_id: 1, flags: 0 });
            let c0 = Chunk::encode(0, 32768, &[(0, 32768)]).unwrap();
            let c1 = Chunk::encode(32768, 32768, &[(0, 32768)]).unwrap();
            f.send(p.id, true, ranges(3, 0, 65536, vec![c0]));
            f.send(0, false, Message::EvRound { domain_id: 1, generation: 4, round_pages: 1, pending_pages: 1 });
            f.send(p.id, false, ranges(3, 1, 65536, vec![c1]));
            let p = f.recv();
            assert_eq!(p.msg, Message::Ack { domain_id: 1, generation: 3 });
            f.send(p.id, false, Message::Ok);
            let p = f.recv(); // GET_RANGES with RESEND
            assert_eq!(p.msg, Message::GetRanges { domain_id: 1, flags: flag::RANGES_RESEND });
            f.send(p.id, false, ranges(4, 0, 0, vec![]));
        });
        c.subscribe(1, 0, true).unwrap();
        assert_eq!(c.sync(1).unwrap().generation, 3);
        assert!(c.state_lost(1));
        // a GET_RANGES that fails keeps the flag for the next one
        assert_eq!(c.get_ranges(1, false).unwrap_err().errno(), Some(crate::errno::EIO));
        assert!(c.state_lost(1));
        let r = c.get_ranges(1, false).unwrap();
        assert!(r.everything_dirty, "EV_STATE_LOST came before the GET_RANGES");
        assert!(!c.state_lost(1));
        assert_eq!((r.packets, r.chunks), (2, 2));
        assert_eq!(r.runs(), &[PageRun { first: 0, count: 65536 }]);
        assert_eq!(r.table().regions(), &[MemoryRange { gpa: 0, length: 65536 * 4096 }]);
        c.ack(1, 3).unwrap();
        // the events kept: the latest EV_ROUND of the domain, the state lost
        assert_eq!(c.poll_event(None).unwrap(), Some(Event::StateLost { domain_id: 1 }));
        assert_eq!(
            c.poll_event(None).unwrap(),
            Some(Event::Round { domain_id: 1, generation: 4, round_pages: 1, pending_pages: 1 })
        );
        let r = c.get_ranges(1, true).unwrap();
        assert!(!r.everything_dirty);
        assert!(r.table().is_empty());
        t.join().unwrap();
    }

    #[test]
    fn poll_event_takes_what_is_there_without_waiting() {
        let (mut c, t) = with_daemon(0xb, |f| {
            f.send(0, false, Message::EvRound { domain_id: 3, generation: 9, round_pages: 2, pending_pages: 2 });
            f.send(0, false, Message::EvStateLost { domain_id: 4 });
            let _ = f.recv(); // LIST_DEVICES: answered by the end of the connection
            f.raw(&[]);
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        let zero = Some(std::time::Duration::ZERO);
        assert_eq!(
            c.poll_event(zero).unwrap(),
            Some(Event::Round { domain_id: 3, generation: 9, round_pages: 2, pending_pages: 2 })
        );
        assert_eq!(c.poll_event(zero).unwrap(), Some(Event::StateLost { domain_id: 4 }));
        assert!(c.state_lost(4));
        assert_eq!(c.poll_event(zero).unwrap(), None);
        assert_eq!(c.poll_event(Some(std::time::Duration::from_millis(30))).unwrap(), None);
        // the socket blocks again: a request waits for its answer
        assert!(matches!(c.request(Message::ListDevices), Err(Error::Closed)));
        t.join().unwrap();
    }

    /// One GET_RANGES answered by `answer`: the error it makes.
    fn bad_stream(features: u64, answer: impl FnOnce(&Fake, u64) + Send + 'static) -> Error {
        let (mut c, t) = with_daemon(features, move |f| {
            f.subscribe();
            let p = f.recv();
            answer(&f, p.id);
        });
        c.subscribe(1, 0, true).unwrap();
        let e = c.get_ranges(1, false).unwrap_err();
        t.join().unwrap();
        e
    }

    fn one(first: u64, runs: &[(u32, u32)]) -> Vec<Chunk> {
        vec![Chunk::encode(first, 32768, runs).unwrap()]
    }

    #[test]
    fn streams_breaking_the_rules_are_malformed() {
        let cases: Vec<(&str, Box<dyn FnOnce(&Fake, u64) + Send>)> = vec![
            ("a gap in seq", Box::new(|f: &Fake, id| {
                f.send(id, true, ranges(2, 0, 2, one(0, &[(0, 1)])));
                f.send(id, false, ranges(2, 2, 2, one(32768, &[(0, 1)])));
            })),
            ("another generation", Box::new(|f: &Fake, id| {
                f.send(id, true, ranges(2, 0, 2, one(0, &[(0, 1)])));
                f.send(id, false, ranges(3, 1, 2, one(32768, &[(0, 1)])));
            })),
            ("pages short of total_pages", Box::new(|f: &Fake, id| {
                f.send(id, false, ranges(2, 0, 3, one(0, &[(0, 2)])));
            })),
            ("more pages than total_pages over two packets", Box::new(|f: &Fake, id| {
                f.send(id, true, ranges(2, 0, 2, one(0, &[(0, 2)])));
                f.send(id, false, ranges(2, 1, 2, one(32768, &[(0, 1)])));
            })),
            ("a span going back across packets", Box::new(|f: &Fake, id| {
                f.send(id, true, ranges(2, 0, 2, one(32768, &[(0, 1)])));
                f.send(id, false, ranges(2, 1, 2, one(0, &[(0, 1)])));
            })),
            ("another domain", Box::new(|f: &Fake, id| {
                f.send(id, false, Message::Ranges { generation: 2, domain_id: 9, seq: 0, total_pages: 0, chunks: vec![] });
            })),
            ("another type", Box::new(|f: &Fake, id| f.send(id, false, Message::Ok))),
            ("a reply for a request never sent", Box::new(|f: &Fake, id| {
                f.send(id + 5, false, ranges(2, 0, 0, vec![]));
            })),
            ("an event with an id", Box::new(|f: &Fake, id| {
                f.send(id, false, Message::EvStateLost { domain_id: 1 });
            })),
            ("a packet over 65536 bytes", Box::new(|f: &Fake, _| f.raw(&vec![0u8; 65537]))),
            ("a short packet", Box::new(|f: &Fake, _| f.raw(&[0x0f, 0x80, 0, 0]))),
        ];
        for (what, answer) in cases {
            match bad_stream(0xb, answer) {
                Error::Malformed(_) => {}
                e => panic!("{}: {:?}", what, e),
            }
        }
        // RAW without RANGES_RAW
        match bad_stream(0x2, |f, id| {
            f.send(id, false, ranges(2, 0, 1, vec![Chunk::encode_raw(0, 8, &[(3, 1)]).unwrap()]));
        }) {
            Error::Malformed(s) => assert!(s.contains("RAW"), "{}", s),
            e => panic!("{:?}", e),
        }
    }

    #[test]
    fn errors_carry_errno_and_text_also_mid_stream() {
        let e = bad_stream(0xb, |f, id| {
            f.send(id, true, ranges(2, 0, 2, one(0, &[(0, 1)])));
            f.send(id, false, Message::Error { errno: 5, text: "harvest of domain 1 failed".into() });
        });
        assert_eq!(e.errno(), Some(crate::errno::EIO));
        assert!(e.to_string().contains("harvest of domain 1 failed"));
        // the connection ends (an empty datagram stands for the end of
        // file a SOCK_SEQPACKET socket reads)
        let e = bad_stream(0xb, |f, _| f.raw(&[]));
        assert!(matches!(e, Error::Closed), "{:?}", e);
        // HELLO refused: the version
        let (a, b) = UnixDatagram::pair().unwrap();
        let t = thread::spawn(move || {
            let f = Fake(b);
            let p = f.recv();
            f.send(p.id, false, Message::Error { errno: 93, text: "dirtyd speaks 2.0, the client 1.0".into() });
        });
        let e = Client::from_socket(a, &Options::default()).unwrap_err();
        assert_eq!(e.errno(), Some(crate::errno::EPROTONOSUPPORT));
        t.join().unwrap();
        // HELLO_REPLY with a feature not asked for
        let (a, b) = UnixDatagram::pair().unwrap();
        let t = thread::spawn(move || {
            let f = Fake(b);
            let p = f.recv();
            f.send(p.id, false, Message::HelloReply {
                major: 1, minor: 0, max_msg: 65536, features: 0x4, session_token: 0,
                uid: 0, gid: 0, session_flags: 0,
            });
        });
        assert!(matches!(Client::from_socket(a, &Options::default()), Err(Error::Malformed(_))));
        t.join().unwrap();
    }
}
