#!/usr/bin/env python3
"""Regenerate section 14 ("## 14. Examples") of PROTOCOL.md from a running
dirtyd, so that the examples cannot drift from what the daemon sends.

    python3 examples.py --check PROTOCOL.md [--dirtyd build/daemon/dirtyd]
    python3 examples.py --write PROTOCOL.md [--dirtyd build/daemon/dirtyd]
    (--harness PATH: tests/harness/dirtyd-harness, which starts dirtyd;
    default: the one in the build tree of --dirtyd)

It starts its own dirtyd on the simulated backend (devices sim0, which can
track dirty pages, and sim-legacy0, which cannot; backing_page_size = 4k, so
max_leaf is 4 KiB and a reported page is a written page), runs one scripted
session as uid 1000 (setuid in a forked child when run as root), restarts
the daemon without its state, reconnects with the old token, and renders
every packet as a ```hex block whose comments are computed from the fields
decoded by conformance.py's codec (written from PROTOCOL.md alone).

--write replaces section 14 and leaves every other byte of the file as it
was.  --check renders the section again and compares it with the file,
taking from the file only the fields whose value legitimately changes from
run to run (session tokens, STATS last_round_ns and dirty_rate); it exits 1
with a unified diff when anything else differs.
"""

import argparse
import difflib
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as C  # noqa: E402  (our own codec, from the spec)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIRTYD = os.path.normpath(os.path.join(HERE, "..", "..", "build", "daemon", "dirtyd"))

UID = GID = 1000
PAGE = 4096
GIB = 1 << 30
DEV_GOOD, DEV_BAD = "sim0", "sim-legacy0"
MAP_IOVA, MAP_LEN = GIB, GIB
HELLO_FEATURES = C.FEAT_RANGES_RAW | C.FEAT_RESUME | C.FEAT_FD_PASSING | C.FEAT_EVENTS | C.FEAT_ADOPT
HELLO2_FEATURES = C.FEAT_RANGES_RAW | C.FEAT_RESUME | C.FEAT_EVENTS
# The pages the device writes, as (first page, pages): a sparse span that
# goes as runs (0,3) (13,1) (1000,16) and a dense one that goes as a bitmap.
WRITES = [(0x40000, 3), (0x40010, 1), (0x403f9, 16), (0x48000, 10), (0x4800b, 9)]
EVENT_WRITE = (0x50000, 12)
MONITOR_INTERVAL_MS = 100

# Fields whose value differs from run to run: (index in the story, key)
# where key is a field name or ("entry", i, name).
VARIABLE = [(1, "session_token"), (20, ("entry", 0, "last_round_ns")), (20, ("entry", 0, "dirty_rate")),
            (23, "resume_token"), (24, "session_token")]

CONF = """[daemon]
backend = sim
socket = %(sock)s
socket_mode = 0666
log_level = info
[sim]
devices = %(good)s:dirty, %(bad)s:nodirty
backing_page_size = 4k
"""


class StoryError(Exception):
    pass


# ---------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------

def _expect(m, mtype, what):
    if m.type != mtype or m.problems:
        raise StoryError("%s: expected %s, got %s %s (%s)" % (what, C.tname(mtype), C.ok_or_err(m),
                                                           m.problems, C.hexdump(m.raw, 64)))
    return m


