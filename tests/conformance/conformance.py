#!/usr/bin/env python3
"""Independent client implementation and conformance suite for the dirtyd
protocol 1.0, written from PROTOCOL.md (and dirtyd.conf(5)) alone.

Usage: python3 conformance.py --dirtyd /path/to/dirtyd [--only PATTERN]
                              [--verbose] [--keep] [--spec PROTOCOL.md]
                              [--harness /path/to/dirtyd-harness]

Everything here (codec, client, checks) is derived from the text of the
specification; nothing is taken from the daemon's own sources.  The last
line printed is `conformance: N passed, M failed`; the exit status is 0
only when nothing failed.  Run it as root: parts of it run as uids
1000-1004 (setuid in forked children).
"""

import argparse
import array
import os
import pickle
import random
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

# ---------------------------------------------------------------------------
# Section 4: message types
# ---------------------------------------------------------------------------

HELLO = 0x0001
LIST_DEVICES = 0x0002
LIST_DOMAINS = 0x0003
CREATE_DOMAIN = 0x0004
ATTACH_DEVICE = 0x0005
DETACH_DEVICE = 0x0006
DESTROY_DOMAIN = 0x0007
MAP = 0x0008
UNMAP = 0x0009
TRACK_START = 0x000a
TRACK_STOP = 0x000b
SUBSCRIBE = 0x000c
UNSUBSCRIBE = 0x000d
SYNC = 0x000e
GET_RANGES = 0x000f
ACK = 0x0010
STATS = 0x0011
GET_FDS = 0x0012
DMA_WRITE = 0x0013
LIST_SOURCES = 0x0018
HELLO_REPLY = 0x8001
LIST_DEVICES_REPLY = 0x8002
LIST_DOMAINS_REPLY = 0x8003
CREATE_DOMAIN_REPLY = 0x8004
ATTACH_DEVICE_REPLY = 0x8005
OK = 0x80ff
SUBSCRIBE_REPLY = 0x800c
SYNC_REPLY = 0x800e
RANGES = 0x800f
STATS_REPLY = 0x8011
GET_FDS_REPLY = 0x8012
LIST_SOURCES_REPLY = 0x8018
ERROR = 0xffff
EV_ROUND = 0x4001
EV_STATE_LOST = 0x4002

NAMES = {
    HELLO: "HELLO", LIST_DEVICES: "LIST_DEVICES", LIST_DOMAINS: "LIST_DOMAINS",
    CREATE_DOMAIN: "CREATE_DOMAIN", ATTACH_DEVICE: "ATTACH_DEVICE",
    DETACH_DEVICE: "DETACH_DEVICE", DESTROY_DOMAIN: "DESTROY_DOMAIN",
    MAP: "MAP", UNMAP: "UNMAP", TRACK_START: "TRACK_START",
    TRACK_STOP: "TRACK_STOP", SUBSCRIBE: "SUBSCRIBE",
    UNSUBSCRIBE: "UNSUBSCRIBE", SYNC: "SYNC", GET_RANGES: "GET_RANGES",
    ACK: "ACK", STATS: "STATS", GET_FDS: "GET_FDS", DMA_WRITE: "DMA_WRITE",
    HELLO_REPLY: "HELLO_REPLY", LIST_DEVICES_REPLY: "LIST_DEVICES_REPLY",
    LIST_DOMAINS_REPLY: "LIST_DOMAINS_REPLY",
    CREATE_DOMAIN_REPLY: "CREATE_DOMAIN_REPLY",
    ATTACH_DEVICE_REPLY: "ATTACH_DEVICE_REPLY", OK: "OK",
    SUBSCRIBE_REPLY: "SUBSCRIBE_REPLY", SYNC_REPLY: "SYNC_REPLY",
    RANGES: "RANGES", STATS_REPLY: "STATS_REPLY",
    GET_FDS_REPLY: "GET_FDS_REPLY", ERROR: "ERROR", EV_ROUND: "EV_ROUND",
    EV_STATE_LOST: "EV_STATE_LOST", LIST_SOURCES: "LIST_SOURCES",
    LIST_SOURCES_REPLY: "LIST_SOURCES_REPLY",
}
BY_NAME = {v: k for k, v in NAMES.items()}

REQUEST_TYPES = [HELLO, LIST_DEVICES, LIST_DOMAINS, CREATE_DOMAIN,
                 ATTACH_DEVICE, DETACH_DEVICE, DESTROY_DOMAIN, MAP, UNMAP,
                 TRACK_START, TRACK_STOP, SUBSCRIBE, UNSUBSCRIBE, SYNC,
                 GET_RANGES, ACK, STATS, GET_FDS, DMA_WRITE, LIST_SOURCES]
D2C_TYPES = [HELLO_REPLY, LIST_DEVICES_REPLY, LIST_DOMAINS_REPLY,
             CREATE_DOMAIN_REPLY, ATTACH_DEVICE_REPLY, OK, SUBSCRIBE_REPLY,
             SYNC_REPLY, RANGES, STATS_REPLY, GET_FDS_REPLY, ERROR, EV_ROUND,
             EV_STATE_LOST, LIST_SOURCES_REPLY]
EVENT_TYPES = {EV_ROUND, EV_STATE_LOST}
STREAM_TYPES = {LIST_DEVICES_REPLY, LIST_DOMAINS_REPLY, STATS_REPLY, RANGES}
# "Answered by" column of the table in section 4
ANSWER = {
    HELLO: HELLO_REPLY, LIST_DEVICES: LIST_DEVICES_REPLY,
    LIST_DOMAINS: LIST_DOMAINS_REPLY, CREATE_DOMAIN: CREATE_DOMAIN_REPLY,
    ATTACH_DEVICE: ATTACH_DEVICE_REPLY, DETACH_DEVICE: OK,
    DESTROY_DOMAIN: OK, MAP: OK, UNMAP: OK, TRACK_START: OK, TRACK_STOP: OK,
    SUBSCRIBE: SUBSCRIBE_REPLY, UNSUBSCRIBE: OK, SYNC: SYNC_REPLY,
    GET_RANGES: RANGES, ACK: OK, STATS: STATS_REPLY, GET_FDS: GET_FDS_REPLY,
    DMA_WRITE: OK, LIST_SOURCES: LIST_SOURCES_REPLY,
}

HDR = struct.Struct("<HHIQ")        # section 3
HDR_SIZE = 16
PROTO_MAX_MSG = 65536
PROTO_F_MORE = 0x1

# section 5.2
FEAT_RANGES_RAW = 0x1
FEAT_RESUME = 0x2
FEAT_FD_PASSING = 0x4
FEAT_EVENTS = 0x8
FEAT_ADOPT = 0x10
SESSION_RESUMED = 0x1
SESSION_STATE_LOST = 0x2
# section 6.2
DEV_DIRTY_CAPABLE = 0x1
DEV_BOUND = 0x2
DEV_ATTACHED = 0x4
DEV_DMA_LOGGING = 0x8
IOMMU_HW_CAP_DIRTY_TRACKING = 0x1
# section 6.3
ST_ENABLED = 0x1
ST_SUPPORTED = 0x2
ST_UNSUPPORTED = 0x4
ST_ALL_DIRTY = 0x8
# section 5.2
FEAT_SOURCES = 0x20
# section 6.21
SOURCE_HWPT = 1
SOURCE_DMA_LOG = 2
SOURCE_HWPT_PLAIN = 3
# section 6.4
CREATE_TRACKING = 0x1
CREATE_NO_HUGE_PAGES = 0x2
CREATE_SOURCE_IOMMU = 0x4
CREATE_SOURCE_DEVICE = 0x8
CREATE_ALL_DIRTY = 0x10
# section 6.7
MAP_READABLE = 0x1
MAP_WRITEABLE = 0x2
MAP_EXTERNAL = 0x4
# section 6.9 / 6.11
SUBSCRIBE_CLEAN = 0x1
RANGES_RESEND = 0x1
# section 9
CHUNK_RUNS = 0
CHUNK_RAW = 1
CHUNK_MAX_PAGES = 32768
CHUNK_MAX_PAYLOAD = 4096
CHUNK_HDR = struct.Struct("<QIBBH")

# section 7 (Linux errno values)
EPERM, ENOENT, EIO, ENOMEM, EACCES, EBUSY, EEXIST, EINVAL = 1, 2, 5, 12, 13, 16, 17, 22
EPROTO, EBADMSG, EUSERS, EMSGSIZE, EPROTONOSUPPORT, EOPNOTSUPP, EDQUOT = 71, 74, 87, 90, 93, 95, 122
ENODEV = 19
ERRNO_NAMES = {1: "EPERM", 2: "ENOENT", 5: "EIO", 12: "ENOMEM", 13: "EACCES", 19: "ENODEV",
               16: "EBUSY", 17: "EEXIST", 22: "EINVAL", 71: "EPROTO",
               74: "EBADMSG", 87: "EUSERS", 90: "EMSGSIZE",
               93: "EPROTONOSUPPORT", 95: "EOPNOTSUPP", 122: "EDQUOT"}


def ename(e):
    return ERRNO_NAMES.get(e, str(e))


def tname(t):
    return NAMES.get(t, "0x%04x" % t)


# ---------------------------------------------------------------------------
# Section 2 / 6: body layouts
# ---------------------------------------------------------------------------

_FMT = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q",
        "r8": "B", "r16": "H", "r32": "I", "r64": "Q", "str64": "64s"}


class Layout:
    """A fixed layout: list of (name, kind).  Reserved kinds start with r."""

    def __init__(self, fields):
        self.fields = fields
        self.st = struct.Struct("<" + "".join(_FMT[k] for _, k in fields))
        self.size = self.st.size

    def pack(self, vals=None):
        vals = vals or {}
        out = []
        for name, kind in self.fields:
            v = vals.get(name, 0)
            if kind == "str64":
                v = enc_str64(v) if not isinstance(v, (bytes, bytearray)) or len(v) != 64 else bytes(v)
            out.append(v)
        return self.st.pack(*out)

    def unpack(self, buf, off=0, problems=None, where=""):
        vals = self.st.unpack_from(buf, off)
        d = {}
        for (name, kind), v in zip(self.fields, vals):
            if kind == "str64":
                ok, text, why = check_str64(v)
                d[name] = text
                d[name + "_raw"] = v
                if not ok and problems is not None:
                    problems.append("%s%s: bad str64 (%s)" % (where, name, why))
            else:
                d[name] = v
                if kind[0] == "r" and v != 0 and problems is not None:
                    problems.append("%s%s: reserved field is %#x, not 0" % (where, name, v))
        return d


