#!/usr/bin/env python3
"""Adversarial suite for dirtyd: attacks from a hostile local user.

The attacker is uid 65534 (a member of the socket's group, not root, not
an administrator), speaking the protocol through the outsider's codec of
tests/conformance/conformance.py (written from PROTOCOL.md alone).  Every
attack asserts the documented refusal (errno and text) or bound, and that
nothing else changed, measured from outside the daemon: its resident
memory and descriptors (/proc/PID), and two legitimate subscribers (root,
and uid 1000) that keep writing pages (DMA_WRITE), syncing, fetching and
acknowledging through the attack, each with its own oracle of the pages
it wrote.

Usage (as root):
  adversarial.py --dirtyd build/daemon/dirtyd [--only NAME[,NAME]] [--verbose]
  adversarial.py --dirtyd build/daemon/dirtyd --report   # every attack, a table
  adversarial.py --list

No assertion is about time: the stall test counts answers, the memory
bounds are in bytes.  ADVERSARIAL_SCALE=N multiplies the attacks' cycle
counts (default 1) for longer runs.  The last line in test mode is
`adversarial: N passed, M failed`.
"""

import argparse
import ctypes
import os
import pickle
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
import conformance as C  # noqa: E402  (the outsider's codec and client)

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
PAGE = 4096

ATTACKER = 65534          # nobody: in the socket's group, nothing else
OTHER = 1000              # another ordinary user, also in the group
SOCK_GID = 4242           # the socket's group (socket_group, mode 0660)
SCALE = max(1, int(os.environ.get("ADVERSARIAL_SCALE", "1") or 1))
TIMEOUT = 120.0           # any one answer; generous, never asserted
# What the daemon may grow by for reasons of its own during an attack
# (heap and stack pages touched by new code paths, the legitimate
# subscribers' own rounds, libevent's tables): every memory bound below
# is this plus what the attack makes dirtyd track.
SLACK = 2 * MIB

ETIMEDOUT = 110           # PROTOCOL.md 7 (conformance.py predates it)

SIM_DEVICES = ["legit0", "legit1", "victim0", "root0", "user0",
               "attk0", "attk1", "attk2", "attk3"]


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

class Checks:
    def __init__(self):
        self.items = []         # (ok, text)

    def __call__(self, cond, desc, detail=""):
        self.items.append((bool(cond), desc + ("" if cond or not detail else ": " + str(detail))))
        return bool(cond)

    def extend(self, items):
        self.items.extend(items)


def text_of(m):
    return m.text.decode("utf-8", "replace") if m is not None and m.type == C.ERROR else ""


def err_of(m):
    """(errno, text) of an ERROR, else (None, type name)."""
    if m is None:
        return (None, "nothing")
    if m.type == C.ERROR:
        return (m.errno, text_of(m))
    return (None, m.name)


def show(m):
    return C.ok_or_err(m) if m is not None else "nothing"


# ---------------------------------------------------------------------------
# The daemon, seen from outside
# ---------------------------------------------------------------------------

def proc_sample(pid):
    """VmRSS, RssAnon, RssFile, RssShmem (KiB) and open descriptors."""
    out = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0, "RssShmem": 0, "fds": 0}
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                k, _, v = line.partition(":")
                if k in out:
                    out[k] = int(v.split()[0])
        out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        pass
    return out