def _session(sock):
    """The first connection of the story; returns the packets (bytes) in
    story order and the numbers the text needs."""
    out = []
    c = C.Conn(sock, timeout=5.0)

    def ask(mtype, fields, mid, want, show=True, show_reply=True):
        data = C.encode(mtype, mid, fields)
        r = c.raw(data, mid)
        if len(r) != 1:
            raise StoryError("%s: %d packets answered it" % (C.tname(mtype), len(r)))
        _expect(r[0], want, C.tname(mtype))
        if show:
            out.append(data)
        if show_reply:
            out.append(r[0].raw)
        return r[0]

    rep = ask(C.HELLO, {"major": 1, "minor": 0, "features": HELLO_FEATURES}, 1, C.HELLO_REPLY)
    c.features = rep.f["features"]
    token = rep.f["session_token"]
    ask(C.LIST_DEVICES, None, 2, C.LIST_DEVICES_REPLY)
    ask(C.CREATE_DOMAIN, {"flags": C.CREATE_TRACKING, "device": DEV_BAD}, 3, C.ERROR)
    rep = ask(C.CREATE_DOMAIN, {"flags": C.CREATE_TRACKING, "device": DEV_GOOD}, 4, C.CREATE_DOMAIN_REPLY)
    d = rep.f["domain_id"]
    ask(C.MAP, {"domain_id": d, "flags": C.MAP_READABLE | C.MAP_WRITEABLE, "iova": MAP_IOVA, "length": MAP_LEN},
        5, C.OK)
    ask(C.TRACK_START, {"domain_id": d}, 6, C.OK, show_reply=False)
    ask(C.SUBSCRIBE, {"domain_id": d, "interval_ms": 0, "flags": C.SUBSCRIBE_CLEAN}, 7, C.SUBSCRIBE_REPLY)
    mid = 8
    for i, (first, n) in enumerate(WRITES):
        ask(C.DMA_WRITE, {"domain_id": d, "iova": first * PAGE, "length": n * PAGE}, mid, C.OK,
            show=(i == 0), show_reply=False)
        mid += 1
    ask(C.SYNC, {"domain_id": d}, mid, C.SYNC_REPLY)
    rng = ask(C.GET_RANGES, {"domain_id": d}, mid + 1, C.RANGES)
    if rng.more:
        raise StoryError("RANGES came as several packets")
    ask(C.ACK, {"domain_id": d, "generation": rng.f["generation"]}, mid + 2, C.OK, show_reply=False)
    ask(C.STATS, {"domain_id": 0}, mid + 3, C.STATS_REPLY)
    # an EV_ROUND: another client of the same uid harvests periodically
    c.events.clear()
    ask(C.DMA_WRITE, {"domain_id": d, "iova": EVENT_WRITE[0] * PAGE, "length": EVENT_WRITE[1] * PAGE},
        mid + 4, C.OK, show=False, show_reply=False)
    mon = C.Conn(sock, timeout=5.0)
    _expect(mon.hello(0), C.HELLO_REPLY, "the monitor's HELLO")
    _expect(mon.req1(C.SUBSCRIBE, {"domain_id": d, "interval_ms": MONITOR_INTERVAL_MS}), C.SUBSCRIBE_REPLY,
            "the monitor's SUBSCRIBE")
    deadline = time.monotonic() + 5
    while not c.events and time.monotonic() < deadline:
        c.drain(0.05)
    evs = [e for e in c.events if e.type == C.EV_ROUND]
    if not evs:
        raise StoryError("no EV_ROUND within 5 s of the monitor's SUBSCRIBE (interval %d ms)" % MONITOR_INTERVAL_MS)
    time.sleep(3 * MONITOR_INTERVAL_MS / 1000.0)      # later rounds find nothing: no second event
    c.drain(0.05)
    evs = [e for e in c.events if e.type == C.EV_ROUND]
    if len(evs) != 1:
        raise StoryError("%d EV_ROUND events, expected one: %s" % (len(evs), evs))
    out.append(evs[0].raw)
    # no harvest round can fail on the simulated backend: written by hand
    out.append(C.encode(C.EV_STATE_LOST, 0, {"domain_id": d}))
    strays = c.strays() + mon.strays()
    if strays:
        raise StoryError("packets nobody asked for: %s" % strays)
    mon.close()
    c.close()
    return out, token


def _reconnect(sock, token):
    c = C.Conn(sock, timeout=5.0)
    data = C.encode(C.HELLO, 1, {"major": 1, "minor": 0, "features": HELLO2_FEATURES, "resume_token": token})
    r = c.raw(data, 1)
    _expect(r[-1], C.HELLO_REPLY, "the reconnecting HELLO")
    c.close()
    return [data, r[-1].raw]


def _run_as_user(fn, *args):
    """fn(*args) as uid 1000 in a forked child when root, else here."""
    if os.geteuid() != 0:
        return fn(*args)
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(GID)
            os.setuid(UID)
            res = ("ok", fn(*args), dict(C.R.violations))
        except BaseException as e:
            res = ("exc", "%s: %s" % (type(e).__name__, e) if isinstance(e, StoryError)
                   else traceback.format_exc(), dict(C.R.violations))
        with os.fdopen(wfd, "wb") as fh:
            fh.write(pickle.dumps(res))
        os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    if not data:
        raise StoryError("the session as uid %d died" % UID)
    kind, val, viol = pickle.loads(data)
    if viol:
        raise StoryError("dirtyd sent malformed packets: %s" % "; ".join(
            "§%s %s in %s" % (k[0], k[1], C.hexdump(v, 48)) for k, v in viol.items()))
    if kind != "ok":
        raise StoryError(val)
    return val