def enc_str64(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return b + b"\0" * (64 - len(b))


def text_problem(b):
    """Sections 2 / 6.15: valid UTF-8 (RFC 3629: Python's strict decoder
    refuses overlong forms, surrogates and anything above U+10FFFF) without
    U+0000 .. U+001F or U+007F, the set str64 excludes (C1 characters,
    U+0080 .. U+009F, are allowed).  None if fine."""
    try:
        t = bytes(b).decode("utf-8")
    except UnicodeDecodeError as e:
        return "not valid UTF-8 (%s at byte %d)" % (e.reason, e.start)
    for i, ch in enumerate(t):
        o = ord(ch)
        if o == 0:
            return "a NUL at character %d" % i
        if o < 0x20 or o == 0x7f:
            return "control character U+%04X at character %d" % (o, i)
    return None


def check_str64(raw):
    """Section 2: 1..63 bytes of text, then NULs up to 64; the text is
    valid UTF-8 without control characters."""
    raw = bytes(raw)
    n = raw.find(b"\0")
    if n < 0:
        return False, raw.decode("utf-8", "replace"), "no NUL"
    text = raw[:n]
    if n == 0:
        return False, "", "empty"
    if raw[n:] != b"\0" * (64 - n):
        return False, text.decode("utf-8", "replace"), "non-NUL after the first NUL"
    why = text_problem(text)
    if why:
        return False, text.decode("utf-8", "replace"), why
    return True, text.decode("utf-8"), ""


L = Layout
LAYOUT = {
    HELLO: L([("major", "u16"), ("minor", "u16"), ("rsv", "r32"),
              ("features", "u64"), ("resume_token", "u64")]),
    LIST_DEVICES: L([]),
    LIST_DOMAINS: L([]),
    CREATE_DOMAIN: L([("flags", "u32"), ("rsv", "r32"), ("device", "str64")]),
    ATTACH_DEVICE: L([("domain_id", "u32"), ("rsv", "r32"), ("device", "str64")]),
    DETACH_DEVICE: L([("domain_id", "u32"), ("rsv", "r32"), ("device", "str64")]),
    DESTROY_DOMAIN: L([("domain_id", "u32"), ("rsv", "r32")]),
    MAP: L([("domain_id", "u32"), ("flags", "u32"), ("iova", "u64"), ("length", "u64")]),
    UNMAP: L([("domain_id", "u32"), ("flags", "u32"), ("iova", "u64"), ("length", "u64")]),
    DMA_WRITE: L([("domain_id", "u32"), ("flags", "u32"), ("iova", "u64"), ("length", "u64")]),
    TRACK_START: L([("domain_id", "u32"), ("rsv", "r32")]),
    TRACK_STOP: L([("domain_id", "u32"), ("rsv", "r32")]),
    SUBSCRIBE: L([("domain_id", "u32"), ("interval_ms", "u32"), ("flags", "u32"), ("rsv", "r32")]),
    UNSUBSCRIBE: L([("domain_id", "u32"), ("rsv", "r32")]),
    SYNC: L([("domain_id", "u32"), ("rsv", "r32")]),
    GET_RANGES: L([("domain_id", "u32"), ("flags", "u32"), ("rsv", "r64")]),
    ACK: L([("domain_id", "u32"), ("rsv", "r32"), ("generation", "u64")]),
    STATS: L([("domain_id", "u32"), ("rsv", "r32")]),
    GET_FDS: L([("domain_id", "u32"), ("rsv", "r32")]),
    LIST_SOURCES: L([("domain_id", "u32"), ("rsv", "r32")]),
    HELLO_REPLY: L([("major", "u16"), ("minor", "u16"), ("max_msg", "u32"),
                    ("features", "u64"), ("session_token", "u64"), ("uid", "u32"),
                    ("gid", "u32"), ("session_flags", "u32"), ("rsv", "r32")]),
    CREATE_DOMAIN_REPLY: L([("domain_id", "u32"), ("dev_id", "u32"), ("status", "u32"), ("rsv", "r32")]),
    ATTACH_DEVICE_REPLY: L([("dev_id", "u32"), ("rsv", "r32")]),
    OK: L([]),
    SUBSCRIBE_REPLY: L([("domain_id", "u32"), ("rsv", "r32"), ("page_size", "u64"),
                        ("max_leaf", "u64"), ("generation", "u64")]),
    SYNC_REPLY: L([("generation", "u64"), ("pending_pages", "u64")]),
    EV_ROUND: L([("domain_id", "u32"), ("rsv", "r32"), ("generation", "u64"),
                 ("round_pages", "u64"), ("pending_pages", "u64")]),
    EV_STATE_LOST: L([("domain_id", "u32"), ("rsv", "r32")]),
    # variable bodies: fixed head (below) then entries / chunks / text
    LIST_DEVICES_REPLY: L([("count", "u32"), ("rsv", "r32")]),
    LIST_DOMAINS_REPLY: L([("count", "u32"), ("rsv", "r32")]),
    STATS_REPLY: L([("count", "u32"), ("rsv", "r32")]),
    LIST_SOURCES_REPLY: L([("count", "u32"), ("rsv", "r32")]),
    GET_FDS_REPLY: L([("ioas_id", "u32"), ("hwpt_id", "u32"), ("ndevices", "u32"), ("rsv", "r32")]),
    RANGES: L([("generation", "u64"), ("domain_id", "u32"), ("seq", "u32"),
               ("total_pages", "u64"), ("nchunks", "u32"), ("rsv", "r32")]),
    ERROR: L([("errno", "u32"), ("rsv", "r32")]),
}
ENTRY = {
    LIST_DEVICES_REPLY: L([("name", "str64"), ("capabilities", "u64"), ("flags", "u32"),
                           ("domain_id", "u32"), ("dev_id", "u32"), ("rsv", "r32")]),
    LIST_DOMAINS_REPLY: L([("domain_id", "u32"), ("status", "u32"), ("owner_uid", "u32"),
                           ("devices", "u32"), ("mapped_bytes", "u64"), ("page_size", "u64"),
                           ("generation", "u64"), ("subscribers", "u32"), ("rsv", "r32")]),
    STATS_REPLY: L([("domain_id", "u32"), ("status", "u32"), ("generation", "u64"),
                    ("last_round_ns", "u64"), ("last_round_pages", "u64"),
                    ("dirty_rate", "u64"), ("mapped_bytes", "u64"),
                    ("pending_pages", "u64"), ("pages_sent", "u64")]),
    GET_FDS_REPLY: L([("name", "str64"), ("dev_id", "u32"), ("fd_index", "u32")]),
    LIST_SOURCES_REPLY: L([("domain_id", "u32"), ("kind", "u32"), ("id", "u32"),
                           ("devices", "u32"), ("device", "str64"), ("page_size", "u64"),
                           ("ranges", "u32"), ("max_ranges", "u32"), ("rounds", "u64"),
                           ("errors", "u64"), ("restarts", "u64")]),
}
COUNT_FIELD = {LIST_DEVICES_REPLY: "count", LIST_DOMAINS_REPLY: "count",
               STATS_REPLY: "count", GET_FDS_REPLY: "ndevices",
               LIST_SOURCES_REPLY: "count"}
# The body sizes of the table in section 4 (fixed types)
FIXED_BODY = {HELLO: 24, LIST_DEVICES: 0, LIST_DOMAINS: 0, CREATE_DOMAIN: 72,
              ATTACH_DEVICE: 72, DETACH_DEVICE: 72, DESTROY_DOMAIN: 8, MAP: 24,
              UNMAP: 24, TRACK_START: 8, TRACK_STOP: 8, SUBSCRIBE: 16,
              UNSUBSCRIBE: 8, SYNC: 8, GET_RANGES: 16, ACK: 16, STATS: 8,
              GET_FDS: 8, DMA_WRITE: 24, LIST_SOURCES: 8, HELLO_REPLY: 40,
              CREATE_DOMAIN_REPLY: 16, ATTACH_DEVICE_REPLY: 8, OK: 0,
              SUBSCRIBE_REPLY: 32, SYNC_REPLY: 16, EV_ROUND: 32,
              EV_STATE_LOST: 8}
# request flag fields and their defined bits (section 2, 6.x)
REQ_FLAGS = {CREATE_DOMAIN: 0x1f, MAP: 0x7, UNMAP: 0x4, DMA_WRITE: 0x0,
             SUBSCRIBE: 0x1, GET_RANGES: 0x1}
# per-packet entry maxima (section 12)
PER_PACKET = {LIST_DEVICES_REPLY: 744, LIST_DOMAINS_REPLY: 1364,
              STATS_REPLY: 1023, GET_FDS_REPLY: 909, LIST_SOURCES_REPLY: 545}

for _t, _n in FIXED_BODY.items():
    assert LAYOUT[_t].size == _n, (tname(_t), LAYOUT[_t].size)


# ---------------------------------------------------------------------------
# Section 9: chunks
# ---------------------------------------------------------------------------

def leb128(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def runs_of_bits(bitmap, nbits):
    """Maximal runs (start, count) of set bits in a little-endian bitmap."""
    x = int.from_bytes(bitmap, "little")
    runs = []
    pos = 0
    while x:
        tz = (x & -x).bit_length() - 1
        x >>= tz
        pos += tz
        # count ones
        inv = ~x
        ones = (inv & -inv).bit_length() - 1
        runs.append((pos, ones))
        x >>= ones
        pos += ones
    return runs


def encode_runs_payload(runs):
    """runs: maximal, sorted (start, count) relative to the chunk's first."""
    out = bytearray()
    cursor = 0
    for start, count in runs:
        out += leb128(start - cursor)
        out += leb128(count)
        cursor = start + count
    return bytes(out)


def encode_raw_payload(runs, span):
    x = 0
    for start, count in runs:
        x |= ((1 << count) - 1) << start
    nbytes = (x.bit_length() + 7) // 8
    return x.to_bytes(nbytes, "little")


def encode_chunk(first, span, kind, payload, reserved=0):
    return CHUNK_HDR.pack(first, span, kind, reserved, len(payload)) + payload


def chunk_encode(first, span, runs, allow_raw=True):
    """Section 9.3: RUNS when strictly smaller than RAW, RAW otherwise."""
    r = encode_runs_payload(runs)
    if not allow_raw:
        return encode_chunk(first, span, CHUNK_RUNS, r)
    w = encode_raw_payload(runs, span)
    if len(r) < len(w):
        return encode_chunk(first, span, CHUNK_RUNS, r)
    return encode_chunk(first, span, CHUNK_RAW, w)


class Chunk:
    __slots__ = ("first", "span", "kind", "rsv", "len", "payload", "runs",
                 "npages", "bits", "minimal_runs_len", "raw_len")

    def __repr__(self):
        return "Chunk(first=%#x span=%d kind=%d len=%d pages=%d)" % (
            self.first, self.span, self.kind, self.len, self.npages)


def _leb(buf, pos, end):
    """Decode one LEB128 number of at most 3 bytes; return (value, pos) or raise."""
    v = 0
    shift = 0
    for i in range(3):
        if pos >= end:
            raise ValueError("LEB128 number runs past the payload")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, pos
    raise ValueError("LEB128 number longer than 3 bytes")


def decode_chunks(buf, off, end, nchunks, problems):
    """Decode nchunks chunks of buf[off:end]; canonical-form checks of 9.3."""
    chunks = []
    for i in range(nchunks):
        w = "chunk %d: " % i
        if off + 16 > end:
            problems.append(w + "header runs past the packet")
            return chunks, off
        c = Chunk()
        c.first, c.span, c.kind, c.rsv, c.len = CHUNK_HDR.unpack_from(buf, off)
        off += 16
        if not 1 <= c.span <= CHUNK_MAX_PAGES:
            problems.append(w + "span %d not in 1..32768" % c.span)
        if c.first + c.span > 0xffffffffffffffff:
            problems.append(w + "first + span overflows")
        if c.kind not in (CHUNK_RUNS, CHUNK_RAW):
            problems.append(w + "kind %d" % c.kind)
        if c.rsv != 0:
            problems.append(w + "reserved byte %#x" % c.rsv)
        if c.len < 1:
            problems.append(w + "len 0")
        if c.len > CHUNK_MAX_PAYLOAD:
            problems.append(w + "len %d > 4096 (CHUNK_MAX_PAYLOAD)" % c.len)
        if off + c.len > end:
            problems.append(w + "len %d runs past the packet" % c.len)
            return chunks, off
        c.payload = bytes(buf[off:off + c.len])
        off += c.len
        runs = []
        if c.kind == CHUNK_RUNS:
            pos, pend = 0, len(c.payload)
            cursor = 0
            try:
                k = 0
                while pos < pend:
                    gap, pos = _leb(c.payload, pos, pend)
                    if pos >= pend:
                        raise ValueError("payload ends inside a pair")
                    run, pos = _leb(c.payload, pos, pend)
                    if run < 1:
                        raise ValueError("run 0 in pair %d" % k)
                    if k > 0 and gap < 1:
                        raise ValueError("gap 0 in pair %d (runs touch)" % k)
                    start = cursor + gap
                    cursor = start + run
                    if cursor > c.span:
                        raise ValueError("run ends at %d beyond span %d" % (cursor, c.span))
                    runs.append((start, run))
                    k += 1
            except ValueError as e:
                problems.append(w + "RUNS: " + str(e))
        elif c.kind == CHUNK_RAW:
            if c.len > (c.span + 7) // 8:
                problems.append(w + "RAW len %d > ceil(span/8)" % c.len)
            if c.len and c.payload[-1] == 0:
                problems.append(w + "RAW last byte is 0")
            x = int.from_bytes(c.payload, "little")
            if x >> c.span:
                problems.append(w + "RAW bit at or beyond span set")
            runs = runs_of_bits(c.payload, c.span)
        c.runs = runs
        c.npages = sum(n for _, n in runs)
        c.minimal_runs_len = runs_payload_len(runs)
        if c.kind == CHUNK_RAW:
            c.bits = int.from_bytes(c.payload, "little")
        else:
            c.bits = bits_of_runs(runs, c.span)
        c.raw_len = (c.bits.bit_length() + 7) // 8
        chunks.append(c)
    return chunks, off


def chunk_bits(c):
    """The chunk's pages as a Python int, bit i = page first + i."""
    return c.bits


def _leblen(v):
    return 1 if v < 0x80 else (2 if v < 0x4000 else 3)


def runs_payload_len(runs):
    n = 0
    cursor = 0
    for start, count in runs:
        n += _leblen(start - cursor) + _leblen(count)
        cursor = start + count
    return n


def bits_of_runs(runs, span):
    b = bytearray((span + 7) // 8 + 1)
    for p, count in runs:
        end = p + count
        while p < end and p & 7:
            b[p >> 3] |= 1 << (p & 7)
            p += 1
        if end - p >= 8:
            nb = (end - p) >> 3
            b[p >> 3:(p >> 3) + nb] = b"\xff" * nb
            p += nb << 3
        while p < end:
            b[p >> 3] |= 1 << (p & 7)
            p += 1
    return int.from_bytes(b, "little")


# ---------------------------------------------------------------------------
# Section 3: messages
# ---------------------------------------------------------------------------

class Msg:
    """A decoded packet."""

    def __init__(self):
        self.type = self.flags = self.length = self.id = 0
        self.size = 0
        self.f = {}
        self.entries = []
        self.chunks = []
        self.text = b""
        self.problems = []
        self.raw = b""
        self.fds = []
        self.trunc = False

    @property
    def name(self):
        return tname(self.type)

    @property
    def errno(self):
        return self.f.get("errno") if self.type == ERROR else None

    @property
    def more(self):
        return bool(self.flags & PROTO_F_MORE)

    def __repr__(self):
        if self.type == ERROR:
            return "ERROR(id=%d errno=%s text=%r)" % (self.id, ename(self.f.get("errno", 0)),
                                                       self.text.decode("utf-8", "replace"))
        return "%s(id=%d flags=%d %s%s)" % (self.name, self.id, self.flags, self.f,
                                           (" entries=%d" % len(self.entries)) if self.entries else "")


def encode(mtype, mid, fields=None, flags=0, entries=None, chunks=b"",
           text=b"", body=None, length=None):
    """Encode one message.  body overrides the body; length overrides the
    header's length field (for malformed-message tests)."""
    if body is None:
        lay = LAYOUT[mtype]
        fields = dict(fields or {})
        if mtype in ENTRY:
            entries = entries or []
            fields.setdefault(COUNT_FIELD[mtype], len(entries))
            body = lay.pack(fields) + b"".join(ENTRY[mtype].pack(e) for e in entries)
        elif mtype == RANGES:
            body = lay.pack(fields) + bytes(chunks)
        elif mtype == ERROR:
            body = lay.pack(fields) + (text.encode() if isinstance(text, str) else bytes(text))
        else:
            body = lay.pack(fields)
    n = HDR_SIZE + len(body) if length is None else length
    return HDR.pack(mtype, flags, n, mid) + body


def decode(pkt, direction=None):
    """Decode a packet and list every way it breaks the spec in .problems.
    direction: 'C2D' or 'D2C' (None: inferred from the type)."""
    m = Msg()
    m.raw = bytes(pkt)
    m.size = len(pkt)
    p = m.problems
    if len(pkt) < HDR_SIZE:
        p.append("packet of %d bytes is shorter than the 16-byte header" % len(pkt))
        return m
    m.type, m.flags, m.length, m.id = HDR.unpack_from(pkt, 0)
    if m.length != len(pkt):
        p.append("length %d != packet size %d" % (m.length, len(pkt)))
    if not HDR_SIZE <= m.length <= PROTO_MAX_MSG:
        p.append("length %d not in 16..65536" % m.length)
    if len(pkt) > PROTO_MAX_MSG:
        p.append("packet of %d bytes > 65536" % len(pkt))
    if m.flags & ~PROTO_F_MORE:
        p.append("header flags %#x has bits other than PROTO_F_MORE" % m.flags)
    if m.flags & PROTO_F_MORE and m.type not in STREAM_TYPES:
        p.append("PROTO_F_MORE on %s" % tname(m.type))
    if m.type not in NAMES:
        p.append("unknown type %#06x" % m.type)
        return m
    if direction is None:
        direction = "C2D" if m.type in REQUEST_TYPES else "D2C"
    if direction == "C2D" and m.type not in REQUEST_TYPES:
        p.append("%s is not a request type" % m.name)
    if direction == "D2C" and m.type not in D2C_TYPES:
        p.append("%s is not a type dirtyd sends" % m.name)
    if m.type in EVENT_TYPES:
        if m.id != 0:
            p.append("event with id %d, not 0" % m.id)
    elif direction == "C2D" and m.id == 0:
        p.append("request id 0")
    elif direction == "D2C" and m.id == 0 and m.type != ERROR:
        p.append("%s with id 0" % m.name)
    body = memoryview(m.raw)[HDR_SIZE:]
    blen = len(body)
    lay = LAYOUT[m.type]
    if m.type in FIXED_BODY:
        if blen != FIXED_BODY[m.type]:
            p.append("%s body %d bytes, not %d" % (m.name, blen, FIXED_BODY[m.type]))
            return m
        m.f = lay.unpack(body, 0, p)
    else:
        if blen < lay.size:
            p.append("%s body %d bytes, shorter than its %d-byte head" % (m.name, blen, lay.size))
            return m
        m.f = lay.unpack(body, 0, p)
        if m.type in ENTRY:
            ent = ENTRY[m.type]
            cnt = m.f[COUNT_FIELD[m.type]]
            if lay.size + cnt * ent.size != blen:
                p.append("%s: count %d does not fill the body of %d bytes" % (m.name, cnt, blen))
                cnt = max(0, min(cnt, (blen - lay.size) // ent.size))
            if cnt > PER_PACKET[m.type]:
                p.append("%s: %d entries in one packet > %d" % (m.name, cnt, PER_PACKET[m.type]))
            for i in range(cnt):
                m.entries.append(ent.unpack(body, lay.size + i * ent.size, p, "entry %d " % i))
        elif m.type == RANGES:
            chunks, end = decode_chunks(body, lay.size, blen, m.f["nchunks"], p)
            m.chunks = chunks
            if end != blen and len(chunks) == m.f["nchunks"]:
                p.append("RANGES: %d chunks end at byte %d of a %d-byte body" % (len(chunks), end, blen))
            if sum(c.npages for c in chunks) > m.f["total_pages"]:
                p.append("RANGES: chunks hold more than total_pages")
        elif m.type == ERROR:
            m.text = bytes(body[lay.size:])
            e = m.f["errno"]
            if not 1 <= e <= 4095:
                p.append("ERROR errno %d not in 1..4095" % e)
            if len(m.text) > 1024:
                p.append("ERROR text %d bytes > 1024" % len(m.text))
            why = text_problem(m.text)
            if why:
                p.append("ERROR text: " + why)
    # semantic field rules
    if direction == "C2D" and m.type in REQ_FLAGS and "flags" in m.f:
        if m.f["flags"] & ~REQ_FLAGS[m.type]:
            p.append("%s flags %#x has undefined bits" % (m.name, m.f["flags"]))
    if m.type == LIST_DOMAINS_REPLY:
        for e in m.entries:
            s = e["status"]
            if bool(s & ST_SUPPORTED) == bool(s & ST_UNSUPPORTED):
                p.append("domain %d status %#x: not exactly one of SUPPORTED/UNSUPPORTED" % (e["domain_id"], s))
            if s & ST_ENABLED and not s & ST_SUPPORTED:
                p.append("domain %d status %#x: ENABLED without SUPPORTED" % (e["domain_id"], s))
    return m


def hexdump(b, limit=96):
    b = bytes(b)
    s = " ".join("%02x" % x for x in b[:limit])
    if len(b) > limit:
        s += " ... (%d bytes)" % len(b)
    return s


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.results = []          # (ok, section, text)
        self.verbose = False
        self.violations = {}       # (section, what) -> example
        self.packets_seen = 0
        self.errors_seen = 0
        self.errors_bad = 0
        self.echo = True

    def check(self, section, desc, cond, expected=None, got=None):
        if cond:
            line = "ok: §%s %s" % (section, desc)
        else:
            line = "FAIL: §%s %s" % (section, desc)
            if expected is not None or got is not None:
                line += ": expected %s, got %s" % (expected, got)
        self.results.append((bool(cond), line))
        if self.echo:
            print(line, flush=True)
        return bool(cond)

    def info(self, text):
        if self.verbose and self.echo:
            print("   " + text, flush=True)

    def violation(self, section, what, pkt):
        key = (section, what)
        if key not in self.violations:
            self.violations[key] = pkt
            self.check(section, "received packet is well-formed", False,
                       "no violation", "%s in %s" % (what, hexdump(pkt, 64)))


R = Recorder()


class Timeout(Exception):
    pass


class Closed(Exception):
    pass


def validate_incoming(m):
    """Section 2/3/6/9 rules every packet dirtyd sends must follow."""
    R.packets_seen += 1
    if m.type == ERROR and m.size >= HDR_SIZE + 8:
        R.errors_seen += 1
        if any("ERROR" in p for p in m.problems):
            R.errors_bad += 1
    for prob in m.problems:
        sec = "9.3" if "chunk" in prob else ("6.15" if "ERROR" in prob else "3")
        R.violation(sec, re.sub(r"(?<![\w-])\d+", "N", prob), m.raw)


# ---------------------------------------------------------------------------
# Client (section 1, 8.1, 8.2)
# ---------------------------------------------------------------------------

class Conn:
    def __init__(self, path, timeout=3.0):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.connect(path)
        self.next_id = 100
        self.events = []
        self.stash = {}
        self.timeout = timeout
        self.closed = False
        self.hello_reply = None
        self.features = 0

    def close(self):
        if not self.closed:
            self.s.close()
            self.closed = True

    def fileno(self):
        return self.s.fileno()

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def send(self, data, fds=None):
        if fds:
            self.s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            self.s.send(data)

    def recv(self, timeout=None):
        """One packet, or raise Timeout / Closed."""
        t = self.timeout if timeout is None else timeout
        r, _, _ = select.select([self.s], [], [], t)
        if not r:
            raise Timeout()
        try:
            data, anc, mflags, _ = self.s.recvmsg(PROTO_MAX_MSG + 4096, socket.CMSG_SPACE(256 * 4))
        except ConnectionResetError:
            raise Closed()
        if not data and not anc:
            raise Closed()
        m = decode(data, "D2C")
        m.trunc = bool(mflags & socket.MSG_TRUNC)
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[:len(cdata) - len(cdata) % 4])
                m.fds.extend(fds)
        if m.fds and m.type != GET_FDS_REPLY:
            R.violation("1", "SCM_RIGHTS with a packet other than GET_FDS_REPLY", m.raw)
            for fd in m.fds:
                os.close(fd)
        validate_incoming(m)
        return m

    def wait(self, mid, timeout=None):
        """Every packet of the answer to request mid (one, or a stream)."""
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        got = []
        while True:
            lst = self.stash.get(mid)
            while lst:
                m = lst.pop(0)
                got.append(m)
                if m.type == ERROR or m.type not in STREAM_TYPES or not m.more:
                    if not lst:
                        del self.stash[mid]
                    return got
            if mid in self.stash and not self.stash[mid]:
                del self.stash[mid]
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            m = self.recv(left)
            if m.type in EVENT_TYPES:
                self.events.append(m)
                continue
            if m.id == mid:
                got.append(m)
                if m.type == ERROR or m.type not in STREAM_TYPES or not m.more:
                    return got
            else:
                self.stash.setdefault(m.id, []).append(m)

    def request(self, mtype, fields=None, mid=None, timeout=None, **kw):
        if mid is None:
            mid = self.new_id()
        self.send(encode(mtype, mid, fields, **kw))
        return self.wait(mid, timeout)

    def req1(self, mtype, fields=None, **kw):
        got = self.request(mtype, fields, **kw)
        if len(got) != 1:
            R.check("8.1", "%s answered by one packet" % tname(mtype), False, 1, len(got))
        return got[-1]

    def raw(self, data, mid, timeout=None, fds=None):
        self.send(data, fds)
        return self.wait(mid, timeout)

    def hello(self, features=0, token=0, major=1, minor=0):
        m = self.req1(HELLO, {"major": major, "minor": minor, "features": features,
                              "resume_token": token})
        if m.type == HELLO_REPLY:
            self.hello_reply = m
            self.features = m.f["features"]
        return m

    def next(self, timeout=None):
        """The next packet that is not an event, whatever its id."""
        for k in sorted(self.stash):
            if self.stash[k]:
                m = self.stash[k].pop(0)
                if not self.stash[k]:
                    del self.stash[k]
                return m
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            m = self.recv(left)
            if m.type in EVENT_TYPES:
                self.events.append(m)
                continue
            return m

    def drain(self, timeout=0.05):
        """Everything that arrives within timeout (events, strays)."""
        out = []
        while True:
            try:
                m = self.recv(timeout)
            except (Timeout, Closed):
                return out
            if m.type in EVENT_TYPES:
                self.events.append(m)
            else:
                out.append(m)

    def strays(self):
        """Packets received that answer no outstanding request."""
        out = [m for l in self.stash.values() for m in l]
        self.stash.clear()
        return out + self.drain(0.02)


def connect(path, features=0, token=0, timeout=3.0):
    c = Conn(path, timeout)
    c.hello(features, token)
    return c


def ok_or_err(m):
    if m.type == ERROR:
        return "ERROR %s %r" % (ename(m.f.get("errno", 0)), m.text.decode("utf-8", "replace"))
    return m.name


# ---------------------------------------------------------------------------
# The daemon
# ---------------------------------------------------------------------------

# dirtyd is started by tests/harness, the one way every test starts it,
# through its command-line face dirtyd-harness (tests/harness/dirtyd_harness.c):
# --harness, else $DIRTYD_HARNESS, else the one in the build tree of --dirtyd.
HARNESS = None


def harness_for(binary):
    if HARNESS:
        return HARNESS
    if os.environ.get("DIRTYD_HARNESS"):
        return os.environ["DIRTYD_HARNESS"]
    return os.path.join(os.path.dirname(os.path.dirname(binary)), "tests", "harness", "dirtyd-harness")


class Daemon:
    """dirtyd under dirtyd-harness: started with @conf, ready once its
    socket accepts a connection."""

    def __init__(self, binary, tmpdir, name, conf, sockpath):
        self.binary = binary
        self.dir = tmpdir
        self.name = name
        self.sock = sockpath
        self.conf = os.path.join(tmpdir, name + ".conf")
        self.logpath = os.path.join(tmpdir, name + ".log")
        with open(self.conf, "w") as fh:
            fh.write(conf)
        self.pid = None
        self.returncode = None      # once dirtyd has ended (None: killed after a timeout)
        self.ready = False
        # --no-notify: dirtyd as started by hand, the outsider's view (with
        # $NOTIFY_SOCKET it would also keep its state for a store nobody
        # keeps: every mutation rewritten, 1500 domains 15 times slower)
        self.proc = subprocess.Popen([harness_for(binary), "--dirtyd", binary, "--config", self.conf,
                                      "--socket", sockpath, "--log", self.logpath, "--no-notify"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        answer = self._answer(60)
        if not answer.startswith("ready "):
            self._ended(answer)
            return
        self.pid = int(answer.split()[1])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.alive():
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(sockpath)
                s.close()
                self.ready = True
                break
            except OSError:
                time.sleep(0.02)

    def _answer(self, timeout):
        """dirtyd-harness's answer line; "" if none in @timeout s."""
        line = b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return ""
            c = self.proc.stdout.read(1)
            if not c:
                return ""
            line += c
        return line.decode("utf-8", "replace").strip()

    def _command(self, cmd, timeout):
        try:
            self.proc.stdin.write(cmd.encode() + b"\n")
        except OSError:
            return ""
        return self._answer(timeout)

    def _ended(self, answer):
        self.pid = None
        w = answer.split()
        if len(w) == 2 and w[0] == "exit" and w[1] != "timeout":
            self.returncode = int(w[1])

    def alive(self):
        if self.pid is None:
            return False
        answer = self._command("status", 10)
        if answer.startswith("running "):
            return True
        self._ended(answer)
        return False

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            answer = self._command("stop %d" % (timeout * 1000), timeout + 10)
            if answer.startswith("exit "):
                self._ended(answer)
            else:
                self.returncode = None
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()    # dirtyd goes with it
                self.proc.wait()
                self.returncode = None
            self.pid = None
        return self.returncode

    def logtext(self):
        try:
            with open(self.logpath, "rb") as fh:
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""


def as_user(uid, gid, groups, fn, *args):
    """Run fn(*args) in a forked child with the given credentials; return
    its value (checks it records are merged into R)."""
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    n0 = len(R.results)
    seen0 = R.packets_seen
    e0, b0 = R.errors_seen, R.errors_bad
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            R.echo = False
            AGG.items.clear()
            AGG.order.clear()
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            val = fn(*args)
            AGG.flush()
            out = ("ok", val, R.results[n0:], R.violations,
                   (R.packets_seen - seen0, R.errors_seen - e0, R.errors_bad - b0))
        except BaseException:
            AGG.flush()
            out = ("exc", traceback.format_exc(), R.results[n0:], R.violations,
                   (R.packets_seen - seen0, R.errors_seen - e0, R.errors_bad - b0))
        try:
            data = pickle.dumps(out)
        except Exception:
            data = pickle.dumps(("exc", "unpicklable result", R.results[n0:], {}, (0, 0, 0)))
        with os.fdopen(wfd, "wb") as fh:
            fh.write(data)
        os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    kind, val, results, viol, seen = pickle.loads(data)
    for okv, line in results:
        R.results.append((okv, line))
        print(line, flush=True)
    for k, v in viol.items():
        R.violations.setdefault(k, v)
    R.packets_seen += seen[0]
    R.errors_seen += seen[1]
    R.errors_bad += seen[2]
    if kind == "exc":
        R.check("-", "helper running as uid %d raised" % uid, False, "no exception", val.strip().splitlines()[-1])
        if R.verbose:
            print(val)
        return None
    return val


# ---------------------------------------------------------------------------
# Aggregated checks (rules checked on many packets, printed once)
# ---------------------------------------------------------------------------

class Agg:
    def __init__(self):
        self.items = {}     # key -> [section, desc, count, fails, first_detail]
        self.order = []

    def add(self, section, desc, cond, detail=""):
        key = (section, desc)
        it = self.items.get(key)
        if it is None:
            it = self.items[key] = [section, desc, 0, 0, ""]
            self.order.append(key)
        it[2] += 1
        if not cond:
            it[3] += 1
            if not it[4]:
                it[4] = detail

    def flush(self):
        for key in self.order:
            sec, desc, n, nf, det = self.items[key]
            R.check(sec, "%s (%d cases)" % (desc, n), nf == 0, "all", "%d failed, first: %s" % (nf, det))
        self.items.clear()
        self.order.clear()


AGG = Agg()


def expect_error(c, section, desc, msgs, errno_, mid, must_contain=(), ping=True):
    """msgs: the answer (list).  Checks it is exactly one ERROR errno_ with
    the request's id, then that the session is still usable."""
    m = msgs[-1] if msgs else None
    got = ok_or_err(m) if m else "nothing"
    okv = (len(msgs) == 1 and m.type == ERROR and m.f.get("errno") == errno_ and m.id == mid
           and not m.problems)
    text = m.text.decode("utf-8", "replace") if m is not None and m.type == ERROR else ""
    miss = [s for s in must_contain
            if not (any(str(a) in text for a in s) if isinstance(s, tuple) else str(s) in text)]
    if okv and miss:
        okv = False
        got += " (text lacks %s)" % ", ".join(repr(str(s)) for s in miss)
    if okv and m.id != mid:
        got += " id %d" % m.id
    if m is not None and m.id != mid:
        got += " with id %d (request id %d)" % (m.id, mid)
    R.check(section, desc, okv, "ERROR %s%s" % (ename(errno_), (" naming " + ", ".join(str(s) for s in must_contain)) if must_contain else ""), got)
    if ping:
        session_usable(c, section, desc)
    return m


def session_usable(c, section, desc):
    try:
        r = c.request(LIST_DOMAINS, timeout=2)
        okv = r[-1].type == LIST_DOMAINS_REPLY
    except (Timeout, Closed) as e:
        okv = False
        r = [type(e).__name__]
    AGG.add(section if section in ("3", "4", "2", "7") else "7",
            "session stays usable after an error", okv, "%s: %s" % (desc, r[-1]))
    return okv


def send_err(c, section, desc, mtype, fields, errno_, must_contain=(), ping=True, **kw):
    mid = kw.pop("mid") if "mid" in kw else c.new_id()
    data = kw.pop("data", None)
    if data is None:
        data = encode(mtype, mid, fields, **kw)
    try:
        c.send(data)
        msgs = [c.next()]
        while msgs[-1].type in STREAM_TYPES and msgs[-1].more:
            msgs.append(c.next())
    except Timeout:
        msgs = []
    except Closed:
        R.check(section, desc, False, "ERROR %s" % ename(errno_), "connection closed")
        return None
    return expect_error(c, section, desc, msgs, errno_, mid, must_contain, ping=ping)


def must(c, mtype, fields=None, want=None, section="6", desc=None, **kw):
    """A request expected to succeed; returns the last packet."""
    want = want or ANSWER[mtype]
    try:
        r = c.request(mtype, fields, **kw)
    except Timeout:
        R.check(section, desc or "%s succeeds" % tname(mtype), False, tname(want), "timeout")
        raise
    m = r[-1]
    if m.type != want or desc:
        R.check(section, desc or "%s %s succeeds" % (tname(mtype), fields or ""), m.type == want,
                tname(want), ok_or_err(m))
    return m if len(r) == 1 else r


def create(c, dev, flags=CREATE_TRACKING, section="6.4"):
    m = must(c, CREATE_DOMAIN, {"flags": flags, "device": dev}, section=section)
    return m.f["domain_id"] if m.type == CREATE_DOMAIN_REPLY else None


# ---------------------------------------------------------------------------
# Page sets and RANGES streams (section 9)
# ---------------------------------------------------------------------------

PAGE = 4096


class PageSet:
    """A set of page numbers backed by a bytearray bitmap."""

    def __init__(self, npages):
        self.n = npages
        self.b = bytearray((npages + 7) // 8)

    def add(self, p, count=1):
        b = self.b
        end = p + count
        while p < end and p & 7:
            b[p >> 3] |= 1 << (p & 7)
            p += 1
        if end - p >= 8:
            nb = (end - p) >> 3
            b[p >> 3:(p >> 3) + nb] = b"\xff" * nb
            p += nb << 3
        while p < end:
            b[p >> 3] |= 1 << (p & 7)
            p += 1

    def add_bytes(self, iova, length):
        self.add(iova // PAGE, length // PAGE)

    def as_int(self):
        return int.from_bytes(self.b, "little")


def int_pages(x, limit=8):
    """A few page numbers of a set held as an int, for messages."""
    out = []
    pos = 0
    while x and len(out) < limit:
        tz = (x & -x).bit_length() - 1
        pos += tz
        out.append("%#x" % pos)
        x >>= tz + 1
        pos += 1
    return "[" + ", ".join(out) + (", ..." if x else "") + "]"


def describe_diff(got, want):
    missing = want & ~got
    extra = got & ~want
    return "missing %d pages %s, extra %d pages %s" % (
        missing.bit_count(), int_pages(missing), extra.bit_count(), int_pages(extra))


class Stream:
    def __init__(self):
        self.msgs = []
        self.gen = None
        self.total = None
        self.pages = 0          # int bitset
        self.npages = 0
        self.chunks = []
        self.chains = []
        self.error = None


def get_ranges(c, dom, flags=0, mappings=None, extra_ok=(), raw_ok=None, mid=None, timeout=10):
    """GET_RANGES and check every stream rule of sections 6.11, 8.2, 9.
    mappings: list of (first_page, npages) of the domain's mappings.
    extra_ok: ranges (first, n) unmapped while they still had pages pending
    (6.7, 9.4): they may hold pages, and their spans end as a mapping's do.
    Nothing here relies on how many chunks a span was cut into (9.3): the
    chunks of a span are found by where they start and end."""
    if raw_ok is None:
        raw_ok = bool(c.features & FEAT_RANGES_RAW)
    st = Stream()
    if mid is None:
        mid = c.new_id()
    msgs = c.raw(encode(GET_RANGES, mid, {"domain_id": dom, "flags": flags}), mid, timeout=timeout)
    st.msgs = msgs
    if msgs[-1].type == ERROR:
        st.error = msgs[-1]
        return st
    bad = None
    for i, m in enumerate(msgs):
        if m.type != RANGES:
            bad = "packet %d is %s" % (i, m.name)
            break
    AGG.add("6.11", "GET_RANGES is answered by RANGES packets", bad is None, bad)
    if bad:
        st.error = msgs[-1]
        return st
    last = len(msgs) - 1
    seq_ok = all(m.f["seq"] == i for i, m in enumerate(msgs))
    AGG.add("8.2", "RANGES packets numbered seq 0, 1, 2, ... without gap", seq_ok,
            [m.f["seq"] for m in msgs][:10])
    more_ok = all(m.more == (i != last) for i, m in enumerate(msgs))
    AGG.add("8.2", "every stream packet but the last has PROTO_F_MORE, the last has not", more_ok,
            [m.flags for m in msgs][:10])
    st.gen = msgs[0].f["generation"]
    st.total = msgs[0].f["total_pages"]
    same = all(m.f["generation"] == st.gen and m.f["total_pages"] == st.total and
               m.f["domain_id"] == dom for m in msgs)
    AGG.add("6.11", "generation, domain_id and total_pages are the same in every packet", same,
            [(m.f["generation"], m.f["total_pages"], m.f["domain_id"]) for m in msgs][:4])
    nonempty = all(m.f["nchunks"] > 0 for m in msgs[:-1])
    AGG.add("6.11", "only the last RANGES packet may hold 0 chunks", nonempty,
            [m.f["nchunks"] for m in msgs])
    prev = None
    prev_end = -1
    order_ok = True
    order_detail = ""
    pages = 0
    chain = []          # the RUNS chunks one span was cut into (9.3)
    st.chains = []

    def end_chain():
        if len(chain) >= 2:
            st.chains.append(list(chain))
            base = chain[0].first
            runs = [(ch.first - base + r0, rn) for ch in chain for r0, rn in ch.runs]
            merged = []
            for r0, rn in runs:
                if merged and merged[-1][0] + merged[-1][1] == r0:
                    merged[-1] = (merged[-1][0], merged[-1][1] + rn)
                else:
                    merged.append((r0, rn))
            total_span = chain[-1].first + chain[-1].span - base
            AGG.add("9.3", "a span is cut into several RUNS chunks only when its runs take more than 4096 bytes",
                    runs_payload_len(merged) > CHUNK_MAX_PAYLOAD,
                    "%d chunks from page %#x hold runs of %d bytes" % (len(chain), base, runs_payload_len(merged)))
            AGG.add("9.3", "the RUNS chunks one span was cut into cover at most 32768 pages together",
                    total_span <= CHUNK_MAX_PAGES, "%d chunks from page %#x cover %d pages" % (len(chain), base, total_span))
            for x, y in zip(chain, chain[1:]):
                gap, run = y.runs[0] if y.runs else (0, 0)
                AGG.add("9.3", "dirtyd fills each chunk of a cut span as far as the limit allows: the next run would "
                        "not have fitted in its 4096 bytes", x.len + _leblen(gap) + _leblen(run) > CHUNK_MAX_PAYLOAD,
                        "chunk at %#x holds %d bytes; the next run (gap %d, run %d) takes %d more" % (
                            x.first, x.len, gap, run, _leblen(gap) + _leblen(run)))
        chain.clear()

    span_end = None     # where the span being cut must end (9.4), while its chunks have not reached it
    span_at = None

    def span_unfinished(why):
        AGG.add("9.4", "a span that is not cut ends at the next multiple of 32768 pages or at the mapping's end, "
                "whichever comes first; the last chunk of a cut span ends there too",
                False, "span from page %#x should end at %#x; %s" % (span_at, span_end, why))

    for m in msgs:
        for ch in m.chunks:
            st.chunks.append(ch)
            if ch.first < prev_end and order_ok:
                order_ok = False
                order_detail = "chunk at page %#x starts before previous end %#x" % (ch.first, prev_end)
            if ch.kind == CHUNK_RAW:
                AGG.add("9.3", "CHUNK_RAW only when PROTO_FEAT_RANGES_RAW is negotiated", raw_ok,
                        "RAW chunk at %#x without the feature" % ch.first)
            if raw_ok:
                want_kind = CHUNK_RUNS if ch.minimal_runs_len < ch.raw_len else CHUNK_RAW
                AGG.add("9.3", "encoder picks RUNS iff strictly smaller than RAW, else RAW",
                        ch.kind == want_kind,
                        "chunk at %#x kind %d: runs %d bytes, raw %d bytes" % (
                            ch.first, ch.kind, ch.minimal_runs_len, ch.raw_len))
            AGG.add("12", "a chunk's payload is 1 .. 4096 bytes, so a chunk is at most 16 + 4096 bytes",
                    1 <= ch.len <= CHUNK_MAX_PAYLOAD, "chunk at %#x: %d payload bytes (features %#x)"
                    % (ch.first, ch.len, c.features))
            AGG.add("9.3", "a chunk with no dirty page is not sent", ch.npages > 0,
                    "empty chunk at %#x" % ch.first)
            inmap = None
            if mappings is not None:
                for (mf, mn) in list(mappings) + list(extra_ok):
                    if mf <= ch.first < mf + mn:
                        inmap = (mf, mn)
                        break
            legit = None
            if inmap:
                mf, mn = inmap
                AGG.add("9.4", "spans never cross a mapping's end", ch.first + ch.span <= mf + mn,
                        "chunk %#x+%d crosses mapping end %#x" % (ch.first, ch.span, mf + mn))
                legit = ch.first % CHUNK_MAX_PAGES == 0 or ch.first == mf
            elif mappings is not None:
                AGG.add("9.4", "every dirty page lies within a mapping of the domain", False,
                        "chunk at %#x outside every mapping %s" % (ch.first, mappings))
            # 9.3 / 9.4: a chunk that does not start a span continues one that
            # was cut: RUNS only, no RANGES_RAW, starting where the previous
            # chunk ended, which ended at the end of its last run.
            cont_ok = (prev is not None and not raw_ok and ch.kind == CHUNK_RUNS and prev.kind == CHUNK_RUNS
                       and ch.first == prev_end and prev.runs
                       and prev.runs[-1][0] + prev.runs[-1][1] == prev.span)
            end = ch.first + ch.span
            if legit is False:
                AGG.add("9.4", "spans start at multiples of 32768 pages or at a mapping's start, or (RUNS chunks of a "
                        "cut span, without RANGES_RAW) where the previous chunk ended, at the end of its last run",
                        cont_ok, "chunk at %#x (kind %d, features %#x) in mapping at %#x; previous chunk %s"
                        % (ch.first, ch.kind, c.features, inmap[0], prev))
                if cont_ok:
                    if not chain:
                        chain.append(prev)
                    chain.append(ch)
                else:
                    end_chain()
                if span_end is not None and not cont_ok:
                    span_unfinished("its chunk ends at %#x and the next, at %#x, does not continue it" %
                                    (prev_end, ch.first))
                    span_end = None
                elif span_end is not None and end >= span_end:
                    if end > span_end:
                        span_unfinished("its last chunk ends at %#x" % end)
                    else:
                        AGG.add("9.4", "a span that is not cut ends at the next multiple of 32768 pages or at the "
                                "mapping's end, whichever comes first; the last chunk of a cut span ends there too",
                                True)
                    span_end = None
            elif legit:
                end_chain()
                if span_end is not None:
                    span_unfinished("its last chunk ends at %#x and a new span starts at %#x" % (prev_end, ch.first))
                mf, mn = inmap
                span_at = ch.first
                span_end = min((ch.first // CHUNK_MAX_PAGES + 1) * CHUNK_MAX_PAGES, mf + mn)
                if end == span_end:
                    span_end = None
                    AGG.add("9.4", "a span that is not cut ends at the next multiple of 32768 pages or at the "
                            "mapping's end, whichever comes first; the last chunk of a cut span ends there too",
                            True)
                elif end > span_end:
                    span_unfinished("its chunk ends at %#x" % end)
                    span_end = None
            prev = ch
            prev_end = ch.first + ch.span
            pages |= chunk_bits(ch) << ch.first
    end_chain()
    if span_end is not None:
        span_unfinished("the stream ends after a chunk ending at %#x" % prev_end)
    AGG.add("9.4", "chunks in increasing page order, spans not overlapping (whole stream)",
            order_ok, order_detail)
    st.pages = pages
    st.npages = pages.bit_count()
    summed = sum(ch.npages for ch in st.chunks)
    AGG.add("9.4", "the pages of all chunks add up to total_pages, no page twice",
            summed == st.total == st.npages, "sum %d, total_pages %d, distinct %d" % (summed, st.total, st.npages))
    if st.total == 0:
        AGG.add("6.11", "an empty generation is one packet with 0 chunks",
                len(msgs) == 1 and msgs[0].f["nchunks"] == 0,
                "%d packets" % len(msgs))
    return st


def failed_get_ranges(c, dom, st, want_pending, sent_before, what):
    """Sections 6.11, 8.2, 8.3: a GET_RANGES answered (or ended) by an ERROR
    leaves every page it took pending: STATS shows them in pending_pages,
    pages_sent does not count them, the generation is not in flight (ACK
    is ENOENT) and the next GET_RANGES sends them."""
    R.info("%s: GET_RANGES failed: %s (%s)" % (what, ok_or_err(st.error), hexdump(st.error.raw)))
    e = (stats(c, dom) or {}).get(dom, {})
    R.check("6.11", "%s: after GET_RANGES failed (%s) STATS pending_pages shows every page again, pages_sent "
            "unchanged" % (what, ok_or_err(st.error)),
            (e.get("pending_pages"), e.get("pages_sent")) == (want_pending, sent_before),
            (want_pending, sent_before), (e.get("pending_pages"), e.get("pages_sent")))
    gen = e.get("generation", 0)
    m = c.req1(ACK, {"domain_id": dom, "generation": gen})
    R.check("6.11", "%s: the failed generation %d was never in flight: ACK is ERROR ENOENT" % (what, gen),
            m.type == ERROR and m.errno == ENOENT, "ERROR ENOENT", ok_or_err(m))


def range_bits(first, n):
    return ((1 << n) - 1) << first


def map_bits(mappings):
    x = 0
    for f, n in mappings:
        x |= range_bits(f, n)
    return x


def pipeline(c, reqs, window=48, section="6.7", desc="pipelined requests"):
    """Send (type, fields) requests with at most window outstanding; return
    the answers in order."""
    out = []
    ids = []
    answers = []
    for mt, fl in reqs:
        mid = c.new_id()
        c.send(encode(mt, mid, fl))
        ids.append(mid)
        if len(ids) - len(answers) >= window:
            answers.append(c.wait(ids[len(answers)])[-1])
    while len(answers) < len(ids):
        answers.append(c.wait(ids[len(answers)])[-1])
    return answers


def dma_writes(c, dom, runs, oracle=None, section="6.7"):
    """DMA_WRITE each (first_page, npages) run; all must be OK."""
    ans = pipeline(c, [(DMA_WRITE, {"domain_id": dom, "iova": f * PAGE, "length": n * PAGE})
                       for f, n in runs])
    bad = [a for a in ans if a.type != OK]
    AGG.add(section, "DMA_WRITE to a writeable mapping is answered OK", not bad,
            ok_or_err(bad[0]) if bad else "")
    if oracle is not None:
        for f, n in runs:
            oracle.add(f, n)
    return not bad


# ---------------------------------------------------------------------------
# Section 14: the examples
# ---------------------------------------------------------------------------

# The story of section 14, in order (tests/conformance/examples.py writes it)
EXAMPLE_STORY = ["HELLO", "HELLO_REPLY", "LIST_DEVICES", "LIST_DEVICES_REPLY", "CREATE_DOMAIN", "ERROR",
                 "CREATE_DOMAIN", "CREATE_DOMAIN_REPLY", "MAP", "OK", "TRACK_START", "SUBSCRIBE",
                 "SUBSCRIBE_REPLY", "DMA_WRITE", "SYNC", "SYNC_REPLY", "GET_RANGES", "RANGES", "ACK", "STATS",
                 "STATS_REPLY", "EV_ROUND", "EV_STATE_LOST", "HELLO", "HELLO_REPLY"]


class Example:
    def __init__(self, title, lineno):
        self.title = title
        self.lineno = lineno      # line of the ```hex fence (1-based)
        self.lines = []           # (byte values, comment or None, source line)
        self.data = b""


def spec_section(text, number):
    """(start, end) character offsets of section `number` ("## N. ...") in
    text: from its heading to the next "## " heading or the end."""
    m = re.search(r"^## %d\. .*$" % number, text, re.M)
    if not m:
        return None
    n = re.search(r"^## ", text[m.end():], re.M)
    return m.start(), (m.end() + n.start()) if n else len(text)


def parse_example_blocks(text):
    """Every ```hex block of text, with the nearest preceding 'Example: NAME'
    title, its bytes and its lines' comments."""
    lines = text.split("\n")
    out = []
    title = None
    i = 0
    while i < len(lines):
        ln = lines[i]
        mt = re.match(r"^Example:\s*(\S+)\s*$", ln)
        if mt:
            title = mt.group(1)
        if ln.strip() == "```hex":
            ex = Example(title, i + 1)
            buf = bytearray()
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                code, _, comment = lines[i].partition("#")
                vals = [int(tok, 16) for tok in code.split()]
                buf += bytes(vals)
                ex.lines.append((vals, comment.strip() if _ else None, lines[i]))
                i += 1
            ex.data = bytes(buf)
            out.append(ex)
            title = None
        i += 1
    return out


def field_map(m):
    """The body of a decoded message as segments (offset, size, key, value),
    offsets from the start of the body, in order.  key is a field name, or
    ("entry", i, name), ("chunk", i, name), or "text"."""
    segs = []
    lay = LAYOUT[m.type]
    off = 0
    for name, kind in lay.fields:
        size = struct.calcsize("<" + _FMT[kind])
        segs.append((off, size, "reserved" if kind[0] == "r" else name, m.f.get(name)))
        off += size
    if m.type in ENTRY:
        ent = ENTRY[m.type]
        for i, e in enumerate(m.entries):
            eoff = lay.size + i * ent.size
            for name, kind in ent.fields:
                size = struct.calcsize("<" + _FMT[kind])
                segs.append((eoff, size, ("entry", i, "reserved" if kind[0] == "r" else name), e.get(name)))
                eoff += size
    elif m.type == RANGES:
        coff = lay.size
        for i, ch in enumerate(m.chunks):
            for name, size, val in (("first", 8, ch.first), ("span", 4, ch.span), ("kind", 1, ch.kind),
                                    ("reserved", 1, ch.rsv), ("len", 2, ch.len)):
                segs.append((coff, size, ("chunk", i, name), val))
                coff += size
            segs.append((coff, ch.len, ("chunk", i, "payload"), ch))
            coff += ch.len
    elif m.type == ERROR:
        segs.append((lay.size, len(m.text), "text", m.text))
    return segs


def _num_in(comment, v):
    return bool(re.search(r"(?<![\w.])(%d|%#x)(?![\w.])" % (v, v), comment))


def check_example_comments(ex, m, tag):
    """The comments of an example block: the header line names type,
    flags, length and id; every '#  N:' offset is the offset of its line in
    the body; each field comment names its field and its value."""
    probs = []
    if not ex.lines:
        return ["no lines"]
    vals, com, _ = ex.lines[0]
    want = "header: type %s (%#06x), flags %d, length %d, id %d" % (m.name, m.type, m.flags, m.length, m.id)
    if len(vals) != 16 or com != want:
        probs.append("header line %r, want 16 bytes and %r" % (com, want))
    segs = {off: (size, key, v) for off, size, key, v in field_map(m)}
    pos = 0
    for vals, com, src in ex.lines[1:]:
        if len(vals) > 16:
            probs.append("a line of %d bytes: %r" % (len(vals), src))
        if com is not None:
            mo = re.match(r"^\s*(\d+):\s*(.*)$", com)
            if not mo:
                probs.append("comment without an offset: %r" % com)
            else:
                off, text = int(mo.group(1)), mo.group(2)
                if off != pos:
                    probs.append("comment offset %d on a line that starts at body byte %d: %r" % (off, pos, src))
                elif off not in segs:
                    probs.append("comment at offset %d, where no field starts: %r" % (off, src))
                else:
                    size, key, v = segs[off]
                    name = key[2] if isinstance(key, tuple) else key
                    if name == "payload" or name == "text":
                        pass
                    elif name == "reserved":
                        if "reserved" not in text:
                            probs.append("offset %d is reserved, comment %r" % (off, text))
                    elif isinstance(v, str):
                        if '"%s"' % v not in text:
                            probs.append("offset %d (%s) is %r, comment %r" % (off, name, v, text))
                    elif name not in text or not (_num_in(text, v) or (v == 0 and name + " 0" in text)):
                        probs.append("offset %d (%s) is %d, comment %r" % (off, name, v, text))
        pos += len(vals)
    return probs


def reencode(m):
    """Encode a decoded message again from its fields alone."""
    if m.type == RANGES:
        chunks = b""
        for ch in m.chunks:
            if ch.kind == CHUNK_RUNS:
                payload = encode_runs_payload(ch.runs)
            else:
                payload = encode_raw_payload(ch.runs, ch.span)
            chunks += encode_chunk(ch.first, ch.span, ch.kind, payload)
        return encode(m.type, m.id, m.f, flags=m.flags, chunks=chunks)
    if m.type == ERROR:
        return encode(m.type, m.id, m.f, flags=m.flags, text=m.text)
    if m.type in ENTRY:
        return encode(m.type, m.id, m.f, flags=m.flags, entries=m.entries)
    return encode(m.type, m.id, m.f, flags=m.flags)


def _pow2(v):
    return v > 0 and v & (v - 1) == 0


def example_story_problems(E):
    """Section 14 tells one session: the rules of the spec that tie its
    packets together (ids, features, domain, generations, page counts)."""
    P = []

    def need(cond, what):
        if not cond:
            P.append(what)
    (hello, hrep, ld, ldr, cbad, err, cgood, crep, mp, ok, ts, sub, srep, dma, sync, srep2, gr, rng, ack,
     st, strep, evr, evl, hello2, hrep2) = E
    for req, rep in ((hello, hrep), (ld, ldr), (cbad, err), (cgood, crep), (mp, ok), (sub, srep), (sync, srep2),
                     (gr, rng), (st, strep), (hello2, hrep2)):
        need(rep.id == req.id, "%s answers %s with id %d, the request's is %d" % (rep.name, req.name, rep.id, req.id))
    ids = [x.id for x in (hello, ld, cbad, cgood, mp, ts, sub, dma, sync, gr, ack, st)]
    need(all(i != 0 for i in ids) and len(set(ids)) == len(ids), "request ids non-zero and distinct: %s" % ids)
    need((hrep.f["major"], hrep.f["minor"], hrep.f["max_msg"]) == (1, 0, 65536), "HELLO_REPLY 1.0, max_msg 65536")
    offered = FEAT_RANGES_RAW | FEAT_RESUME | FEAT_EVENTS | FEAT_ADOPT  # the simulated backend's
    for h, r in ((hello, hrep), (hello2, hrep2)):
        need(r.f["features"] == h.f["features"] & offered,
             "HELLO_REPLY.features %#x is not HELLO's %#x & %#x (5.2; no FD_PASSING on sim)"
             % (r.f["features"], h.f["features"], offered))
        need((r.f["session_token"] != 0) == bool(r.f["features"] & FEAT_RESUME), "session_token 0 iff no RESUME")
        need((r.f["uid"], r.f["gid"]) == (1000, 1000), "the session is uid 1000's")
    need(hello.f["resume_token"] == 0 and hrep.f["session_flags"] == 0, "a new session: token 0, flags 0")
    need(hello2.f["resume_token"] == hrep.f["session_token"] != 0, "the reconnecting HELLO presents the old token")
    need(hrep2.f["session_flags"] == SESSION_STATE_LOST and hrep2.f["session_token"] not in (0, hrep.f["session_token"]),
         "the reconnection gets STATE_LOST and a new token")
    devs = {e["name"]: e for e in ldr.entries}
    bad, good = cbad.f["device"], cgood.f["device"]
    need(ldr.f["count"] == len(ldr.entries) >= 2, "LIST_DEVICES_REPLY lists the devices")
    need(devs.get(bad, {}).get("capabilities", 1) & IOMMU_HW_CAP_DIRTY_TRACKING == 0
         and devs.get(bad, {}).get("flags", 1) & DEV_DIRTY_CAPABLE == 0,
         "the refused device %r is listed without dirty tracking" % bad)
    need(devs.get(good, {}).get("capabilities", 0) & IOMMU_HW_CAP_DIRTY_TRACKING
         and devs.get(good, {}).get("flags", 0) & DEV_DIRTY_CAPABLE,
         "the accepted device %r is listed DIRTY_CAPABLE" % good)
    need(cbad.f["flags"] & CREATE_TRACKING and err.f["errno"] == EOPNOTSUPP and bad.encode() in err.text,
         "CREATE_DOMAIN with tracking for %r is refused EOPNOTSUPP naming it" % bad)
    need(crep.f["status"] == ST_SUPPORTED and crep.f["domain_id"] >= 1 and crep.f["dev_id"] != 0,
         "CREATE_DOMAIN_REPLY: a new domain, SUPPORTED, a device id")
    d = crep.f["domain_id"]
    for x in (mp, ts, sub, srep, dma, sync, gr, rng, ack, evr, evl):
        need(x.f["domain_id"] == d, "%s names domain %d, not %d" % (x.name, x.f["domain_id"], d))
    need(st.f["domain_id"] in (0, d) and [e["domain_id"] for e in strep.entries] == [d],
         "STATS answers with the one domain")
    ps, ml = srep.f["page_size"], srep.f["max_leaf"]
    need(_pow2(ps) and _pow2(ml) and ml >= ps, "page_size %d, max_leaf %d: powers of two, max_leaf >= page_size" % (ps, ml))
    need(mp.f["flags"] & (MAP_READABLE | MAP_WRITEABLE) and mp.f["iova"] % ps == 0 and mp.f["length"] % ps == 0
         and mp.f["length"] > 0, "MAP: readable or writeable, aligned")
    mfirst, mpages = mp.f["iova"] // ps, mp.f["length"] // ps
    need(dma.f["iova"] % ps == 0 and dma.f["length"] % ps == 0 and dma.f["flags"] == 0 and
         mp.f["iova"] <= dma.f["iova"] and dma.f["iova"] + dma.f["length"] <= mp.f["iova"] + mp.f["length"],
         "DMA_WRITE: aligned, flags 0, inside the mapping")
    need(srep2.f["generation"] > srep.f["generation"], "SYNC completes a round after SUBSCRIBE's generation")
    need(rng.f["generation"] == srep2.f["generation"] == ack.f["generation"],
         "RANGES is generation SYNC completed (no round in between) and ACK acknowledges it")
    clean = bool(sub.f["flags"] & SUBSCRIBE_CLEAN)
    need(srep2.f["pending_pages"] == rng.f["total_pages"] if clean else srep2.f["pending_pages"] >= mpages,
         "SYNC_REPLY.pending_pages %d vs RANGES.total_pages %d (CLEAN %s)"
         % (srep2.f["pending_pages"], rng.f["total_pages"], clean))
    need(rng.f["seq"] == 0 and not rng.more and rng.f["nchunks"] == len(rng.chunks),
         "RANGES: one packet, seq 0, no PROTO_F_MORE")
    pages = 0
    for ch in rng.chunks:
        pages |= ch.bits << ch.first
    need(pages.bit_count() == rng.f["total_pages"], "RANGES chunks hold total_pages pages")
    need(pages & ~range_bits(mfirst, mpages) == 0, "every page of RANGES lies in the mapping")
    need(pages & range_bits(dma.f["iova"] // ps, dma.f["length"] // ps) == range_bits(dma.f["iova"] // ps,
                                                                                       dma.f["length"] // ps),
         "the pages the DMA_WRITE example wrote are in RANGES")
    need(sorted(ch.kind for ch in rng.chunks) == [CHUNK_RUNS, CHUNK_RAW], "RANGES holds a RUNS and a RAW chunk")
    for ch in rng.chunks:
        want = CHUNK_RUNS if ch.minimal_runs_len < ch.raw_len else CHUNK_RAW
        need(ch.kind == want, "chunk at %#x: the encoder's choice (9.3)" % ch.first)
        need(ch.first % CHUNK_MAX_PAGES == 0 or ch.first == mfirst, "chunk at %#x: where a span starts" % ch.first)
        need(ch.first + ch.span == min((ch.first // CHUNK_MAX_PAGES + 1) * CHUNK_MAX_PAGES, mfirst + mpages),
             "chunk at %#x: its span ends at the next multiple of 32768 pages or at the mapping's end (9.4)" % ch.first)
    if strep.entries:
        e = strep.entries[0]
        need(e["status"] == ST_ENABLED | ST_SUPPORTED and e["generation"] == srep2.f["generation"],
             "STATS: tracking on, the generation of the SYNC")
        need(e["last_round_pages"] == rng.f["total_pages"] if clean else True, "STATS last_round_pages")
        need(e["mapped_bytes"] == mp.f["length"], "STATS mapped_bytes is the MAP's length")
        need(e["pending_pages"] == 0 and e["pages_sent"] == rng.f["total_pages"],
             "STATS after the ACK: pending_pages 0, pages_sent = the pages RANGES carried")
        need(e["last_round_ns"] > 0, "STATS last_round_ns > 0 after a round")
    need(evr.id == 0 and evl.id == 0, "events carry id 0")
    need(evr.f["generation"] > rng.f["generation"] and evr.f["round_pages"] > 0 and evr.f["pending_pages"] > 0,
         "EV_ROUND: a later round that found pages")
    need(evr.f["round_pages"] == evr.f["pending_pages"],
         "EV_ROUND: nothing was pending after the GET_RANGES and the ACK, and round_pages counts the periodic rounds "
         "since that GET_RANGES (6.16): round_pages %d = pending_pages %d"
         % (evr.f["round_pages"], evr.f["pending_pages"]))
    return P


def t_examples_offline(ctx):
    """Section 14: every hex block decoded, re-encoded, its comments and the story checked."""
    try:
        with open(ctx.spec, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        R.check("14", "PROTOCOL.md can be read", False, ctx.spec, e)
        return
    sec = spec_section(text, 14)
    if not R.check("14", "PROTOCOL.md has a section '## 14. Examples'", sec is not None, "present", "absent"):
        return
    exs = parse_example_blocks(text[sec[0]:sec[1]])
    ctx.examples = exs
    names = [ex.title for ex in exs]
    R.check("14", "the examples tell the session of examples.py (%d packets, in order)" % len(EXAMPLE_STORY),
            names == EXAMPLE_STORY, EXAMPLE_STORY, names)
    E = []
    for i, ex in enumerate(exs):
        tag = "example %d (%s, line %d)" % (i + 1, ex.title, text[:sec[0]].count("\n") + ex.lineno)
        m = decode(ex.data)
        E.append(m)
        R.check("14", tag + ": decodes with our codec without a problem", not m.problems, "none", m.problems)
        R.check("14", tag + ": its title names its type", ex.title == m.name, ex.title, m.name)
        R.check("3", tag + ": header length equals the packet's size, flags 0",
                (m.length, m.flags) == (len(ex.data), 0), (len(ex.data), 0), (m.length, m.flags))
        R.check("14", tag + ": re-encodes from its fields to the same bytes", reencode(m) == ex.data,
                hexdump(ex.data), hexdump(reencode(m)))
        probs = check_example_comments(ex, m, tag) if not m.problems else ["not decoded"]
        R.check("14", tag + ": the comments give each field's offset and value", not probs, "consistent",
                probs[:3])
    if names == EXAMPLE_STORY and all(not m.problems for m in E):
        probs = example_story_problems(E)
        R.check("14", "the examples are one consistent session (ids, features, domain, generations, pages)",
                not probs, "consistent", probs)
    # codec self-tests of section 9.3 canonical rules on crafted chunks
    bad_chunks = [
        ("span 0", encode_chunk(0, 0, 0, b"\x00\x01")),
        ("span 32769", encode_chunk(0, 32769, 0, b"\x00\x01")),
        ("kind 2", encode_chunk(0, 8, 2, b"\x01")),
        ("reserved byte", encode_chunk(0, 8, 0, b"\x00\x01", reserved=1)),
        ("len 0", encode_chunk(0, 8, 0, b"")),
        ("len 4098 (> 4096)", encode_chunk(0, 32768, 0, b"\x00\x01" + b"\x01\x01" * 2048)),
        ("run 0", encode_chunk(0, 8, 0, b"\x00\x00")),
        ("second gap 0", encode_chunk(0, 8, 0, b"\x00\x01\x00\x01")),
        ("run past span", encode_chunk(0, 8, 0, b"\x05\x04")),
        ("4-byte LEB128", encode_chunk(0, 32768, 0, b"\x80\x80\x80\x00\x01")),
        ("payload ends inside a pair", encode_chunk(0, 8, 0, b"\x00\x01\x01")),
        ("RAW len > ceil(span/8)", encode_chunk(0, 8, 1, b"\x01\x01")),
        ("RAW last byte 0", encode_chunk(0, 16, 1, b"\x01\x00")),
        ("RAW bit beyond span", encode_chunk(0, 4, 1, b"\x10")),
    ]
    for what, ch in bad_chunks:
        probs = []
        decode_chunks(ch, 0, len(ch), 1, probs)
        R.check("9.3", "our decoder refuses a chunk with " + what, bool(probs), "malformed", "accepted")
    for what, ch, npages in (("a full span as one run (0, 32768)", encode_chunk(0, 32768, 0, b"\x00\x80\x80\x02"), 32768),
                             ("a payload of exactly 4096 bytes", encode_chunk(0, 32768, 0, b"\x00\x01" + b"\x01\x01" * 2047), 2048),
                             ("a non-shortest LEB128 number (0x81 0x00 = 1)", encode_chunk(0, 8, 0, b"\x00\x81\x00"), 1)):
        probs = []
        chs, _ = decode_chunks(ch, 0, len(ch), 1, probs)
        R.check("9.3", "our decoder accepts " + what, not probs and chs[0].npages == npages,
                "%d pages" % npages, (probs, chs))
    for what, raw in (("a C1 character (U+0085)", "e\u0085"), ("a 4-byte character", "e\U0001F600")):
        R.check("2", "our str64 check accepts " + what, check_str64(enc_str64(raw))[0], "accepted", "refused")
    # sections 2 / 6.15: the ERROR text rule is the str64 set, U+0000 .. U+001F and U+007F, nothing else
    refused = [cp for cp in range(0x100) if text_problem(chr(cp).encode())]
    R.check("6.15", "our ERROR text check refuses exactly U+0000 .. U+001F and U+007F among U+0000 .. U+00FF "
            "(C1 characters allowed)", refused == list(range(0x20)) + [0x7f], "0x00-0x1f, 0x7f",
            ["%#x" % cp for cp in refused])


def t_examples_live(ctx):
    """Section 14 is what a running dirtyd sends (examples.py --check)."""
    try:
        sys.dont_write_bytecode = True
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import examples
    except Exception as e:
        R.check("14", "examples.py can be imported", False, "imported", "%s: %s" % (type(e).__name__, e))
        return
    okv, report = examples.check(ctx.args.dirtyd, ctx.spec, quiet=True)
    R.check("14", "§14 is what a running dirtyd sends for its story (examples.py --check)", okv,
            "no drift", "\n" + report)


# ---------------------------------------------------------------------------
# Section 1: transport
# ---------------------------------------------------------------------------

def t_transport(ctx):
    """Section 1: socket, packet size, credentials, ancillary data, empty packets."""
    import stat as _stat
    A = ctx.A
    st = os.stat(A.sock)
    R.check("1", "the socket file is a socket with the mode socket_mode= gives (0666 configured)",
            _stat.S_ISSOCK(st.st_mode) and _stat.S_IMODE(st.st_mode) == 0o666, "socket 0666",
            oct(_stat.S_IMODE(st.st_mode)))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(A.sock)
        typ = "connected as SOCK_STREAM"
    except OSError as e:
        typ = "SOCK_STREAM refused (%s)" % e.strerror
    s.close()
    R.check("1", "the socket is SOCK_SEQPACKET (a SOCK_STREAM connect is refused)", "refused" in typ,
            "refused", typ)
    c = connect(A.sock)
    # one message per packet: an oversized packet
    mid = c.new_id()
    big = encode(LIST_DEVICES, mid, body=b"\0" * (PROTO_MAX_MSG + 1 - HDR_SIZE))
    send_err(c, "1", "a packet of 65537 bytes is answered ERROR EMSGSIZE carrying the id in its header", None, None,
             EMSGSIZE, data=big, mid=mid)
    mid = c.new_id()
    big = encode(SYNC, mid, body=b"\0" * (PROTO_MAX_MSG * 2 - HDR_SIZE), length=24)
    send_err(c, "1", "a packet of 131072 bytes (length field 24) is ERROR EMSGSIZE with its id", None, None,
             EMSGSIZE, data=big, mid=mid)
    mid = c.new_id()
    big = encode(LIST_DEVICES, mid, body=b"\0" * (PROTO_MAX_MSG - HDR_SIZE))
    send_err(c, "12", "a packet of exactly 65536 bytes passes the size gate (LIST_DEVICES with a body: EBADMSG, not EMSGSIZE)",
             None, None, EBADMSG, data=big, mid=mid)
    # credentials: a packet sent by another process on this connection
    mid = c.new_id()
    pid = os.fork()
    if pid == 0:
        try:
            c.send(encode(LIST_DEVICES, mid))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    try:
        m = c.next()
        expect_error(c, "1", "a packet sent by another process (other pid) on the connection gets ERROR EPERM",
                     [m], EPERM, mid)
    except Timeout:
        R.check("1", "a packet sent by another process (other pid) on the connection gets ERROR EPERM",
                False, "ERROR EPERM", "no answer")
    mid = c.new_id()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(1000)
            os.setuid(1000)
            c.send(encode(LIST_DOMAINS, mid))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    try:
        m = c.next()
        expect_error(c, "1", "a packet sent by a process of another uid on the connection gets ERROR EPERM",
                     [m], EPERM, mid)
    except Timeout:
        R.check("1", "a packet sent by a process of another uid on the connection gets ERROR EPERM",
                False, "ERROR EPERM", "no answer")
    # ancillary data sent by a client is ignored and descriptors are closed
    rfd, wfd = os.pipe()
    mid = c.new_id()
    c.send(encode(LIST_DEVICES, mid), fds=[wfd])
    os.close(wfd)
    r = c.wait(mid)
    R.check("1", "a request carrying SCM_RIGHTS is served normally (ancillary data ignored)",
            r[-1].type == LIST_DEVICES_REPLY, "LIST_DEVICES_REPLY", ok_or_err(r[-1]))
    rr, _, _ = select.select([rfd], [], [], 2.0)
    eof = bool(rr) and os.read(rfd, 1) == b""
    os.close(rfd)
    R.check("1", "dirtyd closes the descriptors a client sends (pipe reaches EOF)", eof, "EOF", "still open")
    R.check("1", "no SCM_RIGHTS arrive with replies other than GET_FDS_REPLY", not any(m.fds for m in r),
            "none", [m.fds for m in r])
    # section 3's order does not list the credential check (EPERM): where is it?
    seen = []
    for what, data in (("a 15-byte packet", encode(LIST_DEVICES, 0x7101)[:15]),
                       ("an unknown type", HDR.pack(0x77, 0, 16, 0x7102)),
                       ("a length field 20 on 16 bytes", encode(LIST_DEVICES, 0x7103, length=20)),
                       ("a malformed SYNC", encode(SYNC, 0x7104, {"domain_id": 1, "rsv": 1}))):
        for hello_first in (False, True):
            x = Conn(A.sock)
            if hello_first:
                x.hello(0)
            pid = os.fork()
            if pid == 0:
                try:
                    x.send(data)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            got, gid = None, None
            try:
                m = x.next(1.0)
                got, gid = (ename(m.errno) if m.type == ERROR else m.name), m.id
            except (Timeout, Closed) as e:
                got = type(e).__name__
            seen.append("%s %s HELLO: %s id %s" % (what, "after" if hello_first else "before", got, gid))
            x.close()
    ctx.amb("1 / 3", "A packet from another process is refused with EPERM (section 1), but section 3's order of "
            "checks, which 'answers the first check that fails, so that one packet always gets one errno', does "
            "not list that check: where does it come (before step 1? before HELLO?), and with which id?",
            "; ".join(seen))
    R.check("8.1", "transport session: nothing unasked arrived", not c.strays(), "nothing", "strays")
    c.close()
    # a zero-length packet (shorter than the header), before and after HELLO
    for hello_first in (False, True):
        c = Conn(A.sock)
        if hello_first:
            c.hello(0)
        c.send(b"")
        try:
            m = c.next(1.0)
            res = ok_or_err(m) + " id %d" % m.id
            okv = m.type == ERROR and m.errno == EBADMSG and m.id == 0
        except (Timeout, Closed) as e:
            res = type(e).__name__
            okv = False
        when = "after HELLO" if hello_first else "before HELLO"
        R.check("3", "a zero-length packet %s is ERROR EBADMSG with id 0 (not end-of-file)" % when, okv,
                "ERROR EBADMSG id 0", res)
        if hello_first:
            session_usable(c, "3", "zero-length packet")
        else:
            m = c.hello(0)
            R.check("3", "after a zero-length packet the session still takes HELLO", m.type == HELLO_REPLY,
                    "HELLO_REPLY", ok_or_err(m))
        c.close()


# ---------------------------------------------------------------------------
# Section 3: the header
# ---------------------------------------------------------------------------

def t_header(ctx):
    """Section 3/4: the header's checks; reply and event types sent by a client."""
    c = connect(ctx.A.sock)
    send_err(c, "3", "a 1-byte packet is ERROR EBADMSG with id 0", None, None, EBADMSG, data=b"\x02", mid=0)
    mid = c.new_id()
    send_err(c, "3", "a 15-byte packet is ERROR EBADMSG with id 0", None, None, EBADMSG,
             data=encode(LIST_DEVICES, mid)[:15], mid=0)
    for ln, what in ((17, "larger than"), (15, "smaller than"), (0, "0, not"), (PROTO_MAX_MSG + 1, "65537, not")):
        mid = c.new_id()
        send_err(c, "3", "length field %s the packet's 16 bytes: ERROR EMSGSIZE with the request id" % what,
                 None, None, EMSGSIZE, data=encode(LIST_DEVICES, mid, length=ln), mid=mid)
    mid = c.new_id()
    send_err(c, "3", "length field 24 on a 32-byte SYNC packet: ERROR EMSGSIZE",
             None, None, EMSGSIZE, data=encode(SYNC, mid, body=b"\0" * 16, length=24), mid=mid)
    send_err(c, "3", "request id 0 is ERROR EBADMSG (id 0)", LIST_DEVICES, None, EBADMSG, mid=0)
    for fl in (0x2, 0x8000, 0xfffe):
        send_err(c, "3", "header flags %#x (bits other than PROTO_F_MORE) is ERROR EBADMSG" % fl,
                 LIST_DEVICES, None, EBADMSG, flags=fl)
    for t in (LIST_DEVICES, SYNC):
        f = {"domain_id": 1} if t == SYNC else None
        send_err(c, "3", "PROTO_F_MORE on a %s request is ERROR EBADMSG" % tname(t), t, f, EBADMSG,
                 flags=PROTO_F_MORE)
    h = Conn(ctx.A.sock)
    send_err(h, "3", "PROTO_F_MORE on a first HELLO is ERROR EBADMSG", HELLO, {"major": 1}, EBADMSG,
             flags=PROTO_F_MORE, ping=False)
    m = h.hello(0)
    R.check("3", "after that malformed HELLO, a valid HELLO is accepted", m.type == HELLO_REPLY, "HELLO_REPLY",
            ok_or_err(m))
    h.close()
    for t in (0x0000, 0x0030, 0x00ff, 0x1000, 0x4000, 0x4003, 0x7fff, 0x8000, 0x8013, 0xfffe):
        mid = c.new_id()
        send_err(c, "3", "unknown type %#06x is ERROR EPROTO" % t, None, None, EPROTO,
                 data=HDR.pack(t, 0, 16, mid), mid=mid)
    # well-formed reply and event packets, built with our codec
    samples = d2c_samples()
    one = encode(GET_FDS_REPLY, 16, {"ioas_id": 1, "hwpt_id": 2},
                 entries=[{"name": "vfio0", "dev_id": 3, "fd_index": 1}])
    send_err(c, "4", "a well-formed GET_FDS_REPLY with one device entry sent by the client is ERROR EPROTO",
             None, None, EPROTO, data=one, mid=16)
    for t in D2C_TYPES:
        pkt = samples[t]
        m = decode(pkt)
        assert not m.problems, (tname(t), m.problems)
        send_err(c, "4", "a well-formed %s (id %d) sent by the client is ERROR EPROTO" % (tname(t), m.id),
                 None, None, EPROTO, data=pkt, mid=m.id)
    # step 4 comes before step 6: a reply or event type is EPROTO whatever its body
    for what, t, pkt, mid in malformed_d2c(samples):
        got, gid = ask(c, pkt)
        AGG.add("3", "a reply or event type is ERROR EPROTO with the packet's id, whatever follows (%s)" % what,
                got == "EPROTO" and gid == mid, "%s: %s id %s" % (tname(t), got, gid))
    R.check("8.1", "header session: every request answered exactly once", not c.strays(), "nothing", "strays")
    c.close()


def d2c_samples():
    """One well-formed packet of every type dirtyd sends (section 6)."""
    chunk = encode_chunk(0x40000, 32768, CHUNK_RUNS, b"\x00\x03")
    return {
        HELLO_REPLY: encode(HELLO_REPLY, 1, {"major": 1, "max_msg": 65536, "features": 0xb,
                                             "session_token": 0x5a17c0ffee0d1e55, "uid": 1000, "gid": 1000}),
        LIST_DEVICES_REPLY: encode(LIST_DEVICES_REPLY, 3, entries=[{"name": "sim0", "capabilities": 1, "flags": 7,
                                                                    "domain_id": 1, "dev_id": 2}]),
        LIST_DOMAINS_REPLY: encode(LIST_DOMAINS_REPLY, 13, entries=[{"domain_id": 1, "status": 3, "owner_uid": 1000,
                                                                     "devices": 1, "mapped_bytes": 1 << 30,
                                                                     "page_size": 4096, "generation": 5}]),
        CREATE_DOMAIN_REPLY: encode(CREATE_DOMAIN_REPLY, 5, {"domain_id": 1, "dev_id": 2, "status": 2}),
        ATTACH_DEVICE_REPLY: encode(ATTACH_DEVICE_REPLY, 14, {"dev_id": 2}),
        OK: encode(OK, 6),
        SUBSCRIBE_REPLY: encode(SUBSCRIBE_REPLY, 8, {"domain_id": 1, "page_size": 4096, "max_leaf": 4096}),
        SYNC_REPLY: encode(SYNC_REPLY, 9, {"generation": 5, "pending_pages": 3}),
        RANGES: encode(RANGES, 10, {"generation": 5, "domain_id": 1, "total_pages": 3, "nchunks": 1}, chunks=chunk),
        STATS_REPLY: encode(STATS_REPLY, 12, entries=[{"domain_id": 1, "status": 3, "generation": 5,
                                                       "mapped_bytes": 1 << 30}]),
        GET_FDS_REPLY: encode(GET_FDS_REPLY, 15, {"ioas_id": 1, "hwpt_id": 2}),
        ERROR: encode(ERROR, 4, {"errno": EOPNOTSUPP}, text="device x cannot track dirty pages"),
        EV_ROUND: encode(EV_ROUND, 0, {"domain_id": 1, "generation": 6, "round_pages": 12, "pending_pages": 12}),
        EV_STATE_LOST: encode(EV_STATE_LOST, 0, {"domain_id": 1}),
        LIST_SOURCES_REPLY: encode(LIST_SOURCES_REPLY, 16, entries=[{"domain_id": 1, "kind": SOURCE_HWPT, "id": 2,
                                                                     "devices": 1, "device": "sim0",
                                                                     "page_size": 4096, "rounds": 5}]),
    }


def malformed_d2c(samples):
    """(what, type, packet, id) for reply and event packets that are also
    malformed as that type."""
    out = []
    for t in D2C_TYPES:
        pkt = samples[t]
        body = pkt[HDR_SIZE:]
        mid = 0x7000 + t % 0x100
        hdr = lambda b, flags=0, i=mid: HDR.pack(t, flags, HDR_SIZE + len(b), i) + b
        out.append(("an all-zero body (errno 0, page_size 0, count 0 ...)", t, hdr(b"\0" * len(body)), mid))
        out.append(("a body one byte too long", t, hdr(body + b"\0"), mid))
        if body:
            out.append(("a body one byte short", t, hdr(body[:-1]), mid))
        out.append(("header flags 0x2", t, hdr(body, 0x2), mid))
        if t not in STREAM_TYPES:
            out.append(("PROTO_F_MORE on a type that is not a stream", t, hdr(body, PROTO_F_MORE), mid))
        if t in EVENT_TYPES:
            out.append(("an event with a non-zero id", t, hdr(body), mid))
        else:
            out.append(("a reply with id 0", t, hdr(body, 0, 0), 0))
        if len(body) >= 8:
            out.append(("every body byte 0xff", t, hdr(b"\xff" * len(body)), mid))
    return out


def ask(c, data, timeout=None):
    """Send one packet; (errno name or reply type name, id) of the answer."""
    c.send(data)
    try:
        m = c.next(timeout)
    except Timeout:
        return "no answer", None
    except Closed:
        return "closed", None
    return (ename(m.errno) if m.type == ERROR else m.name), m.id


# ---------------------------------------------------------------------------
# Section 3: the order of the checks
# ---------------------------------------------------------------------------

def t_order(ctx):
    """Section 3: one packet gets the errno of the first check that fails:
    size, length, type known, a request, session state, form, meaning."""
    sock = ctx.A.sock
    samples = d2c_samples()
    c = Conn(sock)
    cases = [
        ("1 before 5: a 15-byte packet before HELLO is EBADMSG id 0", encode(SYNC, 21, {"domain_id": 1})[:15],
         "EBADMSG", 0),
        ("2 before 5: a length field 20 on a 16-byte LIST_DEVICES before HELLO is EMSGSIZE with its id",
         encode(LIST_DEVICES, 22, length=20), "EMSGSIZE", 22),
        ("2 before 3: an unknown type 0x0077 with a wrong length field is EMSGSIZE", HDR.pack(0x77, 0, 99, 23),
         "EMSGSIZE", 23),
        ("2 before 4: a SUBSCRIBE_REPLY with a wrong length field is EMSGSIZE",
         samples[SUBSCRIBE_REPLY][:4] + struct.pack("<I", 40) + struct.pack("<Q", 24) + samples[SUBSCRIBE_REPLY][16:],
         "EMSGSIZE", 24),
        ("3 before 5: an unknown type 0x0077 (flags 0x8000) before HELLO is EPROTO with its id",
         HDR.pack(0x77, 0x8000, 16, 25), "EPROTO", 25),
        ("4 before 5/6: a SUBSCRIBE_REPLY with an all-zero body and PROTO_F_MORE before HELLO is EPROTO",
         HDR.pack(SUBSCRIBE_REPLY, PROTO_F_MORE, 48, 26) + b"\0" * 32, "EPROTO", 26),
        ("5 before 6: SYNC with a 9-byte body before HELLO is EPROTO",
         HDR.pack(SYNC, 0, 25, 27) + b"\0" * 9, "EPROTO", 27),
        ("5 before 6: SYNC with a reserved field set before HELLO is EPROTO",
         encode(SYNC, 28, {"domain_id": 1, "rsv": 1}), "EPROTO", 28),
        ("5 before 6: SYNC with id 0 before HELLO is EPROTO (id 0)", encode(SYNC, 0, {"domain_id": 1}), "EPROTO", 0),
        ("5 before 6: SYNC with PROTO_F_MORE before HELLO is EPROTO", encode(SYNC, 29, {"domain_id": 1}, flags=1),
         "EPROTO", 29),
        ("5 before 6: GET_RANGES with an undefined flag before HELLO is EPROTO",
         encode(GET_RANGES, 30, {"domain_id": 1, "flags": 2}), "EPROTO", 30),
        ("5 before 6: CREATE_DOMAIN with an empty name before HELLO is EPROTO",
         encode(CREATE_DOMAIN, 31, {"flags": 1, "device": b"\0" * 64}), "EPROTO", 31),
        ("6 before 7: HELLO major 7 with a reserved field set is EBADMSG (form before meaning)",
         encode(HELLO, 32, {"major": 7, "rsv": 1}), "EBADMSG", 32),
        ("6: HELLO with PROTO_F_MORE is EBADMSG", encode(HELLO, 33, {"major": 1}, flags=1), "EBADMSG", 33),
        ("6: HELLO with id 0 is EBADMSG (id 0)", encode(HELLO, 0, {"major": 1}), "EBADMSG", 0),
        ("7: HELLO major 7 is EPROTONOSUPPORT", encode(HELLO, 34, {"major": 7}), "EPROTONOSUPPORT", 34),
    ]
    for what, data, want, wid in cases:
        got, gid = ask(c, data)
        R.check("3", "check order %s" % what, (got, gid) == (want, wid), (want, wid), (got, gid))
    m = c.hello(0)
    R.check("3", "after all that the session still takes HELLO", m.type == HELLO_REPLY, "HELLO_REPLY", ok_or_err(m))
    NX = 999991
    cases = [
        ("5 before 6: a second HELLO with a 3-byte body is EPROTO", HDR.pack(HELLO, 0, 19, 41) + b"\0" * 3,
         "EPROTO", 41),
        ("5 before 6: a second HELLO with a reserved field set is EPROTO", encode(HELLO, 42, {"major": 1, "rsv": 1}),
         "EPROTO", 42),
        ("5 before 7: a second HELLO with major 7 is EPROTO", encode(HELLO, 43, {"major": 7}), "EPROTO", 43),
        ("3: an unknown type with header flags 0xffff and id 0 is EPROTO (id 0)", HDR.pack(0x0099, 0xffff, 16, 0),
         "EPROTO", 0),
        ("6 before 7: SYNC of a domain that does not exist, reserved field set, is EBADMSG",
         encode(SYNC, 44, {"domain_id": NX, "rsv": 1}), "EBADMSG", 44),
        ("6 before 7: SYNC of a domain that does not exist with PROTO_F_MORE is EBADMSG",
         encode(SYNC, 45, {"domain_id": NX}, flags=1), "EBADMSG", 45),
        ("6 before 7: SYNC of a domain that does not exist with id 0 is EBADMSG (id 0)",
         encode(SYNC, 0, {"domain_id": NX}), "EBADMSG", 0),
        ("6 before 7: MAP with neither READABLE nor WRITEABLE on a domain that does not exist is EBADMSG",
         encode(MAP, 46, {"domain_id": NX, "flags": 0, "iova": 0, "length": PAGE}), "EBADMSG", 46),
        ("6 before 7: MAP with an undefined flag and an unaligned range on a domain that does not exist is EBADMSG",
         encode(MAP, 47, {"domain_id": NX, "flags": 0x13, "iova": 1, "length": 1}), "EBADMSG", 47),
        ("6 before 7: DMA_WRITE with flags 0x1 on a domain that does not exist is EBADMSG",
         encode(DMA_WRITE, 48, {"domain_id": NX, "flags": 1, "iova": 0, "length": PAGE}), "EBADMSG", 48),
        ("6 before 7: ATTACH_DEVICE of a name with a control character to a domain that does not exist is EBADMSG",
         encode(ATTACH_DEVICE, 49, {"domain_id": NX, "device": b"e\x01" + b"\0" * 62}), "EBADMSG", 49),
        ("6 before 7: CREATE_DOMAIN with an undefined flag for an unknown device is EBADMSG",
         encode(CREATE_DOMAIN, 50, {"flags": 0x20, "device": "nope"}), "EBADMSG", 50),
        ("6 before 7: GET_FDS of a domain that does not exist with a body byte too many is EBADMSG",
         HDR.pack(GET_FDS, 0, 25, 51) + struct.pack("<II", NX, 0) + b"\0", "EBADMSG", 51),
        ("7: the domain first: DMA_WRITE with an unaligned range on a domain that does not exist is ENOENT",
         encode(DMA_WRITE, 52, {"domain_id": NX, "iova": 1, "length": 1}), "ENOENT", 52),
        ("7: the domain first: MAP of an unaligned range on a domain that does not exist is ENOENT",
         encode(MAP, 53, {"domain_id": NX, "flags": 3, "iova": 1, "length": PAGE}), "ENOENT", 53),
        ("7: the domain first: UNMAP of length 0 on a domain that does not exist is ENOENT",
         encode(UNMAP, 54, {"domain_id": NX, "iova": 0, "length": 0}), "ENOENT", 54),
        ("7: the domain first: GET_FDS without FD_PASSING on a domain that does not exist is ENOENT",
         encode(GET_FDS, 55, {"domain_id": NX}), "ENOENT", 55),
        ("7: the domain first: TRACK_START on a domain that does not exist is ENOENT",
         encode(TRACK_START, 56, {"domain_id": NX}), "ENOENT", 56),
        ("7: the domain first: ACK of generation 0 on a domain that does not exist is ENOENT",
         encode(ACK, 57, {"domain_id": NX}), "ENOENT", 57),
    ]
    for what, data, want, wid in cases:
        got, gid = ask(c, data)
        R.check("3", "check order %s" % what, (got, gid) == (want, wid), (want, wid), (got, gid))
    # 6.7: the range's alignment, size and overflow come before anything else about the range
    M = 1 << 20
    dom = create(c, "e12")
    must(c, MAP, {"domain_id": dom, "flags": MAP_READABLE, "iova": 0, "length": M})
    must(c, TRACK_START, {"domain_id": dom})
    must(c, SUBSCRIBE, {"domain_id": dom, "flags": SUBSCRIBE_CLEAN})
    cases = [
        ("MAP of an unaligned range over an existing mapping is EINVAL, not EEXIST",
         (MAP, {"flags": 3, "iova": PAGE + 1, "length": PAGE})),
        ("MAP of length 0 inside an existing mapping is EINVAL, not EEXIST", (MAP, {"flags": 3, "iova": 0, "length": 0})),
        ("MAP of an overflowing range is EINVAL", (MAP, {"flags": 3, "iova": (1 << 64) - PAGE, "length": 2 * PAGE})),
        ("UNMAP of an unaligned range where nothing is mapped is EINVAL, not ENOENT",
         (UNMAP, {"iova": 64 * M, "length": PAGE - 1})),
        ("UNMAP of an unaligned range that would cut a mapping is EINVAL", (UNMAP, {"iova": 1, "length": PAGE})),
        ("DMA_WRITE of an unaligned range where nothing is mapped is EINVAL, not ENOENT",
         (DMA_WRITE, {"iova": 64 * M + 1, "length": PAGE})),
        ("DMA_WRITE of an unaligned range on a mapping without WRITEABLE is EINVAL, not EACCES",
         (DMA_WRITE, {"iova": 0, "length": PAGE + 1})),
        ("DMA_WRITE of length 0 where nothing is mapped is EINVAL, not ENOENT", (DMA_WRITE, {"iova": 64 * M, "length": 0})),
        ("DMA_WRITE of an overflowing range is EINVAL", (DMA_WRITE, {"iova": (1 << 64) - PAGE, "length": 2 * PAGE})),
        # before EOPNOTSUPP: EXTERNAL is refused on the simulated backend, but the range comes first
        ("MAP with EXTERNAL of an unaligned iova on the simulated backend is EINVAL, not EOPNOTSUPP",
         (MAP, {"flags": MAP_EXTERNAL | 3, "iova": 64 * M + 1, "length": PAGE})),
        ("MAP with EXTERNAL of an unaligned length on the simulated backend is EINVAL, not EOPNOTSUPP",
         (MAP, {"flags": MAP_EXTERNAL | 3, "iova": 64 * M, "length": PAGE + 1})),
        ("MAP with EXTERNAL of length 0 on the simulated backend is EINVAL, not EOPNOTSUPP",
         (MAP, {"flags": MAP_EXTERNAL | MAP_READABLE, "iova": 64 * M, "length": 0})),
        ("MAP with EXTERNAL of an overflowing range on the simulated backend is EINVAL, not EOPNOTSUPP",
         (MAP, {"flags": MAP_EXTERNAL | MAP_WRITEABLE, "iova": (1 << 64) - PAGE, "length": 2 * PAGE})),
        ("MAP with EXTERNAL of an unaligned range over an existing mapping is EINVAL, not EOPNOTSUPP or EEXIST",
         (MAP, {"flags": MAP_EXTERNAL | 3, "iova": 1, "length": PAGE})),
        ("UNMAP with EXTERNAL of an unaligned range where nothing is mapped is EINVAL, not ENOENT",
         (UNMAP, {"flags": MAP_EXTERNAL, "iova": 64 * M, "length": PAGE + 1})),
        ("UNMAP with EXTERNAL of length 0 is EINVAL", (UNMAP, {"flags": MAP_EXTERNAL, "iova": 0, "length": 0})),
    ]
    for what, (t, f) in cases:
        mid = c.new_id()
        got, gid = ask(c, encode(t, mid, dict(f, domain_id=dom)))
        R.check("6.7", "the range is checked first: %s" % what, (got, gid) == ("EINVAL", mid), ("EINVAL", mid),
                (got, gid))
    send_err(c, "6.7", "MAP with EXTERNAL of an aligned range on the simulated backend is ERROR EOPNOTSUPP "
             "(the range passed its checks)", MAP,
             {"domain_id": dom, "flags": MAP_EXTERNAL | 3, "iova": 64 * M, "length": PAGE}, EOPNOTSUPP)
    R.check("8.1", "order session: every request answered exactly once", not c.strays(), "nothing", "strays")
    c.close()


# ---------------------------------------------------------------------------
# Section 5: HELLO
# ---------------------------------------------------------------------------

def sample_fields(t, dom=1, dev="e0"):
    return {
        HELLO: {"major": 1, "features": 0},
        LIST_DEVICES: {}, LIST_DOMAINS: {},
        CREATE_DOMAIN: {"flags": CREATE_TRACKING, "device": dev},
        ATTACH_DEVICE: {"domain_id": dom, "device": dev},
        DETACH_DEVICE: {"domain_id": dom, "device": dev},
        DESTROY_DOMAIN: {"domain_id": dom},
        MAP: {"domain_id": dom, "flags": 3, "iova": 1 << 40, "length": PAGE},
        UNMAP: {"domain_id": dom, "flags": 0, "iova": 1 << 40, "length": PAGE},
        DMA_WRITE: {"domain_id": dom, "flags": 0, "iova": 0, "length": PAGE},
        TRACK_START: {"domain_id": dom}, TRACK_STOP: {"domain_id": dom},
        SUBSCRIBE: {"domain_id": dom}, UNSUBSCRIBE: {"domain_id": dom},
        SYNC: {"domain_id": dom}, GET_RANGES: {"domain_id": dom},
        ACK: {"domain_id": dom, "generation": 77777}, STATS: {"domain_id": dom},
        GET_FDS: {"domain_id": dom}, LIST_SOURCES: {"domain_id": dom},
    }[t]


def t_hello(ctx):
    """Section 5: HELLO first, versions, features, tokens."""
    sock = ctx.A.sock
    c = Conn(sock)
    # every other request first: EPROTO, ignored
    for t in REQUEST_TYPES:
        if t == HELLO:
            continue
        send_err(c, "5", "%s before HELLO is ERROR EPROTO" % tname(t), t, sample_fields(t, 1, "e11"), EPROTO,
                 ping=False)
    m = c.hello(0)
    R.check("5", "HELLO after refused requests is answered HELLO_REPLY", m.type == HELLO_REPLY, "HELLO_REPLY",
            ok_or_err(m))
    r = c.request(LIST_DEVICES)
    ent = {e["name"]: e for mm in r for e in mm.entries}
    R.check("5", "a CREATE_DOMAIN sent before HELLO was ignored (e11 not bound or attached)",
            ent.get("e11", {}).get("flags", 0) & (DEV_BOUND | DEV_ATTACHED) == 0, "flags without BOUND/ATTACHED",
            ent.get("e11"))
    send_err(c, "5", "a second HELLO is ERROR EPROTO", HELLO, {"major": 1}, EPROTO)
    c.close()
    # major version
    c = Conn(sock)
    send_err(c, "5.1", "HELLO major 7 (minor 3) is ERROR EPROTONOSUPPORT naming both versions",
             HELLO, {"major": 7, "minor": 3}, EPROTONOSUPPORT, must_contain=("7", "1"), ping=False)
    send_err(c, "5.1", "after EPROTONOSUPPORT the session still waits for HELLO (LIST_DEVICES: EPROTO)",
             LIST_DEVICES, None, EPROTO, ping=False)
    send_err(c, "5.1", "HELLO major 0 is ERROR EPROTONOSUPPORT", HELLO, {"major": 0}, EPROTONOSUPPORT, ping=False)
    m = c.hello(0, minor=9)
    R.check("5.1", "HELLO 1.9 (a later minor) is accepted; HELLO_REPLY gives 1.0 and max_msg 65536",
            m.type == HELLO_REPLY and (m.f["major"], m.f["minor"], m.f["max_msg"]) == (1, 0, 65536),
            (1, 0, 65536), ok_or_err(m) if m.type == ERROR else (m.f["major"], m.f["minor"], m.f["max_msg"]))
    c.close()
    # malformed HELLOs
    c = Conn(sock)
    send_err(c, "2", "HELLO with a non-zero reserved field is ERROR EBADMSG", HELLO,
             {"major": 1, "rsv": 1}, EBADMSG, ping=False)
    mid = c.new_id()
    d = encode(HELLO, mid, {"major": 1})[:-1]
    send_err(c, "4", "HELLO with a 23-byte body is ERROR EBADMSG", None, None, EBADMSG,
             data=d[:4] + struct.pack("<I", len(d)) + d[8:], mid=mid, ping=False)
    mid = c.new_id()
    d = encode(HELLO, mid, {"major": 1}) + b"\0"
    send_err(c, "4", "HELLO with a 25-byte body is ERROR EBADMSG", None, None, EBADMSG,
             data=d[:4] + struct.pack("<I", len(d)) + d[8:], mid=mid, ping=False)
    send_err(c, "3", "HELLO with id 0 is ERROR EBADMSG", HELLO, {"major": 1}, EBADMSG, mid=0, ping=False)
    m = c.hello(FEAT_RANGES_RAW | FEAT_RESUME | FEAT_FD_PASSING | FEAT_EVENTS | 0xfffffffffffffff0)
    R.check("5.2", "after malformed HELLOs a valid HELLO is accepted; every bit offered gives 0x3b on sim "
            "(unknown bits and FD_PASSING not echoed, ADOPT and SOURCES echoed)",
            m.type == HELLO_REPLY and m.f["features"] == 0x3b,
            0x3b, ok_or_err(m) if m.type == ERROR else hex(m.f["features"]))
    R.check("6.1", "HELLO_REPLY for root: uid 0, gid 0, major 1, minor 0, max_msg 65536, flags 0",
            m.type == HELLO_REPLY and (m.f["uid"], m.f["gid"], m.f["major"], m.f["minor"], m.f["max_msg"],
                                       m.f["session_flags"]) == (0, 0, 1, 0, 65536, 0),
            (0, 0, 1, 0, 65536, 0), m.f)
    c.close()
    for feats, want in ((0, 0), (FEAT_FD_PASSING, 0), (FEAT_ADOPT, FEAT_ADOPT), (FEAT_EVENTS, FEAT_EVENTS),
                        (FEAT_RANGES_RAW, FEAT_RANGES_RAW), (1 << 63, 0)):
        c = Conn(sock)
        m = c.hello(feats)
        R.check("5.2", "HELLO features %#x: HELLO_REPLY.features %#x (intersection), token 0 without RESUME" % (feats, want),
                m.type == HELLO_REPLY and m.f["features"] == want and m.f["session_token"] == 0,
                (want, 0), (m.f.get("features"), m.f.get("session_token")))
        c.close()
    c = Conn(sock)
    m = c.hello(FEAT_RESUME, 0)
    R.check("5.3", "RESUME with resume_token 0: a new session (flags 0) with a non-zero token",
            m.type == HELLO_REPLY and m.f["session_flags"] == 0 and m.f["session_token"] != 0,
            "flags 0, token != 0", m.f)
    c.close()
    c = Conn(sock)
    m = c.hello(0, 0x1234567890)
    R.check("5.3", "a non-zero resume_token without RESUME gets STATE_LOST and token 0",
            m.type == HELLO_REPLY and m.f["session_flags"] & SESSION_STATE_LOST and m.f["session_token"] == 0,
            "STATE_LOST, token 0", m.f)
    c.close()
    c = Conn(sock)
    m = c.hello(FEAT_RESUME, 0x1234567890)
    R.check("5.3", "an unknown token with RESUME gets STATE_LOST and a new non-zero token",
            m.type == HELLO_REPLY and m.f["session_flags"] == SESSION_STATE_LOST and
            m.f["session_token"] not in (0, 0x1234567890), "STATE_LOST, new token", m.f)
    c.close()


# ---------------------------------------------------------------------------
# Sections 2 and 4: body sizes, reserved fields, flag bits, names
# ---------------------------------------------------------------------------

UNDEFINED_FLAGS = {CREATE_DOMAIN: [0x20, 0x80000000], MAP: [0x8 | 0x3, 0x100 | 0x3],
                   UNMAP: [0x1, 0x2, 0x8], DMA_WRITE: [0x1, 0x4, 0x80000000],
                   SUBSCRIBE: [0x2, 0x80000000], GET_RANGES: [0x2, 0x80000000]}

BAD_NAMES = [
    ("an empty name", b"\0" * 64),
    ("a name of 64 bytes without NUL", b"e" * 64),
    ("bytes after the first NUL", b"e1\0x" + b"\0" * 60),
    ("invalid UTF-8 (0xff)", b"e\xff" + b"\0" * 62),
    ("invalid UTF-8 (overlong C0 80)", b"e\xc0\x80" + b"\0" * 61),
    ("invalid UTF-8 (surrogate ED A0 80)", b"e\xed\xa0\x80" + b"\0" * 60),
    ("invalid UTF-8 (truncated sequence)", b"e\xc3" + b"\0" * 62),
    ("invalid UTF-8 (above U+10FFFF)", b"e\xf4\x90\x80\x80" + b"\0" * 59),
    ("invalid UTF-8 (lone continuation byte)", b"\x80e" + b"\0" * 62),
    ("invalid UTF-8 (CESU-8 surrogate pair for U+1F600)", b"e\xed\xa0\xbd\xed\xb8\x80" + b"\0" * 57),
    ("invalid UTF-8 (a 63-byte limit cutting a 2-byte character)", "\u00e9".encode() * 31 + b"\xc3\0"),
    ("a control character U+0001", b"e\x01" + b"\0" * 62),
    ("a tab (U+0009)", b"e\tx" + b"\0" * 61),
    ("a newline (U+000A)", b"e\n" + b"\0" * 62),
    ("an escape (U+001B)", b"\x1b[31me" + b"\0" * 58),
    ("a control character U+001F", b"\x1fe" + b"\0" * 62),
    ("DEL (U+007F)", b"e\x7f" + b"\0" * 62),
]
# well-formed names (section 2): UTF-8 of any length in bytes up to 63, C1
# characters (U+0080 .. U+009F are not among the control characters str64
# excludes), characters outside the BMP
GOOD_NAMES = [
    ("a C1 character (U+0085)", "e\u0085"),
    ("a 4-byte character (U+1F600)", "e\U0001F600"),
    ("U+10FFFF, the last code point", "e\U0010FFFF"),
    ("63 bytes of 2-byte characters and one ASCII", "\u00e9" * 31 + "x"),
    ("a space", "no such"),
]


def t_bodies(ctx):
    """Sections 2/4: body sizes, reserved fields, flag bits, names (UTF-8, control characters)."""
    c = connect(ctx.A.sock)
    dom = create(c, "e10")            # a sacrificial tracking domain
    ctx.sacrificial = dom
    must(c, MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 1 << 20})
    for t in REQUEST_TYPES:
        if t == HELLO:
            continue
        f = sample_fields(t, dom, "e10")
        n = FIXED_BODY[t]
        good = encode(t, 1, f)[HDR_SIZE:]
        for delta in ((-1, 1) if n else (1, 8)):
            body = good[:n + delta] if delta < 0 else good + b"\0" * delta
            mid = c.new_id()
            send_err(c, "4", "%s with a body of %d bytes (not %d) is ERROR EBADMSG" % (tname(t), n + delta, n),
                     None, None, EBADMSG, data=HDR.pack(t, 0, HDR_SIZE + len(body), mid) + body, mid=mid)
        for name, kind in LAYOUT[t].fields:
            if kind[0] == "r":
                for v in (1, 1 << (int(kind[1:]) - 1)):
                    send_err(c, "2", "%s with reserved field = %#x is ERROR EBADMSG" % (tname(t), v),
                             t, dict(f, **{name: v}), EBADMSG)
        for bits in UNDEFINED_FLAGS.get(t, []):
            send_err(c, "2", "%s with flags %#x (undefined bits) is ERROR EBADMSG" % (tname(t), bits),
                     t, dict(f, flags=bits), EBADMSG)
        if t in (CREATE_DOMAIN, ATTACH_DEVICE, DETACH_DEVICE):
            for what, raw in BAD_NAMES:
                send_err(c, "2", "%s with %s is ERROR EBADMSG" % (tname(t), what), t,
                         dict(f, device=raw), EBADMSG)
            for what, name in GOOD_NAMES:
                send_err(c, "2", "%s naming an unknown device with %s (well-formed) is ERROR ENOENT naming it"
                         % (tname(t), what), t, dict(f, device=name), ENOENT, must_contain=(name,))
    # sections 2 / 6.15: ERROR text excludes U+0000 .. U+001F and U+007F only, so a name holding C1
    # characters may be echoed as it is (the reply's text is checked like every ERROR's, validate_incoming)
    name = "c1\u0085\u009b\u0080\u009f"
    send_err(c, "6.15", "CREATE_DOMAIN naming an unknown device whose name holds C1 characters (U+0080, U+0085, "
             "U+009B, U+009F) is ERROR ENOENT whose text names it, C1 characters and all", CREATE_DOMAIN,
             {"flags": CREATE_TRACKING, "device": name}, ENOENT, must_contain=(name,))
    R.check("8.1", "bodies session: every request answered exactly once", not c.strays(), "nothing", "strays")
    c.close()


# ---------------------------------------------------------------------------
# Sections 6 and 7: every request's error rows
# ---------------------------------------------------------------------------

def list_devices(c):
    return {e["name"]: e for m in c.request(LIST_DEVICES) for e in m.entries}


def list_domains(c):
    r = c.request(LIST_DOMAINS)
    return {e["domain_id"]: e for m in r for e in m.entries}


def stats(c, dom=0):
    r = c.request(STATS, {"domain_id": dom})
    if r[-1].type == ERROR:
        return None
    return {e["domain_id"]: e for m in r for e in m.entries}


def t_errors(ctx):
    """Sections 6/7: every request against the error rows of section 7."""
    c = connect(ctx.A.sock)
    NX = 999999
    M = 1 << 20
    DT = create(c, "e0")
    ctx.DT = DT
    must(c, MAP, {"domain_id": DT, "flags": 3, "iova": 0, "length": 16 * M})
    must(c, MAP, {"domain_id": DT, "flags": MAP_READABLE, "iova": 16 * M, "length": M})
    must(c, MAP, {"domain_id": DT, "flags": MAP_WRITEABLE, "iova": 32 * M, "length": M},
         desc="MAP with WRITEABLE only is accepted", section="6.7")
    m = must(c, CREATE_DOMAIN, {"flags": 0, "device": "en0"}, section="6.4",
             desc="CREATE_DOMAIN without tracking for a nodirty device succeeds")
    DN = m.f.get("domain_id")
    R.check("6.4", "a domain created without tracking has status UNSUPPORTED", m.f.get("status") == ST_UNSUPPORTED,
            ST_UNSUPPORTED, m.f.get("status"))
    ctx.DN = DN
    must(c, MAP, {"domain_id": DN, "flags": 3, "iova": 0, "length": M})
    DX = create(c, "e1")
    ctx.DX = DX
    # CREATE_DOMAIN
    send_err(c, "6.4", "CREATE_DOMAIN for an unknown device is ERROR ENOENT naming it", CREATE_DOMAIN,
             {"flags": 1, "device": "nope"}, ENOENT, must_contain=("nope",))
    send_err(c, "6.4", "CREATE_DOMAIN for a device in a domain already is ERROR EBUSY naming it", CREATE_DOMAIN,
             {"flags": 1, "device": "e0"}, EBUSY, must_contain=("e0",))
    send_err(c, "6.4", "CREATE_DOMAIN with tracking for a nodirty device is ERROR EOPNOTSUPP naming it", CREATE_DOMAIN,
             {"flags": 1, "device": "nd0"}, EOPNOTSUPP, must_contain=("nd0",))
    send_err(c, "6.4", "CREATE_DOMAIN with NO_HUGE_PAGES|TRACKING for a nodirty device is ERROR EOPNOTSUPP", CREATE_DOMAIN,
             {"flags": 3, "device": "nd0"}, EOPNOTSUPP, must_contain=("nd0",))
    # ATTACH_DEVICE
    send_err(c, "6.5", "ATTACH_DEVICE to a domain that does not exist is ERROR ENOENT", ATTACH_DEVICE,
             {"domain_id": NX, "device": "e3"}, ENOENT, must_contain=(NX,))
    send_err(c, "6.5", "ATTACH_DEVICE to domain 0 is ERROR ENOENT", ATTACH_DEVICE,
             {"domain_id": 0, "device": "e3"}, ENOENT)
    send_err(c, "6.5", "ATTACH_DEVICE of an unknown device is ERROR ENOENT naming it", ATTACH_DEVICE,
             {"domain_id": DX, "device": "nope2"}, ENOENT, must_contain=("nope2",))
    send_err(c, "6.5", "ATTACH_DEVICE of a nodirty device to a tracking domain is ERROR EINVAL naming device and domain",
             ATTACH_DEVICE, {"domain_id": DX, "device": "nd1"}, EINVAL, must_contain=("nd1", DX))
    send_err(c, "6.5", "ATTACH_DEVICE of a device in another domain is ERROR EBUSY naming it", ATTACH_DEVICE,
             {"domain_id": DX, "device": "e0"}, EBUSY, must_contain=("e0",))
    m = must(c, ATTACH_DEVICE, {"domain_id": DX, "device": "e3"}, section="6.5",
             desc="ATTACH_DEVICE of a dirty device to a tracking domain is answered ATTACH_DEVICE_REPLY")
    R.check("6.5", "ATTACH_DEVICE_REPLY dev_id is non-zero", m.f.get("dev_id", 0) != 0, "non-zero", m.f.get("dev_id"))
    devs = list_devices(c)
    e3 = devs.get("e3", {})
    R.check("6.2", "an attached device is listed DIRTY_CAPABLE|BOUND|ATTACHED with its domain and dev_id",
            (e3.get("flags", 0) & 7, e3.get("domain_id"), e3.get("dev_id")) == (7, DX, m.f.get("dev_id")),
            (7, DX, m.f.get("dev_id")), (e3.get("flags"), e3.get("domain_id"), e3.get("dev_id")))
    doms = list_domains(c)
    R.check("6.3", "LIST_DOMAINS devices counts attached devices (2)", doms.get(DX, {}).get("devices") == 2, 2,
            doms.get(DX, {}).get("devices"))
    send_err(c, "6.5", "ATTACH_DEVICE of a device already in that same domain is ERROR EBUSY", ATTACH_DEVICE,
             {"domain_id": DX, "device": "e3"}, EBUSY)
    m = must(c, ATTACH_DEVICE, {"domain_id": DN, "device": "nd1"}, section="6.5",
             desc="ATTACH_DEVICE of a nodirty device to a domain without tracking succeeds")
    # DETACH_DEVICE
    send_err(c, "6.5", "DETACH_DEVICE of a device not in that domain is ERROR ENOENT", DETACH_DEVICE,
             {"domain_id": DT, "device": "e3"}, ENOENT)
    send_err(c, "6.5", "DETACH_DEVICE of an unbound device is ERROR ENOENT", DETACH_DEVICE,
             {"domain_id": DT, "device": "e4"}, ENOENT)
    send_err(c, "6.5", "DETACH_DEVICE of an unknown device is ERROR ENOENT", DETACH_DEVICE,
             {"domain_id": DT, "device": "nope3"}, ENOENT)
    send_err(c, "6.5", "DETACH_DEVICE from a domain that does not exist is ERROR ENOENT", DETACH_DEVICE,
             {"domain_id": NX, "device": "e3"}, ENOENT)
    must(c, DETACH_DEVICE, {"domain_id": DX, "device": "e3"}, section="6.5", desc="DETACH_DEVICE answered OK")
    e3 = list_devices(c).get("e3", {})
    R.check("6.5", "a detached device is unbound: flags DIRTY_CAPABLE only, domain 0, dev_id 0",
            (e3.get("flags", 0) & 7, e3.get("domain_id"), e3.get("dev_id")) == (1, 0, 0), (1, 0, 0),
            (e3.get("flags"), e3.get("domain_id"), e3.get("dev_id")))
    # DESTROY_DOMAIN
    send_err(c, "6.6", "DESTROY_DOMAIN of a domain that does not exist is ERROR ENOENT naming it", DESTROY_DOMAIN,
             {"domain_id": NX}, ENOENT, must_contain=(NX,))
    send_err(c, "6.6", "DESTROY_DOMAIN of domain 0 is ERROR ENOENT", DESTROY_DOMAIN, {"domain_id": 0}, ENOENT)
    # MAP
    base = {"domain_id": DT, "flags": 3}
    for what, iova, ln in (("an unaligned iova", 64 * M + 1, PAGE), ("an unaligned length", 64 * M, PAGE + 512),
                           ("length 0", 64 * M, 0), ("an overflowing range", (1 << 64) - PAGE, 2 * PAGE),
                           ("iova = 2^64 - 4 KiB, length 2^63", (1 << 64) - PAGE, 1 << 63)):
        send_err(c, "6.7", "MAP of %s is ERROR EINVAL" % what, MAP, dict(base, iova=iova, length=ln), EINVAL)
    send_err(c, "6.7", "MAP over an existing mapping (same range) is ERROR EEXIST", MAP,
             dict(base, iova=0, length=16 * M), EEXIST)
    send_err(c, "6.7", "MAP partly over an existing mapping is ERROR EEXIST", MAP,
             dict(base, iova=8 * M, length=16 * M), EEXIST)
    send_err(c, "6.7", "MAP with EXTERNAL on the simulated backend is ERROR EOPNOTSUPP", MAP,
             dict(base, flags=MAP_EXTERNAL | 3, iova=64 * M, length=M), EOPNOTSUPP)
    send_err(c, "6.7", "MAP on a domain that does not exist is ERROR ENOENT", MAP,
             dict(base, domain_id=NX, iova=64 * M, length=M), ENOENT)
    send_err(c, "6.7", "MAP with neither READABLE nor WRITEABLE is malformed: ERROR EBADMSG", MAP,
             dict(base, flags=0, iova=64 * M, length=M), EBADMSG)
    send_err(c, "6.7", "MAP with only EXTERNAL (neither READABLE nor WRITEABLE) is ERROR EBADMSG", MAP,
             dict(base, flags=MAP_EXTERNAL, iova=64 * M, length=M), EBADMSG)
    # UNMAP
    send_err(c, "6.7", "UNMAP where nothing is mapped is ERROR ENOENT", UNMAP,
             {"domain_id": DT, "iova": 100 * M, "length": M}, ENOENT)
    send_err(c, "6.7", "UNMAP that would cut a mapping is ERROR EINVAL", UNMAP,
             {"domain_id": DT, "iova": 0, "length": 8 * M}, EINVAL)
    send_err(c, "6.7", "UNMAP that would cut a mapping at its start is ERROR EINVAL", UNMAP,
             {"domain_id": DT, "iova": 4 * M, "length": 12 * M}, EINVAL)
    for what, iova, ln in (("an unaligned iova", 16 * M + 1, M), ("an unaligned length", 16 * M, M + 1),
                           ("length 0", 16 * M, 0), ("an overflowing range", (1 << 64) - PAGE, 2 * PAGE)):
        send_err(c, "6.7", "UNMAP of %s is ERROR EINVAL" % what, UNMAP,
                 {"domain_id": DT, "iova": iova, "length": ln}, EINVAL)
    send_err(c, "6.7", "UNMAP with EXTERNAL of a mapping made without it is ERROR EINVAL", UNMAP,
             {"domain_id": DT, "flags": MAP_EXTERNAL, "iova": 16 * M, "length": M}, EINVAL)
    send_err(c, "6.7", "UNMAP on a domain that does not exist is ERROR ENOENT", UNMAP,
             {"domain_id": NX, "iova": 0, "length": M}, ENOENT)
    must(c, MAP, dict(base, iova=40 * M, length=M))
    must(c, MAP, dict(base, iova=42 * M, length=M))
    must(c, UNMAP, {"domain_id": DT, "iova": 40 * M, "length": 3 * M}, section="6.7",
         desc="UNMAP covering two whole mappings and the hole between them is answered OK")
    send_err(c, "6.7", "after that UNMAP, DMA_WRITE to the removed range is ERROR ENOENT", DMA_WRITE,
             {"domain_id": DT, "iova": 42 * M, "length": PAGE}, ENOENT)
    must(c, MAP, dict(base, iova=40 * M, length=M), section="6.7",
         desc="the removed range can be mapped again")
    must(c, UNMAP, {"domain_id": DT, "iova": 40 * M, "length": M})
    # DMA_WRITE
    send_err(c, "6.7", "DMA_WRITE where nothing is mapped is ERROR ENOENT", DMA_WRITE,
             {"domain_id": DT, "iova": 100 * M, "length": PAGE}, ENOENT)
    send_err(c, "6.7", "DMA_WRITE to a mapping without WRITEABLE is ERROR EACCES", DMA_WRITE,
             {"domain_id": DT, "iova": 16 * M, "length": PAGE}, EACCES)
    for what, iova, ln in (("an unaligned iova (100)", 100, PAGE), ("an unaligned length (100)", 0, 100),
                           ("an unaligned iova and length", 2 * PAGE + 1, PAGE + 1),
                           ("a length of one page and one byte", 3 * PAGE, PAGE + 1)):
        send_err(c, "6.7", "DMA_WRITE with %s is ERROR EINVAL" % what, DMA_WRITE,
                 {"domain_id": DT, "iova": iova, "length": ln}, EINVAL)
    send_err(c, "6.7", "DMA_WRITE of length 0 is ERROR EINVAL", DMA_WRITE,
             {"domain_id": DT, "iova": 0, "length": 0}, EINVAL)
    send_err(c, "6.7", "DMA_WRITE of an overflowing range is ERROR EINVAL", DMA_WRITE,
             {"domain_id": DT, "iova": (1 << 64) - PAGE, "length": 2 * PAGE}, EINVAL)
    send_err(c, "6.7", "DMA_WRITE on a domain that does not exist is ERROR ENOENT", DMA_WRITE,
             {"domain_id": NX, "iova": 0, "length": PAGE}, ENOENT)
    must(c, DMA_WRITE, {"domain_id": DT, "iova": 32 * M, "length": PAGE}, section="6.7",
         desc="DMA_WRITE to a WRITEABLE-only mapping is answered OK")
    must(c, DMA_WRITE, {"domain_id": DN, "iova": 0, "length": PAGE}, section="6.7",
         desc="DMA_WRITE on a domain without tracking is answered OK (nothing to record)")
    # TRACK_START / TRACK_STOP
    send_err(c, "6.8", "TRACK_START on a domain created without tracking is ERROR EOPNOTSUPP", TRACK_START,
             {"domain_id": DN}, EOPNOTSUPP)
    send_err(c, "6.8", "TRACK_START on a domain that does not exist is ERROR ENOENT", TRACK_START,
             {"domain_id": NX}, ENOENT)
    send_err(c, "6.8", "TRACK_STOP on a domain that does not exist is ERROR ENOENT", TRACK_STOP,
             {"domain_id": NX}, ENOENT)
    send_err(c, "6.8", "TRACK_STOP on a domain created without tracking is ERROR EOPNOTSUPP", TRACK_STOP,
             {"domain_id": DN}, EOPNOTSUPP)
    send_err(c, "6.10", "SYNC while tracking is off is ERROR EINVAL \"tracking is off on domain N\"", SYNC,
             {"domain_id": DX}, EINVAL, must_contain=("tracking is off on domain %d" % DX,))
    send_err(c, "6.10", "SYNC on a domain without tracking is ERROR EINVAL", SYNC, {"domain_id": DN}, EINVAL)
    send_err(c, "6.10", "SYNC on a domain that does not exist is ERROR ENOENT", SYNC, {"domain_id": NX}, ENOENT)
    must(c, TRACK_START, {"domain_id": DT})
    must(c, TRACK_START, {"domain_id": DT}, section="6.8", desc="TRACK_START on a started domain is answered OK")
    must(c, TRACK_STOP, {"domain_id": DX}, section="6.8", desc="TRACK_STOP on a stopped domain is answered OK")
    doms = list_domains(c)
    R.check("6.3", "status: started tracking domain ENABLED|SUPPORTED, stopped SUPPORTED, no tracking UNSUPPORTED",
            (doms.get(DT, {}).get("status"), doms.get(DX, {}).get("status"), doms.get(DN, {}).get("status"))
            == (3, 2, 4), (3, 2, 4),
            (doms.get(DT, {}).get("status"), doms.get(DX, {}).get("status"), doms.get(DN, {}).get("status")))
    m = must(c, SYNC, {"domain_id": DT}, section="6.10",
             desc="SYNC without a subscription is answered SYNC_REPLY")
    R.check("6.10", "SYNC_REPLY pending_pages is 0 for a session without a subscription",
            m.f.get("pending_pages") == 0, 0, m.f.get("pending_pages"))
    # SUBSCRIBE / UNSUBSCRIBE / GET_RANGES / ACK
    send_err(c, "6.11", "GET_RANGES without a subscription is ERROR ENOENT", GET_RANGES, {"domain_id": DT}, ENOENT)
    send_err(c, "6.12", "ACK without a subscription is ERROR ENOENT", ACK, {"domain_id": DT, "generation": 0}, ENOENT)
    send_err(c, "6.9", "UNSUBSCRIBE without a subscription is ERROR ENOENT", UNSUBSCRIBE, {"domain_id": DT}, ENOENT)
    send_err(c, "6.9", "SUBSCRIBE to a domain that does not exist is ERROR ENOENT", SUBSCRIBE,
             {"domain_id": NX}, ENOENT)
    send_err(c, "6.9", "UNSUBSCRIBE from a domain that does not exist is ERROR ENOENT", UNSUBSCRIBE,
             {"domain_id": NX}, ENOENT)
    send_err(c, "6.11", "GET_RANGES on a domain that does not exist is ERROR ENOENT", GET_RANGES,
             {"domain_id": NX}, ENOENT)
    send_err(c, "6.12", "ACK on a domain that does not exist is ERROR ENOENT", ACK,
             {"domain_id": NX, "generation": 0}, ENOENT)
    m = must(c, SUBSCRIBE, {"domain_id": DT}, section="6.9", desc="SUBSCRIBE is answered SUBSCRIBE_REPLY")
    ps, ml = m.f.get("page_size", 0), m.f.get("max_leaf", 0)
    R.check("6.9", "page_size and max_leaf are powers of two, max_leaf >= page_size (4096, 4096 on 4k backing)",
            (ps, ml) == (4096, 4096), (4096, 4096), (ps, ml))
    send_err(c, "6.9", "a second SUBSCRIBE to the same domain in one session is ERROR EEXIST", SUBSCRIBE,
             {"domain_id": DT}, EEXIST)
    send_err(c, "6.9", "a second SUBSCRIBE with CLEAN is ERROR EEXIST too", SUBSCRIBE,
             {"domain_id": DT, "flags": SUBSCRIBE_CLEAN}, EEXIST)
    send_err(c, "6.12", "ACK of a generation never sent is ERROR ENOENT", ACK,
             {"domain_id": DT, "generation": 12345}, ENOENT)
    st = get_ranges(c, DT)
    send_err(c, "6.12", "ACK of a generation other than the one in flight is ERROR ENOENT", ACK,
             {"domain_id": DT, "generation": st.gen + 1000}, ENOENT)
    must(c, ACK, {"domain_id": DT, "generation": st.gen}, section="6.12", desc="ACK of the generation in flight is OK")
    send_err(c, "6.12", "ACK of a generation acknowledged already is ERROR ENOENT", ACK,
             {"domain_id": DT, "generation": st.gen}, ENOENT)
    # a DMA_WRITE refused for its range writes nothing
    for iova, ln in ((5 * PAGE + 100, PAGE), (7 * PAGE, PAGE + 1), (9 * PAGE, 0)):
        send_err(c, "6.7", "DMA_WRITE iova %#x length %#x (tracking on, subscribed) is ERROR EINVAL" % (iova, ln),
                 DMA_WRITE, {"domain_id": DT, "iova": iova, "length": ln}, EINVAL, ping=False)
    m = c.req1(SYNC, {"domain_id": DT})
    R.check("6.7", "a DMA_WRITE refused with EINVAL wrote nothing: the next SYNC finds no page pending",
            m.type == SYNC_REPLY and m.f["pending_pages"] == 0, 0, ok_or_err(m) if m.type == ERROR else m.f)
    # every request that names a domain: ENOENT for one that does not exist, and for domain 0
    for dom_ in (NX, 0):
        for t, f in domain_requests(dom_):
            if t == STATS and dom_ == 0:
                continue
            mid = c.new_id()
            got, gid = ask(c, encode(t, mid, f))
            AGG.add("7", "every request naming a domain that does not exist (or domain 0) is ERROR ENOENT",
                    (got, gid) == ("ENOENT", mid), "%s domain %d: %s" % (tname(t), dom_, got))
    must(c, UNSUBSCRIBE, {"domain_id": DT}, section="6.9", desc="UNSUBSCRIBE is answered OK")
    send_err(c, "6.9", "UNSUBSCRIBE twice is ERROR ENOENT", UNSUBSCRIBE, {"domain_id": DT}, ENOENT)
    send_err(c, "6.11", "GET_RANGES after UNSUBSCRIBE is ERROR ENOENT", GET_RANGES, {"domain_id": DT}, ENOENT)
    m = must(c, SUBSCRIBE, {"domain_id": DN}, section="6.9",
             desc="SUBSCRIBE to a domain created without tracking is allowed (SUBSCRIBE_REPLY)")
    # STATS / GET_FDS
    send_err(c, "6.13", "STATS of a domain that does not exist is ERROR ENOENT", STATS, {"domain_id": NX}, ENOENT)
    r = c.request(STATS, {"domain_id": DT})
    R.check("6.13", "STATS of one domain: one STATS_REPLY with count 1 and that domain",
            len(r) == 1 and r[0].type == STATS_REPLY and [e["domain_id"] for e in r[0].entries] == [DT],
            [DT], [ok_or_err(x) for x in r] if r[0].type != STATS_REPLY else [e["domain_id"] for e in r[0].entries])
    send_err(c, "6.14", "GET_FDS without PROTO_FEAT_FD_PASSING is ERROR EOPNOTSUPP", GET_FDS, {"domain_id": DT},
             EOPNOTSUPP)
    # LIST_SOURCES (6.21)
    send_err(c, "6.21", "LIST_SOURCES without PROTO_FEAT_SOURCES is ERROR EOPNOTSUPP", LIST_SOURCES,
             {"domain_id": DT}, EOPNOTSUPP)
    cs = connect(ctx.A.sock, FEAT_SOURCES)
    R.check("5.2", "PROTO_FEAT_SOURCES is negotiated when asked", bool(cs.features & FEAT_SOURCES),
            "offered", hex(cs.features))
    send_err(cs, "6.21", "LIST_SOURCES of a domain that does not exist is ERROR ENOENT", LIST_SOURCES,
             {"domain_id": NX}, ENOENT)
    r = cs.request(LIST_SOURCES, {"domain_id": DT})
    ents = [e for m in r if m.type == LIST_SOURCES_REPLY for e in m.entries]
    R.check("6.21", "LIST_SOURCES of a tracking domain of one device: one packet, one HWPT of that device",
            len(r) == 1 and r[0].type == LIST_SOURCES_REPLY and not r[0].flags & PROTO_F_MORE and
            [(e["domain_id"], e["kind"], e["devices"], e["device"], e["ranges"]) for e in ents] ==
            [(DT, SOURCE_HWPT, 1, "e0", 0)],
            [(DT, SOURCE_HWPT, 1, "e0", 0)],
            [ok_or_err(x) for x in r] if r[0].type != LIST_SOURCES_REPLY else
            [(e["domain_id"], e["kind"], e["devices"], e["device"], e["ranges"]) for e in ents])
    r = cs.request(LIST_SOURCES, {"domain_id": DN})
    ents = [e for m in r if m.type == LIST_SOURCES_REPLY for e in m.entries]
    R.check("6.21", "LIST_SOURCES of a domain without tracking: its plain HWPT, never read",
            [(e["kind"], e["rounds"]) for e in ents] == [(SOURCE_HWPT_PLAIN, 0)],
            [(SOURCE_HWPT_PLAIN, 0)], [(e["kind"], e["rounds"]) for e in ents] or [ok_or_err(x) for x in r])
    cs.close()
    c2 = connect(ctx.A.sock, FEAT_FD_PASSING | FEAT_RANGES_RAW)
    R.check("5.2", "PROTO_FEAT_FD_PASSING is not negotiated on the simulated backend",
            not c2.features & FEAT_FD_PASSING, "not offered", hex(c2.features))
    send_err(c2, "6.14", "GET_FDS on the simulated backend (FD_PASSING asked) is ERROR EOPNOTSUPP", GET_FDS,
             {"domain_id": DT}, EOPNOTSUPP)
    e = (stats(c2, DT) or {}).get(DT, {})
    R.check("6.13", "STATS for a session without a subscription: pending_pages 0, pages_sent 0",
            (e.get("pending_pages"), e.get("pages_sent")) == (0, 0), (0, 0), (e.get("pending_pages"), e.get("pages_sent")))
    send_err(c2, "6.14", "GET_FDS (FD_PASSING asked) of a domain that does not exist is ERROR ENOENT first",
             GET_FDS, {"domain_id": NX}, ENOENT)
    send_err(c, "6.14", "GET_FDS (no FD_PASSING) of a domain that does not exist is ERROR ENOENT first",
             GET_FDS, {"domain_id": NX}, ENOENT)
    c2.close()
    # a domain whose only device was detached
    dz = create(c, "e11")
    must(c, MAP, {"domain_id": dz, "flags": 3, "iova": 0, "length": M})
    must(c, DETACH_DEVICE, {"domain_id": dz, "device": "e11"}, section="6.5",
         desc="DETACH_DEVICE of a domain's only device is OK")
    send_err(c, "6.7", "DMA_WRITE on a domain with no device left is ERROR ENODEV", DMA_WRITE,
             {"domain_id": dz, "iova": 0, "length": PAGE}, ENODEV)
    for what, iova, ln in (("an unaligned iova", 1, PAGE), ("an unaligned length", 0, PAGE - 1),
                           ("length 0", 0, 0), ("an overflowing range", (1 << 64) - PAGE, 2 * PAGE)):
        send_err(c, "6.7", "the range is checked first: DMA_WRITE of %s on a domain with no device left is ERROR "
                 "EINVAL, not ENODEV" % what, DMA_WRITE, {"domain_id": dz, "iova": iova, "length": ln}, EINVAL)
    must(c, DESTROY_DOMAIN, {"domain_id": dz})
    R.check("8.1", "error session: every request answered exactly once", not c.strays(), "nothing", "strays")
    c.close()


# ---------------------------------------------------------------------------
# Section 10: access control
# ---------------------------------------------------------------------------

def domain_requests(dom):
    M = 1 << 20
    return [
        (ATTACH_DEVICE, {"domain_id": dom, "device": "e5"}),
        (DETACH_DEVICE, {"domain_id": dom, "device": "e0"}),
        (MAP, {"domain_id": dom, "flags": 3, "iova": 200 * M, "length": M}),
        (UNMAP, {"domain_id": dom, "iova": 0, "length": 16 * M}),
        (DMA_WRITE, {"domain_id": dom, "iova": 0, "length": PAGE}),
        (TRACK_STOP, {"domain_id": dom}),
        (TRACK_START, {"domain_id": dom}),
        (SUBSCRIBE, {"domain_id": dom}),
        (UNSUBSCRIBE, {"domain_id": dom}),
        (SYNC, {"domain_id": dom}),
        (GET_RANGES, {"domain_id": dom}),
        (ACK, {"domain_id": dom, "generation": 1}),
        (STATS, {"domain_id": dom}),
        (GET_FDS, {"domain_id": dom}),
        (DESTROY_DOMAIN, {"domain_id": dom}),
        # the domain is checked before what the request itself checks (section 3, step 7)
        (ATTACH_DEVICE, {"domain_id": dom, "device": "nd0"}),
        (ATTACH_DEVICE, {"domain_id": dom, "device": "no-such-device"}),
        (MAP, {"domain_id": dom, "flags": 3, "iova": 1, "length": PAGE}),
        (MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 16 * M}),
        (UNMAP, {"domain_id": dom, "iova": 0, "length": 0}),
        (DMA_WRITE, {"domain_id": dom, "iova": 1, "length": 1}),
        (DMA_WRITE, {"domain_id": dom, "iova": 16 * M, "length": PAGE}),
        (SUBSCRIBE, {"domain_id": dom, "interval_ms": 10, "flags": SUBSCRIBE_CLEAN}),
        (GET_RANGES, {"domain_id": dom, "flags": RANGES_RESEND}),
        (ACK, {"domain_id": dom, "generation": 0}),
    ]


def _access_other(sock, hidden, nx, dev):
    c = connect(sock)
    doms = list_domains(c)
    R.check("10", "a non-admin uid without domains: LIST_DOMAINS lists nothing", doms == {}, "{}", sorted(doms))
    st = stats(c, 0)
    R.check("10", "a non-admin uid without domains: STATS(0) lists nothing", st == {}, "{}", st and sorted(st))
    devs = list_devices(c)
    hidden_dev = devs.get(dev, {})
    for dom in hidden:
        for (t, f), (_, fx) in zip(domain_requests(dom), domain_requests(nx)):
            mid = c.new_id()
            a = c.raw(encode(t, mid, f), mid)[-1]
            mid = c.new_id()
            b = c.raw(encode(t, mid, fx), mid)[-1]
            ta = re.sub(r"\b%d\b" % dom, "N", a.text.decode("utf-8", "replace"))
            tb = re.sub(r"\b%d\b" % nx, "N", b.text.decode("utf-8", "replace"))
            AGG.add("10", "a request naming an invisible domain is ERROR ENOENT, exactly as for a domain that "
                    "does not exist (errno and text but for the number), whatever else is wrong with it",
                    a.type == ERROR and a.errno == ENOENT and b.type == ERROR and b.errno == ENOENT and ta == tb,
                    "%s %s on domain %d: %s / on %d: %s" % (tname(t), f, dom, ok_or_err(a), nx, ok_or_err(b)))
    m = c.req1(CREATE_DOMAIN, {"flags": CREATE_TRACKING, "device": dev})
    R.check("10", "CREATE_DOMAIN of a device in an invisible domain: EBUSY without naming that domain",
            m.type == ERROR and m.errno == EBUSY and not re.search(rb"\b%d\b" % hidden[0], m.text), "ERROR EBUSY",
            ok_or_err(m))
    R.check("8.1", "access session: every request answered exactly once", not c.strays(), "nothing", "strays")
    c.close()
    return hidden_dev


def _access_make_own(sock, dev):
    c = connect(sock)
    m = c.req1(CREATE_DOMAIN, {"flags": CREATE_TRACKING, "device": dev})
    R.check("10", "uid 1000 creates a domain", m.type == CREATE_DOMAIN_REPLY, "CREATE_DOMAIN_REPLY", ok_or_err(m))
    dom = m.f.get("domain_id")
    if dom:
        c.req1(MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 1 << 20})
    c.close()
    return dom


def _access_owner(sock, own):
    c = connect(sock)
    doms = list_domains(c)
    R.check("10", "uid 1000 sees exactly its own domain in LIST_DOMAINS, owner_uid 1000",
            sorted(doms) == [own] and doms[own]["owner_uid"] == 1000, [own],
            {k: v["owner_uid"] for k, v in doms.items()})
    st = stats(c, 0)
    R.check("10", "uid 1000 sees exactly its own domain in STATS(0)", st is not None and sorted(st) == [own], [own],
            st and sorted(st))
    c.close()
    return True


def _access_admin(sock, expect_ids, dt, dev):
    c = connect(sock)
    doms = list_domains(c)
    okv = sorted(doms) == sorted(expect_ids)
    st = stats(c, dt)
    m = c.req1(SYNC, {"domain_id": dt})
    devs = list_devices(c)
    c.close()
    return okv, sorted(doms), st is not None and dt in st, m.type == SYNC_REPLY, devs.get(dev, {}).get("domain_id")


def t_access(ctx):
    """Section 10: owners, invisible domains, admin_group."""
    c = connect(ctx.A.sock)
    DA = create(c, "e14")
    must(c, MAP, {"domain_id": DA, "flags": 3, "iova": 0, "length": 16 << 20})
    must(c, TRACK_START, {"domain_id": DA})
    own = as_user(1000, 1000, [], _access_make_own, ctx.A.sock, "e13")
    r = c.request(LIST_DOMAINS)
    ids = [e["domain_id"] for m in r for e in m.entries]
    R.check("6.3", "LIST_DOMAINS lists domains by increasing domain_id", ids == sorted(ids) and len(set(ids)) == len(ids),
            "increasing", ids)
    doms = {e["domain_id"]: e for m in r for e in m.entries}
    R.check("10", "root sees every domain, including uid 1000's (owner_uid 1000) and its own (owner_uid 0)",
            doms.get(own, {}).get("owner_uid") == 1000 and doms.get(DA, {}).get("owner_uid") == 0,
            (1000, 0), (doms.get(own, {}).get("owner_uid"), doms.get(DA, {}).get("owner_uid")))
    root_dev = list_devices(c).get("e14", {})
    seen = as_user(1001, 1001, [], _access_other, ctx.A.sock, [DA, own], 999998, "e14")
    if seen is not None:
        R.check("6.2", "a device in a domain the client may not see: the same flags as for root (BOUND|ATTACHED), "
                "domain_id 0 and dev_id 0", (seen.get("flags"), seen.get("domain_id"), seen.get("dev_id"))
                == (root_dev.get("flags"), 0, 0), (root_dev.get("flags"), 0, 0),
                (seen.get("flags"), seen.get("domain_id"), seen.get("dev_id")))
        R.check("6.2", "root sees that device DIRTY_CAPABLE|BOUND|ATTACHED with its domain and a dev_id",
                (root_dev.get("flags", 0) & 7, root_dev.get("domain_id")) == (7, DA) and root_dev.get("dev_id"),
                (7, DA, "non-zero"), (root_dev.get("flags"), root_dev.get("domain_id"), root_dev.get("dev_id")))
    if own:
        as_user(1000, 1000, [], _access_owner, ctx.A.sock, own)
    for uid, gid, groups, how in ((1003, 1003, [2000], "a supplementary group"), (1004, 2000, [], "its primary group")):
        res = as_user(uid, gid, groups, _access_admin, ctx.A.sock, ids, DA, "e14")
        if res:
            okv, seen, st_ok, sync_ok, devdom = res
            R.check("10", "a member of admin_group through %s sees every domain" % how, okv, ids, seen)
            R.check("10", "a member of admin_group through %s may STATS and SYNC another uid's domain" % how,
                    st_ok and sync_ok, (True, True), (st_ok, sync_ok))
            R.check("10", "a member of admin_group through %s sees the domain_id of every device" % how,
                    devdom == DA, DA, devdom)
    for d in (DA, own):
        if d:
            must(c, DESTROY_DOMAIN, {"domain_id": d}, section="10", desc="root may destroy any domain (%d)" % d)
    c.close()


# ---------------------------------------------------------------------------
# Sections 6.9-6.12, 8.3, 9: the tracking flow with an oracle
# ---------------------------------------------------------------------------

def feat_name(f):
    n = [nm for bit, nm in ((1, "RAW"), (2, "RESUME"), (4, "FD"), (8, "EVENTS")) if f & bit]
    return "|".join(n) or "none"


def random_pages(rng, first, n, frac):
    """frac of the pages [first, first + n) at random, as sorted single pages."""
    return sorted(rng.sample(range(first, first + n), int(n * frac)))


def coalesce(pages):
    runs = []
    for p in pages:
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    return [tuple(r) for r in runs]


def t_flow(ctx):
    """Sections 6.9-6.13, 9: 16 feature combinations against an oracle of the pages written."""
    rng = random.Random(20241124)
    adm = connect(ctx.A.sock)
    BIG = create(adm, "e2")
    ctx.BIG = BIG
    # mappings, in pages: two adjacent maps (never merged), one across a
    # 32768 boundary that starts elsewhere, and RW followed by R-only
    maps = [(0, 64000), (64000, 589824 - 64000), (621824, 2000), (655000, 256)]
    ro = (655256, 256)
    for f, n in maps:
        must(adm, MAP, {"domain_id": BIG, "flags": 3, "iova": f * PAGE, "length": n * PAGE})
    must(adm, MAP, {"domain_id": BIG, "flags": MAP_READABLE, "iova": ro[0] * PAGE, "length": ro[1] * PAGE})
    allmaps = maps + [ro]
    must(adm, TRACK_START, {"domain_id": BIG})
    mapped = map_bits(allmaps)
    # one session per feature combination
    sess = []
    for f in range(16):
        c = connect(ctx.A.sock, f)
        want = f & (FEAT_RANGES_RAW | FEAT_RESUME | FEAT_EVENTS)
        AGG.add("5.2", "HELLO_REPLY.features is the intersection with what dirtyd offers (RAW|RESUME|EVENTS)",
                c.features == want, "asked %#x: got %#x" % (f, c.features))
        interval = 50 if f & FEAT_RESUME else 0
        m = c.req1(SUBSCRIBE, {"domain_id": BIG, "interval_ms": interval})
        AGG.add("6.9", "SUBSCRIBE is answered SUBSCRIBE_REPLY naming the domain",
                m.type == SUBSCRIBE_REPLY and m.f["domain_id"] == BIG, ok_or_err(m))
        sess.append((f, c, interval))
    sent = {}
    for f, c, _ in sess:
        st = get_ranges(c, BIG, mappings=allmaps)
        AGG.add("6.9", "without CLEAN every mapped page starts pending (each feature combination)",
                st.error is None and st.pages == mapped,
                "features %s: %s" % (feat_name(f), st.error or describe_diff(st.pages, mapped)))
        sent[f] = st.total or 0
        if st.gen is not None:
            m = c.req1(ACK, {"domain_id": BIG, "generation": st.gen})
            AGG.add("6.12", "ACK of the generation just received is OK", m.type == OK, ok_or_err(m))
    # W0: written before the CLEAN subscribers arrive
    w0 = PageSet(655512)
    dma_writes(adm, BIG, coalesce(random_pages(rng, 70000, 100000, 0.001)), w0)
    clean = []
    for f in (FEAT_RANGES_RAW, 0):
        c = connect(ctx.A.sock, f)
        m = c.req1(SUBSCRIBE, {"domain_id": BIG, "flags": SUBSCRIBE_CLEAN})
        AGG.add("6.9", "SUBSCRIBE with CLEAN is answered SUBSCRIBE_REPLY", m.type == SUBSCRIBE_REPLY, ok_or_err(m))
        clean.append((f, c))
    # W1: sparse (10 % of 2 GiB at random), dense, across mappings, a fault
    w1 = PageSet(655512)
    t0 = time.monotonic()
    dma_writes(adm, BIG, coalesce(random_pages(rng, 0, 589824, 0.08)), w1)
    dma_writes(adm, BIG, [(300000, 16384), (63990, 20), (621824, 2000)], w1)
    m = adm.req1(DMA_WRITE, {"domain_id": BIG, "iova": 655156 * PAGE, "length": 200 * PAGE})
    R.check("6.7", "DMA_WRITE running from a WRITEABLE mapping into a read-only one is ERROR EACCES",
            m.type == ERROR and m.errno == EACCES, "ERROR EACCES", ok_or_err(m))
    w1.add(655156, 100)      # "the pages before the fault were written"
    R.info("writes took %.2f s" % (time.monotonic() - t0))
    oracle = w0.as_int() | w1.as_int()
    w1i = w1.as_int()
    f0, c0, _ = sess[0]
    m = c0.req1(SYNC, {"domain_id": BIG})
    R.check("6.10", "SYNC_REPLY pending_pages counts every page written since the last ACK (%d)" % oracle.bit_count(),
            m.type == SYNC_REPLY and m.f["pending_pages"] == oracle.bit_count(), oracle.bit_count(),
            ok_or_err(m) if m.type == ERROR else m.f["pending_pages"])
    gsync = m.f.get("generation", 0)
    npk = {}
    cuts = {}
    failed = set()
    for f, c, _ in sess:
        st = get_ranges(c, BIG, mappings=allmaps)
        if st.error is not None:
            failed.add(f)
        AGG.add("9", "every written page is delivered to every subscriber (each feature combination)",
                st.error is None and st.pages & oracle == oracle,
                "features %s: %s" % (feat_name(f), st.error or describe_diff(st.pages, oracle)))
        if st.error is None:
            AGG.add("9.5", "with 4k backing exactly the written pages are reported (dirtyd.conf(5) backing_page_size)",
                    st.pages == oracle, "features %s: %s" % (feat_name(f), describe_diff(st.pages, oracle)))
            AGG.add("8.3", "RANGES generation >= the generation SYNC completed", (st.gen or 0) >= gsync,
                    "%s < %s" % (st.gen, gsync))
        npk[feat_name(f)] = len(st.msgs)
        if not f & FEAT_RANGES_RAW:
            cuts[feat_name(f)] = len(st.chains)
        if st.error is not None:
            failed_get_ranges(c, BIG, st, oracle.bit_count(), sent[f], "features %s" % feat_name(f))
        else:
            sent[f] += st.total or 0
        if st.gen is not None:
            m = c.req1(ACK, {"domain_id": BIG, "generation": st.gen})
            AGG.add("6.12", "ACK of the generation just received is OK", m.type == OK, ok_or_err(m))
    R.info("RANGES packets per feature combination for the 8%%-of-2.25-GiB generation: %s" % npk)
    R.check("6.11", "coverage: with RANGES_RAW the large generation came as a multi-packet stream",
            all(v >= 2 for k, v in npk.items() if "RAW" in k), ">= 2 packets", npk)
    R.info("spans cut into several RUNS chunks, per feature combination without RAW: %s" % cuts)
    for f, c in clean:
        st = get_ranges(c, BIG, mappings=allmaps)
        R.check("6.9", "a CLEAN subscriber (features %s) gets exactly the pages written after its SUBSCRIBE"
                % feat_name(f), st.error is None and st.pages == w1i, "W1",
                st.error or describe_diff(st.pages, w1i))
        if st.gen is not None:
            c.req1(ACK, {"domain_id": BIG, "generation": st.gen})
    # nothing pending any more
    for f, c, iv in sess:
        st = get_ranges(c, BIG, mappings=allmaps)
        AGG.add("6.11", "after ACK, GET_RANGES returns an empty generation (total 0, one packet, 0 chunks)",
                st.error is None and st.total == 0 and len(st.msgs) == 1 and st.msgs[0].f["nchunks"] == 0,
                "features %s: %s" % (feat_name(f), st.error or (st.total, len(st.msgs))))
        if st.gen is not None:
            c.req1(ACK, {"domain_id": BIG, "generation": st.gen})
        s = stats(c, BIG) or {}
        e = s.get(BIG, {})
        AGG.add("6.13", "STATS pages_sent is every page of every completed RANGES stream, pending_pages 0",
                (e.get("pages_sent"), e.get("pending_pages")) == (sent[f], 0),
                "features %s: want (%d, 0), got (%s, %s)" % (feat_name(f), sent[f], e.get("pages_sent"),
                                                             e.get("pending_pages")))
        AGG.add("6.13", "STATS mapped_bytes is the sum of the domain's mappings",
                e.get("mapped_bytes") == sum(n for _, n in allmaps) * PAGE, e.get("mapped_bytes"))
    doms = list_domains(adm)
    d = doms.get(BIG, {})
    R.check("6.3", "LIST_DOMAINS: subscribers counts every client's subscriptions (18), mapped_bytes, page_size 4096",
            (d.get("subscribers"), d.get("mapped_bytes"), d.get("page_size"), d.get("devices"), d.get("owner_uid"))
            == (18, sum(n for _, n in allmaps) * PAGE, 4096, 1, 0),
            (18, sum(n for _, n in allmaps) * PAGE, 4096, 1, 0),
            (d.get("subscribers"), d.get("mapped_bytes"), d.get("page_size"), d.get("devices"), d.get("owner_uid")))
    for f, c, _ in sess:
        strays = c.strays()
        AGG.add("8.1", "every request answered exactly once (flow sessions)", not strays, strays[:2])
        if not f & FEAT_EVENTS:
            AGG.add("5.2", "no EV_ROUND without PROTO_FEAT_EVENTS", not any(e.type == EV_ROUND for e in c.events),
                    "features %s got %d EV_ROUND" % (feat_name(f), len(c.events)))
        c.close()
    for f, c in clean:
        c.close()
    # closing sessions without RESUME drops their subscriptions; kept ones still count
    time.sleep(0.05)
    d = list_domains(adm).get(BIG, {})
    R.check("8.6", "after 18 subscribers closed, the 8 with RESUME are kept and still count in "
            "LIST_DOMAINS.subscribers", d.get("subscribers") == 8, 8, d.get("subscribers"))
    adm.close()


def t_many_mappings(ctx):
    """Each MAP is its own harvest range: 256 adjacent one-page mappings
    give 256 chunks (spans never cross a mapping's end), several packets."""
    c = connect(ctx.A.sock, FEAT_RANGES_RAW)
    dom = create(c, "e3")
    maps = [(p, 1) for p in range(0, 256)]
    ans = pipeline(c, [(MAP, {"domain_id": dom, "flags": 3, "iova": p * PAGE, "length": PAGE}) for p, _ in maps])
    R.check("6.7", "256 adjacent one-page MAPs are each answered OK", all(a.type == OK for a in ans), "OK",
            [ok_or_err(a) for a in ans if a.type != OK][:2])
    must(c, TRACK_START, {"domain_id": dom})
    must(c, SUBSCRIBE, {"domain_id": dom})
    st = get_ranges(c, dom, mappings=maps)
    R.check("9.4", "256 adjacent mappings: 256 one-page chunks (a range never grows by merging)",
            st.error is None and len(st.chunks) == 256 and all(ch.span == 1 for ch in st.chunks),
            "256 chunks of span 1",
            st.error or (len(st.chunks), max((ch.span for ch in st.chunks), default=0), len(st.msgs)))
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    m = c.req1(DMA_WRITE, {"domain_id": dom, "iova": 0, "length": 256 * PAGE})
    R.check("6.7", "one DMA_WRITE across 256 mappings is OK", m.type == OK, "OK", ok_or_err(m))
    must(c, SYNC, {"domain_id": dom})
    st = get_ranges(c, dom, mappings=maps)
    R.check("9", "after a write over all of them every page comes back, one chunk per mapping",
            st.error is None and st.pages == map_bits(maps) and len(st.chunks) == 256,
            "256 pages in 256 chunks", st.error or (st.npages, len(st.chunks)))
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    must(c, DESTROY_DOMAIN, {"domain_id": dom}, section="6.6", desc="DESTROY_DOMAIN of a domain with 256 mappings is OK")
    c.close()


def t_runs_only(ctx):
    """Sections 9.3 / 9.4: without RANGES_RAW a span whose runs take more
    than 4096 bytes goes as several RUNS chunks, cut between two runs; the
    client gets every page."""
    S = CHUNK_MAX_PAGES
    n0 = connect(ctx.A.sock, 0)
    n1 = connect(ctx.A.sock, FEAT_EVENTS | FEAT_RESUME)
    r = connect(ctx.A.sock, FEAT_RANGES_RAW)
    dom = create(n0, "e4")
    maps = [(0, 2 * S), (70000, 40000)]
    for f, n in maps:
        must(n0, MAP, {"domain_id": dom, "flags": 3, "iova": f * PAGE, "length": n * PAGE})
    must(n0, TRACK_START, {"domain_id": dom})
    for c in (n0, n1, r):
        must(c, SUBSCRIBE, {"domain_id": dom, "flags": SUBSCRIBE_CLEAN})
    spans = [("every other page of span [0, 32768): 16384 runs, 32768 bytes of RUNS", 0,
              [(2 * i, 1) for i in range(S // 2)]),
             ("2048 runs in span [32768, 65536): exactly 4096 bytes of RUNS, one chunk", S,
              [(S + 2 * i, 1) for i in range(2048)]),
             ("2049 runs from page 70001 in span [70000, 98304), a mapping's start: 4098 bytes", 70000,
              [(70001 + 2 * i, 1) for i in range(2049)]),
             ("3000 runs, every third page, in span [98304, 110000): 6000 bytes", 3 * S,
              [(3 * S + 3 * i, 1) for i in range(3000)])]
    want = 0
    writes = []
    for _, _, runs in spans:
        writes += runs
        for p, k in runs:
            want |= range_bits(p, k)
    t0 = time.monotonic()
    dma_writes(n0, dom, writes)
    R.info("%d DMA_WRITEs took %.2f s" % (len(writes), time.monotonic() - t0))
    m = n0.req1(SYNC, {"domain_id": dom})
    R.check("6.10", "SYNC_REPLY pending_pages counts the %d pages written (CLEAN)" % want.bit_count(),
            m.type == SYNC_REPLY and m.f["pending_pages"] == want.bit_count(), want.bit_count(),
            ok_or_err(m) if m.type == ERROR else m.f["pending_pages"])
    # 9.4: where each span starts and ends, from the rule alone: at the next multiple of 32768 pages or at
    # the mapping's end, whichever comes first
    spans_at = [(sf, min((sf // S + 1) * S, mf + mn)) for (_, sf, _), (mf, mn) in
                zip(spans, [maps[0], maps[0], maps[1], maps[1]])]
    raw = get_ranges(r, dom, mappings=maps)
    R.check("9.3", "with RANGES_RAW every page arrives, one chunk per span",
            raw.error is None and raw.pages == want and len(raw.chunks) == len(spans),
            "%d pages in %d chunks" % (want.bit_count(), len(spans)),
            ok_or_err(raw.error) if raw.error else (describe_diff(raw.pages, want), len(raw.chunks)))
    R.check("9.4", "with RANGES_RAW each span ends at the next multiple of 32768 pages or at the mapping's end: %s"
            % ", ".join("[%#x, %#x)" % se for se in spans_at), [(ch.first, ch.first + ch.span) for ch in raw.chunks]
            == spans_at, spans_at, [(ch.first, ch.first + ch.span) for ch in raw.chunks])
    for c, fname in ((n0, "none"), (n1, "EVENTS|RESUME")):
        before = (stats(c, dom) or {}).get(dom, {})
        st = get_ranges(c, dom, mappings=maps)
        if st.error is not None:
            R.check("9.3", "without RANGES_RAW (features %s) GET_RANGES delivers the spans as RUNS chunks" % fname,
                    False, "RANGES", "%s: %s" % (ok_or_err(st.error), hexdump(st.error.raw, 100)))
            failed_get_ranges(c, dom, st, want.bit_count(), before.get("pages_sent"), "features %s" % fname)
            continue
        R.check("9", "without RANGES_RAW (features %s) every written page arrives, and nothing else" % fname,
                st.pages == want, "%d pages" % want.bit_count(), describe_diff(st.pages, want))
        R.check("9.3", "without RANGES_RAW (features %s) only RUNS chunks, each of at most 4096 payload bytes"
                % fname, all(ch.kind == CHUNK_RUNS and ch.len <= CHUNK_MAX_PAYLOAD for ch in st.chunks),
                "RUNS <= 4096", [(ch.first, ch.kind, ch.len) for ch in st.chunks if ch.kind != CHUNK_RUNS or
                                 ch.len > CHUNK_MAX_PAYLOAD][:4])
        for (what, _, runs), (sf, se) in zip(spans, spans_at):
            group = [ch for ch in st.chunks if sf <= ch.first < se]
            desc = [(ch.first, ch.span, ch.len) for ch in group]
            okv = bool(group) and group[0].first == sf and group[-1].first + group[-1].span == se
            for a, b in zip(group, group[1:]):
                okv = okv and b.first == a.first + a.span and a.runs and \
                    a.runs[-1][0] + a.runs[-1][1] == a.span
            R.check("9.3", "features %s, %s: the RUNS chunks start where the span starts (%#x), each ends at the "
                    "end of its last run, the next starts there, the last ends where the span ends (%#x)"
                    % (fname, what, sf, se), okv, "contiguous cut of [%#x, %#x)" % (sf, se), desc[:12])
            payload = runs_payload_len([(p - sf, k) for p, k in runs])
            # "dirtyd fills each chunk as far as the limit allows" (a statement about dirtyd: this client
            # does not rely on it to decode, get_ranges() finds a span's chunks by where they start and end)
            full = all(a.len + _leblen(b.runs[0][0]) + _leblen(b.runs[0][1]) > CHUNK_MAX_PAYLOAD
                       for a, b in zip(group, group[1:]) if b.runs)
            if payload <= CHUNK_MAX_PAYLOAD:
                R.check("9.3", "features %s, %s: dirtyd fills each chunk as far as the limit allows, so a span "
                        "whose runs fit in 4096 bytes is one chunk" % (fname, what),
                        len(group) == 1 and group[0].len == payload, "1 chunk of %d bytes" % payload, desc)
            else:
                R.check("9.3", "features %s, %s (%d bytes of runs): dirtyd fills each chunk as far as the limit "
                        "allows: every chunk but the last could not take the next run" % (fname, what, payload),
                        len(group) >= 2 and full, "full chunks", desc[:12])
        R.info("features %s: chunks per span %s" % (fname, [len([ch for ch in st.chunks if sf <= ch.first < se])
                                                            for sf, se in spans_at]))
        e = (stats(c, dom) or {}).get(dom, {})
        R.check("6.13", "features %s: STATS after the stream: pending_pages 0, pages_sent += total_pages" % fname,
                (e.get("pending_pages"), e.get("pages_sent")) == (0, (before.get("pages_sent") or 0) + st.total),
                (0, (before.get("pages_sent") or 0) + st.total), (e.get("pending_pages"), e.get("pages_sent")))
        again = get_ranges(c, dom, mappings=maps)
        R.check("8.3", "features %s: GET_RANGES again (no round in between) resends the same generation, the same "
                "chunks" % fname, again.error is None and again.gen == st.gen and
                [c_.payload for c_ in again.chunks] == [c_.payload for c_ in st.chunks], "the same",
                ok_or_err(again.error) if again.error else (again.gen, len(again.chunks)))
        e = (stats(c, dom) or {}).get(dom, {})
        R.check("6.13", "features %s: a page sent again counts again in pages_sent" % fname,
                e.get("pages_sent") == (before.get("pages_sent") or 0) + 2 * st.total,
                (before.get("pages_sent") or 0) + 2 * st.total, e.get("pages_sent"))
        must(c, ACK, {"domain_id": dom, "generation": st.gen})
    if raw.gen is not None:
        must(r, ACK, {"domain_id": dom, "generation": raw.gen})
    must(n0, DESTROY_DOMAIN, {"domain_id": dom})
    for c in (n0, n1, r):
        c.close()


# ---------------------------------------------------------------------------
# Section 8.3: generations, resend, TRACK_STOP/START, UNMAP, UNSUBSCRIBE
# ---------------------------------------------------------------------------

def t_generations(ctx):
    """Section 8.3: generations, RESEND, ACK, TRACK_STOP/START, UNMAP, UNSUBSCRIBE."""
    rng = random.Random(7)
    c = connect(ctx.A.sock, FEAT_RANGES_RAW)
    dom = create(c, "e5")
    M = 1 << 20
    maps = [(0, 16384)]
    must(c, MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 64 * M})
    doms = list_domains(c)
    R.check("8.4", "a new domain's generation is 0", doms.get(dom, {}).get("generation") == 0, 0,
            doms.get(dom, {}).get("generation"))
    must(c, TRACK_START, {"domain_id": dom})
    m = must(c, SUBSCRIBE, {"domain_id": dom})
    g0 = m.f.get("generation")
    R.check("6.9", "SUBSCRIBE_REPLY generation is the domain's rounds so far (0)", g0 == 0, 0, g0)
    st = get_ranges(c, dom, mappings=maps)
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    A = coalesce(random_pages(rng, 0, 16384, 0.02))
    B = coalesce(random_pages(rng, 0, 16384, 0.02))
    a = b = 0
    for p, n in A:
        a |= range_bits(p, n)
    for p, n in B:
        b |= range_bits(p, n)
    dma_writes(c, dom, A)
    m = must(c, SYNC, {"domain_id": dom})
    ga = m.f.get("generation")
    e = (stats(c, dom) or {}).get(dom, {})
    R.check("6.13", "STATS after SYNC: generation, last_round_pages, pending_pages as the round found",
            (e.get("generation"), e.get("last_round_pages"), e.get("pending_pages")) == (ga, a.bit_count(), a.bit_count()),
            (ga, a.bit_count(), a.bit_count()), (e.get("generation"), e.get("last_round_pages"), e.get("pending_pages")))
    rate1 = e.get("dirty_rate")
    d = list_domains(c).get(dom, {})
    R.check("6.3", "LIST_DOMAINS generation is the rounds completed (as SYNC_REPLY), mapped_bytes 64 MiB",
            (d.get("generation"), d.get("mapped_bytes")) == (ga, 64 * M), (ga, 64 * M),
            (d.get("generation"), d.get("mapped_bytes")))
    st1 = get_ranges(c, dom, mappings=maps)
    R.check("8.3", "GET_RANGES after SYNC: generation = the domain's generation, pages = A",
            st1.gen == ga and st1.pages == a, (ga, "A"), (st1.gen, describe_diff(st1.pages, a)))
    st2 = get_ranges(c, dom, mappings=maps)
    R.check("8.3", "GET_RANGES again with no round in between resends the same generation with the same pages",
            st2.gen == ga and st2.pages == a, (ga, "A"), (st2.gen, describe_diff(st2.pages, a)))
    dma_writes(c, dom, B)
    gb = must(c, SYNC, {"domain_id": dom}).f.get("generation")
    R.check("8.3", "a later round completes with a higher generation", gb > ga, "> %d" % ga, gb)
    e = (stats(c, dom) or {}).get(dom, {})
    R.check("6.13", "STATS dirty_rate is non-zero after rounds that found pages (first: %s)" % rate1,
            e.get("dirty_rate", 0) > 0 and (rate1 or 0) > 0, "> 0", (rate1, e.get("dirty_rate")))
    st3 = get_ranges(c, dom, mappings=maps)
    R.check("8.3", "the next GET_RANGES is a new generation holding only the new pages (A stays in flight)",
            st3.gen == gb and st3.pages == b & ~0 and st3.pages == b,
            (gb, "B"), (st3.gen, describe_diff(st3.pages, b)))
    st4 = get_ranges(c, dom, flags=RANGES_RESEND, mappings=maps)
    R.check("8.3", "GET_RANGES with RESEND puts every unacknowledged generation back: pages A | B",
            st4.gen == gb and st4.pages == a | b, (gb, "A|B"), (st4.gen, describe_diff(st4.pages, a | b)))
    must(c, ACK, {"domain_id": dom, "generation": gb}, section="6.12", desc="ACK of the resent generation is OK")
    send_err(c, "8.3", "after RESEND put generation g1 back into pending, g1 is no longer in flight: ACK(g1) is "
             "ERROR ENOENT", ACK, {"domain_id": dom, "generation": ga}, ENOENT)
    st5 = get_ranges(c, dom, mappings=maps)
    R.check("8.3", "after ACK nothing is pending: an empty generation", st5.error is None and st5.total == 0,
            0, st5.error or st5.total)
    must(c, ACK, {"domain_id": dom, "generation": st5.gen})
    # ACK of an older generation while a newer one is in flight
    C = [(40, 4)]
    D = [(900, 2)]
    dma_writes(c, dom, C)
    must(c, SYNC, {"domain_id": dom})
    stc = get_ranges(c, dom, mappings=maps)
    dma_writes(c, dom, D)
    must(c, SYNC, {"domain_id": dom})
    std = get_ranges(c, dom, mappings=maps)
    must(c, ACK, {"domain_id": dom, "generation": stc.gen}, section="6.12",
         desc="ACK of an older generation while a newer one is in flight is OK")
    st6 = get_ranges(c, dom, flags=RANGES_RESEND, mappings=maps)
    R.check("8.3", "RESEND then brings back only the unacknowledged generation's pages",
            st6.pages == range_bits(900, 2), int_pages(range_bits(900, 2)), describe_diff(st6.pages, range_bits(900, 2)))
    must(c, ACK, {"domain_id": dom, "generation": st6.gen})
    # a CLEAN SUBSCRIBE on a tracking domain answers after a round that began after it
    gbefore = (stats(c, dom) or {}).get(dom, {}).get("generation", 0)
    q = connect(ctx.A.sock)
    m = must(q, SUBSCRIBE, {"domain_id": dom, "flags": SUBSCRIBE_CLEAN})
    R.check("6.9", "a CLEAN SUBSCRIBE with tracking on is answered after a new round (reply generation > before)",
            m.f.get("generation", 0) > gbefore, "> %d" % gbefore, m.f.get("generation"))
    gafter = (stats(c, dom) or {}).get(dom, {}).get("generation", 0)
    R.check("6.9", "SUBSCRIBE_REPLY.generation of a CLEAN subscription counts the round it was answered after "
            "(rounds completed so far, as in section 14: the domain's generation right after, no other round)",
            m.f.get("generation") == gafter == gbefore + 1, (gbefore + 1, gbefore + 1), (m.f.get("generation"), gafter))
    q.close()
    # TRACK_STOP / TRACK_START clear nothing a subscriber holds
    dma_writes(c, dom, [(3000, 1)])
    must(c, SYNC, {"domain_id": dom})
    sth = get_ranges(c, dom, mappings=maps)
    must(c, TRACK_STOP, {"domain_id": dom})
    must(c, TRACK_START, {"domain_id": dom})
    must(c, ACK, {"domain_id": dom, "generation": sth.gen}, section="6.8",
         desc="a generation in flight across TRACK_STOP/TRACK_START can still be acknowledged")
    st = get_ranges(c, dom, mappings=maps)
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    # TRACK_STOP: no rounds; SYNC refused; TRACK_START marks every mapped page pending
    p = connect(ctx.A.sock, 0)
    must(p, SUBSCRIBE, {"domain_id": dom, "interval_ms": 10, "flags": SUBSCRIBE_CLEAN})
    must(c, TRACK_STOP, {"domain_id": dom})
    g1 = (stats(c, dom) or {}).get(dom, {}).get("generation")
    dma_writes(c, dom, [(100, 10)])
    time.sleep(0.15)
    g2 = (stats(c, dom) or {}).get(dom, {}).get("generation")
    R.check("6.8", "after TRACK_STOP no rounds run (generation unchanged for 150 ms with a 10 ms subscriber)",
            g1 == g2, g1, g2)
    send_err(c, "6.10", "SYNC after TRACK_STOP is ERROR EINVAL", SYNC, {"domain_id": dom}, EINVAL,
             must_contain=("tracking is off on domain %d" % dom,))
    st = get_ranges(c, dom, mappings=maps)
    R.check("6.8", "while tracking is off nothing new is pending", st.total == 0, 0, st.total)
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    must(c, TRACK_START, {"domain_id": dom})
    st = get_ranges(c, dom, mappings=maps)
    R.check("6.8", "TRACK_START after a gap marks every mapped page pending for each existing subscription",
            st.error is None and st.pages == map_bits(maps), "all 16384 pages",
            st.error or describe_diff(st.pages, map_bits(maps)))
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    st = get_ranges(p, dom, mappings=maps)
    R.check("6.8", "... also for the other subscriber (a CLEAN one)", st.error is None and st.pages == map_bits(maps),
            "all 16384 pages", st.error or describe_diff(st.pages, map_bits(maps)))
    must(p, ACK, {"domain_id": dom, "generation": st.gen})
    must(p, UNSUBSCRIBE, {"domain_id": dom})
    p.close()
    # UNMAP with tracking on: a round first; pending pages stay deliverable
    must(c, MAP, {"domain_id": dom, "flags": 3, "iova": 128 * M, "length": M})
    maps2 = maps + [(32768, 256)]
    st = get_ranges(c, dom, mappings=maps2)
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    dma_writes(c, dom, [(32768 + 5, 3), (32768 + 100, 1), (7, 1)])
    gu0 = (stats(c, dom) or {}).get(dom, {}).get("generation", 0)
    must(c, UNMAP, {"domain_id": dom, "iova": 128 * M, "length": M})
    gu1 = (stats(c, dom) or {}).get(dom, {}).get("generation", 0)
    R.check("6.7", "UNMAP with tracking on runs a harvest round first (generation advances)", gu1 > gu0,
            "> %d" % gu0, gu1)
    want = range_bits(32773, 3) | (1 << 32868) | (1 << 7)
    st = get_ranges(c, dom, mappings=maps, extra_ok=[(32768, 256)])
    R.check("6.7", "pages written before an UNMAP (no SYNC) are delivered after it", st.error is None and st.pages == want,
            int_pages(want), st.error or describe_diff(st.pages, want))
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    # UNSUBSCRIBE drops pending pages; SUBSCRIBE again starts afresh
    dma_writes(c, dom, [(50, 5)])
    must(c, SYNC, {"domain_id": dom})
    must(c, UNSUBSCRIBE, {"domain_id": dom})
    must(c, SUBSCRIBE, {"domain_id": dom, "flags": SUBSCRIBE_CLEAN})
    st = get_ranges(c, dom, mappings=maps)
    R.check("6.9", "UNSUBSCRIBE dropped the pending pages: a new CLEAN subscription starts empty",
            st.error is None and st.total == 0, 0, st.error or st.total)
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    must(c, UNSUBSCRIBE, {"domain_id": dom})
    must(c, SUBSCRIBE, {"domain_id": dom})
    st = get_ranges(c, dom, mappings=maps)
    R.check("6.9", "a new subscription without CLEAN starts with every mapped page pending",
            st.error is None and st.pages == map_bits(maps), "all pages", st.error or describe_diff(st.pages, map_bits(maps)))
    must(c, ACK, {"domain_id": dom, "generation": st.gen})
    # DMA_WRITE that runs from a mapping into a hole
    mid = c.new_id()
    m = c.raw(encode(DMA_WRITE, mid, {"domain_id": dom, "iova": (16384 - 2) * PAGE, "length": 4 * PAGE}), mid)[-1]
    R.check("6.7", "DMA_WRITE running from a mapping into a hole is ERROR ENOENT", m.type == ERROR and m.errno == ENOENT,
            "ERROR ENOENT", ok_or_err(m))
    must(c, SYNC, {"domain_id": dom})
    st = get_ranges(c, dom, mappings=maps)
    R.check("6.7", "a DMA_WRITE that ran into unmapped IOVA (ENOENT) wrote the pages before the fault",
            st.error is None and st.pages == range_bits(16382, 2), int_pages(range_bits(16382, 2)),
            st.error or describe_diff(st.pages, range_bits(16382, 2)))
    if st.gen is not None:
        must(c, ACK, {"domain_id": dom, "generation": st.gen})
    dq = create(c, "u0")
    must(c, MAP, {"domain_id": dq, "flags": 3, "iova": 0, "length": M})
    must(c, SUBSCRIBE, {"domain_id": dq, "flags": SUBSCRIBE_CLEAN})
    must(c, TRACK_START, {"domain_id": dq})
    st = get_ranges(c, dq, mappings=[(0, 256)])
    R.check("6.8", "a CLEAN subscription made while tracking was off gets every mapped page at TRACK_START",
            st.error is None and st.pages == range_bits(0, 256), "256 pages", st.error or describe_diff(st.pages, range_bits(0, 256)))
    must(c, DESTROY_DOMAIN, {"domain_id": dq})
    # 9.4 with a range unmapped while it had pages pending, then mapped again with other bounds: whose end
    # does the old range's span take, when "spans do not overlap"?
    dq = create(c, "u0")
    must(c, MAP, {"domain_id": dq, "flags": 3, "iova": 0, "length": 100 * PAGE})
    must(c, TRACK_START, {"domain_id": dq})
    must(c, SUBSCRIBE, {"domain_id": dq, "flags": SUBSCRIBE_CLEAN})
    dma_writes(c, dq, [(10, 10), (90, 10)])
    must(c, UNMAP, {"domain_id": dq, "iova": 0, "length": 100 * PAGE})
    must(c, MAP, {"domain_id": dq, "flags": 3, "iova": 50 * PAGE, "length": 100 * PAGE})
    mid = c.new_id()
    r = c.raw(encode(GET_RANGES, mid, {"domain_id": dq}), mid)
    chunks = [ch for m_ in r for ch in m_.chunks]
    want = range_bits(10, 10) | range_bits(90, 10)
    got_pages = 0
    for ch in chunks:
        got_pages |= ch.bits << ch.first
    R.check("6.7", "the pages pending in a range when it was unmapped stay deliverable after a new mapping over "
            "part of it (CLEAN: nothing else)", got_pages == want, int_pages(want), describe_diff(got_pages, want))
    ctx.amb("9.4", "Pages 10-19 and 90-99 written in mapping [0, 100), unmapped (pages pending), then [50, 150) "
            "mapped (CLEAN subscription): 'a span that is not cut ends ... at the mapping's end' would end the "
            "unmapped range's span at 100, over the new mapping's span from 50, but spans must not overlap. Which "
            "end does the old span take, and which span holds pages 90-99?", "spans %s; RANGES %s" % (
                ", ".join("[%d, %d)" % (ch.first, ch.first + ch.span) for ch in chunks), hexdump(r[-1].raw, 200)))
    if r[-1].type == RANGES:
        must(c, ACK, {"domain_id": dq, "generation": r[-1].f["generation"]})
    must(c, DESTROY_DOMAIN, {"domain_id": dq})
    # pipelining: SYNC then other requests without waiting
    ids = []
    for t, f in ((SYNC, {"domain_id": dom}), (LIST_DEVICES, None), (STATS, {"domain_id": dom}),
                 (LIST_DOMAINS, None)):
        mid = c.new_id()
        c.send(encode(t, mid, f))
        ids.append((mid, t))
    got = {}
    for mid, t in ids:
        got[t] = c.wait(mid)[-1].type
    R.check("8.1", "several requests sent without waiting are each answered, matched by id",
            got == {SYNC: SYNC_REPLY, LIST_DEVICES: LIST_DEVICES_REPLY, STATS: STATS_REPLY,
                    LIST_DOMAINS: LIST_DOMAINS_REPLY}, "each its reply", {tname(k): tname(v) for k, v in got.items()})
    R.check("8.1", "generation session: every request answered exactly once", not c.strays(), "nothing", "strays")
    ctx.GEN = dom
    c.close()


# ---------------------------------------------------------------------------
# Section 6.6 / 8.4: DESTROY_DOMAIN
# ---------------------------------------------------------------------------

def t_destroy(ctx):
    """Section 6.6 / 8.4: DESTROY_DOMAIN."""
    adm = connect(ctx.A.sock)
    dom = create(adm, "e6")
    must(adm, MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 1 << 24})
    must(adm, TRACK_START, {"domain_id": dom})
    s = connect(ctx.A.sock, FEAT_EVENTS | FEAT_RESUME)
    must(s, SUBSCRIBE, {"domain_id": dom, "interval_ms": 20})
    dma_writes(adm, dom, [(10, 5)])
    time.sleep(0.1)
    s.drain(0.05)
    s.events.clear()
    must(adm, DESTROY_DOMAIN, {"domain_id": dom}, section="6.6", desc="DESTROY_DOMAIN of a domain with a subscriber is OK")
    got = s.drain(0.2)
    R.check("6.6", "subscribers of a destroyed domain are sent nothing", not got and not s.events, "nothing",
            got + s.events)
    for t, f in ((GET_RANGES, {"domain_id": dom}), (SYNC, {"domain_id": dom}), (UNSUBSCRIBE, {"domain_id": dom}),
                 (ACK, {"domain_id": dom, "generation": 1}), (STATS, {"domain_id": dom}),
                 (SUBSCRIBE, {"domain_id": dom}), (DESTROY_DOMAIN, {"domain_id": dom})):
        send_err(s, "6.6", "after DESTROY_DOMAIN, %s naming it is ERROR ENOENT" % tname(t), t, f, ENOENT)
    e6 = list_devices(adm).get("e6", {})
    R.check("6.6", "DESTROY_DOMAIN detached and unbound its device (flags DIRTY_CAPABLE, domain 0, dev_id 0)",
            (e6.get("flags", 0) & 7, e6.get("domain_id"), e6.get("dev_id")) == (1, 0, 0), (1, 0, 0),
            (e6.get("flags"), e6.get("domain_id"), e6.get("dev_id")))
    R.check("6.6", "a destroyed domain is gone from LIST_DOMAINS", dom not in list_domains(adm), "absent", "present")
    new = create(adm, "e6")
    R.check("8.4", "domain ids are never reused: the next domain gets a higher id", new is not None and new > dom,
            "> %d" % dom, new)
    must(adm, DESTROY_DOMAIN, {"domain_id": new})
    s.close()
    adm.close()


# ---------------------------------------------------------------------------
# Section 6.16: events
# ---------------------------------------------------------------------------

def _wait_rounds(adm, dom, n, timeout=3.0):
    """Wait until n more rounds of dom completed (STATS generation)."""
    g0 = (stats(adm, dom) or {}).get(dom, {}).get("generation", 0)
    deadline = time.monotonic() + timeout
    g = g0
    while time.monotonic() < deadline:
        time.sleep(0.02)
        g = (stats(adm, dom) or {}).get(dom, {}).get("generation", 0)
        if g - g0 >= n:
            break
    return g - g0


def _rounds(c, dom):
    return [e for e in c.events if e.type == EV_ROUND and e.f["domain_id"] == dom]


def _wait_event(c, dom, count, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(_rounds(c, dom)) < count:
        c.drain(0.03)
    return _rounds(c, dom)


def _request_rounds_not_counted(ctx, adm):
    """Section 6.16: rounds dirtyd runs for a request (another client's SYNC, a CLEAN SUBSCRIBE, an UNMAP)
    on a domain harvested periodically send no EV_ROUND and do not count in the next one's round_pages;
    their pages are pending like any others."""
    M = 1 << 20
    dom = create(adm, "e17")
    X, Y = (0, 4096), (8192, 256)
    for f, n in (X, Y):
        must(adm, MAP, {"domain_id": dom, "flags": 3, "iova": f * PAGE, "length": n * PAGE})
    must(adm, TRACK_START, {"domain_id": dom})
    s = connect(ctx.A.sock, FEAT_EVENTS)
    q = connect(ctx.A.sock)
    period = 0.25
    must(s, SUBSCRIBE, {"domain_id": dom, "interval_ms": int(period * 1000), "flags": SUBSCRIBE_CLEAN})
    P1 = [(100, 4), (200, 5), (Y[0] + 10, 6)]
    P2 = (300, 7)
    result = None
    for attempt in range(3):
        # right after a periodic round, so that the three request rounds run before the next one
        g = (stats(adm, dom) or {}).get(dom, {}).get("generation", 0)
        deadline = time.monotonic() + 2 * period + 0.5
        while time.monotonic() < deadline:
            g2 = (stats(adm, dom) or {}).get(dom, {}).get("generation", 0)
            if g2 != g:
                break
            time.sleep(0.004)
        t0 = time.monotonic()
        ga = (stats(adm, dom) or {}).get(dom, {}).get("generation", 0)
        dma_writes(adm, dom, [P1[0]])
        must(adm, SYNC, {"domain_id": dom})                                   # another client's SYNC
        dma_writes(adm, dom, [P1[1]])
        must(q, SUBSCRIBE, {"domain_id": dom, "flags": SUBSCRIBE_CLEAN})      # a CLEAN SUBSCRIBE
        dma_writes(adm, dom, [P1[2]])
        must(adm, UNMAP, {"domain_id": dom, "iova": Y[0] * PAGE, "length": Y[1] * PAGE})   # an UNMAP
        gb = (stats(adm, dom) or {}).get(dom, {}).get("generation", 0)
        took = time.monotonic() - t0
        s.drain(0.01)
        early = _rounds(s, dom)
        if gb == ga + 3:
            result = (ga, gb, took, early)
            break
        # a periodic round ran among them: undo and try again
        R.info("request rounds: attempt %d saw %d rounds in %.3f s" % (attempt, gb - ga, took))
        must(q, UNSUBSCRIBE, {"domain_id": dom})
        must(adm, MAP, {"domain_id": dom, "flags": 3, "iova": Y[0] * PAGE, "length": Y[1] * PAGE})
        st = get_ranges(s, dom, mappings=[X, Y])
        s.events.clear()
    if result is None:
        R.check("6.16", "request rounds between two periodic rounds: could be arranged", False,
                "3 request rounds between two periodic ones", "a periodic round ran among them 3 times")
    else:
        ga, gb, took, early = result
        R.check("6.16", "rounds run for another client's SYNC, a CLEAN SUBSCRIBE and an UNMAP (generations %d .. %d) "
                "send no EV_ROUND to a periodic subscriber" % (ga + 1, gb), not early, "none", [e.f for e in early])
        dma_writes(adm, dom, [P2])
        evs = _wait_event(s, dom, 1, timeout=4 * period + 1)
        e = evs[0] if evs else None
        R.check("6.16", "the next periodic round that finds pages sends EV_ROUND: its round_pages counts only the "
                "periodic rounds since the SUBSCRIBE or the last GET_RANGES (7 pages), not the request rounds' 4 + 5 + 6; pending_pages "
                "counts them all (22)", e is not None and e.f["generation"] > gb and
                (e.f["round_pages"], e.f["pending_pages"]) == (7, 22),
                "generation > %d, round_pages 7, pending_pages 22" % gb, e and e.f)
        R.info("EV_ROUND after the request rounds: %s" % (e and hexdump(e.raw)))
        want = 0
        for p, n in P1 + [P2]:
            want |= range_bits(p, n)
        st = get_ranges(s, dom, mappings=[X], extra_ok=[Y])
        R.check("6.16", "the pages the request rounds found are pending like any others: GET_RANGES delivers all 22",
                st.error is None and st.pages == want, int_pages(want), st.error or describe_diff(st.pages, want))
    for c in (s, q):
        strays = c.strays()
        AGG.add("8.1", "every request answered exactly once (event sessions)", not strays, strays[:2])
        c.close()
    must(adm, DESTROY_DOMAIN, {"domain_id": dom})


def t_events(ctx):
    """Section 6.16: EV_ROUND, its sums and that it never queues."""
    adm = connect(ctx.A.sock)
    dom = create(adm, "e7")
    must(adm, MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 1 << 24})
    must(adm, TRACK_START, {"domain_id": dom})
    slow = connect(ctx.A.sock)
    must(slow, SUBSCRIBE, {"domain_id": dom, "interval_ms": 5000, "flags": SUBSCRIBE_CLEAN})
    g0 = (stats(adm, dom) or {}).get(dom, {}).get("generation", 0)
    time.sleep(0.3)
    g1 = (stats(adm, dom) or {}).get(dom, {}).get("generation", 0)
    R.check("6.9", "with one subscriber at 5000 ms, no round in 0.3 s", g1 - g0 == 0, 0, g1 - g0)
    se1 = connect(ctx.A.sock, FEAT_EVENTS)
    se2 = connect(ctx.A.sock, FEAT_RANGES_RAW | FEAT_RESUME)
    se3 = connect(ctx.A.sock, FEAT_EVENTS)
    must(se1, SUBSCRIBE, {"domain_id": dom, "interval_ms": 20, "flags": SUBSCRIBE_CLEAN})
    must(se2, SUBSCRIBE, {"domain_id": dom, "interval_ms": 20, "flags": SUBSCRIBE_CLEAN})
    must(se3, SUBSCRIBE, {"domain_id": dom, "interval_ms": 0, "flags": SUBSCRIBE_CLEAN})
    R.check("6.9", "a domain's period is its smallest interval (20 ms beside 5000 ms): rounds run",
            _wait_rounds(adm, dom, 3) >= 3, ">= 3 rounds", "fewer")
    for s in (se1, se2, se3):
        s.drain(0.01)
    R.check("6.16", "no EV_ROUND while periodic rounds find nothing", not _rounds(se1, dom), "none", _rounds(se1, dom))
    g_before = (stats(adm, dom) or {}).get(dom, {}).get("generation", 0)
    W = [(100, 10), (200, 7), (300, 9), (400, 11), (500, 5), (600, 3)]
    dma_writes(adm, dom, [W[0]])
    evs = _wait_event(se1, dom, 1)
    e1 = evs[0] if evs else None
    R.check("6.16", "the first EV_ROUND after SUBSCRIBE: id 0, the domain, round_pages 10, pending_pages 10",
            e1 is not None and (e1.id, e1.length, e1.f["domain_id"], e1.f["round_pages"], e1.f["pending_pages"])
            == (0, 48, dom, 10, 10), (0, 48, dom, 10, 10), e1 and (e1.id, e1.length, e1.f))
    R.check("6.16", "EV_ROUND generation is a round after the write",
            e1 is not None and e1.f["generation"] > g_before, "> %d" % g_before, e1 and e1.f["generation"])
    ev3 = _wait_event(se3, dom, 1)
    R.check("6.16", "a subscriber with interval_ms 0 and EVENTS gets EV_ROUND for the rounds others run "
            "periodically", len(ev3) == 1 and ev3[0].f["round_pages"] == 10, "one EV_ROUND, round_pages 10",
            [e.f for e in ev3])
    # events never queue: more rounds find pages, the client neither reads nor asks
    dma_writes(adm, dom, [W[1]])
    _wait_rounds(adm, dom, 3)
    dma_writes(adm, dom, [W[2]])
    _wait_rounds(adm, dom, 3)
    time.sleep(0.05)
    for s in (se1, se3):
        s.drain(0.05)
    R.check("6.16", "EV_ROUND never queues: after 3 rounds found pages without GET_RANGES or SYNC, the client "
            "holds one EV_ROUND", len(_rounds(se1, dom)) == 1, 1,
            [(e.f["generation"], e.f["round_pages"], e.f["pending_pages"]) for e in _rounds(se1, dom)])
    R.check("6.16", "... also the interval_ms 0 subscriber", len(_rounds(se3, dom)) == 1, 1,
            [(e.f["generation"], e.f["round_pages"]) for e in _rounds(se3, dom)])
    st = get_ranges(se1, dom)
    R.check("6.16", "GET_RANGES then holds every page those rounds found (26)",
            st.error is None and st.npages == 26, 26, st.error or st.npages)
    # "The reply to that request covers the rounds before it; the next round that finds pages sends the
    # next EV_ROUND": periodic rounds that find nothing send none, even though earlier rounds found pages
    _wait_rounds(adm, dom, 3)
    se1.drain(0.05)
    evs = _rounds(se1, dom)
    R.check("6.16", "after GET_RANGES, periodic rounds that find nothing send no EV_ROUND (the RANGES covered the "
            "rounds before it)", len(evs) == 1, 1, [(e.f["generation"], e.f["round_pages"]) for e in evs])
    dma_writes(adm, dom, [W[3]])
    evs = _wait_event(se1, dom, 2)
    _wait_rounds(adm, dom, 3)
    se1.drain(0.05)
    evs = _rounds(se1, dom)
    e2 = evs[1] if len(evs) > 1 else None
    R.check("6.16", "after the client's GET_RANGES the next round that finds pages sends another EV_ROUND, and only "
            "one", len(evs) == 2, 2, [(e.f["generation"], e.f["round_pages"], e.f["pending_pages"]) for e in evs])
    R.check("6.16", "its round_pages counts the periodic rounds since the client's GET_RANGES (the latest of the "
            "three): the 11 pages written since, not the 16 found unannounced before it; pending_pages 11",
            e2 is not None and (e2.f["round_pages"], e2.f["pending_pages"]) == (11, 11),
            "round_pages 11, pending_pages 11", e2 and e2.f)
    R.info("EV_ROUND after GET_RANGES: %s" % (e2 and hexdump(e2.raw)))
    # SYNC re-arms the event as GET_RANGES does
    dma_writes(adm, dom, [W[4]])
    _wait_rounds(adm, dom, 3)
    se1.drain(0.05)
    n_before = len(_rounds(se1, dom))
    R.check("6.16", "no second EV_ROUND before the client asked (5 pages found after the previous event)",
            n_before == 2, 2, n_before)
    m = se1.req1(SYNC, {"domain_id": dom})
    R.check("6.10", "SYNC_REPLY pending_pages counts what the periodic rounds found since GET_RANGES (11 + 5)",
            m.type == SYNC_REPLY and m.f["pending_pages"] == 16, 16, ok_or_err(m) if m.type == ERROR else m.f)
    _wait_rounds(adm, dom, 3)
    se1.drain(0.05)
    evs = _rounds(se1, dom)
    R.check("6.16", "after SYNC, periodic rounds that find nothing send no EV_ROUND", len(evs) == n_before,
            n_before, [(e.f["generation"], e.f["round_pages"]) for e in evs])
    dma_writes(adm, dom, [W[5]])
    evs = _wait_event(se1, dom, n_before + 1)
    _wait_rounds(adm, dom, 2)
    se1.drain(0.05)
    evs = _rounds(se1, dom)
    R.check("6.16", "after the client's SYNC the next round that finds pages sends another EV_ROUND, and only one",
            len(evs) == n_before + 1, n_before + 1,
            [(e.f["generation"], e.f["round_pages"], e.f["pending_pages"]) for e in evs])
    e3 = evs[-1] if len(evs) == n_before + 1 else None
    R.check("6.16", "its round_pages counts the periodic rounds since the client's SYNC: the 3 pages written after "
            "it, not the 5 a periodic round found before it; pending_pages 11 + 5 + 3 = 19",
            e3 is not None and (e3.f["round_pages"], e3.f["pending_pages"]) == (3, 19),
            "round_pages 3, pending_pages 19", e3 and e3.f)
    R.info("EV_ROUND after SYNC: %s" % (e3 and hexdump(e3.raw)))
    R.check("5.2", "a periodic subscriber without PROTO_FEAT_EVENTS gets no EV_ROUND",
            not [e for e in se2.events if e.type == EV_ROUND], "none", se2.events)
    # a SYNC answered by ERROR: does it re-arm the event and restart round_pages' count?
    n_before = len(_rounds(se1, dom))
    must(adm, TRACK_STOP, {"domain_id": dom})
    m = se1.req1(SYNC, {"domain_id": dom})
    must(adm, TRACK_START, {"domain_id": dom})
    dma_writes(adm, dom, [(700, 2)])
    evs = _wait_event(se1, dom, n_before + 1, timeout=1.0)
    ctx.amb("6.16", "Does a GET_RANGES or SYNC answered by ERROR count as 'the client's last GET_RANGES or SYNC' "
            "(re-arming EV_ROUND, restarting round_pages' count)?",
            "after an EV_ROUND not yet re-armed: TRACK_STOP, SYNC (%s), TRACK_START (every mapped page pending), "
            "2 pages written: %s" % (ok_or_err(m), "an EV_ROUND, round_pages %d, pending_pages %d" % (
                evs[-1].f["round_pages"], evs[-1].f["pending_pages"]) if len(evs) > n_before else "no EV_ROUND"))
    # a round run for SYNC sends no EV_ROUND
    se4 = connect(ctx.A.sock, FEAT_EVENTS)
    dom2 = create(adm, "e8")
    must(adm, MAP, {"domain_id": dom2, "flags": 3, "iova": 0, "length": 1 << 24})
    must(adm, TRACK_START, {"domain_id": dom2})
    must(se4, SUBSCRIBE, {"domain_id": dom2, "flags": SUBSCRIBE_CLEAN})
    dma_writes(adm, dom2, [(3, 3)])
    m = se4.req1(SYNC, {"domain_id": dom2})
    R.check("6.10", "SYNC_REPLY pending_pages 3 after 3 pages were written", m.f.get("pending_pages") == 3, 3,
            ok_or_err(m) if m.type == ERROR else m.f.get("pending_pages"))
    m = adm.req1(SYNC, {"domain_id": dom2})
    dma_writes(adm, dom2, [(30, 2)])
    m = adm.req1(SYNC, {"domain_id": dom2})
    se4.drain(0.2)
    R.check("6.16", "rounds run for SYNC (the subscriber's or another client's) send no EV_ROUND",
            not _rounds(se4, dom2), "none", _rounds(se4, dom2))
    # rounds run for a request: a CLEAN SUBSCRIBE, an UNMAP, a TRACK_STOP ("Only periodic rounds send it")
    for what, fn in (("a CLEAN SUBSCRIBE", lambda: must(adm, SUBSCRIBE, {"domain_id": dom2, "flags": SUBSCRIBE_CLEAN})),
                     ("an UNMAP", lambda: must(adm, UNMAP, {"domain_id": dom2, "iova": 0, "length": 1 << 24})),
                     ("a TRACK_STOP", lambda: must(adm, TRACK_STOP, {"domain_id": dom2}))):
        if what == "a TRACK_STOP":
            must(adm, MAP, {"domain_id": dom2, "flags": 3, "iova": 0, "length": 1 << 24})
        dma_writes(adm, dom2, [(40, 4)])
        n0 = len(_rounds(se4, dom2))
        g0 = (stats(adm, dom2) or {}).get(dom2, {}).get("generation", 0)
        fn()
        g1 = (stats(adm, dom2) or {}).get(dom2, {}).get("generation", 0)
        se4.drain(0.15)
        R.check("6.16", "only periodic rounds send EV_ROUND: none after %s (its round%s found 4 pages; the "
                "subscriber has EVENTS and interval 0)" % (what, "" if g1 > g0 else ", if any,"),
                len(_rounds(se4, dom2)) == n0, "none", [e.f for e in _rounds(se4, dom2)[n0:]])
    _request_rounds_not_counted(ctx, adm)
    slow.close()
    for s in (se1, se2, se3, se4):
        strays = s.strays()
        AGG.add("8.1", "every request answered exactly once (event sessions)", not strays, strays[:2])
        s.close()
    must(adm, DESTROY_DOMAIN, {"domain_id": dom})
    must(adm, DESTROY_DOMAIN, {"domain_id": dom2})
    adm.close()


# ---------------------------------------------------------------------------
# Section 6.13: dirty_rate, pending_pages, pages_sent
# ---------------------------------------------------------------------------

def _timed(c, mtype, fields):
    t0 = time.monotonic()
    m = c.req1(mtype, fields)
    return m, t0, time.monotonic()


def t_dirty_rate(ctx):
    """dirty_rate is the pages the rounds of the last 10 s found, over the
    wall time they cover (from TRACK_START or the end of the round before
    the first of them, to the end of the last).  The bounds below follow
    from when requests were sent and answers received; nothing is assumed
    about the machine's speed."""
    c = connect(ctx.A.sock)
    dom = create(c, "e15")
    npages = 65536
    must(c, MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": npages * PAGE})
    e = (stats(c, dom) or {}).get(dom, {})
    R.check("6.13", "dirty_rate is 0 before tracking started", e.get("dirty_rate") == 0, 0, e.get("dirty_rate"))
    m, ts_send, ts_recv = _timed(c, TRACK_START, {"domain_id": dom})
    e = (stats(c, dom) or {}).get(dom, {})
    R.check("6.13", "dirty_rate is 0 before the first round", (e.get("dirty_rate"), e.get("generation")) == (0, 0),
            (0, 0), (e.get("dirty_rate"), e.get("generation")))
    found = 0
    nextp = 0

    def write(n):
        nonlocal found, nextp
        dma_writes(c, dom, [(nextp, n)])
        nextp += n + 1                       # distinct pages: each is found by exactly one round
        found += n

    # the first round: from TRACK_START to its end
    write(200)
    time.sleep(0.3)
    m, s_send, s_recv = _timed(c, SYNC, {"domain_id": dom})
    e, st_send, st_recv = _timed(c, STATS, {"domain_id": dom})
    rate = e.entries[0]["dirty_rate"] if e.type == STATS_REPLY and e.entries else None
    lo, hi = found / (st_recv - ts_send), found / (s_send - ts_recv)
    R.check("6.13", "after the first round: dirty_rate = %d pages over the time since TRACK_START (%.0f .. %.0f)"
            % (found, lo, hi), rate is not None and lo - 1 <= rate <= hi + 1, "%.0f .. %.0f" % (lo, hi), rate)
    # periodic rounds every 50 ms, writes at a known pace, extra SYNC rounds
    p = connect(ctx.A.sock)
    must(p, SUBSCRIBE, {"domain_id": dom, "interval_ms": 50})
    t_start = time.monotonic()
    k = 0
    while time.monotonic() - t_start < 1.6:
        write(40)
        k += 1
        if k % 3 == 0:
            c.req1(SYNC, {"domain_id": dom})          # an extra round right after a write
        time.sleep(0.04)
    m, s_send, s_recv = _timed(c, SYNC, {"domain_id": dom})
    e, st_send, st_recv = _timed(c, STATS, {"domain_id": dom})
    ent = e.entries[0] if e.type == STATS_REPLY and e.entries else {}
    rate = ent.get("dirty_rate")
    elapsed = st_recv - ts_send
    if elapsed < 9.5:
        lo, hi = found / (st_recv - ts_send), found / (s_send - ts_recv)
        R.check("6.13", "with periodic rounds and extra SYNC rounds: dirty_rate = the %d pages found over the wall "
                "time since TRACK_START (%.0f .. %.0f pages/s; SYNC rounds do not inflate it)" % (found, lo, hi),
                rate is not None and lo - 1 <= rate <= hi + 1, "%.0f .. %.0f" % (lo, hi),
                "%s (generation %s)" % (rate, ent.get("generation")))
        true = found / elapsed
        R.check("6.13", "dirty_rate is within a factor of two of the true rate (%.0f pages/s)" % true,
                rate is not None and true / 2 <= rate <= true * 2, "%.0f .. %.0f" % (true / 2, true * 2), rate)
    else:
        R.info("the rate experiment took %.1f s (more than 9.5): bounds not checked" % elapsed)
    must(p, UNSUBSCRIBE, {"domain_id": dom})
    p.close()
    ctx.rate_dom = (dom, time.monotonic())
    c.close()


def t_dirty_rate_idle(ctx):
    """dirty_rate is 0 after 10 s without a round."""
    if not getattr(ctx, "rate_dom", None):
        return
    dom, t_last = ctx.rate_dom
    left = t_last + 10.5 - time.monotonic()
    if left > 0:
        R.info("waiting %.1f s for 10 s without a round" % left)
        time.sleep(left)
    c = connect(ctx.A.sock)
    e = (stats(c, dom) or {}).get(dom, {})
    R.check("6.13", "dirty_rate is 0 after 10 s without a round", e.get("dirty_rate") == 0, 0,
            (e.get("dirty_rate"), e.get("generation")))
    must(c, DESTROY_DOMAIN, {"domain_id": dom})
    c.close()


def t_pending(ctx):
    """pending_pages (STATS, SYNC_REPLY) and pages_sent; a MAP after
    SUBSCRIBE follows the subscription's CLEAN rule (6.9)."""
    adm = connect(ctx.A.sock)
    dom = create(adm, "e16")
    must(adm, MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 1024 * PAGE})
    must(adm, TRACK_START, {"domain_id": dom})
    s1 = connect(ctx.A.sock, FEAT_RANGES_RAW)
    s2 = connect(ctx.A.sock, 0)
    must(s1, SUBSCRIBE, {"domain_id": dom})
    must(s2, SUBSCRIBE, {"domain_id": dom, "flags": SUBSCRIBE_CLEAN})

    def pend(c):
        e = (stats(c, dom) or {}).get(dom, {})
        return e.get("pending_pages"), e.get("pages_sent")

    R.check("6.13", "STATS right after SUBSCRIBE: without CLEAN every mapped page pending (1024), none sent",
            pend(s1) == (1024, 0), (1024, 0), pend(s1))
    R.check("6.13", "STATS right after SUBSCRIBE with CLEAN: nothing pending", pend(s2) == (0, 0), (0, 0), pend(s2))
    R.check("6.13", "STATS of a session without a subscription: pending_pages 0, pages_sent 0",
            pend(adm) == (0, 0), (0, 0), pend(adm))
    must(adm, MAP, {"domain_id": dom, "flags": 3, "iova": 4096 * PAGE, "length": 512 * PAGE})
    maps = [(0, 1024), (4096, 512)]
    R.check("6.9", "a range mapped after SUBSCRIBE (without CLEAN): every page of it becomes pending",
            pend(s1)[0] == 1536, 1536, pend(s1)[0])
    R.check("6.9", "a range mapped after SUBSCRIBE with CLEAN: none of it becomes pending", pend(s2)[0] == 0, 0,
            pend(s2)[0])
    dma_writes(adm, dom, [(4100, 10)])
    m = s1.req1(SYNC, {"domain_id": dom})
    R.check("6.10", "SYNC_REPLY pending_pages: the pages already pending (written ones among them)",
            m.type == SYNC_REPLY and m.f["pending_pages"] == 1536, 1536, ok_or_err(m) if m.type == ERROR else m.f)
    m = s2.req1(SYNC, {"domain_id": dom})
    R.check("6.10", "SYNC_REPLY pending_pages of the CLEAN subscription: the 10 pages written",
            m.type == SYNC_REPLY and m.f["pending_pages"] == 10, 10, ok_or_err(m) if m.type == ERROR else m.f)
    st = get_ranges(s2, dom, mappings=maps)
    R.check("6.9", "the CLEAN subscription gets only what the device wrote to the new range",
            st.error is None and st.pages == range_bits(4100, 10), int_pages(range_bits(4100, 10)),
            st.error or describe_diff(st.pages, range_bits(4100, 10)))
    must(s2, ACK, {"domain_id": dom, "generation": st.gen})
    st1 = get_ranges(s1, dom, mappings=maps)
    R.check("6.13", "after GET_RANGES: pending_pages 0, pages_sent 1536", pend(s1) == (0, 1536), (0, 1536), pend(s1))
    dma_writes(adm, dom, [(7, 5)])
    must(s1, SYNC, {"domain_id": dom})
    R.check("6.13", "a round adds the pages written to pending_pages (5) while a generation is in flight",
            pend(s1) == (5, 1536), (5, 1536), pend(s1))
    st2 = get_ranges(s1, dom, mappings=maps)
    R.check("8.3", "the next generation holds only the new pages", st2.error is None and st2.pages == range_bits(7, 5)
            and st2.gen > st1.gen, (">%s" % st1.gen, int_pages(range_bits(7, 5))),
            st2.error or (st2.gen, describe_diff(st2.pages, range_bits(7, 5))))
    R.check("6.13", "pages_sent 1541", pend(s1) == (0, 1541), (0, 1541), pend(s1))
    must(s1, SYNC, {"domain_id": dom})           # a round: the next generation has a number of its own
    st3 = get_ranges(s1, dom, flags=RANGES_RESEND, mappings=maps)
    R.check("8.3", "RESEND sends both unacknowledged generations again in a new one", st3.error is None and
            st3.pages == map_bits(maps) and st3.gen > st2.gen, (">%s" % st2.gen, 1536),
            st3.error or (st3.gen, describe_diff(st3.pages, map_bits(maps))))
    R.check("6.13", "pages sent again count again: pages_sent 1541 + 1536", pend(s1) == (0, 3077), (0, 3077),
            pend(s1))
    for g in (st1.gen, st2.gen):
        send_err(s1, "8.3", "after RESEND the generation %s it put back is not in flight: ACK is ENOENT" % g, ACK,
                 {"domain_id": dom, "generation": g}, ENOENT, ping=False)
    must(s1, ACK, {"domain_id": dom, "generation": st3.gen})
    R.check("6.13", "after the ACK: pending_pages 0", pend(s1) == (0, 3077), (0, 3077), pend(s1))
    # a domain without tracking: only the pages pending from the start and from later MAPs
    m = must(adm, CREATE_DOMAIN, {"flags": 0, "device": "nd0"}, section="6.4",
             desc="CREATE_DOMAIN without tracking for a nodirty device")
    dn = m.f.get("domain_id")
    must(adm, MAP, {"domain_id": dn, "flags": 3, "iova": 0, "length": 256 * PAGE})
    must(s1, SUBSCRIBE, {"domain_id": dn})
    must(s2, SUBSCRIBE, {"domain_id": dn, "flags": SUBSCRIBE_CLEAN})
    must(adm, MAP, {"domain_id": dn, "flags": 3, "iova": 1024 * PAGE, "length": 128 * PAGE})
    must(adm, DMA_WRITE, {"domain_id": dn, "iova": 1024 * PAGE, "length": 8 * PAGE}, section="6.7",
         desc="DMA_WRITE on a domain without tracking is OK")
    nmaps = [(0, 256), (1024, 128)]
    st = get_ranges(s1, dn, mappings=nmaps)
    R.check("6.9", "no tracking, without CLEAN: exactly the pages mapped at and after SUBSCRIBE are sent",
            st.error is None and st.pages == map_bits(nmaps), 384, st.error or describe_diff(st.pages, map_bits(nmaps)))
    st = get_ranges(s2, dn, mappings=nmaps)
    R.check("6.9", "no tracking, with CLEAN: nothing is ever sent (no round runs)",
            st.error is None and st.total == 0, 0, st.error or st.total)
    send_err(s1, "6.10", "SYNC on a domain without tracking is ERROR EINVAL", SYNC, {"domain_id": dn}, EINVAL)
    for c in (s1, s2):
        strays = c.strays()
        AGG.add("8.1", "every request answered exactly once (pending sessions)", not strays, strays[:2])
        c.close()
    must(adm, DESTROY_DOMAIN, {"domain_id": dom})
    must(adm, DESTROY_DOMAIN, {"domain_id": dn})
    adm.close()


# ---------------------------------------------------------------------------
# Section 5.3: resume
# ---------------------------------------------------------------------------

def _resume_other_uid(sock, token):
    c = Conn(sock)
    m = c.hello(FEAT_RESUME, token)
    c.close()
    return m.type, m.f


def t_resume(ctx):
    """Section 5.3 / 8.6: resume tokens, a stream never read."""
    adm = connect(ctx.A.sock)
    dom = create(adm, "e9")
    maps = [(0, 4096)]
    must(adm, MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 4096 * PAGE})
    must(adm, TRACK_START, {"domain_id": dom})
    s = connect(ctx.A.sock, FEAT_RESUME | FEAT_RANGES_RAW)
    tok = s.hello_reply.f["session_token"]
    must(s, SUBSCRIBE, {"domain_id": dom})
    st = get_ranges(s, dom, mappings=maps)
    must(s, ACK, {"domain_id": dom, "generation": st.gen})
    a = range_bits(10, 5) | range_bits(100, 1)
    dma_writes(adm, dom, [(10, 5), (100, 1)])
    must(s, SYNC, {"domain_id": dom})
    st = get_ranges(s, dom, mappings=maps)            # in flight, never acknowledged
    g_inflight = st.gen
    R.check("8.3", "the pages written are in the generation (before the disconnect)", st.pages == a, int_pages(a),
            int_pages(st.pages))
    b = range_bits(2000, 2)
    dma_writes(adm, dom, [(2000, 2)])
    must(s, SYNC, {"domain_id": dom})                  # pending, never fetched
    s.close()
    time.sleep(0.05)
    res = as_user(1000, 1000, [], _resume_other_uid, ctx.A.sock, tok)
    if res:
        typ, f = res
        R.check("5.3", "a token presented by another uid gets STATE_LOST and a new token",
                typ == HELLO_REPLY and f["session_flags"] == SESSION_STATE_LOST and f["session_token"] not in (0, tok),
                "STATE_LOST", f)
    s = Conn(ctx.A.sock)
    m = s.hello(FEAT_RESUME | FEAT_RANGES_RAW, tok)
    R.check("5.3", "reconnecting with the token within resume_grace: RESUMED, the same token",
            m.type == HELLO_REPLY and m.f["session_flags"] == SESSION_RESUMED and m.f["session_token"] == tok,
            "RESUMED, token kept", m.f if m.type == HELLO_REPLY else ok_or_err(m))
    send_err(s, "5.3", "the subscription is attached to the resumed session (SUBSCRIBE again: EEXIST)", SUBSCRIBE,
             {"domain_id": dom}, EEXIST)
    e = (stats(s, dom) or {}).get(dom, {})
    R.check("5.3", "after resuming, the generation that was in flight is pending again: STATS pending_pages %d"
            % (a | b).bit_count(), e.get("pending_pages") == (a | b).bit_count(), (a | b).bit_count(),
            e.get("pending_pages"))
    send_err(s, "8.3", "the generation %s that was in flight when the session was kept is pending again after the "
             "resume, not in flight: ACK of it is ERROR ENOENT" % g_inflight, ACK,
             {"domain_id": dom, "generation": g_inflight}, ENOENT)
    st = get_ranges(s, dom, mappings=maps)
    R.check("5.3", "after resuming, the unacknowledged generation and the pending pages are delivered",
            st.error is None and st.pages == a | b, int_pages(a | b), st.error or describe_diff(st.pages, a | b))
    if st.gen is not None:
        must(s, ACK, {"domain_id": dom, "generation": st.gen})
    st = get_ranges(s, dom, mappings=maps)
    R.check("5.3", "after the ACK nothing is pending", st.error is None and st.total == 0, 0, st.error or st.total)
    if st.gen is not None:
        must(s, ACK, {"domain_id": dom, "generation": st.gen})
    s.close()
    time.sleep(0.05)
    s = Conn(ctx.A.sock)
    m = s.hello(FEAT_RESUME, tok)
    R.check("5.3", "a resumed session can be resumed again after the next disconnect",
            m.type == HELLO_REPLY and m.f["session_flags"] == SESSION_RESUMED and m.f["session_token"] == tok,
            "RESUMED", m.f)
    t2 = Conn(ctx.A.sock)
    m2 = t2.hello(FEAT_RESUME, tok)
    R.check("8.6", "a token whose session is still connected is not a kept session: STATE_LOST and a new token",
            m2.type == HELLO_REPLY and m2.f["session_flags"] == SESSION_STATE_LOST and
            m2.f["session_token"] not in (0, tok), "STATE_LOST, new token", m2.f if m2.type == HELLO_REPLY
            else ok_or_err(m2))
    send_err(t2, "8.6", "... and that connection did not get the session's subscription (GET_RANGES: ENOENT)",
             GET_RANGES, {"domain_id": dom}, ENOENT, ping=False)
    t2.close()
    st = get_ranges(s, dom, mappings=maps)
    R.check("8.6", "the connected session is unaffected by another connection presenting its token",
            st.error is None, "RANGES", st.error)
    if st.gen is not None:
        must(s, ACK, {"domain_id": dom, "generation": st.gen})
    # a stream the client never read, then the connection breaks: nothing is lost
    w = range_bits(0, 4096) & int("5" * 1024, 16)       # every other page of the mapping
    dma_writes(adm, dom, [(p, 1) for p in range(0, 4096, 2)])
    m = s.req1(SYNC, {"domain_id": dom})
    sent0 = (stats(s, dom) or {}).get(dom, {}).get("pages_sent")
    mid = s.new_id()
    s.send(encode(GET_RANGES, mid, {"domain_id": dom}))
    # peek (MSG_PEEK: nothing is read) until the stream's last packet is in our socket: dirtyd sent it
    peeked = None
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        select.select([s.s], [], [], 0.1)
        try:
            data = s.s.recv(PROTO_MAX_MSG, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        peeked = decode(data, "D2C")
        break
    last_sent = (peeked is not None and peeked.type == RANGES and peeked.id == mid and not peeked.more
                 and peeked.f["total_pages"] == w.bit_count())
    R.check("6.13", "the unread stream's last packet reached the client's socket (seen with MSG_PEEK, not read): "
            "one RANGES packet without PROTO_F_MORE, total_pages %d" % w.bit_count(), last_sent,
            "RANGES id %d, last packet" % mid, peeked)
    g_cut = peeked.f["generation"] if last_sent else None
    s.close()                               # the RANGES stream is never read
    time.sleep(0.05)
    s = Conn(ctx.A.sock)
    m = s.hello(FEAT_RESUME | FEAT_RANGES_RAW, tok)
    R.check("5.3", "resuming after a connection that broke with a RANGES stream unread: RESUMED",
            m.type == HELLO_REPLY and m.f["session_flags"] == SESSION_RESUMED, "RESUMED", m.f)
    e = (stats(s, dom) or {}).get(dom, {})
    R.check("8.3", "every page of the stream the client did not read is pending again (STATS pending_pages)",
            e.get("pending_pages") == w.bit_count(), w.bit_count(), e.get("pending_pages"))
    sent1 = e.get("pages_sent")
    R.check("6.13", "pages_sent counts a stream whose last packet dirtyd sent, though the client never read it: "
            "%s + %d" % (sent0, w.bit_count()), sent0 is not None and sent1 == sent0 + w.bit_count(),
            (sent0 or 0) + w.bit_count(), sent1)
    if g_cut is not None:
        send_err(s, "8.3", "the generation %d of the unread stream is pending again after the resume, not in flight: "
                 "ACK of it is ERROR ENOENT" % g_cut, ACK, {"domain_id": dom, "generation": g_cut}, ENOENT)
    st = get_ranges(s, dom, mappings=maps)
    R.check("8.3", "... and the next GET_RANGES delivers them", st.error is None and st.pages == w,
            int_pages(w), st.error or describe_diff(st.pages, w))
    e = (stats(s, dom) or {}).get(dom, {})
    R.check("6.13", "... and counts them again in pages_sent (%s + 2 x %d)" % (sent0, w.bit_count()),
            sent0 is not None and e.get("pages_sent") == sent0 + 2 * w.bit_count(),
            (sent0 or 0) + 2 * w.bit_count(), e.get("pages_sent"))
    if st.gen is not None:
        must(s, ACK, {"domain_id": dom, "generation": st.gen})
    must(s, UNSUBSCRIBE, {"domain_id": dom})
    s.close()
    # a session with RESUME but no subscription, closed: is it kept?
    n = connect(ctx.A.sock, FEAT_RESUME)
    t3 = n.hello_reply.f["session_token"]
    n.close()
    time.sleep(0.05)
    n = Conn(ctx.A.sock)
    m = n.hello(FEAT_RESUME, t3)
    ctx.amb("5.3", "Is a session with RESUME but no subscription kept when its connection closes ('dirtyd keeps the "
            "session's subscriptions'; after a restart only tokens 'whose session had a subscription' are kept)?",
            "its token presented 50 ms after the close: session_flags %#x (%s)" % (
                m.f.get("session_flags", 0), "RESUMED" if m.f.get("session_flags") == SESSION_RESUMED else
                "STATE_LOST" if m.f.get("session_flags") == SESSION_STATE_LOST else ok_or_err(m)))
    n.close()
    # without RESUME the subscriptions go with the connection
    before = list_domains(adm).get(dom, {}).get("subscribers")
    n = connect(ctx.A.sock, FEAT_EVENTS)
    must(n, SUBSCRIBE, {"domain_id": dom})
    mid_count = list_domains(adm).get(dom, {}).get("subscribers")
    n.close()
    time.sleep(0.05)
    after = list_domains(adm).get(dom, {}).get("subscribers")
    R.check("8.6", "closing a session without RESUME drops its subscriptions (LIST_DOMAINS.subscribers)",
            (mid_count, after) == (before + 1, before), (before + 1, before), (mid_count, after))
    adm.close()
    c = connect(ctx.A.sock)
    R.check("8.6", "domains are not destroyed when their creator disconnects", dom in list_domains(c), "present",
            "gone")
    must(c, DESTROY_DOMAIN, {"domain_id": dom})
    c.close()


def _queued(c):
    """Bytes waiting in the client's socket (FIONREAD sums every packet of a SOCK_SEQPACKET queue)."""
    import fcntl
    import termios
    return struct.unpack("i", fcntl.ioctl(c.s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def _fill(c, most=240):
    """Send LIST_DEVICES requests without reading the replies until dirtyd stops sending (the bytes waiting in
    our socket stop growing): dirtyd then holds a reply it cannot send.  Returns (ids sent, bytes queued)."""
    ids = []
    last, stable = -1, 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for _ in range(16):
            if len(ids) >= most:
                break
            mid = c.new_id()
            try:
                c.s.send(encode(LIST_DEVICES, mid), socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            ids.append(mid)
        time.sleep(0.02)
        q = _queued(c)
        if q == last:
            stable += 1
            if stable >= 5:
                break
        else:
            last, stable = q, 0
    return ids, last


def t_resume_at_once(ctx):
    """Section 8.6: a client may close and resume at once, however many requests dirtyd has not read; 8.1:
    a session whose client does not read."""
    adm = connect(ctx.A.sock)
    dom = create(adm, "e18")
    maps = [(0, 4096)]
    must(adm, MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 4096 * PAGE})
    must(adm, TRACK_START, {"domain_id": dom})
    feats = FEAT_RESUME | FEAT_RANGES_RAW
    s = connect(ctx.A.sock, feats)
    tok = s.hello_reply.f["session_token"]
    must(s, SUBSCRIBE, {"domain_id": dom, "flags": SUBSCRIBE_CLEAN})
    want = 0
    N = 90
    done = 0
    for i in range(N):
        if i % 10 == 0:
            dma_writes(adm, dom, [(20 * i, 2)])
            want |= range_bits(20 * i, 2)
            must(adm, SYNC, {"domain_id": dom})
        how = ("nothing unread", "a GET_RANGES unread", "a SYNC unread")[i % 3]
        if i % 3 == 1:
            s.send(encode(GET_RANGES, s.new_id(), {"domain_id": dom}))
        elif i % 3 == 2:
            s.send(encode(SYNC, s.new_id(), {"domain_id": dom}))
        s.close()
        s = Conn(ctx.A.sock)                  # at once: dirtyd may not have read the end of file yet
        m = s.hello(feats, tok)
        okv = m.type == HELLO_REPLY and m.f["session_flags"] == SESSION_RESUMED and m.f["session_token"] == tok
        AGG.add("8.6", "a client that closes and at once reconnects with its token is RESUMED with the same token "
                "(closed with nothing, a GET_RANGES or a SYNC unread)", okv,
                "round %d (%s): %s" % (i, how, m.f if m.type == HELLO_REPLY else ok_or_err(m)))
        if not okv:
            break
        done += 1
    AGG.flush()
    if done == N:
        st = get_ranges(s, dom, mappings=maps)
        R.check("8.6", "after %d such resumes every page written meanwhile is delivered (%d pages)"
                % (N, want.bit_count()), st.error is None and st.pages == want, int_pages(want),
                st.error or describe_diff(st.pages, want))
        if st.gen is not None:
            must(s, ACK, {"domain_id": dom, "generation": st.gen})
    # 8.1: while a reply cannot be sent, dirtyd reads no further requests of that session
    dma_writes(adm, dom, [(3000, 4)])
    must(adm, SYNC, {"domain_id": dom})
    want = range_bits(3000, 4)
    sent0 = (stats(s, dom) or {}).get(dom, {}).get("pages_sent")
    ids, queued = _fill(s)
    mapped0 = list_domains(adm).get(dom, {}).get("mapped_bytes")
    mid_map = s.new_id()
    s.s.send(encode(MAP, mid_map, {"domain_id": dom, "flags": 3, "iova": 8192 * PAGE, "length": PAGE}),
             socket.MSG_DONTWAIT)
    time.sleep(0.2)
    mapped1 = list_domains(adm).get(dom, {}).get("mapped_bytes")
    R.check("8.1", "a client that does not read: after %d LIST_DEVICES (%d bytes waiting in its socket), dirtyd "
            "reads no further request of the session (a MAP sent then is not done: mapped_bytes %s)"
            % (len(ids), queued, mapped0), len(ids) < 240 and mapped1 == mapped0, mapped0, mapped1)
    got = {}
    try:
        while mid_map not in got:
            m = s.next(3.0)
            got.setdefault(m.id, []).append(m)
        okv = all(len(got.get(i, [])) == 1 and got[i][0].type == LIST_DEVICES_REPLY for i in ids) and \
            got[mid_map][0].type == OK
        res = "%d answers" % len(got)
    except (Timeout, Closed) as e:
        okv, res = False, "%s after %d answers" % (type(e).__name__, len(got))
    R.check("8.1", "once the client reads, every request is answered exactly once, the MAP too", okv,
            "%d LIST_DEVICES_REPLY and OK" % len(ids), res)
    R.check("8.1", "... and the MAP was done then", list_domains(adm).get(dom, {}).get("mapped_bytes") ==
            (mapped0 or 0) + PAGE, (mapped0 or 0) + PAGE, list_domains(adm).get(dom, {}).get("mapped_bytes"))
    maps = maps + [(8192, 1)]
    # 8.6 / 8.3: a session blocked that way, closed by its client with a GET_RANGES unread, resumed at once
    ids, queued = _fill(s)
    s.s.send(encode(GET_RANGES, s.new_id(), {"domain_id": dom}), socket.MSG_DONTWAIT)
    mid_unmap = s.new_id()
    s.s.send(encode(UNMAP, mid_unmap, {"domain_id": dom, "iova": 8192 * PAGE, "length": PAGE}), socket.MSG_DONTWAIT)
    s.close()
    s = Conn(ctx.A.sock)
    m = s.hello(feats, tok)
    R.check("8.6", "a client whose session was blocked (it left %d bytes of replies unread and dirtyd stopped "
            "sending) closes with a GET_RANGES and an UNMAP dirtyd never read, and reconnects at once: RESUMED"
            % queued,
            m.type == HELLO_REPLY and m.f["session_flags"] == SESSION_RESUMED and m.f["session_token"] == tok,
            "RESUMED", m.f if m.type == HELLO_REPLY else ok_or_err(m))
    e = (stats(s, dom) or {}).get(dom, {})
    R.check("8.3", "... every page is pending (%d) and pages_sent has not grown (%s)" % (want.bit_count(), sent0),
            (e.get("pending_pages"), e.get("pages_sent")) == (want.bit_count(), sent0),
            (want.bit_count(), sent0), (e.get("pending_pages"), e.get("pages_sent")))
    time.sleep(0.1)
    unmapped = list_domains(adm).get(dom, {}).get("mapped_bytes") == 4096 * PAGE
    ctx.amb("8.6", "Requests a client sent before closing that dirtyd had not read (its session blocked on "
            "replies the client did not read): are they dropped with the connection, or still done?",
            "an UNMAP sent that way was %s" % ("done" if unmapped else "not done (dropped)"))
    st = get_ranges(s, dom, mappings=maps if not unmapped else maps[:1], extra_ok=[] if not unmapped else maps[1:])
    R.check("8.3", "... and the next GET_RANGES delivers them", st.error is None and st.pages == want,
            int_pages(want), st.error or describe_diff(st.pages, want))
    if st.gen is not None:
        must(s, ACK, {"domain_id": dom, "generation": st.gen})
    strays = s.strays()
    R.check("8.1", "resume-at-once session: every request answered exactly once", not strays, "nothing", strays[:2])
    s.close()
    must(adm, DESTROY_DOMAIN, {"domain_id": dom})
    adm.close()


# ---------------------------------------------------------------------------
# Section 12: list streams (1364 domains / 1023 stats per packet), max_domains
# ---------------------------------------------------------------------------

def _many_domains(sock, n, limit):
    c = connect(sock)
    ids = []
    bad = []
    for i in range(n):
        m = c.req1(CREATE_DOMAIN, {"flags": CREATE_TRACKING, "device": "a"})
        if m.type != CREATE_DOMAIN_REPLY:
            bad.append(ok_or_err(m))
            break
        ids.append(m.f["domain_id"])
        d = c.req1(DETACH_DEVICE, {"domain_id": m.f["domain_id"], "device": "a"})
        if d.type != OK:
            bad.append(ok_or_err(d))
            break
    R.check("6.4", "uid 1002 creates %d domains (device 'a', a 1-byte name), detaching it each time" % n,
            len(ids) == n and not bad, n, (len(ids), bad[:1]))
    m = c.req1(CREATE_DOMAIN, {"flags": CREATE_TRACKING, "device": "a"})
    R.check("12", "CREATE_DOMAIN past max_domains (%d) is ERROR EDQUOT naming the limit" % limit,
            m.type == ERROR and m.errno == EDQUOT and (b"max_domains" in m.text or str(limit).encode() in m.text),
            "ERROR EDQUOT", ok_or_err(m))
    if m.type == CREATE_DOMAIN_REPLY:
        ids.append(m.f["domain_id"])
        c.req1(DETACH_DEVICE, {"domain_id": m.f["domain_id"], "device": "a"})
    r = c.request(LIST_DOMAINS, timeout=10)
    counts = [x.f.get("count") for x in r]
    got = [e["domain_id"] for x in r for e in x.entries]
    R.check("6.3", "LIST_DOMAINS of %d domains streams 1364 entries per packet, MORE on all but the last" % n,
            counts == [1364, n - 1364] and [x.more for x in r] == [True, False],
            [1364, n - 1364], (counts, [x.flags for x in r]))
    R.check("6.3", "the stream's entries are the domains, by increasing domain_id", got == sorted(ids), "sorted ids",
            got[:3])
    r = c.request(STATS, {"domain_id": 0}, timeout=10)
    counts = [x.f.get("count") for x in r]
    got = [e["domain_id"] for x in r for e in x.entries]
    R.check("6.13", "STATS(0) of %d domains streams 1023 entries per packet, MORE on all but the last" % n,
            counts == [1023, n - 1023] and [x.more for x in r] == [True, False], [1023, n - 1023],
            (counts, [x.flags for x in r]))
    R.check("6.13", "STATS(0) lists every visible domain once", sorted(got) == sorted(ids), len(ids), len(got))
    ans = pipeline(c, [(DESTROY_DOMAIN, {"domain_id": d}) for d in ids])
    R.check("6.6", "all %d domains destroyed" % len(ids), all(a.type == OK for a in ans), "OK",
            [ok_or_err(a) for a in ans if a.type != OK][:1])
    m = c.req1(CREATE_DOMAIN, {"flags": CREATE_TRACKING, "device": LONG_NAME})
    R.check("12", "a device with a 63-byte name (the str64 limit) can be named", m.type == CREATE_DOMAIN_REPLY,
            "CREATE_DOMAIN_REPLY", ok_or_err(m))
    if m.type == CREATE_DOMAIN_REPLY:
        devs = list_devices(c)
        R.check("12", "LIST_DEVICES shows the 63-byte name intact", LONG_NAME in devs, LONG_NAME, sorted(devs))
        c.req1(DESTROY_DOMAIN, {"domain_id": m.f["domain_id"]})
    R.check("8.1", "many-domains session: every request answered exactly once", not c.strays(), "nothing", "strays")
    c.close()
    return len(ids)


def t_many_domains(ctx):
    """Section 12: 1500 domains, list streams, max_domains, a 63-byte name."""
    as_user(1002, 1002, [], _many_domains, ctx.A.sock, 1500, 1500)


# ---------------------------------------------------------------------------
# Daemon B: 2m backing, small limits
# ---------------------------------------------------------------------------

def _try_connect(sock):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(sock)
        return "connected"
    except OSError as e:
        return "refused (%s)" % e.strerror
    finally:
        s.close()


def t_b_socket(ctx):
    """Section 1: socket mode, group and directory (daemon B)."""
    import stat as _stat
    res = as_user(1000, 1000, [], _try_connect, ctx.B.sock)
    R.check("1", "the file permissions are the first gate: uid 1000 outside the socket's group cannot connect (0660)",
            res is not None and res.startswith("refused"), "refused", res)
    res = as_user(1000, 1000, [0], _try_connect, ctx.B.sock)
    R.check("1", "a member of the socket's group can connect (0660)", res == "connected", "connected", res)
    st = os.stat(ctx.B.sock)
    R.check("1", "without socket_mode= the socket file has mode 0660", _stat.S_IMODE(st.st_mode) == 0o660, "0660",
            oct(_stat.S_IMODE(st.st_mode)))
    dst = os.stat(os.path.dirname(ctx.B.sock))
    if ctx.B_dir_created_by_daemon:
        R.check("1", "the socket's directory (created by dirtyd) has mode 0755", _stat.S_IMODE(dst.st_mode) == 0o755,
                "0755", oct(_stat.S_IMODE(dst.st_mode)))


def t_b_clients(ctx):
    """Section 12: max_clients (daemon B)."""
    conns = [connect(ctx.B.sock) for _ in range(4)]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(ctx.B.sock)
    x = Conn.__new__(Conn)          # a Conn around the raw socket (no HELLO)
    x.s = s
    x.timeout = 2.0
    x.stash = {}
    x.events = []
    x.closed = False
    try:
        m = x.recv(2.0)
        first = m
    except (Timeout, Closed) as e:
        first = type(e).__name__
    okv = isinstance(first, Msg) and first.type == ERROR and first.errno == EUSERS and first.id == 0
    R.check("12", "a connection past max_clients (4) gets ERROR EUSERS with id 0", okv, "ERROR EUSERS id 0",
            ok_or_err(first) + " id %d" % first.id if isinstance(first, Msg) else first)
    if isinstance(first, Msg) and first.type == ERROR:
        R.check("7", "the EUSERS text names the limit", b"max_clients" in first.text or b"4" in first.text,
                "max_clients or 4", first.text)
    try:
        m = x.recv(2.0)
        after = ok_or_err(m)
    except Closed:
        after = "closed"
    except Timeout:
        after = "still open"
    R.check("7", "after EUSERS dirtyd closes the connection (sent once)", after == "closed", "closed", after)
    s.close()
    conns[0].close()
    time.sleep(0.1)
    try:
        c = connect(ctx.B.sock)
        okv = c.hello_reply is not None and c.hello_reply.type == HELLO_REPLY
        c.close()
    except (Timeout, Closed) as e:
        okv = False
    R.check("12", "max_clients counts connections at once: after one closes a new one is served", okv, "served",
            "refused")
    for c in conns[1:]:
        c.close()
    time.sleep(0.05)


def t_b_huge(ctx):
    """Section 9.5: 2 MiB leaves and NO_HUGE_PAGES (daemon B)."""
    c = connect(ctx.B.sock, FEAT_RANGES_RAW)
    M = 1 << 20
    d0 = create(c, "h0")
    ctx.B_d0 = d0
    maps = [(0, 4096)]
    must(c, MAP, {"domain_id": d0, "flags": 3, "iova": 0, "length": 16 * M})
    must(c, TRACK_START, {"domain_id": d0})
    m = c.req1(SUBSCRIBE, {"domain_id": d0, "interval_ms": 100})
    R.check("9.5", "SUBSCRIBE on a 2m-backing host: page_size 4096, max_leaf 2 MiB, generation 0",
            m.type == SUBSCRIBE_REPLY and (m.f["domain_id"], m.f["page_size"], m.f["max_leaf"], m.f["generation"])
            == (d0, 4096, 2 << 20, 0), (d0, 4096, 2 << 20, 0), m.f if m.type == SUBSCRIBE_REPLY else ok_or_err(m))
    st = get_ranges(c, d0, mappings=maps)
    must(c, ACK, {"domain_id": d0, "generation": st.gen})
    for what, writes in (("one page", [(5, 1)]), ("two pages across a leaf boundary", [(511, 2)]),
                         ("the last page of a leaf", [(8 * 512 - 1, 1)])):
        written = 0
        for p, n in writes:
            written |= range_bits(p, n)
        leaves = 0
        for p, n in writes:
            for q in range(p, p + n):
                leaves |= range_bits(q // 512 * 512, 512)
        dma_writes(c, d0, writes)
        must(c, SYNC, {"domain_id": d0})
        st = get_ranges(c, d0, mappings=maps)
        R.check("9.5", "huge leaves, %s written: every written page is reported" % what,
                st.error is None and st.pages & written == written, int_pages(written),
                st.error or describe_diff(st.pages, written))
        R.check("9.5", "huge leaves, %s written: only pages of aligned max_leaf blocks written to" % what,
                st.error is None and st.pages & ~leaves == 0, "within %s" % int_pages(leaves),
                st.error or describe_diff(st.pages, leaves))
        R.check("9.5", "huge leaves, %s written: the whole 2 MiB leaf is reported (dirtyd.conf(5))" % what,
                st.error is None and st.pages == leaves, int_pages(leaves), st.error or describe_diff(st.pages, leaves))
        if st.gen is not None:
            must(c, ACK, {"domain_id": d0, "generation": st.gen})
    # a mapping whose IOVA is not 2 MiB aligned
    must(c, MAP, {"domain_id": d0, "flags": 3, "iova": 32 * M + PAGE, "length": 4 * M})
    maps2 = maps + [(8192 + 1, 1024)]
    st = get_ranges(c, d0, mappings=maps2)
    must(c, ACK, {"domain_id": d0, "generation": st.gen})
    dma_writes(c, d0, [(8192 + 600, 1)])
    must(c, SYNC, {"domain_id": d0})
    st = get_ranges(c, d0, mappings=maps2)
    block = range_bits(8192 + 512, 512) & map_bits(maps2)
    R.check("9.5", "unaligned mapping: the written page is reported, nothing outside its aligned max_leaf block",
            st.error is None and st.pages >> (8192 + 600) & 1 and st.pages & ~block == 0, int_pages(1 << (8792)),
            st.error or describe_diff(st.pages, 1 << 8792))
    if st.gen is not None:
        must(c, ACK, {"domain_id": d0, "generation": st.gen})
    must(c, UNMAP, {"domain_id": d0, "iova": 32 * M + PAGE, "length": 4 * M})
    # NO_HUGE_PAGES: one bit is one 4 KiB page
    d1 = create(c, "h1", CREATE_TRACKING | CREATE_NO_HUGE_PAGES)
    ctx.B_d1 = d1
    must(c, MAP, {"domain_id": d1, "flags": 3, "iova": 0, "length": 16 * M})
    must(c, TRACK_START, {"domain_id": d1})
    m = must(c, SUBSCRIBE, {"domain_id": d1, "flags": SUBSCRIBE_CLEAN})
    R.check("9.5", "with NO_HUGE_PAGES max_leaf = page_size (4096) on a 2m host",
            (m.f.get("page_size"), m.f.get("max_leaf")) == (4096, 4096), (4096, 4096),
            (m.f.get("page_size"), m.f.get("max_leaf")))
    dma_writes(c, d1, [(5, 1), (511, 2)])
    must(c, SYNC, {"domain_id": d1})
    st = get_ranges(c, d1, mappings=maps)
    want = (1 << 5) | range_bits(511, 2)
    R.check("9.5", "with NO_HUGE_PAGES exactly the written pages are reported", st.error is None and st.pages == want,
            int_pages(want), st.error or describe_diff(st.pages, want))
    if st.gen is not None:
        must(c, ACK, {"domain_id": d1, "generation": st.gen})
    doms = list_domains(c)
    R.check("6.3", "LIST_DOMAINS page_size is 4096 for both (a bit is a 4 KiB page)",
            (doms.get(d0, {}).get("page_size"), doms.get(d1, {}).get("page_size")) == (4096, 4096), (4096, 4096),
            (doms.get(d0, {}).get("page_size"), doms.get(d1, {}).get("page_size")))
    must(c, UNMAP, {"domain_id": d0, "iova": 0, "length": 16 * M})
    must(c, UNMAP, {"domain_id": d1, "iova": 0, "length": 16 * M})
    R.check("8.1", "huge session: every request answered exactly once", not c.strays(), "nothing", "strays")
    c.close()


def _b_user_quota(sock, M):
    c = connect(sock)
    m = c.req1(CREATE_DOMAIN, {"flags": CREATE_TRACKING, "device": "h3"})
    R.check("12", "max_domains is per uid: uid 1000 creates a domain while root has 3",
            m.type == CREATE_DOMAIN_REPLY, "CREATE_DOMAIN_REPLY", ok_or_err(m))
    if m.type == CREATE_DOMAIN_REPLY:
        d = m.f["domain_id"]
        m = c.req1(MAP, {"domain_id": d, "flags": 3, "iova": 0, "length": 64 * M})
        R.check("12", "max_mapped is per uid: uid 1000 maps 64 MiB while root maps 64 MiB", m.type == OK, "OK",
                ok_or_err(m))
        c.req1(DESTROY_DOMAIN, {"domain_id": d})
    c.close()
    return True


def t_b_quota(ctx):
    """Section 12: max_domains, max_mapped, max_subscriptions (daemon B)."""
    M = 1 << 20
    c = connect(ctx.B.sock)
    d0, d1 = ctx.B_d0, ctx.B_d1
    m = must(c, CREATE_DOMAIN, {"flags": CREATE_TRACKING, "device": "h2"}, section="12",
             desc="CREATE_DOMAIN of the 3rd domain (max_domains = 3) works")
    d2 = m.f.get("domain_id")
    send_err(c, "12", "a 4th domain (max_domains = 3) is ERROR EDQUOT naming the limit", CREATE_DOMAIN,
             {"flags": 0, "device": "hl"}, EDQUOT, must_contain=(("max_domains", "3"),))
    # max_mapped = 64 MiB over all of root's domains
    must(c, MAP, {"domain_id": d0, "flags": 3, "iova": 0, "length": 32 * M})
    must(c, MAP, {"domain_id": d1, "flags": 3, "iova": 0, "length": 32 * M - PAGE})
    must(c, MAP, {"domain_id": d2, "flags": 3, "iova": 0, "length": PAGE}, section="12",
         desc="MAP reaching exactly max_mapped (64 MiB over three domains) works")
    send_err(c, "12", "MAP of one page more than max_mapped is ERROR EDQUOT naming the limit", MAP,
             {"domain_id": d2, "flags": 3, "iova": 1 << 30, "length": PAGE}, EDQUOT,
             must_contain=(("max_mapped", "64 MiB", "67108864", "64M", "64 M"),))
    for what, iova, ln in (("an unaligned iova", (1 << 30) + 1, PAGE), ("an unaligned length", 1 << 30, PAGE + 1),
                           ("length 0", 1 << 30, 0), ("an overflowing range", (1 << 64) - PAGE, 1 << 40),
                           ("an unaligned range over an existing mapping", 1, 2 * PAGE)):
        send_err(c, "6.7", "the range is checked first: at max_mapped, MAP of %s is ERROR EINVAL, not EDQUOT" % what,
                 MAP, {"domain_id": d2, "flags": 3, "iova": iova, "length": ln}, EINVAL)
    as_user(1000, 1000, [0], _b_user_quota, ctx.B.sock, M)
    must(c, UNMAP, {"domain_id": d2, "iova": 0, "length": PAGE})
    must(c, MAP, {"domain_id": d2, "flags": 3, "iova": 1 << 30, "length": PAGE}, section="12",
         desc="after an UNMAP the freed bytes can be mapped again")
    # max_subscriptions = 2 per session
    for d in (d0, d1, d2):
        must(c, TRACK_START, {"domain_id": d})
    must(c, SUBSCRIBE, {"domain_id": d0})
    must(c, SUBSCRIBE, {"domain_id": d1}, section="12", desc="a 2nd subscription (max_subscriptions = 2) works")
    send_err(c, "12", "a 3rd subscription in one session is ERROR EDQUOT naming the limit", SUBSCRIBE,
             {"domain_id": d2}, EDQUOT, must_contain=(("max_subscriptions", "2"),))
    c2 = connect(ctx.B.sock)
    must(c2, SUBSCRIBE, {"domain_id": d2}, section="12",
         desc="max_subscriptions is per session: another session subscribes to the 3rd domain")
    must(c, UNSUBSCRIBE, {"domain_id": d1})
    must(c, SUBSCRIBE, {"domain_id": d2}, section="12", desc="after UNSUBSCRIBE a subscription slot is free again")
    c2.close()
    must(c, DESTROY_DOMAIN, {"domain_id": d2})
    m = must(c, CREATE_DOMAIN, {"flags": CREATE_TRACKING, "device": "h2"}, section="12",
             desc="DESTROY_DOMAIN frees a max_domains slot")
    if m.type == CREATE_DOMAIN_REPLY:
        must(c, MAP, {"domain_id": m.f["domain_id"], "flags": 3, "iova": 0, "length": PAGE}, section="12",
             desc="DESTROY_DOMAIN released its mapped bytes from max_mapped")
    c.close()


def t_b_resume_expiry(ctx):
    """Section 5.3: resume_grace = 1 (daemon B)."""
    c = connect(ctx.B.sock)
    d0 = ctx.B_d0
    s = connect(ctx.B.sock, FEAT_RESUME)
    tok = s.hello_reply.f["session_token"]
    must(s, SUBSCRIBE, {"domain_id": d0, "flags": SUBSCRIBE_CLEAN})
    s.close()
    time.sleep(0.1)
    s = Conn(ctx.B.sock)
    m = s.hello(FEAT_RESUME, tok)
    R.check("5.3", "resume_grace = 1: reconnecting after 0.1 s resumes", m.type == HELLO_REPLY and
            m.f["session_flags"] == SESSION_RESUMED, "RESUMED", m.f)
    s.close()
    time.sleep(1.6)
    s = Conn(ctx.B.sock)
    m = s.hello(FEAT_RESUME, tok)
    R.check("5.3", "resume_grace = 1: reconnecting after 1.6 s gets STATE_LOST and a new token",
            m.type == HELLO_REPLY and m.f["session_flags"] == SESSION_STATE_LOST and m.f["session_token"] not in (0, tok),
            "STATE_LOST", m.f)
    m = s.req1(SUBSCRIBE, {"domain_id": d0})
    R.check("5.3", "after STATE_LOST the old subscription is gone: SUBSCRIBE again works", m.type == SUBSCRIBE_REPLY,
            "SUBSCRIBE_REPLY", ok_or_err(m))
    s.close()
    c.close()


def t_b_restart(ctx):
    """Section 5.3: dirtyd restarted without keeping its state: STATE_LOST."""
    c = connect(ctx.B.sock)
    doms = list_domains(c)
    d = sorted(doms)[0] if doms else None
    s = connect(ctx.B.sock, FEAT_RESUME)
    tok = s.hello_reply.f["session_token"]
    if d is not None:
        s.req1(SUBSCRIBE, {"domain_id": d})
    c.close()
    s.close()
    rc = ctx.B.stop()
    R.check("1", "daemon B exits 0 on SIGTERM (restart)", rc == 0, 0, rc)
    ctx.B = Daemon(ctx.B.binary, ctx.B.dir, "B2", open(ctx.B.conf).read(), ctx.B.sock)
    R.check("5.3", "daemon B restarts", ctx.B.ready, "ready", ctx.B.logtext()[-300:])
    if not ctx.B.ready:
        return
    s = Conn(ctx.B.sock)
    m = s.hello(FEAT_RESUME, tok)
    R.check("5.3", "after a restart without kept state the old token gets STATE_LOST and a new token",
            m.type == HELLO_REPLY and m.f["session_flags"] == SESSION_STATE_LOST and m.f["session_token"] not in (0, tok),
            "STATE_LOST", m.f)
    R.check("8.6", "a restart without kept state has no domains", list_domains(s) == {}, "{}", "domains")
    s.close()


def t_chunk_forms(ctx):
    """Section 9.3: the encoder's choice, byte for byte, on small cases
    (ties go to RAW: RUNS only when strictly smaller)."""
    r = connect(ctx.A.sock, FEAT_RANGES_RAW)
    n = connect(ctx.A.sock, 0)
    dom = create(r, "u1")
    must(r, MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": 6 * 32768 * PAGE})
    must(r, TRACK_START, {"domain_id": dom})
    must(r, SUBSCRIBE, {"domain_id": dom, "flags": SUBSCRIBE_CLEAN})
    must(n, SUBSCRIBE, {"domain_id": dom, "flags": SUBSCRIBE_CLEAN})
    S = 32768
    cases = [("page 8 (RUNS 2 bytes = RAW 2 bytes: RAW)", [(8, 1)]),
             ("page 16 (RUNS 2 bytes < RAW 3 bytes: RUNS)", [(16, 1)]),
             ("pages 0-7 (RAW 1 byte)", [(0, 8)]),
             ("page 0 (RAW 01 < RUNS 00 01)", [(0, 1)]),
             ("the whole span (RUNS 00 80 80 02)", [(0, S)]),
             ("page 32767 (RUNS ff ff 01 01 < RAW 4096 bytes)", [(S - 1, 1)])]
    writes = []
    for i, (_, runs) in enumerate(cases):
        writes += [(i * S + p, k) for p, k in runs]
    dma_writes(r, dom, writes)
    must(r, SYNC, {"domain_id": dom})
    for conn, raw in ((r, True), (n, False)):
        st = get_ranges(conn, dom, mappings=[(0, 6 * S)])
        if st.error is not None:
            R.check("9.3", "chunk forms (%s)" % ("RAW" if raw else "no RAW"), False, "RANGES", ok_or_err(st.error))
            continue
        got = {ch.first // S: ch for ch in st.chunks}
        for i, (what, runs) in enumerate(cases):
            want = chunk_encode(i * S, S, runs, allow_raw=raw)
            ch = got.get(i)
            have = encode_chunk(ch.first, ch.span, ch.kind, ch.payload, ch.rsv) if ch else b""
            R.check("9.3", "%s, %s: the chunk is exactly %s" % ("RANGES_RAW" if raw else "without RANGES_RAW", what,
                                                               hexdump(want, 24)),
                    have == want, hexdump(want, 24), hexdump(have, 24))
        must(conn, ACK, {"domain_id": dom, "generation": st.gen})
    must(r, DESTROY_DOMAIN, {"domain_id": dom})
    r.close()
    n.close()


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

LONG_NAME = "d" + "x" * 61 + "z"          # 63 bytes: the str64 limit
A_DEVICES = (["sim0", "sim-legacy0", "u0", "u1", "en0", "a", LONG_NAME] +
             ["e%d" % i for i in range(19)] + ["nd%d" % i for i in range(2)])
A_NODIRTY = {"sim-legacy0", "en0", "nd0", "nd1"}
B_DEVICES = ["h0", "h1", "h2", "h3", "hl"]
B_NODIRTY = {"hl"}


class Ctx:
    def __init__(self, args):
        self.args = args
        self.spec = args.spec
        self.ambiguities = []
        self.A = self.B = None
        self.A_devices = A_DEVICES
        self.u1000 = {}

    def amb(self, section, question, observed):
        self.ambiguities.append((section, question, observed))
        R.info("AMBIGUITY §%s: %s -- %s" % (section, question, observed))


def conf_A(tmp):
    devs = ", ".join("%s:%s" % (d, "nodirty" if d in A_NODIRTY else "dirty") for d in A_DEVICES)
    return ("[daemon]\nbackend = sim\nsocket = %s/s.sock\nlog_level = debug\n"
            "socket_mode = 0666\nmax_domains = 1500\nadmin_group = 2000\n"
            "[sim]\ndevices = %s\nbacking_page_size = 4k\n" % (tmp, devs))


def conf_B(tmp):
    devs = ", ".join("%s:%s" % (d, "nodirty" if d in B_NODIRTY else "dirty") for d in B_DEVICES)
    return ("[daemon]\nbackend = sim\nsocket = %s/b/s.sock\nlog_level = debug\n"
            "max_clients = 4\nmax_subscriptions = 2\nmax_domains = 3\nmax_mapped = 64m\n"
            "resume_grace = 1\n"
            "[sim]\ndevices = %s\nbacking_page_size = 2m\n" % (tmp, devs))


TESTS_A = []
TESTS_B = []


# Tests that need another to have run first (--only adds them)
REQUIRES = {"t_dirty_rate_idle": ["t_dirty_rate"], "t_b_quota": ["t_b_huge"],
            "t_b_resume_expiry": ["t_b_huge"], "t_access": [], "t_header": []}


def run_test(ctx, fn):
    t0 = time.monotonic()
    try:
        fn(ctx)
    except Exception as e:
        R.check("-", "%s ran to the end" % fn.__name__, False, "no exception",
                "%s: %s" % (type(e).__name__, e))
        if ctx.args.verbose:
            traceback.print_exc(file=sys.stdout)
    AGG.flush()
    R.info("%s took %.2f s" % (fn.__name__, time.monotonic() - t0))


def selected(tests, pattern):
    """The tests whose name matches the regular expression pattern, with the
    tests they need, in the suite's order."""
    if not pattern:
        return list(tests)
    rx = re.compile(pattern)
    want = {fn.__name__ for fn in tests if rx.search(fn.__name__)}
    for name in list(want):
        want.update(REQUIRES.get(name, []))
    return [fn for fn in tests if fn.__name__ in want]



def run_tests_on(ctx, name, tests):
    """Run @tests against daemon ctx.<name> (a test may replace it); stop at the first that leaves it dead."""
    for fn in tests:
        run_test(ctx, fn)
        daemon = getattr(ctx, name)
        if not daemon.alive():
            R.check("-", "daemon %s still running after %s" % (name, fn.__name__), False, "running",
                    "exited %s" % daemon.returncode)
            break

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dirtyd", help="the daemon binary (build/daemon/dirtyd)")
    ap.add_argument("--harness", help="tests/harness/dirtyd-harness of the build (default: the one in "
                                      "the build tree of --dirtyd)")
    ap.add_argument("--verbose", action="store_true", help="print the daemons' logs and the time each test took")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--spec", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                    "..", "..", "protocol", "PROTOCOL.md")),
                    help="the specification (default: %(default)s)")
    ap.add_argument("--only", default="", metavar="PATTERN",
                    help="run only the tests whose name matches this regular expression (e.g. 'events|order'), "
                         "and the tests they need; the test names are printed by --list")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    args = ap.parse_args()
    if args.list:
        for fn in TESTS_OFFLINE + TESTS_A + TESTS_B + TESTS_LIVE:
            print("%-22s %s" % (fn.__name__, (fn.__doc__ or "").strip().split("\n")[0]))
        return 0
    if not args.dirtyd:
        ap.error("--dirtyd is required")
    global HARNESS
    HARNESS = args.harness and os.path.abspath(args.harness)
    R.verbose = args.verbose
    t_start = time.monotonic()
    ctx = Ctx(args)
    tmp = tempfile.mkdtemp(prefix="dirtyd-conf-")
    os.chmod(tmp, 0o755)
    tests_off = selected(TESTS_OFFLINE, args.only)
    tests_a = selected(TESTS_A, args.only)
    tests_b = selected(TESTS_B, args.only)
    try:
        for fn in tests_off:
            run_test(ctx, fn)
        if tests_a:
            ctx.A = Daemon(os.path.abspath(args.dirtyd), tmp, "A", conf_A(tmp), tmp + "/s.sock")
            R.check("1", "daemon A (4k backing) starts and accepts connections", ctx.A.ready, "ready",
                    ctx.A.logtext()[-500:])
            if ctx.A.ready:
                run_tests_on(ctx, "A", tests_a)
        if tests_b:
            ctx.B = Daemon(os.path.abspath(args.dirtyd), tmp, "B", conf_B(tmp), tmp + "/b/s.sock")
            ctx.B_dir_created_by_daemon = ctx.B.ready
            R.check("1", "dirtyd creates the missing directory of its socket (<dir>/b) and starts", ctx.B.ready,
                    "ready", ctx.B.logtext().strip().splitlines()[-1:])
            if not ctx.B.ready:
                ctx.B.stop()
                os.makedirs(tmp + "/b", exist_ok=True)
                ctx.B = Daemon(os.path.abspath(args.dirtyd), tmp, "B", conf_B(tmp), tmp + "/b/s.sock")
            R.check("1", "daemon B (2m backing, small limits) starts", ctx.B.ready, "ready",
                    ctx.B.logtext()[-500:])
            if ctx.B.ready:
                run_tests_on(ctx, "B", tests_b)
        for fn in selected(TESTS_LIVE, args.only):
            run_test(ctx, fn)
    finally:
        for name, d in (("A", ctx.A), ("B", ctx.B)):
            if d is None:
                continue
            alive = d.alive()
            rc = d.stop()
            if alive:
                R.check("1", "daemon %s exits 0 on SIGTERM" % name, rc == 0, 0, rc)
        AGG.flush()
        if R.errors_seen:
            R.check("2", "every ERROR received (%d) has a text of valid UTF-8 without U+0000 .. U+001F or U+007F, "
                    "at most 1024 bytes" % R.errors_seen, R.errors_bad == 0, 0, "%d bad" % R.errors_bad)
        if not R.violations:
            R.check("3", "every packet received from dirtyd was well-formed (%d packets)" % R.packets_seen, True)
        if args.verbose:
            for d in (ctx.A, ctx.B):
                if d is not None:
                    print("---- log of daemon %s (tail) ----" % d.name)
                    print(d.logtext()[-3000:])
        for sec, q, obs in ctx.ambiguities:
            print("note: ambiguity §%s: %s -- observed: %s" % (sec, q, obs))
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(1 for okv, _ in R.results if okv)
    failed = sum(1 for okv, _ in R.results if not okv)
    if failed:
        print("failures:")
        for okv, line in R.results:
            if not okv:
                print("  " + line)
    print("runtime %.1f s" % (time.monotonic() - t_start))
    print("conformance: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


TESTS_OFFLINE = [t_examples_offline]
TESTS_A = [t_dirty_rate, t_transport, t_header, t_order, t_hello, t_bodies, t_errors, t_access, t_flow,
           t_many_mappings, t_runs_only, t_pending, t_generations, t_destroy, t_events, t_resume, t_resume_at_once, t_many_domains,
           t_chunk_forms, t_dirty_rate_idle]
TESTS_B = [t_b_socket, t_b_clients, t_b_huge, t_b_quota, t_b_resume_expiry, t_b_restart]
TESTS_LIVE = [t_examples_live]

if __name__ == "__main__":
    sys.exit(main())