def write_config(binary, path, lines):
    """Write the configuration; keys this dirtyd does not know (an older
    build) are dropped, as --check-config names them.  Returns the keys
    dropped."""
    dropped = []
    for _ in range(64):
        with open(path, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        r = subprocess.run([binary, "--check-config", "--config", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode == 0:
            return dropped
        out = r.stdout.decode("utf-8", "replace")
        m = re.search(r"unknown key '([^']+)'", out)
        if not m:
            raise RuntimeError("configuration refused: " + out.strip())
        key = m.group(1)
        dropped.append(key)
        lines = [ln for ln in lines if not re.match(r"\s*%s\s*=" % re.escape(key), ln)]
    raise RuntimeError("configuration: too many unknown keys")


class Dirtyd:
    def __init__(self, binary, tmp, daemon_keys=(), sim_keys=(), guests=(), backing="1g"):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "dirtyd.sock")
        lines = ["[daemon]", "backend = sim", "socket = %s" % self.sock,
                 "socket_mode = 0660", "socket_group = %d" % SOCK_GID,
                 "log_level = info"] + list(daemon_keys)
        lines += ["[sim]", "backing_page_size = %s" % backing,
                  "devices = " + ", ".join("%s:dirty" % d for d in SIM_DEVICES)] + list(sim_keys)
        for name, keys in guests:
            lines += ["[guest %s]" % name] + list(keys)
        conf = os.path.join(tmp, "dirtyd.conf")
        self.dropped = write_config(binary, conf, lines)
        with open(conf) as fh:
            text = fh.read()
        self.d = C.Daemon(binary, tmp, "dirtyd", text, self.sock)
        deadline = time.monotonic() + 60
        while not self.d.ready and self.d.alive() and time.monotonic() < deadline:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(self.sock)
                s.close()
                self.d.ready = True
            except OSError:
                time.sleep(0.05)
        if not self.d.ready:
            raise RuntimeError("dirtyd did not start: " + self.d.logtext()[-2000:])
        # every figure below is read from /proc/PID of dirtyd itself, not of
        # the harness that started it: say so, or measure nothing
        exe = os.path.realpath("/proc/%d/exe" % self.pid)
        if exe != os.path.realpath(binary):
            raise RuntimeError("pid %d is %s, not dirtyd (%s)" % (self.pid, exe, binary))

    @property
    def pid(self):
        """dirtyd's pid (dirtyd-harness's answer), not the harness's."""
        return self.d.pid

    def alive(self):
        return self.d.alive()

    def sample(self):
        return proc_sample(self.pid)

    def stop(self):
        return self.d.stop(30)

    def log(self):
        return self.d.logtext()


# ---------------------------------------------------------------------------
# Actors: forked processes with their own credentials, driven over a pipe
# ---------------------------------------------------------------------------

def _send_obj(sock, obj):
    data = pickle.dumps(obj)
    sock.sendall(struct.pack("<I", len(data)) + data)


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        x = sock.recv(n - len(buf))
        if not x:
            raise EOFError()
        buf += x
    return buf


def _recv_obj(sock):
    (n,) = struct.unpack("<I", _recv_exact(sock, 4))
    return pickle.loads(_recv_exact(sock, n))


class Ctl:
    """The actor's side of its pipe to the test."""

    def __init__(self, sock):
        self.sock = sock
        self.stop = False
        self.marks = []

    def checkpoint(self, name, data=None):
        """Tell the test; wait for its answer (it may act meanwhile)."""
        _send_obj(self.sock, ("checkpoint", name, data))
        while True:
            msg = _recv_obj(self.sock)
            if msg[0] == "go":
                return msg[1]
            self._note(msg)

    def _note(self, msg):
        if msg[0] == "stop":
            self.stop = True
        elif msg[0] == "mark":
            self.marks.append(msg[1])

    def poll(self):
        """Messages that arrived (stop, mark); never blocks."""
        while select.select([self.sock], [], [], 0)[0]:
            self._note(_recv_obj(self.sock))
        return self.stop


def _pdeathsig():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)      # PR_SET_PDEATHSIG
    except Exception:
        pass


class Actor:
    """fn(ctl, *args) in a forked child as (uid, gid, groups) (None: root).
    Started at once; the child's return value comes back pickled."""

    def __init__(self, name, creds, fn, *args):
        self.name = name
        self.result = None
        self.exc = None
        self.done = False
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            parent.close()
            code = 0
            try:
                _pdeathsig()
                if creds is not None:
                    uid, gid, groups = creds
                    os.setgroups(groups)
                    os.setresgid(gid, gid, gid)
                    os.setresuid(uid, uid, uid)
                C.R.echo = False
                ctl = Ctl(child)
                val = fn(ctl, *args)
                _send_obj(child, ("result", val, sorted(k[1] for k in C.R.violations)))
            except BaseException:
                try:
                    _send_obj(child, ("exc", traceback.format_exc()))
                except Exception:
                    code = 1
            os._exit(code)
        child.close()
        self.pid = pid
        self.sock = parent

    def send(self, *msg):
        try:
            _send_obj(self.sock, msg)
        except OSError:
            pass

    def fileno(self):
        return self.sock.fileno()

    def handle(self, on_checkpoint):
        """One message from the child: a checkpoint (answered with what
        on_checkpoint returns) or its result."""
        try:
            msg = _recv_obj(self.sock)
        except (EOFError, OSError):
            self.exc = "%s died without a result" % self.name
            self.finish()
            return
        if msg[0] == "checkpoint":
            val = on_checkpoint(self, msg[1], msg[2])
            self.send("go", val)
        elif msg[0] == "result":
            self.result = msg[1]
            self.violations = msg[2]
            self.finish()
        else:
            self.exc = msg[1]
            self.finish()

    def finish(self):
        if not self.done:
            self.done = True
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.sock.close()

    def kill(self):
        if not self.done:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.finish()


def creds_of(uid, groups=(SOCK_GID,)):
    return None if uid == 0 else (uid, uid, list(groups))


# ---------------------------------------------------------------------------
# Client helpers (on top of conformance.Conn)
# ---------------------------------------------------------------------------

def connect(sock, features=0, token=0):
    return C.connect(sock, features, token, timeout=TIMEOUT)


def req(c, mtype, fields=None, timeout=TIMEOUT):
    """The last packet of the answer (a stream's last, or the ERROR)."""
    return c.request(mtype, fields, timeout=timeout)[-1]


def timed(c, mtype, fields=None):
    t0 = time.monotonic()
    r = c.request(mtype, fields, timeout=TIMEOUT)
    return r, time.monotonic() - t0


def domains(c):
    return C.list_domains(c)


def devices(c):
    return C.list_devices(c)


def make_domain(c, dev, nbytes, iova=0, track=True, flags=C.CREATE_TRACKING | C.CREATE_NO_HUGE_PAGES):
    m = req(c, C.CREATE_DOMAIN, {"flags": flags, "device": dev})
    if m.type != C.CREATE_DOMAIN_REPLY:
        raise RuntimeError("CREATE_DOMAIN %s: %s" % (dev, show(m)))
    dom = m.f["domain_id"]
    if nbytes:
        m = req(c, C.MAP, {"domain_id": dom, "flags": 3, "iova": iova, "length": nbytes})
        if m.type != C.OK:
            raise RuntimeError("MAP: %s" % show(m))
    if track:
        m = req(c, C.TRACK_START, {"domain_id": dom})
        if m.type != C.OK:
            raise RuntimeError("TRACK_START: %s" % show(m))
    return dom


def ranges_pages(msgs):
    """The page set (an int bitmap) of a RANGES stream."""
    pages = 0
    for m in msgs:
        for ch in m.chunks:
            pages |= C.chunk_bits(ch) << ch.first
    return pages


def recv_pkt(s, timeout=TIMEOUT):
    """The next packet on socket @s, decoded; None at its end.  A peer
    that closed with a packet of ours unread makes the first recv(2) fail
    with ECONNRESET, before what it had sent us: read on past it."""
    deadline = time.monotonic() + timeout
    for _ in range(2):
        if not select.select([s], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise C.Timeout()
        try:
            data = s.recv(C.PROTO_MAX_MSG + 4096)
        except ConnectionResetError:
            continue
        return C.decode(data, "D2C") if data else None
    return None


def get_ranges_raw(c, dom, flags=0):
    """GET_RANGES read without decoding the chunks (the attacker does not
    care what they say, only that dirtyd keeps them): (generation,
    total_pages, chunk bytes), or (None, ERROR, 0)."""
    mid = c.new_id()
    c.send(C.encode(C.GET_RANGES, mid, {"domain_id": dom, "flags": flags}))
    nbytes = 0
    deadline = time.monotonic() + TIMEOUT
    while True:
        if not select.select([c.s], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise C.Timeout()
        data = c.s.recv(C.PROTO_MAX_MSG + 4096)
        if not data:
            raise C.Closed()
        t, fl, _, i = C.HDR.unpack_from(data)
        if i != mid:
            continue                # an event
        if t != C.RANGES:
            return (None, C.decode(data, "D2C"), 0)
        gen, _, _, total = struct.unpack_from("<QIIQ", data, 16)
        nbytes += len(data) - 48
        if not fl & C.PROTO_F_MORE:
            return (gen, total, nbytes)


# ---------------------------------------------------------------------------
# The legitimate subscriber: writes, syncs, fetches, acknowledges, checks
# ---------------------------------------------------------------------------

LEGIT_BYTES = 1 * GIB
LEGIT_WRITES = 8            # pages a round


def legit(ctl, sock, dev, seed):
    """A subscriber that keeps working through the attack: each round it
    writes LEGIT_WRITES random pages (DMA_WRITE), SYNCs, fetches the
    generation and acknowledges it; every page it wrote must be in the
    generation.  It measures its longest wait for an answer after the
    test's mark."""
    rng = random.Random(seed)
    c = connect(sock, C.FEAT_RANGES_RAW)
    dom = make_domain(c, dev, LEGIT_BYTES)
    m = req(c, C.SUBSCRIBE, {"domain_id": dom, "interval_ms": 0, "flags": C.SUBSCRIBE_CLEAN})
    if m.type != C.SUBSCRIBE_REPLY:
        raise RuntimeError("SUBSCRIBE: %s" % show(m))
    npages = LEGIT_BYTES // PAGE
    st = {"dom": dom, "rounds": 0, "rounds_after_mark": 0, "written": 0, "lost": 0,
          "max_wait": 0.0, "errors": [], "requests": 0}
    marked = False
    ctl.checkpoint("ready", dom)
    final = False
    while True:
        if ctl.poll() and not final:
            final = True            # one more whole round after the stop
        if ctl.marks and not marked:
            marked = True
            st["max_wait"] = 0.0

        def ask(mtype, fields):
            r, dt = timed(c, mtype, fields)
            st["requests"] += 1
            if marked:
                st["max_wait"] = max(st["max_wait"], dt)
            if r[-1].type == C.ERROR and len(st["errors"]) < 5:
                st["errors"].append("%s: %s" % (C.tname(mtype), show(r[-1])))
            return r

        wrote = rng.sample(range(npages), LEGIT_WRITES)
        for p in wrote:
            ask(C.DMA_WRITE, {"domain_id": dom, "iova": p * PAGE, "length": PAGE})
        ask(C.SYNC, {"domain_id": dom})
        r = ask(C.GET_RANGES, {"domain_id": dom})
        got = ranges_pages(r) if r[-1].type == C.RANGES else 0
        st["written"] += len(wrote)
        st["lost"] += sum(1 for p in wrote if not (got >> p) & 1)
        if r[-1].type == C.RANGES:
            ask(C.ACK, {"domain_id": dom, "generation": r[0].f["generation"]})
        st["rounds"] += 1
        if marked:
            st["rounds_after_mark"] += 1
        if final:
            break
    c.close()
    return st


# ---------------------------------------------------------------------------
# Running an attack
# ---------------------------------------------------------------------------

class Run:
    """One attack against one dirtyd: the legitimate subscribers, the
    attacker, samples of the daemon, and the checks."""

    def __init__(self, args, tmp, name):
        self.args = args
        self.tmp = tmp
        self.name = name
        self.checks = Checks()
        self.samples = []
        self.base = None
        self.after = None
        self.outcome = ""
        self.notes = []
        self.legits = []
        self.helpers = {}
        self.daemon = None
        self.bound = None
        self.bound_why = ""
        self.extra_wait = []        # (who, seconds) of other clients

    # -- the daemon
    def start(self, **kw):
        """dirtyd, and the legitimate subscribers on it; their domains."""
        self.daemon = Dirtyd(self.args.dirtyd, self.tmp, **kw)
        if self.daemon.dropped:
            self.notes.append("keys unknown to this dirtyd, defaults used: " + ", ".join(self.daemon.dropped))
        return self.start_legits()

    def sample(self):
        s = self.daemon.sample()
        s["t"] = time.monotonic()
        self.samples.append(s)
        return s

    # -- actors
    def attacker(self, fn, *args):
        """fn(ctl, socket path, *args) as uid ATTACKER."""
        return Actor("attacker", creds_of(ATTACKER), fn, self.daemon.sock, *args)

    def start_legits(self):
        self.legits = [Actor("legit root", None, legit, self.daemon.sock, "legit0", 1),
                       Actor("legit uid %d" % OTHER, creds_of(OTHER), legit, self.daemon.sock, "legit1", 2)]
        self.legit_dom = {}
        for a in self.legits:
            self.pump([a], lambda actor, name, data: self.legit_dom.__setitem__(actor.name, data),
                      until=lambda: actor_at(a, "ready"))
        return self.legit_dom

    def pump(self, actors, on_checkpoint, until, timeout=600):
        """Serve the actors' messages, sampling the daemon, until until()."""
        deadline = time.monotonic() + timeout
        while not until():
            live = [a for a in actors if not a.done]
            if not live:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("%s: no progress in %d s" % (self.name, timeout))
            r, _, _ = select.select(live, [], [], 0.05)
            for a in r:
                def cb(actor, name, data):
                    actor.last_checkpoint = name
                    return on_checkpoint(actor, name, data)
                a.handle(cb)
            if self.base is not None and self.after is None:
                self.sample()
            if not self.daemon.alive():
                raise RuntimeError("dirtyd exited (status %s)" % self.daemon.d.proc.returncode)

    def attack(self, attacker, on_checkpoint=None, prepared="prepared"):
        """Run the attacker to its end.  Its checkpoint @prepared (or its
        start, if it has none) takes the baseline sample and marks the
        legitimate subscribers."""
        def cb(actor, name, data):
            if name == prepared and self.base is None:
                self.take_base()
            if on_checkpoint:
                return on_checkpoint(actor, name, data)
            return None
        if prepared is None:
            self.take_base()
        self.pump([attacker] + self.helpers_live(), cb, until=lambda: attacker.done)
        # a fresh root session after it: served, and by then dirtyd has
        # read the attacker's closes (the "after" figures)
        ok, detail = root_probe(self.daemon.sock)
        self.checks(ok, "after the attack a new root connection is served", detail)
        self.wait_fds(self.base["fds"] if self.base else 0, timeout=5)
        self.after = self.sample()
        if attacker.exc:
            self.checks(False, "the attacker ran to its end", attacker.exc.strip().splitlines()[-1])
            if self.args.verbose:
                print(attacker.exc)
            return None
        if attacker.violations:
            self.checks(False, "every packet dirtyd sent the attacker is well-formed (PROTOCOL.md 2, 3, 9)",
                        attacker.violations[:3])
        return attacker.result

    def helpers_live(self):
        return [a for a in self.helpers.values() if not a.done]

    def take_base(self):
        # a few rounds of the legitimate subscribers first: their own
        # allocations are made before the baseline
        time.sleep(0.3)
        self.base = self.sample()
        for a in self.legits:
            a.send("mark", True)

    def stop_legits(self):
        for a in self.legits:
            a.send("stop")
        self.pump(self.legits, lambda *x: None, until=lambda: all(a.done for a in self.legits))
        res = []
        for a in self.legits:
            if a.exc:
                self.checks(False, "%s ran to its end" % a.name, a.exc.strip().splitlines()[-1])
                continue
            st = a.result
            res.append((a.name, st))
            self.checks(st["lost"] == 0, "%s: no page lost: every page written (%d, in %d rounds) was "
                        "delivered" % (a.name, st["written"], st["rounds"]), "%d lost" % st["lost"])
            self.checks(not st["errors"], "%s: every request answered without error (%d requests)"
                        % (a.name, st["requests"]), st["errors"])
            self.checks(st["rounds_after_mark"] >= 1, "%s: still served: completed a round after the attack began"
                        % a.name, st["rounds_after_mark"])
        self.legit_results = res
        return res

    # -- figures
    def peak(self, key):
        xs = [s[key] for s in self.samples if self.base is not None and s["t"] >= self.base["t"]]
        return max(xs) if xs else 0

    def check_bound(self):
        if self.bound is None or self.base is None:
            return
        grow = (self.peak("VmRSS") - self.base["VmRSS"]) * KIB
        self.checks(grow <= self.bound, "dirtyd's resident memory grows by at most %s during the attack (%s)"
                    % (mib(self.bound), self.bound_why), "grew by %s (peak VmRSS %d KiB, from %d KiB)"
                    % (mib(grow), self.peak("VmRSS"), self.base["VmRSS"]))

    def wait_fds(self, limit, timeout=30):
        """Until dirtyd holds at most @limit descriptors (it closes what
        it reads EOF on when it gets to it); the last count."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.sample()["fds"]
            if n <= limit or time.monotonic() > deadline:
                return n
            time.sleep(0.05)

    def longest_wait(self):
        waits = [st["max_wait"] for _, st in getattr(self, "legit_results", [])]
        waits += [w for _, w in self.extra_wait]
        return max(waits) if waits else 0.0

    def pages_lost(self):
        return sum(st["lost"] for _, st in getattr(self, "legit_results", []))

    def finish(self):
        for a in self.legits + list(self.helpers.values()):
            a.kill()
        if self.daemon is not None:
            alive = self.daemon.alive()
            rc = self.daemon.stop()
            self.checks(alive, "dirtyd is still running after the attack",
                        "exited %s" % self.daemon.d.proc.returncode)
            if alive:
                self.checks(rc == 0, "dirtyd exits 0 on SIGTERM after the attack", rc)


def actor_at(a, name):
    return getattr(a, "last_checkpoint", None) == name or a.done


def mib(n):
    """A size, for people."""
    if n >= GIB and n % GIB == 0:
        return "%d GiB" % (n // GIB)
    if n >= MIB:
        return "%.1f MiB" % (n / MIB)
    return "%.0f KiB" % (n / KIB)


def probe(ctl, sock, what):
    """root_probe() in an actor."""
    return root_probe(sock, what)


def probe_hello(sock, creds, what=None):
    """probe() as @creds, in a process of its own; its answer."""
    a = Actor("probe", creds, probe, sock, what)
    while not a.done:
        select.select([a], [], [], 1.0)
        a.handle(lambda *x: None)
    if a.exc:
        return (False, a.exc.strip().splitlines()[-1])
    return a.result


def root_probe(sock, what=None):
    """A fresh connection says HELLO and lists domains (then sends @what,
    if given): (served, what answered)."""
    try:
        c = C.Conn(sock, TIMEOUT)
        try:
            c.send(C.encode(C.HELLO, c.new_id(), {"major": 1}))
        except OSError:
            pass                    # refused and closed already: its ERROR waits
        m = recv_pkt(c.s)           # HELLO_REPLY, or a refusal with id 0
    except (C.Timeout, OSError) as e:
        return (False, "connect: %s" % (type(e).__name__,))
    if m is None or m.type != C.HELLO_REPLY:
        c.close()
        return (False, "HELLO answered %s" % show(m))
    m = req(c, C.LIST_DOMAINS)
    ok, detail = m.type == C.LIST_DOMAINS_REPLY, show(m)
    if ok and what:
        m = req(c, *what)
        ok, detail = m.type != C.ERROR, show(m)
    c.close()
    return (ok, detail)


# ---------------------------------------------------------------------------
# 1. Device names that are paths
# ---------------------------------------------------------------------------

IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_OPEN = 0x1, 0x2, 0x4, 0x20
IN_CLOSE_WRITE, IN_CLOSE_NOWRITE = 0x8, 0x10


class Inotify:
    """Who opens, reads or changes the files we watch (libc, by ctypes)."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.wd = {}

    def watch(self, path):
        mask = IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE
        # IN_DONT_FOLLOW: watch a link itself, not what it names
        wd = self.libc.inotify_add_watch(self.fd, path.encode(), mask | 0x02000000)
        if wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch " + path)
        self.wd[wd] = path

    def events(self):
        out = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            off = 0
            while off + 16 <= len(buf):
                wd, mask, _, n = struct.unpack_from("iIII", buf, off)
                name = buf[off + 16:off + 16 + n].rstrip(b"\0").decode("utf-8", "replace")
                out.append("%s%s %#x" % (self.wd.get(wd, "?"), "/" + name if name else "", mask))
                off += 16 + n


def atk_paths(ctl, sock, udir):
    """Every device name that is a path is refused, and identically
    whether the path exists or not; dirtyd opens none of them."""
    ch = Checks()
    # files the attacker owns, watched from here
    fifo = os.path.join(udir, "fifo")
    os.mkfifo(fifo, 0o600)
    reg = os.path.join(udir, "file")
    with open(reg, "w") as fh:
        fh.write("mine\n")
    target = os.path.join(udir, "target")
    with open(target, "w") as fh:
        fh.write("target\n")
    link = os.path.join(udir, "link")
    os.symlink(target, link)
    devlink = os.path.join(udir, "attk1")          # a link named like a device
    os.symlink("/dev/null", devlink)
    paths = ["/etc/shadow", "/etc/passwd", "/dev/null", "/dev/zero", "/", "/proc/self/fd/0", "/proc/1/mem",
             "..", ".", "../", "./", "../../../../../../etc/shadow", fifo, reg, link, target, udir, devlink,
             udir + "/", "/dev/../dev/null", "/dev/vfio/vfio", "/dev/iommu", "/dev/vfio/devices/vfio0",
             "/sys/bus/pci/devices/0000:00:00.0", "/sys/class/vfio-dev/vfio0/dev"]
    paths += [p.rstrip("/") + ".nx" + ("/" if p.endswith("/") else "") for p in paths[:20]]
    paths += ["/proc/self/fd/999", "/nx/", "/dev/vfio/devices/vfio999", "vfio0/"]
    # the same names, sorted by whether they exist (as this uid sees it)
    existing = [p for p in paths if os.path.lexists(p)]
    missing = [p for p in paths if not os.path.lexists(p)]
    # names of real (free) devices dressed as paths: never the device
    dressed = ["/attk1", "./attk1", "attk1/", "../attk1", "attk1/.", "/dev/attk1", "sim/../attk1", "attk1/../attk1"]
    ch(len(existing) >= 15 and len(missing) >= 15, "at least 15 paths that exist and 15 that do not",
       (len(existing), len(missing)))
    ino = Inotify()
    for p in (udir, fifo, reg, target, link, devlink):
        ino.watch(p)

    c = connect(sock)
    devs0 = devices(c)
    own = make_domain(c, "attk0", 0, track=False)
    ctl.checkpoint("prepared")
    kinds = [("CREATE_DOMAIN tracking", lambda n: (C.CREATE_DOMAIN, {"flags": C.CREATE_TRACKING, "device": n})),
             ("CREATE_DOMAIN", lambda n: (C.CREATE_DOMAIN, {"flags": 0, "device": n})),
             ("ATTACH_DEVICE", lambda n: (C.ATTACH_DEVICE, {"domain_id": own, "device": n})),
             ("DETACH_DEVICE", lambda n: (C.DETACH_DEVICE, {"domain_id": own, "device": n}))]
    seen = {}           # kind -> {(errno, normalized text): [names]}
    wrong = {}
    created = []
    for label, mk in kinds:
        per = seen.setdefault(label, {})
        for group, names in (("exists", existing), ("missing", missing), ("dressed", dressed)):
            for n in names:
                mtype, fields = mk(n)
                m = req(c, mtype, fields)
                if m.type == C.CREATE_DOMAIN_REPLY:
                    created.append(m.f["domain_id"])
                e, t = err_of(m)
                norm = (e, t.replace(n, "<NAME>"))
                per.setdefault(norm, []).append((group, n))
                if not (e in (C.ENOENT, C.EINVAL) and n in t):
                    wrong.setdefault(label, []).append("%r: %s" % (n, show(m)))
    outcome = []
    for label, per in seen.items():
        ch(label not in wrong, "%s of %d path names: each refused ENOENT or EINVAL, the text naming it"
           % (label, sum(len(v) for v in per.values())), wrong.get(label, [])[:4])
        ch(len(per) == 1, "%s: one and the same refusal for every path, existing or not (no existence oracle)"
           % label, "; ".join("%s %r for %s" % (C.ename(e) if e else "-", t, [x[1] for x in v][:3])
                              for (e, t), v in per.items()))
        e, t = next(iter(per))
        outcome.append("%s %r" % (C.ename(e) if e else "answered", t))
    ch(not created, "no domain was created from a path", created)
    devs1 = devices(c)
    ch(sorted(devs0) == sorted(devs1), "LIST_DEVICES names the same devices as before", sorted(set(devs1) - set(devs0)))
    a0, a1 = devs0.get("attk1", {}), devs1.get("attk1", {})
    ch(a0.get("flags") == a1.get("flags") == C.DEV_DIRTY_CAPABLE, "attk1, named only in paths, was never bound",
       "flags %s -> %s" % (a0.get("flags"), a1.get("flags")))
    # a read of the FIFO would have blocked dirtyd; nothing was opened
    evs = ino.events()
    ch(not evs, "dirtyd opened, read or changed none of the attacker's files (inotify)", evs[:5])
    c.close()
    n = len(existing) + len(missing) + len(dressed)
    return {"checks": ch.items, "outcome": "%d names x %d requests, all refused: %s; %d file events" % (
        n, len(kinds), "; ".join(sorted(set(outcome))), len(evs))}


def run_paths(run):
    run.start()
    udir = os.path.join(run.tmp, "u")
    os.mkdir(udir, 0o700)
    os.chown(udir, ATTACKER, ATTACKER)
    a = run.attacker(atk_paths, udir)
    run.bound, run.bound_why = SLACK, "it tracks nothing new"
    res = run.attack(a)
    return res


# ---------------------------------------------------------------------------
# 2. Idle connections
# ---------------------------------------------------------------------------

IDLE_CONF = dict(max_clients=20, root_clients=4, per_uid=8, hello_timeout=6)


def open_idle(sock, n):
    """@n connections that never say HELLO, then one more that does: by
    its answer dirtyd has accepted or refused every one before it (it
    accepts in order), so a refusal (one ERROR, then the end) is already
    there to read.  (held sockets, refusals, the last one's answer, every
    refused connection closed after its ERROR)."""
    conns = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(sock)
        conns.append(s)
    last = C.Conn(sock, TIMEOUT)
    try:
        last.send(C.encode(C.HELLO, 1, {"major": 1}))
    except OSError:
        pass                    # refused and closed already: its ERROR waits
    m = recv_pkt(last.s)        # HELLO_REPLY, or a refusal with id 0
    held, first, eof_ok = [], [], True
    for s in conns:
        if select.select([s], [], [], 0)[0]:
            x = recv_pkt(s)
            first.append(x)
            eof_ok &= x is not None and recv_pkt(s) is None
            s.close()
        else:
            held.append(s)
    last.close()
    return held, first, m, eof_ok


def refusals(first):
    return sorted(set("%s %r" % (C.ename(x.errno), text_of(x)) if x is not None and x.type == C.ERROR else show(x)
                      for x in first))


def atk_idle(ctl, sock, n, per_uid, drop_wait):
    ch = Checks()
    ctl.checkpoint("prepared")
    held, first, m, eof_ok = open_idle(sock, n)
    t_held = time.monotonic()
    if per_uid is not None:
        ch(len(held) == per_uid, "uid %d holds exactly max_clients_per_uid (%d) idle connections of %d"
           % (os.getuid(), per_uid, n), len(held))
        ch(len(first) == n - per_uid and all(x is not None and x.type == C.ERROR and x.errno == C.EUSERS and x.id == 0
                                             and "max_clients_per_uid" in text_of(x) for x in first),
           "every connection past it gets one ERROR EUSERS, id 0, naming max_clients_per_uid", refusals(first))
        ch(m is not None and m.type == C.ERROR and m.errno == C.EUSERS, "so does one that says HELLO at once",
           show(m))
        ch(eof_ok, "and is closed after it")
    # the test connects as root and as uid 1000 while these are held
    ctl.checkpoint("holding", len(held))
    still = [s for s in held if not select.select([s], [], [], 0)[0]]
    ch(len(still) == len(held), "the idle connections were all still open while the others connected",
       "%d of %d" % (len(still), len(held)))
    # hello_timeout: each gets ERROR ETIMEDOUT (id 0, naming it), then
    # EOF; also the third of them that keep talking meanwhile (requests
    # before HELLO, HELLOs of another major version: never an accepted
    # HELLO)
    dropped = []
    chatty = held[::3]
    bad = [C.encode(C.LIST_DOMAINS, 7), C.encode(C.HELLO, 8, {"major": 2}), b"\1\2\3"]
    answered = 0
    deadline = time.monotonic() + drop_wait
    next_chat = 0.0
    pending = list(held)
    while pending and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_chat:
            next_chat = now + 0.25
            for i, s in enumerate(x for x in chatty if x in pending):
                try:
                    s.send(bad[(answered + i) % len(bad)])
                except OSError:
                    pass        # closed already: its ETIMEDOUT waits
        r, _, _ = select.select(pending, [], [], max(0.0, min(next_chat, deadline) - time.monotonic()))
        for s in r:
            x = recv_pkt(s)
            if x is not None and x.type == C.ERROR and x.errno != ETIMEDOUT:
                answered += 1   # the answer to some chatter
                continue
            eof = x is None or recv_pkt(s) is None
            dropped.append((x, eof, time.monotonic() - t_held))
            pending.remove(s)
    if per_uid is not None:
        ch(len(dropped) == len(held) and all(x is not None and x.type == C.ERROR and x.errno == ETIMEDOUT
                                             and x.id == 0 and "hello_timeout" in text_of(x) and eof
                                             for x, eof, _ in dropped),
           "every idle connection, and every one of the %d that kept sending requests before HELLO and bad "
           "HELLOs (%d answered), gets ERROR ETIMEDOUT (id 0) naming hello_timeout, then is closed"
           % (len(chatty), answered),
           [(show(x), eof) for x, eof, _ in dropped][:3] + ["%d still open" % len(pending)])
    for s in held:
        s.close()
    # its slots are free again
    ok, detail = root_probe(sock)
    if per_uid is not None:
        ch(ok, "uid %d connects and is served again once they are gone" % os.getuid(), detail)
    return {"checks": ch.items, "held": len(held), "refused": refusals(first), "dropped": len(dropped),
            "drop_after": max([t for _, _, t in dropped] or [0]), "served_after": ok}


def atk_fill(ctl, sock, n):
    """A second hostile uid takes what is left of the connections not kept
    for root."""
    held, first, m, _ = open_idle(sock, n)
    ctl.checkpoint("holding", len(held))
    for s in held:
        s.close()
    return {"held": len(held), "refused": refusals(first + [m])}


def run_idle(run):
    k = IDLE_CONF
    run.start(daemon_keys=["max_clients = %d" % k["max_clients"], "root_clients = %d" % k["root_clients"],
                           "max_clients_per_uid = %d" % k["per_uid"], "hello_timeout = %d" % k["hello_timeout"]])
    old = bool(run.daemon.dropped)
    n = k["max_clients"] + 8
    a = run.attacker(atk_idle, n, None if old else k["per_uid"],
              (k["hello_timeout"] + 60) if not old else k["hello_timeout"] + 4)
    seen = {}

    def filled(actor, name, data):
        # every connection but root's share is taken
        seen["root_full"] = root_probe(run.daemon.sock)
        seen["other_full"] = probe_hello(run.daemon.sock, creds_of(OTHER))

    def cb(actor, name, data):
        if name == "holding":
            seen["root"] = root_probe(run.daemon.sock)
            seen["other"] = probe_hello(run.daemon.sock, creds_of(OTHER))
            f = Actor("second attacker", creds_of(ATTACKER - 1), atk_fill, run.daemon.sock, k["per_uid"])
            run.pump([f], filled, until=lambda: f.done)
            seen["fill"] = f.result or {"held": 0, "refused": [f.exc]}
        return None
    run.bound = k["max_clients"] * 128 * KIB + SLACK
    run.bound_why = "max_clients %d connections, 64 KiB of buffer each, and more" % k["max_clients"]
    res = run.attack(a, cb)
    if res is None:
        return None
    run.checks(seen["root"][0], "root connects and is served while uid %d holds its idle connections"
               % ATTACKER, seen["root"])
    run.checks(seen["other"][0], "uid %d connects and is served meanwhile" % OTHER, seen["other"])
    pool = k["max_clients"] - k["root_clients"]
    fill = seen["fill"]
    if not old:
        run.checks(fill["held"] == pool - 2 - k["per_uid"] and any("root_clients" in r and "EUSERS" in r
                                                                  for r in fill["refused"]),
                   "a second hostile uid (%d) fills the rest of the %d connections not kept for root, then "
                   "gets EUSERS naming root_clients" % (ATTACKER - 1, pool), fill)
        run.checks(not seen["other_full"][0] and "root_clients" in seen["other_full"][1],
                   "then a new connection of uid %d is refused likewise (documented: the pool is full)" % OTHER,
                   seen["other_full"])
    run.checks(seen["root_full"][0], "and root still connects and is served (root_clients %d kept for it)"
               % k["root_clients"], seen["root_full"])
    fds = run.wait_fds(run.base["fds"])
    if not old:
        run.checks(fds <= run.base["fds"], "dirtyd's descriptors are back to what they were (%d)" % run.base["fds"], fds)

    def served(x):
        return "served" if x[0] else "REFUSED (%s)" % x[1]
    res["outcome"] = ("uid %d held %d of %d idle connections (then %s); root %s, uid %d %s; with uid %d holding "
                      "%d more: root %s; idle ones %s" % (
                          ATTACKER, res["held"], n, "; ".join(res["refused"])[:120] or "none", served(seen["root"]),
                          OTHER, served(seen["other"]), ATTACKER - 1, fill["held"], served(seen["root_full"]),
                          "dropped after %.1f s" % res["drop_after"] if res["dropped"] == res["held"]
                          else "%d of %d dropped" % (res["dropped"], res["held"])))
    return res


# ---------------------------------------------------------------------------
# 3. Domains
# ---------------------------------------------------------------------------

DOMAINS_CONF = dict(max_domains=8, bytes=16 * GIB)


def atk_domains(ctl, sock, cap, nbytes):
    ch = Checks()
    c = connect(sock)
    ctl.checkpoint("prepared")
    ids, refusal = [], None
    for i in range(cap):
        m = req(c, C.CREATE_DOMAIN, {"flags": C.CREATE_TRACKING, "device": "attk0"})
        if m.type != C.CREATE_DOMAIN_REPLY:
            refusal = m
            break
        d = m.f["domain_id"]
        ids.append(d)
        req(c, C.MAP, {"domain_id": d, "flags": 3, "iova": 0, "length": nbytes})
        req(c, C.TRACK_START, {"domain_id": d})
        m = req(c, C.DETACH_DEVICE, {"domain_id": d, "device": "attk0"})
        if m.type != C.OK:
            refusal = m
            break
    ctl.checkpoint("flooded", ids)
    mine = [d for d, e in domains(c).items() if e["owner_uid"] == os.getuid()]
    c.close()
    return {"checks": ch.items, "ids": ids, "refusal": (err_of(refusal) if refusal else None), "mine": mine}


def run_domains(run):
    k = DOMAINS_CONF
    run.start(daemon_keys=["max_domains = %d" % k["max_domains"]])
    cap = 64 * SCALE
    a = run.attacker(atk_domains, cap, k["bytes"])
    seen = {}

    def cb(actor, name, data):
        if name == "flooded":
            seen["root"] = root_probe(run.daemon.sock, (C.CREATE_DOMAIN, {"flags": C.CREATE_TRACKING,
                                                                          "device": "root0"}))
            seen["other"] = probe_hello(run.daemon.sock, creds_of(OTHER),
                                        (C.CREATE_DOMAIN, {"flags": C.CREATE_TRACKING, "device": "user0"}))
        return None
    per = k["bytes"] // (PAGE * 8)
    run.bound = k["max_domains"] * (4 * per + 256 * KIB) + SLACK
    run.bound_why = "max_domains %d domains of %s: four bitmaps of %s each, and more" % (
        k["max_domains"], mib(k["bytes"]), mib(per))
    res = run.attack(a, cb)
    if res is None:
        return None
    e = res["refusal"]
    run.checks(len(res["ids"]) == k["max_domains"] - 0, "uid %d creates max_domains (%d) domains, no more"
               % (ATTACKER, k["max_domains"]), len(res["ids"]))
    run.checks(e is not None and e[0] == C.EDQUOT and "max_domains" in e[1],
               "the next CREATE_DOMAIN is ERROR EDQUOT naming max_domains", e)
    run.checks(sorted(res["mine"]) == sorted(res["ids"]), "LIST_DOMAINS shows the attacker exactly its domains",
               (res["mine"], res["ids"]))
    run.checks(seen["root"][0], "root still creates a domain", seen["root"])
    run.checks(seen["other"][0], "uid %d still creates a domain" % OTHER, seen["other"])
    res["outcome"] = "%d domains created of %d tried (%s); root %s; uid %d %s" % (
        len(res["ids"]), cap, "then %s %r" % (C.ename(e[0]) if e[0] else e[1], e[1]) if e else "never refused",
        "creates" if seen["root"][0] else "REFUSED (%s)" % seen["root"][1], OTHER,
        "creates" if seen["other"][0] else "REFUSED (%s)" % seen["other"][1])
    return res


# ---------------------------------------------------------------------------
# 4. Parked sessions
# ---------------------------------------------------------------------------

PARKED_CONF = dict(max_parked=4, small=4 * GIB, big=64 * GIB, resume_grace=120)


def _park_cycles(sock, dom, n):
    tokens = []
    for _ in range(n):
        x = connect(sock, C.FEAT_RESUME)
        tokens.append(x.hello_reply.f["session_token"])
        m = req(x, C.SUBSCRIBE, {"domain_id": dom, "interval_ms": 0, "flags": 0})
        if m.type != C.SUBSCRIBE_REPLY:
            x.close()
            return tokens, m
        x.close()
    return tokens, None


def _kept(c, dom, most, wait):
    """LIST_DOMAINS' subscribers of @dom (kept sessions count, 8.6), once
    it is at most @most or @wait seconds have passed (dirtyd reads the
    closes when it gets to them)."""
    deadline = time.monotonic() + wait
    while True:
        n = domains(c).get(dom, {}).get("subscribers")
        if n is None or n <= most or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def _resume(sock, token):
    x = connect(sock, C.FEAT_RESUME, token)
    f = x.hello_reply.f["session_flags"] if x.hello_reply else None
    x.close()
    return f


def atk_parked(ctl, sock, cycles, small, big, max_parked, max_parked_bytes, wait):
    ch = Checks()
    c = connect(sock)
    d1 = make_domain(c, "attk0", small, track=False)
    d2 = make_domain(c, "attk1", big, track=False, flags=C.CREATE_TRACKING)
    ctl.checkpoint("prepared")
    out = {}
    # max_parked: many small sessions
    t1, err = _park_cycles(sock, d1, cycles)
    ch(err is None, "every SUBSCRIBE of the flood is answered", show(err))
    k1 = _kept(c, d1, max_parked if max_parked else 0, wait)
    out["kept_small"] = k1
    bm_big = big // PAGE // 8
    # max_parked_bytes: sessions each holding at least big's bitmap
    t2, err = _park_cycles(sock, d2, cycles)
    ch(err is None, "every SUBSCRIBE of the second flood is answered", show(err))
    most = max_parked_bytes // bm_big if max_parked_bytes else 0
    k2 = _kept(c, d2, most, wait)
    out["kept_big"] = k2
    out["flags"] = {"small oldest": _resume(sock, t1[0]), "big oldest": _resume(sock, t2[0]),
                    "big newest": _resume(sock, t2[-1])}
    c.close()
    out["checks"] = ch.items
    out["cycles"] = cycles
    return out


def run_parked(run):
    k = PARKED_CONF
    bm_big = k["big"] // PAGE // 8
    max_parked_bytes = 2 * bm_big + bm_big // 2        # room for two of the big sessions, at most
    run.start(daemon_keys=["max_parked = %d" % k["max_parked"], "max_parked_bytes = %d" % max_parked_bytes,
                           "resume_grace = %d" % k["resume_grace"]])
    old = "max_parked" in run.daemon.dropped
    cycles = 48 * SCALE
    a = run.attacker(atk_parked, cycles, k["small"], k["big"],
              None if old else k["max_parked"], None if old else max_parked_bytes, 10 if old else 60)
    run.bound = max_parked_bytes + 2 * bm_big + SLACK
    run.bound_why = "max_parked_bytes %s, and the session being made (pending and flight bitmaps of %s)" % (
        mib(max_parked_bytes), mib(bm_big))
    res = run.attack(a)
    if res is None:
        return None
    run.checks(res["kept_small"] is not None and res["kept_small"] <= k["max_parked"],
               "%d closed sessions on a %s domain: at most max_parked (%d) are kept (LIST_DOMAINS subscribers)"
               % (cycles, mib(k["small"]), k["max_parked"]), res["kept_small"])
    most = max_parked_bytes // bm_big
    run.checks(res["kept_big"] is not None and res["kept_big"] <= most,
               "%d closed sessions each holding at least a %s bitmap: at most max_parked_bytes (%s) / %s = %d "
               "are kept" % (cycles, mib(bm_big), mib(max_parked_bytes), mib(bm_big), most), res["kept_big"])
    fl = res["flags"]
    run.checks(fl["small oldest"] == C.SESSION_STATE_LOST and fl["big oldest"] == C.SESSION_STATE_LOST,
               "the oldest tokens were dropped: HELLO with them gets STATE_LOST", fl)
    run.checks(fl["big newest"] == C.SESSION_RESUMED, "the newest is kept: HELLO with it resumes", fl)
    res["outcome"] = "%d + %d sessions parked; kept %s (small) and %s (%s each); oldest token %s" % (
        cycles, cycles, res["kept_small"], res["kept_big"], mib(bm_big),
        "STATE_LOST" if fl["big oldest"] == C.SESSION_STATE_LOST else "RESUMED" if fl["big oldest"] == 1
        else fl["big oldest"])
    return res


# ---------------------------------------------------------------------------
# 5. Generations never acknowledged
# ---------------------------------------------------------------------------

INFLIGHT_CONF = dict(max_inflight=4, size=4 * GIB, rate=1000000)


def atk_inflight(ctl, sock, cycles, pause):
    ch = Checks()
    c = connect(sock, C.FEAT_RANGES_RAW)
    mine = [d for d, e in domains(c).items() if e["owner_uid"] == os.getuid()]
    dom = mine[0]
    m = req(c, C.SUBSCRIBE, {"domain_id": dom, "interval_ms": 0, "flags": C.SUBSCRIBE_CLEAN})
    ch(m.type == C.SUBSCRIBE_REPLY, "the attacker subscribes to its guest's domain", show(m))
    ctl.checkpoint("prepared")
    gens, sizes, pages = [], [], []
    for _ in range(cycles):
        req(c, C.SYNC, {"domain_id": dom})
        gen, total, nbytes = get_ranges_raw(c, dom)
        if gen is None:
            ch(False, "GET_RANGES answered", show(total))
            break
        gens.append(gen)
        pages.append(total)
        sizes.append(nbytes)
        time.sleep(pause)       # the guest writes meanwhile
    e = (C.stats(c, dom) or {}).get(dom, {})
    acks = {"oldest": err_of(req(c, C.ACK, {"domain_id": dom, "generation": gens[0]})),
            "newest": err_of(req(c, C.ACK, {"domain_id": dom, "generation": gens[-1]}))}
    c.close()
    return {"checks": ch.items, "gens": len(gens), "bytes": sum(sizes), "pages": sum(pages),
            "largest": max(sizes or [0]), "acks": acks, "pending": e.get("pending_pages"), "dom": dom}


def run_inflight(run):
    k = INFLIGHT_CONF
    run.start(daemon_keys=["max_inflight = %d" % k["max_inflight"]],
              guests=[("attacker", ["device = attk2", "size = %d" % k["size"], "owner = %d" % ATTACKER,
                                    "huge_pages = no", "dma = uniform", "dma_rate = %d" % k["rate"]])])
    old = "max_inflight" in run.daemon.dropped
    cycles = 100 * SCALE
    a = run.attacker(atk_inflight, cycles, 0.02)
    bm = k["size"] // PAGE // 8
    spans = k["size"] // PAGE // 32768
    gen = bm + 16 * spans
    run.bound = bm + k["max_inflight"] * 2 * gen + SLACK
    run.bound_why = "a %s bitmap and max_inflight %d generations of at most %s, twice over for the buffers' growth" % (
        mib(bm), k["max_inflight"], mib(gen))
    res = run.attack(a)
    if res is None:
        return None
    ak = res["acks"]
    run.checks(ak["oldest"][0] == C.ENOENT, "after %d generations never acknowledged, the oldest is no longer in "
               "flight: ACK of it is ERROR ENOENT" % res["gens"], ak["oldest"])
    run.checks(ak["oldest"][0] != C.ENOENT or "flight" in ak["oldest"][1] or "generation" in ak["oldest"][1],
               "and its text says why", ak["oldest"])
    run.checks(ak["newest"][0] is None, "the newest is in flight: ACK of it is OK", ak["newest"])
    res["outcome"] = "%d generations never acknowledged (%s of chunks sent, largest %s); ACK of the oldest: %s" % (
        res["gens"], mib(res["bytes"]), "%.0f KiB" % (res["largest"] / KIB),
        "%s %r" % (C.ename(ak["oldest"][0]), ak["oldest"][1]) if ak["oldest"][0] else "OK (still held)")
    return res


# ---------------------------------------------------------------------------
# 6. Mapped bytes, MAP/UNMAP churn under a subscription
# ---------------------------------------------------------------------------

MAPPED_CONF = dict(max_mapped=64 * GIB, chunk=16 * GIB)


def atk_mapped(ctl, sock, cap, chunk):
    ch = Checks()
    c = connect(sock)
    dom = make_domain(c, "attk0", 0, track=False, flags=C.CREATE_TRACKING)
    # not CLEAN: every page mapped from now on is pending, so every range
    # it unmaps stays held
    m = req(c, C.SUBSCRIBE, {"domain_id": dom, "interval_ms": 0, "flags": 0})
    ch(m.type == C.SUBSCRIBE_REPLY, "the attacker subscribes to its domain", show(m))
    ctl.checkpoint("prepared")
    done, refusal, slowest = 0, None, 0.0
    for i in range(cap):
        r, dt = timed(c, C.MAP, {"domain_id": dom, "flags": 3, "iova": i * chunk, "length": chunk})
        slowest = max(slowest, dt)
        if r[-1].type != C.OK:
            refusal = err_of(r[-1])
            break
        r, dt = timed(c, C.UNMAP, {"domain_id": dom, "iova": i * chunk, "length": chunk})
        slowest = max(slowest, dt)
        if r[-1].type != C.OK:
            refusal = ("UNMAP",) + err_of(r[-1])
            break
        done += 1
    e = (C.stats(c, dom) or {}).get(dom, {})
    ctl.checkpoint("churned")
    c.close()
    return {"checks": ch.items, "done": done, "refusal": refusal, "mapped": e.get("mapped_bytes"), "slowest": slowest,
            "pending": e.get("pending_pages")}


def root_maps(sock, nbytes):
    """Root makes a domain and maps @nbytes into it: (done, what happened)."""
    c = connect(sock)
    try:
        d = make_domain(c, "root0", nbytes, track=False, flags=C.CREATE_TRACKING)
        return (True, "domain %d, %s mapped" % (d, mib(nbytes)))
    except RuntimeError as e:
        return (False, str(e))
    finally:
        c.close()


def run_mapped(run, max_mapped=MAPPED_CONF["max_mapped"], chunk=MAPPED_CONF["chunk"], cycles=48 * SCALE,
               configure=True):
    run.start(daemon_keys=["max_mapped = %d" % max_mapped] if configure else [])
    a = run.attacker(atk_mapped, cycles, chunk)
    seen = {}

    def cb(actor, name, data):
        if name == "churned":
            seen["root"] = root_maps(run.daemon.sock, chunk)
    bm = max_mapped // PAGE // 8
    run.bound = 4 * bm + SLACK
    run.bound_why = "max_mapped %s: four bitmaps of %s" % (mib(max_mapped), mib(bm))
    res = run.attack(a, cb)
    if res is None:
        return None
    want = min(cycles, max_mapped // chunk)
    e = res["refusal"]
    run.checks(res["done"] == want, "%s MAP+UNMAP cycles fit in max_mapped %s, as the unmapped ranges stay held"
               % (want, mib(max_mapped)), res["done"])
    if cycles > want:
        run.checks(e is not None and e[0] == C.EDQUOT and "max_mapped" in e[1],
                   "the next MAP is ERROR EDQUOT naming max_mapped", e)
    run.checks(res["pending"] == res["done"] * chunk // PAGE,
               "the unmapped ranges' pages are all still pending for the subscription", res["pending"])
    run.checks(seen.get("root", (False,))[0], "root still maps %s" % mib(chunk), seen.get("root"))
    res["outcome"] = "%d x %s mapped and unmapped, all held (%d pages pending; the slowest MAP or UNMAP took %.0f ms)" \
                     "; %s" % (res["done"], mib(chunk), res["pending"] or 0, res["slowest"] * 1000,
                               "then MAP: %s %r" % (C.ename(e[0]) if isinstance(e[0], int) else e[0], e[1]) if e
                               else "never refused")
    return res


def run_mapped_default(run):
    """The same within the default max_mapped (4 TiB), to 1 TiB held."""
    return run_mapped(run, max_mapped=4 << 40, chunk=32 * GIB, cycles=32, configure=False)


# ---------------------------------------------------------------------------
# 7. Another uid's domain ids
# ---------------------------------------------------------------------------

def foreign_requests(dom, gen):
    return [
        (C.ATTACH_DEVICE, {"domain_id": dom, "device": "attk1"}),
        (C.DETACH_DEVICE, {"domain_id": dom, "device": "victim0"}),
        (C.DETACH_DEVICE, {"domain_id": dom, "device": "legit0"}),
        (C.DETACH_DEVICE, {"domain_id": dom, "device": "legit1"}),
        (C.MAP, {"domain_id": dom, "flags": 3, "iova": 8 * GIB, "length": GIB}),
        (C.MAP, {"domain_id": dom, "flags": 3, "iova": 0, "length": GIB}),
        (C.UNMAP, {"domain_id": dom, "iova": 0, "length": GIB}),
        (C.DMA_WRITE, {"domain_id": dom, "iova": 0, "length": 64 * PAGE}),
        (C.TRACK_STOP, {"domain_id": dom}),
        (C.TRACK_START, {"domain_id": dom}),
        (C.SUBSCRIBE, {"domain_id": dom, "interval_ms": 1, "flags": 0}),
        (C.SUBSCRIBE, {"domain_id": dom, "interval_ms": 0, "flags": C.SUBSCRIBE_CLEAN}),
        (C.UNSUBSCRIBE, {"domain_id": dom}),
        (C.SYNC, {"domain_id": dom}),
        (C.GET_RANGES, {"domain_id": dom}),
        (C.GET_RANGES, {"domain_id": dom, "flags": C.RANGES_RESEND}),
        (C.ACK, {"domain_id": dom, "generation": gen}),
        (C.ACK, {"domain_id": dom, "generation": gen + 1}),
        (C.STATS, {"domain_id": dom}),
        (C.GET_FDS, {"domain_id": dom}),
        (C.DESTROY_DOMAIN, {"domain_id": dom}),
    ]


def atk_foreign(ctl, sock, targets, scan):
    ch = Checks()
    c = connect(sock, C.FEAT_RANGES_RAW | C.FEAT_FD_PASSING | C.FEAT_RESUME)
    own = make_domain(c, "attk0", GIB)
    ctl.checkpoint("prepared")
    top = max(targets + [own])
    nx = [top + 1, top + 1000, 0x7fffffff, 0xffffffff]
    norm = {}       # request label -> {(errno, text with the id as <N>): [ids]}
    bad = []
    for group, ids in (("foreign", targets), ("nonexistent", nx)):
        for d in ids:
            for gen in (1, 2):
                for mtype, fields in foreign_requests(d, gen):
                    r = c.request(mtype, fields, timeout=TIMEOUT)
                    m = r[-1]
                    e, t = err_of(m)
                    label = "%s %s" % (C.tname(mtype), ",".join("%s=%s" % (k, v) for k, v in sorted(fields.items())
                                                                 if k != "domain_id"))
                    norm.setdefault(label, {}).setdefault((e, t.replace(str(d), "<N>")), []).append((group, d))
                    if len(r) != 1 or e != C.ENOENT or ("no domain %d" % d) not in t:
                        bad.append("%s on %s domain %d: %s" % (label, group, d, show(m)))
    ch(not bad, "every request naming another uid's domain, or none, is one ERROR ENOENT 'no domain N' "
       "(%d requests)" % sum(len(v) for x in norm.values() for v in x.values()), bad[:4])
    split = {k: v for k, v in norm.items() if len(v) != 1}
    ch(not split, "the answer is the same, to the byte but for the id, for another uid's domain and for none",
       ["%s: %s" % (k, list(v)) for k, v in split.items()][:3])
    # scanning: every id but its own
    scanbad = []
    for d in range(1, scan + 1):
        if d == own:
            continue
        for mtype, fields in ((C.SYNC, {"domain_id": d}), (C.UNSUBSCRIBE, {"domain_id": d}),
                              (C.DESTROY_DOMAIN, {"domain_id": d})):
            m = req(c, mtype, fields)
            if m.type != C.ERROR or m.errno != C.ENOENT or text_of(m) != "no domain %d" % d:
                scanbad.append("%s %d: %s" % (C.tname(mtype), d, show(m)))
    ch(not scanbad, "a scan of ids 1..%d (SYNC, UNSUBSCRIBE, DESTROY_DOMAIN) finds only 'no domain N'" % scan,
       scanbad[:4])
    # what lists show
    doms = domains(c)
    ch(sorted(doms) == [own], "LIST_DOMAINS shows the attacker only its own domain", sorted(doms))
    st = C.stats(c, 0) or {}
    ch(sorted(st) == [own], "STATS(0) covers only its own domain", sorted(st))
    devs = devices(c)
    leak = ["%s in %d (dev %d)" % (n, e["domain_id"], e["dev_id"]) for n, e in devs.items()
            if n != "attk0" and (e["domain_id"] or e["dev_id"])]
    ch(not leak, "LIST_DEVICES shows domain_id and dev_id 0 for devices in others' domains", leak)
    # tokens: none to steal
    rng = random.SystemRandom()
    flags = set()
    for _ in range(64 * SCALE):
        x = connect(sock, C.FEAT_RESUME, rng.getrandbits(64) | 1)
        flags.add(x.hello_reply.f["session_flags"] if x.hello_reply else None)
        x.close()
    ch(flags == {C.SESSION_STATE_LOST}, "guessed resume tokens all get STATE_LOST", flags)
    c.close()
    return {"checks": ch.items, "requests": sum(len(v) for x in norm.values() for v in x.values()),
            "bad": len(bad), "split": len(split), "scanbad": len(scanbad)}


def victim_state(c, dom):
    e = dict(domains(c).get(dom, {}))
    s = (C.stats(c, dom) or {}).get(dom, {})
    d = {n: (v["flags"], v["domain_id"], v["dev_id"]) for n, v in devices(c).items() if n == "victim0"}
    return {"domain": e, "pending": s.get("pending_pages"), "sent": s.get("pages_sent"), "device": d}


def run_foreign(run):
    legit_dom = run.start()
    vc = connect(run.daemon.sock)
    victim = make_domain(vc, "victim0", GIB)
    m = req(vc, C.SUBSCRIBE, {"domain_id": victim, "interval_ms": 0, "flags": 0})
    run.checks(m.type == C.SUBSCRIBE_REPLY, "root subscribes to its victim domain", show(m))
    before = victim_state(vc, victim)
    targets = [victim] + sorted(legit_dom.values())
    a = run.attacker(atk_foreign, targets, 64)
    run.bound, run.bound_why = SLACK + 2 * MIB, "its own 1 GiB domain's page tables and bitmaps"
    res = run.attack(a)
    after = victim_state(vc, victim)
    vc.close()
    if res is None:
        return None
    run.checks(before == after, "root's victim domain (%d) is exactly as it was: its entry, its device, the "
               "pages pending for root's subscription" % victim, (before, after))
    res["outcome"] = "%d requests on %d foreign and 4 absent ids, ids 1..64 scanned: %s; victim %s" % (
        res["requests"], len(targets), "all ENOENT 'no domain N', indistinguishable" if not (
            res["bad"] or res["split"] or res["scanbad"]) else "%d wrong, %d distinguishable, %d in the scan" % (
            res["bad"], res["split"], res["scanbad"]), "intact" if before == after else "CHANGED")
    return res


# ---------------------------------------------------------------------------
# 8. Malformed and oversized frames
# ---------------------------------------------------------------------------

def _answer(c, mid=None):
    """The next final answer (a stream's last packet), whatever its id."""
    while True:
        m = c.next(TIMEOUT)
        if m.type in C.STREAM_TYPES and m.more:
            continue
        return m


def atk_malformed(ctl, sock, fuzz_n, fd_packets):
    ch = Checks()
    ctl.checkpoint("prepared")
    c = C.Conn(sock, TIMEOUT)
    H = C.HDR.pack
    cases = []          # (label, data, expected errno, expected id)
    cases.append(("an empty packet", b"", C.EBADMSG, 0))
    for n in (1, 8, 15):
        cases.append(("%d bytes" % n, b"\x03" * n, C.EBADMSG, 0))
    cases.append(("a request before HELLO", H(C.LIST_DOMAINS, 0, 16, 7), C.EPROTO, 7))
    cases.append(("length 100 on a 16-byte packet", H(C.LIST_DOMAINS, 0, 100, 8), C.EMSGSIZE, 8))
    cases.append(("length 70000 on a 16-byte packet", H(C.LIST_DOMAINS, 0, 70000, 9), C.EMSGSIZE, 9))
    cases.append(("a 65537-byte packet", H(C.LIST_DOMAINS, 0, 65537, 10) + b"\0" * 65521, C.EMSGSIZE, 10))
    cases.append(("a 131072-byte packet", H(C.LIST_DOMAINS, 0, 131072, 11) + b"\0" * (131072 - 16), C.EMSGSIZE, 11))
    cases.append(("type 0x7777", H(0x7777, 0, 16, 12), C.EPROTO, 12))
    cases.append(("a reply type", H(C.HELLO_REPLY, 0, 16, 13), C.EPROTO, 13))
    cases.append(("an event type", H(C.EV_ROUND, 0, 16, 14), C.EPROTO, 14))
    cases.append(("HELLO major 2", C.encode(C.HELLO, 15, {"major": 2}), C.EPROTONOSUPPORT, 15))
    got = []
    for label, data, want, wid in cases:
        try:
            c.send(data)
        except OSError as e:
            got.append((label, "send: %s" % e))
            continue
        m = _answer(c)
        if not (m.type == C.ERROR and m.errno == want and m.id == wid and text_of(m)):
            got.append((label, "%s id %d" % (show(m), m.id)))
    ch(not got, "each malformed packet is one ERROR with the documented errno and id, and a text (%d cases)"
       % len(cases), got[:4])
    h = c.hello()
    ch(h.type == C.HELLO_REPLY, "after all that, HELLO is answered", show(h))
    more = [("a second HELLO", C.encode(C.HELLO, 20, {"major": 1}), C.EPROTO, 20),
            ("request id 0", H(C.LIST_DOMAINS, 0, 16, 0), C.EBADMSG, 0),
            ("header flag 0x8000", H(C.LIST_DOMAINS, 0x8000, 16, 21), C.EBADMSG, 21),
            ("PROTO_F_MORE on a request", H(C.LIST_DOMAINS, 1, 16, 22), C.EBADMSG, 22),
            ("a name without a NUL", C.encode(C.CREATE_DOMAIN, 23, body=b"\1\0\0\0\0\0\0\0" + b"A" * 64),
             C.EBADMSG, 23),
            ("a body a byte short", H(C.SYNC, 0, 23, 24) + b"\1" * 7, C.EBADMSG, 24)]
    got = []
    for label, data, want, wid in more:
        c.send(data)
        m = _answer(c)
        if not (m.type == C.ERROR and m.errno == want and m.id == wid and text_of(m)):
            got.append((label, "%s id %d" % (show(m), m.id)))
    ch(not got, "and after HELLO too (%d cases)" % len(more), got)
    # random frames: every one answered exactly once
    rng = random.Random(8)
    ids = {}
    errnos = {}
    sent = 0
    for i in range(fuzz_n):
        mid = 1000 + i
        t = rng.choice(C.REQUEST_TYPES[1:] + [0x0000, 0x0015, 0x7fff, 0xffff, 0x8003])
        body = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 8, 16, 24, 72, rng.randrange(0, 300)])))
        if t == C.DESTROY_DOMAIN or t == C.CREATE_DOMAIN:
            body = body[:4]         # never a valid one: nothing is made or destroyed
        c.send(H(t, rng.choice([0, 0, 0, 1, 2]), 16 + len(body), mid) + body)
        sent += 1
        m = _answer(c)
        ids[m.id] = ids.get(m.id, 0) + 1
        if m.type == C.ERROR:
            errnos[m.errno] = errnos.get(m.errno, 0) + 1
    ch(sorted(ids) == list(range(1000, 1000 + fuzz_n)) and set(ids.values()) == {1},
       "%d random frames: each answered once, by its id" % fuzz_n, "%d ids" % len(ids))
    allowed = {C.EBADMSG, C.EMSGSIZE, C.EPROTO, C.ENOENT, C.EINVAL, C.EOPNOTSUPP}
    ch(set(errnos) <= allowed, "their errors are of the documented kinds %s" % sorted(C.ename(e) for e in allowed),
       {C.ename(k): v for k, v in errnos.items()})
    # descriptors sent to dirtyd are closed by it
    devnull = os.open("/dev/null", os.O_RDONLY)
    fds = [os.dup(devnull) for _ in range(16)]
    for i in range(fd_packets):
        c.send(C.encode(C.LIST_DOMAINS, 5000 + i), fds=fds)
        m = _answer(c)
        if m.type != C.LIST_DOMAINS_REPLY:
            ch(False, "a request carrying descriptors is answered", show(m))
            break
    for fd in fds + [devnull]:
        os.close(fd)
    # stuff the socket: requests without reading an answer
    c.s.setblocking(False)
    stuffed = 0
    while stuffed < 200000:
        try:
            c.s.send(C.encode(C.LIST_DEVICES, 100000 + stuffed))
        except BlockingIOError:
            break
        stuffed += 1
    c.s.setblocking(True)
    ctl.checkpoint("stuffed", stuffed)
    n = 0
    while n < stuffed:
        m = _answer(c)
        n += 1
    ch(n == stuffed, "the %d requests sent without reading are answered once it reads" % stuffed, n)
    c.close()
    return {"checks": ch.items, "fuzz": fuzz_n, "stuffed": stuffed, "fdpackets": fd_packets,
            "handmade": len(cases) + len(more),
            "errnos": {C.ename(k): v for k, v in errnos.items()}}