def run_story(binary):
    """Start dirtyd, run the story, restart dirtyd, reconnect.  Returns the
    25 packets (bytes) of section 14, in order."""
    tmp = tempfile.mkdtemp(prefix="dirtyd-examples-")
    os.chmod(tmp, 0o755)
    sock = os.path.join(tmp, "dirtyd.sock")
    conf = CONF % {"sock": sock, "good": DEV_GOOD, "bad": DEV_BAD}
    daemon = None
    try:
        daemon = C.Daemon(os.path.abspath(binary), tmp, "examples", conf, sock)
        if not daemon.ready:
            raise StoryError("dirtyd did not start: %s" % daemon.logtext()[-500:])
        pkts, token = _run_as_user(_session, sock)
        rc = daemon.stop()
        if rc != 0:
            raise StoryError("dirtyd exited %s on SIGTERM" % rc)
        daemon = C.Daemon(os.path.abspath(binary), tmp, "examples2", conf, sock)
        if not daemon.ready:
            raise StoryError("dirtyd did not start again: %s" % daemon.logtext()[-500:])
        pkts += _run_as_user(_reconnect, sock, token)
        return pkts
    finally:
        if daemon is not None:
            daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

def _bits(v, names):
    return " | ".join(n for b, n in names if v & b)


FEATURES = [(C.FEAT_RANGES_RAW, "RANGES_RAW"), (C.FEAT_RESUME, "RESUME"), (C.FEAT_FD_PASSING, "FD_PASSING"),
            (C.FEAT_EVENTS, "EVENTS"), (C.FEAT_ADOPT, "ADOPT")]
SESSION_FLAGS = [(C.SESSION_RESUMED, "RESUMED"), (C.SESSION_STATE_LOST, "STATE_LOST")]
DEV_FLAGS = [(C.DEV_DIRTY_CAPABLE, "DIRTY_CAPABLE"), (C.DEV_BOUND, "BOUND"), (C.DEV_ATTACHED, "ATTACHED")]
STATUS = [(C.ST_ENABLED, "ENABLED"), (C.ST_SUPPORTED, "SUPPORTED"), (C.ST_UNSUPPORTED, "UNSUPPORTED")]
FLAGS = {C.CREATE_DOMAIN: [(C.CREATE_TRACKING, "PROTO_CREATE_TRACKING"), (C.CREATE_NO_HUGE_PAGES, "NO_HUGE_PAGES")],
         C.MAP: [(C.MAP_READABLE, "READABLE"), (C.MAP_WRITEABLE, "WRITEABLE"), (C.MAP_EXTERNAL, "EXTERNAL")],
         C.UNMAP: [(C.MAP_EXTERNAL, "EXTERNAL")],
         C.SUBSCRIBE: [(C.SUBSCRIBE_CLEAN, "PROTO_SUBSCRIBE_CLEAN: only pages written from now on")],
         C.GET_RANGES: [(C.RANGES_RESEND, "PROTO_RANGES_RESEND")]}


def _flagged(name, v, names):
    if v == 0:
        return "%s 0" % name
    return "%s %#x: %s" % (name, v, _bits(v, names) or "unknown bits")


