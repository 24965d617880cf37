// SPDX-License-Identifier: MIT
//! The crate against the real dirtyd on the simulated backend, started by
//! tests/harness (its `dirtyd-harness`, as the Python suites do): domains,
//! DMA writes of known pages, and exactly those pages back, round after
//! round, with ACK, RESEND, events, resume and a lost session.
//!
//! `DIRTYD_BIN` and `DIRTYD_HARNESS` name the programs (CTest sets them,
//! tests/CMakeLists.txt); without them every test here says so and passes
//! without running (a plain `cargo test` away from a build tree).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dirtyd::{errno, flag, Client, Error, Event, MemoryRange, Options, PageRun};

const PAGE: u64 = 4096;
/// The 39 pages the device writes in PROTOCOL.md section 14.
const SECTION_14_PAGES: [(u64, u64); 5] =
    [(0x40000, 3), (0x40010, 1), (0x403f9, 16), (0x48000, 10), (0x4800b, 9)];

struct Daemon {
    child: Child,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
    sock: PathBuf,
    log: PathBuf,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Daemon {
    /// A dirtyd on the sim with `sim0`, `sim1` (can track) and
    /// `sim-legacy0` (cannot), 4 KiB backing: a reported page is a
    /// written page.  `None` without DIRTYD_BIN/DIRTYD_HARNESS.
    fn start(name: &str) -> Option<Daemon> {
        Self::start_with(name, "4k")
    }

    /// The same with another `backing_page_size`.
    fn start_with(name: &str, backing: &str) -> Option<Daemon> {
        let (bin, harness) = match (std::env::var("DIRTYD_BIN"), std::env::var("DIRTYD_HARNESS")) {
            (Ok(b), Ok(h)) => (b, h),
            _ => {
                eprintln!("{}: DIRTYD_BIN and DIRTYD_HARNESS not set: not run", name);
                return None;
            }
        };
        let dir = std::env::temp_dir().join(format!(
            "dirtyd-rust-{}-{}-{}",
            std::process::id(),
            name,
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s.sock");
        let conf = dir.join("dirtyd.conf");
        let log = dir.join("dirtyd.log");
        std::fs::write(
            &conf,
            format!(
                "[daemon]\nbackend = sim\nsocket = {}\nlog_level = info\n\
                 [sim]\ndevices = sim0:dirty, sim1:dirty, sim-legacy0:nodirty\n\
                 backing_page_size = {}\n",
                sock.display(),
                backing
            ),
        )
        .unwrap();
        let mut child = Command::new(harness)
            .arg("--dirtyd")
            .arg(bin)
            .arg("--config")
            .arg(&conf)
            .arg("--socket")
            .arg(&sock)
            .arg("--log")
            .arg(&log)
            .arg("--no-notify")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("dirtyd-harness runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let stdin = child.stdin.take();
        let d = Daemon { child, stdin, dir, sock, log };
        assert!(line.starts_with("ready "), "dirtyd-harness: {:?}\n{}", line, d.log_text());
        Some(d)
    }

    fn client(&self) -> Client {
        Client::connect(&self.sock).expect("connect and HELLO")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- dirtyd log (last lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{}", l);
            }
        }
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"stop\n");
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A tracking domain of `device` mapping `[iova, iova + len)`, tracking on.
fn domain(c: &mut Client, device: &str, iova: u64, len: u64) -> u32 {
    let d = c.create_domain(device, flag::CREATE_TRACKING | flag::CREATE_NO_HUGE_PAGES).unwrap();
    assert_eq!(d.status & flag::STATUS_SUPPORTED, flag::STATUS_SUPPORTED);
    c.map(d.domain_id, iova, len, flag::MAP_READABLE | flag::MAP_WRITEABLE).unwrap();
    c.track_start(d.domain_id).unwrap();
    d.domain_id
}

/// The device writes these pages, one DMA_WRITE per run.
fn write(c: &mut Client, d: u32, runs: &[(u64, u64)]) {
    for &(first, count) in runs {
        c.dma_write(d, first * PAGE, count * PAGE).unwrap();
    }
}

/// The runs of a set of pages, maximal: what the crate must return.
fn runs_of(pages: &BTreeSet<u64>) -> Vec<PageRun> {
    let mut v: Vec<PageRun> = Vec::new();
    for &p in pages {
        match v.last_mut() {
            Some(r) if r.first + r.count == p => r.count += 1,
            _ => v.push(PageRun { first: p, count: 1 }),
        }
    }
    v
}

fn pages(runs: &[(u64, u64)]) -> BTreeSet<u64> {
    runs.iter().flat_map(|&(f, n)| f..f + n).collect()
}

fn table_of(runs: &[PageRun]) -> Vec<MemoryRange> {
    runs.iter().map(|r| MemoryRange { gpa: r.first * PAGE, length: r.count * PAGE }).collect()
}

/// SYNC, GET_RANGES: exactly `want`, in pages and in bytes.
fn expect(c: &mut Client, d: u32, want: &BTreeSet<u64>, resend: bool) -> dirtyd::Ranges {
    let s = c.sync(d).unwrap();
    let r = c.get_ranges(d, resend).unwrap();
    let runs = runs_of(want);
    assert_eq!(r.runs(), &runs[..]);
    assert_eq!(r.table().regions(), &table_of(&runs)[..]);
    assert_eq!(r.total_pages, want.len() as u64);
    assert_eq!(r.generation, s.generation);
    assert_eq!(r.page_size, PAGE);
    assert!(!r.everything_dirty);
    r
}

#[test]
fn rounds_with_ack_and_resend_give_exactly_the_pages_written() {
    let dm = match Daemon::start("rounds") {
        Some(d) => d,
        None => return,
    };
    let mut c = dm.client();
    let s = c.session().clone();
    assert_eq!(s.features, 0xb, "RANGES_RAW | RESUME | EVENTS: the sim has no FD_PASSING");
    assert_ne!(s.session_token, 0);
    assert!(!s.resumed() && !s.state_lost());
    let names: Vec<String> = c.list_devices().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["sim0", "sim1", "sim-legacy0"]);

    // a device that cannot track: the daemon's errno and sentence
    match c.create_domain("sim-legacy0", flag::CREATE_TRACKING) {
        Err(e @ Error::Daemon { .. }) => {
            assert_eq!(e.errno(), Some(errno::EOPNOTSUPP));
            assert!(e.to_string().contains("sim-legacy0"), "{}", e);
        }
        other => panic!("{:?}", other),
    }

    // section 14's session: 1 GiB at 1 GiB, subscribed with CLEAN
    let d = domain(&mut c, "sim0", 1 << 30, 1 << 30);
    let sub = c.subscribe(d, 0, true).unwrap();
    assert_eq!((sub.page_size, sub.max_leaf), (PAGE, PAGE));
    let doms = c.list_domains().unwrap();
    assert_eq!(doms.len(), 1);
    assert_eq!((doms[0].domain_id, doms[0].mapped_bytes, doms[0].subscribers), (d, 1 << 30, 1));

    // round 1: the 39 pages of section 14, one RUNS and one RAW chunk
    let w1 = SECTION_14_PAGES;
    write(&mut c, d, &w1);
    let r = expect(&mut c, d, &pages(&w1), false);
    assert_eq!((r.total_pages, r.packets, r.chunks), (39, 1, 2));
    c.ack(d, r.generation).unwrap();

    // round 2: runs that cross span borders (page 0x48000 and 0x50000 are
    // multiples of 32768) come back as one range each
    let w2 = [(0x47ff0, 0x20), (0x4fffe, 4), (0x5fff0, 0x10), (0x60000, 5000)];
    write(&mut c, d, &w2);
    let r = expect(&mut c, d, &pages(&w2), false);
    assert_eq!(r.runs().len(), 3, "0x5fff0..0x60000 and 0x60000.. merge");
    assert!(r.chunks >= 5, "{} chunks", r.chunks);
    c.ack(d, r.generation).unwrap();

    // round 3: not acknowledged, more written, then RESEND: the union
    let a = [(0x41000, 7), (0x42000, 1)];
    let b = [(0x41007, 1), (0x43000, 2)];
    write(&mut c, d, &a);
    let ra = expect(&mut c, d, &pages(&a), false);
    write(&mut c, d, &b);
    let mut both = pages(&a);
    both.extend(pages(&b));
    let rb = expect(&mut c, d, &both, true);
    assert!(rb.generation > ra.generation);
    // RESEND put generation ra back: no longer in flight
    assert_eq!(c.ack(d, ra.generation).unwrap_err().errno(), Some(errno::ENOENT));
    c.ack(d, rb.generation).unwrap();

    // GET_RANGES twice with no round between: the same generation again
    let w4 = [(0x70000, 3)];
    write(&mut c, d, &w4);
    let r1 = expect(&mut c, d, &pages(&w4), false);
    let r2 = c.get_ranges(d, false).unwrap();
    assert_eq!((r2.generation, r2.runs()), (r1.generation, r1.runs()));
    c.ack(d, r2.generation).unwrap();
    // acknowledged twice: not in flight any more
    assert_eq!(c.ack(d, r2.generation).unwrap_err().errno(), Some(errno::ENOENT));

    // nothing written: an empty generation, one packet
    let r = expect(&mut c, d, &BTreeSet::new(), false);
    assert!(r.table().is_empty());
    assert_eq!((r.packets, r.chunks), (1, 0));
    c.ack(d, r.generation).unwrap();

    let st = c.stats(d).unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].pending_pages, 0);
    // a resent generation counts again (6.13): ra 8, rb 11, r1 and r2 3 each
    assert_eq!(st[0].pages_sent, 39 + pages(&w2).len() as u64 + 8 + 11 + 3 + 3);

    // a subscription without CLEAN starts with every mapped page pending:
    // eight whole spans, one range
    let mut c2 = dm.client();
    c2.subscribe(d, 0, false).unwrap();
    let r = c2.get_ranges(d, false).unwrap();
    assert_eq!(r.runs(), &[PageRun { first: 0x40000, count: 0x40000 }]);
    assert_eq!(r.table().regions(), &[MemoryRange { gpa: 1 << 30, length: 1 << 30 }]);
    assert_eq!(r.chunks, 8);
    c2.ack(d, r.generation).unwrap();
    c2.unsubscribe(d).unwrap();
    assert_eq!(c2.unsubscribe(d).unwrap_err().errno(), Some(errno::ENOENT));

    c.unsubscribe(d).unwrap();
    c.destroy_domain(d).unwrap();
    assert_eq!(c.sync(d).unwrap_err().errno(), Some(errno::ENOENT));
}

#[test]
fn a_stream_of_several_packets_merges_into_one_range() {
    // 2 MiB IO pages: the simulator's page tables for 512 GiB stay small
    let dm = match Daemon::start_with("stream", "2m") {
        Some(d) => d,
        None => return,
    };
    let mut c = dm.client();
    let d = c.create_domain("sim1", flag::CREATE_TRACKING).unwrap().domain_id;
    // 512 GiB at 1 TiB, subscribed without CLEAN: every page pending, 4096
    // whole spans of 20 bytes each, more than one packet holds (65536)
    let (iova, len) = (1u64 << 40, 1u64 << 39);
    c.map(d, iova, len, flag::MAP_READABLE | flag::MAP_WRITEABLE).unwrap();
    c.track_start(d).unwrap();
    let sub = c.subscribe(d, 0, false).unwrap();
    assert_eq!((sub.page_size, sub.max_leaf), (PAGE, 2 << 20));
    let r = c.get_ranges(d, false).unwrap();
    assert_eq!((r.packets, r.chunks), (2, 4096));
    assert_eq!(r.runs(), &[PageRun { first: iova / PAGE, count: len / PAGE }]);
    assert_eq!(r.table().regions(), &[MemoryRange { gpa: iova, length: len }]);
    c.ack(d, r.generation).unwrap();
    // one byte written in two leaves: both whole leaves (9.5), exactly
    c.dma_write(d, iova + (5 << 21), PAGE).unwrap();
    c.dma_write(d, iova + (6 << 21) + 7 * PAGE, PAGE).unwrap();
    let s = c.sync(d).unwrap();
    let r = c.get_ranges(d, false).unwrap();
    assert_eq!(r.generation, s.generation);
    assert_eq!(r.runs(), &[PageRun { first: (iova + (5 << 21)) / PAGE, count: 1024 }]);
    c.ack(d, r.generation).unwrap();
}

#[test]
fn events_resume_and_lost_state() {
    let dm = match Daemon::start("events") {
        Some(d) => d,
        None => return,
    };
    let mut c = dm.client();
    let d = domain(&mut c, "sim0", 1 << 30, 1 << 26);
    // periodic rounds every 20 ms: an EV_ROUND once pages are found
    c.subscribe(d, 20, true).unwrap();
    let w = [(0x40100, 12)];
    write(&mut c, d, &w);
    let ev = c.poll_event(Some(Duration::from_secs(10))).unwrap().expect("an EV_ROUND");
    match ev {
        Event::Round { domain_id, round_pages, pending_pages, .. } => {
            assert_eq!((domain_id, round_pages, pending_pages), (d, 12, 12));
        }
        e => panic!("{:?}", e),
    }
    let r = c.get_ranges(d, false).unwrap();
    assert_eq!(r.runs(), &[PageRun { first: 0x40100, count: 12 }]);
    // not acknowledged, then the connection closes: resume it
    let token = c.session().session_token;
    let gen = r.generation;
    drop(c);
    let mut c = Client::connect_with(&dm.sock, &Options { resume_token: token, ..Options::default() }).unwrap();
    assert!(c.session().resumed());
    assert_eq!(c.session().session_token, token);
    // the unacknowledged pages are pending again, not in flight; the page
    // size comes from LIST_DOMAINS (no SUBSCRIBE_REPLY in this session)
    assert_eq!(c.ack(d, gen).unwrap_err().errno(), Some(errno::ENOENT));
    let r = c.get_ranges(d, false).unwrap();
    assert_eq!(r.runs(), &[PageRun { first: 0x40100, count: 12 }]);
    assert_eq!(r.table().regions(), &[MemoryRange { gpa: 0x40100 * PAGE, length: 12 * PAGE }]);
    c.ack(d, r.generation).unwrap();
    // nothing more pending: no event within a while of rounds
    assert_eq!(c.poll_event(Some(Duration::from_millis(200))).unwrap(), None);
    drop(c);

    // a token dirtyd does not know: everything must be taken as dirty
    let c = Client::connect_with(&dm.sock, &Options { resume_token: 0x1234_5678_9abc_def0, ..Options::default() })
        .unwrap();
    assert!(c.session().state_lost());
    assert!(!c.session().resumed());
    assert_ne!(c.session().session_token, 0x1234_5678_9abc_def0);

    // without RESUME the token is 0; without RANGES_RAW only RUNS chunks
    // come (the crate refuses RAW then): section 14's pages again
    let mut c = Client::connect_with(&dm.sock, &Options { features: 0, ..Options::default() }).unwrap();
    assert_eq!((c.session().features, c.session().session_token), (0, 0));
    let d2 = domain(&mut c, "sim1", 1 << 30, 1 << 30);
    c.subscribe(d2, 0, true).unwrap();
    let w1 = SECTION_14_PAGES;
    write(&mut c, d2, &w1);
    let r = expect(&mut c, d2, &pages(&w1), false);
    assert_eq!(r.chunks, 2);
    c.ack(d2, r.generation).unwrap();
}