def run_malformed(run):
    run.start()
    a = run.attacker(atk_malformed, 3000 * SCALE, 200)
    seen = {}

    def cb(actor, name, data):
        if name == "stuffed":
            seen["root"] = root_probe(run.daemon.sock)
            seen["fds"] = run.sample()["fds"]
        return None
    run.bound, run.bound_why = SLACK, "it tracks nothing new"
    res = run.attack(a, cb)
    if res is None:
        return None
    run.checks(seen["root"][0], "root is served while the attacker's socket is stuffed (%d requests unread)"
               % res["stuffed"], seen["root"])
    fds = run.wait_fds(run.base["fds"])
    run.checks(fds <= run.base["fds"], "dirtyd closed the %d descriptors sent to it and the attacker's "
               "connection: back to %d" % (16 * res["fdpackets"], run.base["fds"]), fds)
    res["outcome"] = "%d hand-made + %d random frames + %d x 16 descriptors + %d unread requests: all answered " \
                     "as documented; root %s" % (res["handmade"], res["fuzz"], res["fdpackets"], res["stuffed"],
                                                 "served" if seen["root"][0] else "NOT served")
    return res


# ---------------------------------------------------------------------------
# 9. A stall: one huge MAP against another user's simple requests
# ---------------------------------------------------------------------------