def _size(v):
    for unit, n in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if v >= n and v % n == 0:
            return "%d %s" % (v // n, unit)
    return "%d bytes" % v


def _page_list(runs, limit=8):
    items = ["%#x" % f if n == 1 else "%#x-%#x" % (f, f + n - 1) for f, n in runs]
    if len(items) > limit:
        items = items[:limit - 1] + ["...", items[-1]]
    return ", ".join(items)


def _field_text(m, key, v, page_size):
    name = key[2] if isinstance(key, tuple) else key
    t = m.type
    if name == "reserved":
        return "reserved"
    if name in ("name", "device"):
        return '%s "%s", NUL padded to 64 bytes' % (name, v)
    if name == "features":
        return _flagged(name, v, FEATURES)
    if name == "resume_token":
        return "resume_token 0: a new session" if v == 0 else "resume_token %#x: the previous session's token" % v
    if name == "session_token":
        return "session_token %#x" % v if v else "session_token 0 (no RESUME)"
    if name == "session_flags":
        return _flagged(name, v, SESSION_FLAGS)
    if name == "capabilities":
        return _flagged(name, v, [(C.IOMMU_HW_CAP_DIRTY_TRACKING, "IOMMU_HW_CAP_DIRTY_TRACKING")])
    if name == "flags" and t == C.LIST_DEVICES_REPLY:
        return _flagged(name, v, DEV_FLAGS)
    if name == "flags":
        return _flagged(name, v, FLAGS.get(t, []))
    if name == "status":
        return _flagged(name, v, STATUS)
    if name == "domain_id" and t == C.STATS and v == 0:
        return "domain_id 0: every domain the client may see"
    if name in ("iova", "length", "mapped_bytes"):
        extra = _size(v)
        if t == C.DMA_WRITE and name == "iova":
            extra = "page %#x" % (v // page_size)
        elif t == C.DMA_WRITE and name == "length":
            extra = "%d pages" % (v // page_size)
        return "%s %#x (%s)" % (name, v, extra)
    if name == "interval_ms":
        return "interval_ms 0: no periodic rounds" if v == 0 else "interval_ms %d" % v
    if name == "errno":
        return "errno %d (%s)" % (v, C.ename(v))
    if name == "last_round_ns":
        return "last_round_ns %d (%.3g ms)" % (v, v / 1e6)
    if name == "dirty_rate":
        return "dirty_rate %d pages/s" % v
    if name == "first":
        return "first page %#x (IOVA %#x)" % (v, v * page_size)
    if name == "span":
        return "span %d pages" % v
    if name == "kind":
        return "kind %d (%s)" % (v, {0: "CHUNK_RUNS", 1: "CHUNK_RAW"}.get(v, "?"))
    if name == "payload":
        ch = v
        pages = _page_list([(ch.first + f, n) for f, n in ch.runs])
        if ch.kind == C.CHUNK_RUNS:
            pairs, cur = [], 0
            for f, n in ch.runs:
                pairs.append("(%d,%d)" % (f - cur, n))
                cur = f + n
            return "%s: pages %s" % (" ".join(pairs), pages)
        return "bitmap: pages %s" % pages
    if name == "text":
        return 'text (%d bytes, no NUL): "%s"' % (len(v), v.decode("utf-8"))
    return "%s %d" % (name, v)


def render_packet(m, page_size):
    """The lines of one ```hex block."""
    raw = m.raw
    lines = []

    def emit(data, comment):
        data = bytes(data)
        for i in range(0, max(len(data), 1), 16):
            hx = " ".join("%02x" % b for b in data[i:i + 16])
            if i == 0 and comment is not None:
                lines.append("%-48s # %s" % (hx, comment))
            else:
                lines.append(hx)

    emit(raw[:16], "header: type %s (%#06x), flags %d, length %d, id %d" % (m.name, m.type, m.flags, m.length, m.id))
    body = raw[16:]
    for off, size, key, v in C.field_map(m):
        text = _field_text(m, key, v, page_size)
        if isinstance(key, tuple):
            prefix = "%s %d: " % (key[0], key[1])
            first_field = off == min(o for o, _, k, _ in C.field_map(m) if isinstance(k, tuple) and k[:2] == key[:2])
            text = (prefix if first_field else " " * len(prefix)) + text
        if size == 0:
            continue
        emit(body[off:off + size], "%3d: %s" % (off, text))
    return lines


def _pages_text(runs):
    return ", ".join("%#x" % f if n == 1 else "%#x-%#x" % (f, f + n - 1) for f, n in runs)


def render_section(pkts):
    """Section 14 as text, from the 25 packets of the story."""
    E = [C.decode(p) for p in pkts]
    names = [m.name for m in E]
    if names != C.EXAMPLE_STORY:
        raise StoryError("the story's packets are %s, not %s" % (names, C.EXAMPLE_STORY))
    page_size = E[12].f["page_size"]
    ldr, crep, srep, sync_rep, rng, ev = E[3], E[7], E[12], E[15], E[17], E[21]
    d = crep.f["domain_id"]
    npages = sum(n for _, n in WRITES)
    total_mapped = MAP_LEN // page_size
    devs = {e["name"]: e for e in ldr.entries}
    can = [n for n, e in devs.items() if e["flags"] & C.DEV_DIRTY_CAPABLE]
    cannot = [n for n, e in devs.items() if not e["flags"] & C.DEV_DIRTY_CAPABLE]
    kinds = [("runs" if ch.kind == C.CHUNK_RUNS else "a bitmap") for ch in rng.chunks]
    first_id = E[13].id
    texts = {
        1: "dirtyd answers with the intersection of the features (the simulated backend does not offer "
           "`FD_PASSING`) and, as `RESUME` was negotiated, a session token:",
        2: "The devices:",
        3: "%s: %s can track dirty pages, %s cannot; no device is bound or in a domain yet:"
           % ("Two devices" if len(devs) == 2 else "%d devices" % len(devs),
              ", ".join("`%s`" % n for n in can), ", ".join("`%s`" % n for n in cannot)),
        4: "Creating a tracking domain for `%s`, whose IOMMU cannot track:" % DEV_BAD,
        5: "is refused, naming the device and saying what to do instead:",
        6: "A tracking domain for `%s`:" % DEV_GOOD,
        7: "Domain %d; the device is bound (`dev_id`) and attached:" % d,
        8: "Map %s at IOVA %s (on the simulated backend dirtyd allocates nothing):" % (_size(MAP_LEN), _size(MAP_IOVA)),
        9: "A request that has no reply of its own is answered `OK` (`TRACK_START`, `DMA_WRITE` and `ACK` below "
           "are too):",
        10: "Start tracking:",
        11: "Subscribe without a period (`interval_ms` 0: rounds run only when a request needs one) and with `CLEAN`, so that only "
            "pages written from now on are pending (without `CLEAN` all %d mapped pages would start pending):"
            % total_mapped,
        12: "A page is %s; this dirtyd maps 4 KiB IO pages only (`backing_page_size = 4k`), so `max_leaf` is %s "
            "and a reported page is a written page (9.5).  The `CLEAN` subscription was answered after a "
            "round, which `generation` counts:" % (_size(page_size), _size(srep.f["max_leaf"])),
        13: "The device writes pages %s: %d `DMA_WRITE` requests, ids %d to %d, each answered `OK`; the first:"
            % (_pages_text(WRITES), len(WRITES), first_id, first_id + len(WRITES) - 1),
        14: "`SYNC` runs a harvest round that begins after it and answers when the round has completed:",
        15: "The %d pages written are pending for this session's subscription:" % npages,
        16: "The client asks for them:",
        17: "Generation %d's %d pages in one packet (no `PROTO_F_MORE`), in two chunks: a sparse span as %s and "
            "a dense one as %s (RUNS only when strictly smaller than RAW, 9.3):"
            % (rng.f["generation"], rng.f["total_pages"], kinds[0], kinds[1]),
        18: "The client has copied the pages and acknowledges the generation:",
        19: "Statistics of every domain the client may see:",
        20: "`last_round_ns` and `dirty_rate` (pages over the wall time since `TRACK_START`, 6.13) change from run "
            "to run; so do session tokens.  After the `ACK` nothing is pending, and `pages_sent` counts the "
            "pages of the `RANGES` stream:",
        21: "Another client of uid %d subscribes to domain %d with a %d ms period, and the device writes %d pages "
            "(%s).  The next periodic round finds them; this session, subscribed on demand but with `EVENTS`, "
            "is told (an event: id 0):" % (UID, d, MONITOR_INTERVAL_MS, EVENT_WRITE[1],
                                           _pages_text([EVENT_WRITE])),
        22: "A harvest round cannot fail on the simulated backend, so this event was written by hand: had a round "
            "failed, every subscriber of domain %d would be told that every mapped page is pending again:" % d,
        23: "dirtyd is restarted without keeping its state; the client reconnects with the old token:",
        24: "The token is unknown: the client must take every page of every domain it tracked as dirty, and "
            "subscribe again.",
    }
    intro = ("Each example is a complete packet in hex, in a block of its own; `#` starts a comment.  The first "
             "line is the header; each other comment gives the offset of its line in the body, the field and its "
             "value.  The examples follow one session of uid %d with a dirtyd on the simulated backend (devices "
             "`%s`, which can track dirty pages, and `%s`, which cannot; `backing_page_size = 4k`): HELLO, list "
             "the devices, try to create a tracking domain for the device that cannot track (refused), create one "
             "for the device that can, map %s at IOVA %s, start tracking, subscribe on demand with `CLEAN`, make "
             "the device write %d pages, `SYNC`, get and acknowledge the ranges, read the statistics, an event, "
             "and a reconnection after dirtyd restarted.  `tests/conformance/examples.py` wrote this section from "
             "a running dirtyd; `examples.py --check` fails when the daemon's answers drift from it.  "
             "`tests/unit/test_proto.c` decodes and re-encodes every block below and checks the fields the text "
             "names." % (UID, DEV_GOOD, DEV_BAD, _size(MAP_LEN), _size(MAP_IOVA), npages))
    out = ["## 14. Examples", ""] + _wrap(intro) + [""]
    for i, m in enumerate(E):
        if i in texts:
            out += _wrap(texts[i]) + [""]
        out += ["Example: %s" % m.name, "", "```hex"] + render_packet(m, page_size) + ["```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _wrap(text, width=76):
    """Fill text to width columns; two spaces after a sentence are kept
    inside a line."""
    lines, cur = [], ""
    for tok in re.findall(r"(?:[^\s`]*`[^`]*`)+[^\s`]* *|\S+ *", text):    # a code span is never cut
        if cur and len(cur + tok.rstrip()) > width:
            lines.append(cur.rstrip())
            cur = tok
        else:
            cur += tok
    if cur.strip():
        lines.append(cur.rstrip())
    return lines


# ---------------------------------------------------------------------------
# --write and --check
# ---------------------------------------------------------------------------

def _substitute(live, doc, variable):
    """live packets with the variable fields taken from the document's."""
    out = list(live)
    for idx, key in variable:
        if idx >= len(live) or idx >= len(doc):
            continue
        lm, dm = C.decode(out[idx]), C.decode(doc[idx])
        if lm.type != dm.type or lm.problems or dm.problems:
            continue
        if isinstance(key, tuple):
            if len(lm.entries) > key[1] and len(dm.entries) > key[1]:
                lm.entries[key[1]][key[2]] = dm.entries[key[1]][key[2]]
        else:
            lm.f[key] = dm.f[key]
        out[idx] = C.reencode(lm)
    return out


def _read(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    sec = C.spec_section(text, 14)
    if sec is None:
        raise StoryError("%s has no '## 14. Examples' section" % path)
    return text, sec


def check(binary, path, quiet=False):
    """(ok, report): does section 14 of path match a live run?"""
    try:
        text, (a, b) = _read(path)
        live = run_story(binary)
        old = text[a:b]
        doc = [ex.data for ex in C.parse_example_blocks(old)]
        variable = list(VARIABLE)
        if os.geteuid() != 0:
            variable += [(1, "uid"), (1, "gid"), (24, "uid"), (24, "gid")]
        new = render_section(_substitute(live, doc, variable))
    except StoryError as e:
        return False, "examples.py: %s" % e
    if new.rstrip("\n") == old.rstrip("\n"):
        return True, "section 14 matches a live run (variable fields: %s)" % ", ".join(
            "%s.%s" % (C.EXAMPLE_STORY[i], k if isinstance(k, str) else "entry %d %s" % (k[1], k[2]))
            for i, k in VARIABLE)
    first = text[:a].count("\n") + 1
    diff = difflib.unified_diff(old.rstrip("\n").split("\n"), new.rstrip("\n").split("\n"),
                                "%s (section 14, from line %d)" % (path, first), "live dirtyd", lineterm="", n=2)
    return False, "\n".join(diff)


def write(binary, path):
    text, (a, b) = _read(path)
    new = render_section(run_story(binary))
    old = text[a:b]
    trailing = old[len(old.rstrip("\n")):]
    result = text[:a] + new.rstrip("\n") + trailing + text[b:]
    if result != text:
        tmp = path + ".examples.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(result)
        os.replace(tmp, path)
        return True
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", metavar="PROTOCOL.md", help="rewrite section 14 of this file in place")
    g.add_argument("--check", metavar="PROTOCOL.md", help="compare section 14 of this file with a live run")
    ap.add_argument("--dirtyd", default=DEFAULT_DIRTYD, help="the daemon binary (default %(default)s)")
    ap.add_argument("--harness", help="tests/harness/dirtyd-harness of the build (default: the one in "
                                      "the build tree of --dirtyd)")
    args = ap.parse_args()
    C.HARNESS = args.harness and os.path.abspath(args.harness)
    C.R.echo = False
    if os.geteuid() != 0:
        print("examples.py: not root: the session runs as uid %d, not %d; uid and gid are not compared"
              % (os.geteuid(), UID), file=sys.stderr)
    if args.write:
        try:
            changed = write(args.dirtyd, args.write)
        except StoryError as e:
            print("examples.py: %s" % e, file=sys.stderr)
            return 1
        print("examples.py: section 14 of %s %s" % (args.write, "rewritten" if changed else "unchanged"))
        return 0
    okv, report = check(args.dirtyd, args.check)
    print(report)
    return 0 if okv else 1


if __name__ == "__main__":
    sys.exit(main())