STALL_MAP = 256 * GIB
STALL_MIN = 20


def pinger(ctl, sock, dev):
    """uid B: LIST_DOMAINS and SYNC on its own domain, over and over; the
    time each answer arrived."""
    c = connect(sock)
    dom = make_domain(c, dev, GIB)
    req(c, C.SUBSCRIBE, {"domain_id": dom, "interval_ms": 0, "flags": C.SUBSCRIBE_CLEAN})
    times = []
    worst = 0.0
    i = 0
    announced = False
    while not ctl.poll():
        t0 = time.monotonic()
        if i % 2:
            m = req(c, C.SYNC, {"domain_id": dom})
        else:
            m = req(c, C.LIST_DOMAINS)
        t1 = time.monotonic()
        worst = max(worst, t1 - t0)
        if m.type == C.ERROR:
            raise RuntimeError("pinger: %s" % show(m))
        times.append(t1)
        i += 1
        if i == 50 and not announced:
            announced = True
            ctl.checkpoint("pinging")
    c.close()
    return {"times": times, "worst": worst}


def atk_stall(ctl, sock, nbytes):
    c = connect(sock)
    dom = make_domain(c, "attk0", 0, track=False, flags=C.CREATE_TRACKING)
    ctl.checkpoint("prepared")
    mid = c.new_id()
    t_send = time.monotonic()
    c.send(C.encode(C.MAP, mid, {"domain_id": dom, "flags": 3, "iova": 0, "length": nbytes}))
    m = c.wait(mid, timeout=600)[-1]
    t_reply = time.monotonic()
    ctl.checkpoint("mapped")
    m2 = req(c, C.DESTROY_DOMAIN, {"domain_id": dom}, timeout=600)
    c.close()
    return {"checks": [], "t_send": t_send, "t_reply": t_reply, "answer": show(m), "destroy": show(m2)}


def run_stall(run):
    run.start(backing="4k")
    p = Actor("pinger uid %d" % OTHER, creds_of(OTHER), pinger, run.daemon.sock, "user0")
    run.helpers["pinger"] = p
    run.pump([p], lambda *x: None, until=lambda: actor_at(p, "pinging"))
    a = run.attacker(atk_stall, STALL_MAP)
    run.bound = STALL_MAP // 512 + 4 * (STALL_MAP // PAGE // 8) + SLACK
    run.bound_why = "the sim's page tables for %s at 4 KiB (1/512) and four bitmaps" % mib(STALL_MAP)
    res = run.attack(a)
    p.send("stop")
    run.pump([p], lambda *x: None, until=lambda: p.done)
    if res is None or p.exc:
        run.checks(False, "the pinger ran to its end", p.exc)
        return res
    times = p.result["times"]
    n = sum(1 for t in times if res["t_send"] < t < res["t_reply"])
    run.extra_wait.append(("pinger", p.result["worst"]))
    dur = res["t_reply"] - res["t_send"]
    run.checks(res["answer"] == "OK", "uid %d's MAP of %s is answered OK" % (ATTACKER, mib(STALL_MAP)), res["answer"])
    run.checks(n >= STALL_MIN, "uid %d got at least %d answers (LIST_DOMAINS, SYNC of its own domain) between "
               "uid %d's MAP and its answer" % (OTHER, STALL_MIN, ATTACKER), "%d answers in the %.2f s the MAP took"
               % (n, dur))
    res["answers"] = n
    res["outcome"] = "MAP of %s answered after %.2f s; uid %d got %d answers meanwhile (longest wait %.0f ms)" % (
        mib(STALL_MAP), dur, OTHER, n, p.result["worst"] * 1000)
    return res


# ---------------------------------------------------------------------------
# 10. Periodic rounds at 1 ms on the largest domain the quota allows
#     (report only: nothing documents a bound to assert)
# ---------------------------------------------------------------------------

ROUNDS_BYTES = 1 << 40
ROUNDS_SECONDS = 3


def atk_rounds(ctl, sock, nbytes, seconds):
    c = connect(sock)
    dom = make_domain(c, "attk0", nbytes, flags=C.CREATE_TRACKING)
    ctl.checkpoint("prepared")
    m = req(c, C.SUBSCRIBE, {"domain_id": dom, "interval_ms": 1, "flags": C.SUBSCRIBE_CLEAN})
    g0 = m.f["generation"] if m.type == C.SUBSCRIBE_REPLY else 0
    time.sleep(seconds)         # dirtyd harvests for it meanwhile
    e = (C.stats(c, dom) or {}).get(dom, {})
    m2 = req(c, C.UNSUBSCRIBE, {"domain_id": dom})
    c.close()
    return {"checks": [(m.type == C.SUBSCRIBE_REPLY, "SUBSCRIBE with interval_ms 1 is accepted"),
                       (m2.type == C.OK, "UNSUBSCRIBE is answered")],
            "rounds": e.get("generation", 0) - g0, "round_ns": e.get("last_round_ns", 0)}


def run_rounds(run):
    run.start()
    c0 = proc_cpu(run.daemon.pid)
    time.sleep(1.0)             # dirtyd's CPU with the legitimate clients alone
    idle = proc_cpu(run.daemon.pid) - c0
    a = run.attacker(atk_rounds, ROUNDS_BYTES, ROUNDS_SECONDS)
    bm = ROUNDS_BYTES // PAGE // 8
    run.bound, run.bound_why = 4 * bm + SLACK, "four bitmaps of %s" % mib(bm)
    cpu0 = proc_cpu(run.daemon.pid)
    res = run.attack(a)
    if res is None:
        return None
    cpu = proc_cpu(run.daemon.pid) - cpu0
    res["outcome"] = ("uid %d subscribed to its %s domain with interval_ms 1 for %d s: %d rounds of %.1f ms; dirtyd "
                      "used %.1f s of CPU (%.1f s a second without the attacker)" % (
                          ATTACKER, mib(ROUNDS_BYTES), ROUNDS_SECONDS, res["rounds"], res["round_ns"] / 1e6, cpu,
                          idle))
    return res


def proc_cpu(pid):
    """CPU seconds @pid used (user and system, all threads)."""
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

ATTACKS = [
    ("device_paths", "1. device names that are paths", run_paths),
    ("idle_flood", "2. idle-connection flood", run_idle),
    ("domain_flood", "3. domain flood", run_domains),
    ("parked_flood", "4. parked-session flood", run_parked),
    ("inflight", "5. generations never acknowledged", run_inflight),
    ("mapped_churn", "6. MAP/UNMAP churn, ranges held", run_mapped),
    ("foreign_ids", "7. another uid's domain ids", run_foreign),
    ("malformed", "8. malformed and oversized frames", run_malformed),
    ("stall", "9. one huge MAP (stall)", run_stall),
    ("periodic_rounds", "10. rounds every 1 ms on 1 TiB", run_rounds),
    ("mapped_churn_default", "11. MAP/UNMAP churn to 1 TiB held, default max_mapped", run_mapped_default),
]
REPORT_ONLY = ("stall", "periodic_rounds", "mapped_churn_default")
DEFAULT = [a[0] for a in ATTACKS if a[0] not in REPORT_ONLY]


def run_one(args, key, title, fn):
    tmp = tempfile.mkdtemp(prefix="dirtyd-adv-")
    os.chmod(tmp, 0o755)
    run = Run(args, tmp, key)
    t0 = time.monotonic()
    res = None
    try:
        res = fn(run)
        if res is not None:
            run.checks.extend(res.get("checks", []))
            run.outcome = res.get("outcome", "")
        if run.legits:
            run.stop_legits()
        run.check_bound()
        viol = sorted(k[1] for k in C.R.violations)
        run.checks(not viol, "every packet dirtyd sent the test's own root connections is well-formed", viol[:3])
        C.R.violations.clear()
    except Exception as e:
        run.checks(False, "%s ran to its end" % key, "%s: %s" % (type(e).__name__, e))
        if args.verbose:
            traceback.print_exc(file=sys.stdout)
    finally:
        try:
            run.finish()
        except Exception as e:
            run.checks(False, "dirtyd stops", e)
        if args.verbose and run.daemon is not None:
            print("---- dirtyd's log (tail) ----\n" + run.daemon.log()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    run.seconds = time.monotonic() - t0
    return run


def row(run, title):
    b, a = run.base or {}, run.after or {}
    failed = [t for ok, t in run.checks.items if not ok]
    return "| %s | %s | %s / %s (peak %s) | %s / %s (peak %s) | %.0f | %d | %s |" % (
        title, run.outcome.replace("|", "/") or "-",
        b.get("VmRSS", "-"), a.get("VmRSS", "-"), run.peak("VmRSS") if run.base else "-",
        b.get("fds", "-"), a.get("fds", "-"), run.peak("fds") if run.base else "-",
        run.longest_wait() * 1000, run.pages_lost(),
        "all %d held" % len(run.checks.items) if not failed else "%d of %d failed: %s" % (
            len(failed), len(run.checks.items), "; ".join(failed)[:300].replace("|", "/")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dirtyd", help="the daemon binary")
    ap.add_argument("--harness", help="tests/harness/dirtyd-harness of the build (default: the one in "
                                      "the build tree of --dirtyd)")
    ap.add_argument("--only", default="", help="attacks to run, comma-separated (see --list)")
    ap.add_argument("--report", action="store_true",
                    help="run every attack (the stall too) and print a markdown table; exits 0")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for key, title, _ in ATTACKS:
            print("%-14s %s%s" % (key, title, "" if key in DEFAULT else "  (not in the default run)"))
        return 0
    if not args.dirtyd:
        ap.error("--dirtyd is required")
    if os.geteuid() != 0:
        print("adversarial: needs root (it runs parts as uids %d and %d)" % (ATTACKER, OTHER))
        return 1
    args.dirtyd = os.path.abspath(args.dirtyd)
    C.HARNESS = args.harness and os.path.abspath(args.harness)
    C.R.echo = False
    keys = [k for k in args.only.split(",") if k] or ([a[0] for a in ATTACKS] if args.report else DEFAULT)
    unknown = set(keys) - {a[0] for a in ATTACKS}
    if unknown:
        ap.error("unknown attack(s): %s" % ", ".join(sorted(unknown)))
    t0 = time.monotonic()
    runs = []
    for key, title, fn in ATTACKS:
        if key not in keys:
            continue
        run = run_one(args, key, title, fn)
        runs.append((title, run))
        if not args.report:
            for ok, text in run.checks.items:
                print("%s: [%s] %s" % ("ok" if ok else "FAIL", key, text), flush=True)
            for n in run.notes:
                print("note: [%s] %s" % (key, n))
            print("[%s] %s (%.1f s; RSS %s -> %s KiB, peak %s; fds %s -> %s; longest wait %.0f ms; pages lost %d)"
                  % (key, run.outcome, run.seconds, (run.base or {}).get("VmRSS"), (run.after or {}).get("VmRSS"),
                     run.peak("VmRSS") if run.base else "-", (run.base or {}).get("fds"),
                     (run.after or {}).get("fds"), run.longest_wait() * 1000, run.pages_lost()), flush=True)
        else:
            print("[%s] done in %.1f s" % (key, run.seconds), file=sys.stderr, flush=True)
    if args.report:
        print("dirtyd: %s" % args.dirtyd)
        for title, run in runs:
            for n in run.notes:
                print("note: %s: %s" % (title, n))
                break
        print()
        print("| attack | what happened | RSS KiB before / after | fds before / after | longest wait of the "
              "others (ms) | pages lost | checks |")
        print("|---|---|---|---|---|---|---|")
        for title, run in runs:
            print(row(run, title))
        return 0
    passed = sum(1 for _, r in runs for ok, _ in r.checks.items if ok)
    failed = sum(1 for _, r in runs for ok, _ in r.checks.items if not ok)
    print("runtime %.1f s" % (time.monotonic() - t0))
    print("adversarial: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
