#!/usr/bin/env python3
"""METRICS (PROTOCOL.md 6.17) against the real dirtyd on the sim, checked
with real Prometheus parsers: the OpenMetrics parser of python3-prometheus-
client (strict: TYPE, UNIT, HELP, _total, # EOF) and, when given, promtool
(Prometheus's own text parser, what node_exporter's textfile collector
uses).

    test_metrics.py --dirtyd PATH --harness PATH [--promtool PATH]
    test_metrics.py --check-file FILE [--promtool PATH]

The second form checks a text saved elsewhere (dirtyctl stats --format
openmetrics, test_client_dirtyctl.sh) with the same parsers.

After known DMA writes and rounds, every counter and gauge has its exact
value; a second uid sees its own domain only and no daemon-wide figure; a
text longer than one packet arrives in packets cut at line ends, in seq
order.  Run as root (the second uid is a forked child that setuid()s).
"""

import argparse
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile

from prometheus_client.openmetrics.parser import text_string_to_metric_families

HDR = struct.Struct("<HHIQ")
F_MORE = 1
HELLO, CREATE_DOMAIN, MAP, TRACK_START = 0x0001, 0x0004, 0x0008, 0x000a
SUBSCRIBE, SYNC, GET_RANGES, ACK = 0x000c, 0x000e, 0x000f, 0x0010
DMA_WRITE, METRICS = 0x0013, 0x0014
RANGES, METRICS_REPLY, ERROR = 0x800f, 0x8014, 0xffff
CREATE_TRACKING, CREATE_NO_HUGE = 1, 2
MAP_RW = 3
GIB, MIB, KIB = 1 << 30, 1 << 20, 1 << 10
NOBODY = 65534

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Client:
    """The raw protocol, one request at a time."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.connect(path)
        self.id = 0
        self.call(HELLO, struct.pack("<HHIQQ", 1, 0, 0, 0, 0))

    def send(self, t, body):
        self.id += 1
        self.s.send(HDR.pack(t, 0, 16 + len(body), self.id) + body)
        return self.id

    def packets(self, mid):
        """The packets answering @mid: one, or a stream up to the last."""
        while True:
            r, _, _ = select.select([self.s], [], [], 30)
            if not r:
                raise RuntimeError("no answer to request %d" % mid)
            p = self.s.recv(65536 + 16)
            t, flags, length, pid = HDR.unpack_from(p)
            assert length == len(p)
            if pid != mid:
                continue        # an event
            yield t, flags, p[16:]
            if not flags & F_MORE:
                return

    def call(self, t, body=b""):
        """The one reply's (type, body); raises on ERROR."""
        mid = self.send(t, body)
        got = list(self.packets(mid))
        rt, _, rb = got[-1]
        if rt == ERROR:
            raise OSError(struct.unpack_from("<I", rb)[0], rb[8:].decode())
        return rt, rb

    def metrics(self, domain=0):
        """(text, packets): the exposition and the packets it came in."""
        mid = self.send(METRICS, struct.pack("<II", domain, 0))
        text, n = b"", 0
        for t, flags, body in self.packets(mid):
            if t == ERROR:
                raise OSError(struct.unpack_from("<I", body)[0], body[8:].decode())
            assert t == METRICS_REPLY, hex(t)
            seq, rsvd = struct.unpack_from("<II", body)
            assert seq == n and rsvd == 0, (seq, n)
            chunk = body[8:]
            assert not chunk or chunk.endswith(b"\n"), "a packet not cut at a line end"
            text += chunk
            n += 1
        return text.decode("utf-8"), n

    def create(self, dev, flags=CREATE_TRACKING | CREATE_NO_HUGE):
        name = dev.encode().ljust(64, b"\0")
        _, b = self.call(CREATE_DOMAIN, struct.pack("<II", flags, 0) + name)
        return struct.unpack_from("<I", b)[0]

    def map(self, d, iova, length):
        self.call(MAP, struct.pack("<IIQQ", d, MAP_RW, iova, length))

    def dma(self, d, iova, length):
        self.call(DMA_WRITE, struct.pack("<IIQQ", d, 0, iova, length))

    def domain_op(self, t, d):
        return self.call(t, struct.pack("<II", d, 0))


def parse(text):
    """{(sample name, frozen labels): value}, through the real parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def dom(samples, name, d):
    return samples.get((name, (("domain", str(d)),)))


def promtool_check(promtool, text, what):
    """Prometheus's text parser reads it; its lint may only say that the
    _total samples have no HELP (it reads counters as families of their
    own: OpenMetrics puts HELP on the family name)."""
    if not promtool:
        print("note %s: no promtool (package prometheus): its check skipped" % what)
        return
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       capture_output=True)
    out = (p.stdout + p.stderr).decode()
    lint = [l for l in out.splitlines() if l.strip() and not l.endswith("_total no help text")]
    check(p.returncode in (0, 3) and not lint,
          "%s: promtool check metrics parses it (exit %d%s)" % (what, p.returncode,
                                                               ": " + "; ".join(lint) if lint else ""))


def as_nobody(fn, *args):
    """fn(*args) in a child running as uid/gid 65534; its failures count."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            fn(*args)
            code = 1 if failures else 0
        except BaseException as e:      # noqa: BLE001
            print("FAIL uid %d raised %r" % (NOBODY, e), flush=True)
            code = 1
        os._exit(code)
    os.close(w)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    check(os.WEXITSTATUS(status) == 0, "uid %d: its checks passed" % NOBODY)


def nobody_part(sock, root_domain, promtool):
    c = Client(sock)
    mine = c.create("sim1")
    c.map(mine, 0, 16 * MIB)
    c.domain_op(TRACK_START, mine)
    text, _ = c.metrics()
    s = parse(text)
    promtool_check(promtool, text, "uid %d's text" % NOBODY)
    doms = {dict(l)["domain"] for (n, l) in s if dict(l).get("domain")}
    check(doms == {str(mine)}, "uid %d sees the samples of its domain %d only (%s)" % (NOBODY, mine, sorted(doms)))
    check(s.get(("dirtyd_domains", ())) == 1, "uid %d: dirtyd_domains 1" % NOBODY)
    check(dom(s, "dirtyd_domain_mapped_bytes", mine) == 16 * MIB, "uid %d: its mapped bytes" % NOBODY)
    daemon_wide = [n for (n, l) in s if n in ("dirtyd_clients", "dirtyd_subscriptions", "dirtyd_rounds_total",
                                              "dirtyd_resident_memory_bytes", "dirtyd_store_kept")]
    check(not daemon_wide, "uid %d gets no daemon-wide figure (%s)" % (NOBODY, daemon_wide))
    info = [dict(l) for (n, l) in s if n == "dirtyd_build_info"]
    check(len(info) == 1 and info[0]["backend"] == "sim" and info[0]["version"],
          "uid %d sees dirtyd_build_info (%s)" % (NOBODY, info))
    try:
        c.metrics(root_domain)
        check(False, "uid %d: METRICS of root's domain is ENOENT" % NOBODY)
    except OSError as e:
        check(e.errno == 2, "uid %d: METRICS of root's domain %d is ENOENT (%s)" % (NOBODY, root_domain, e))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dirtyd")
    ap.add_argument("--harness")
    ap.add_argument("--promtool")
    ap.add_argument("--check-file")
    args = ap.parse_args()
    if args.check_file:
        with open(args.check_file, encoding="utf-8") as f:
            text = f.read()
        fams = list(text_string_to_metric_families(text))
        check(len(fams) > 0, "%s: %d families parse" % (args.check_file, len(fams)))
        promtool_check(args.promtool, text, args.check_file)
        return 1 if failures else 0
    if not args.dirtyd or not args.harness:
        ap.error("--dirtyd and --harness, or --check-file")
    if os.geteuid() != 0:
        print("SKIP: run as root (a second uid is needed)")
        return 77

    tmp = tempfile.mkdtemp(prefix="dirtyd-metrics-")
    os.chmod(tmp, 0o755)
    sock = os.path.join(tmp, "dirtyd.sock")
    ndev = 64                       # the sim's most
    conf = os.path.join(tmp, "dirtyd.conf")
    with open(conf, "w") as f:
        f.write("[daemon]\nbackend = sim\nsocket = %s\nsocket_mode = 0666\nlog_level = info\n"
                "workers = 2\nmax_domains = 200\nmax_devices = 200\n\n[sim]\nbacking_page_size = 4k\n"
                "devices = %s\n" % (sock, ",".join("sim%d:dirty" % i for i in range(ndev))))
    log = os.path.join(tmp, "dirtyd.log")
    h = subprocess.Popen([args.harness, "--dirtyd", args.dirtyd, "--config", conf, "--socket", sock,
                          "--log", log, "--no-notify"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    ready = h.stdout.readline().decode()
    if not ready.startswith("ready"):
        print("FAIL dirtyd did not start: %r" % ready)
        print(open(log).read()[-3000:])
        return 1
    try:
        run(sock, ndev, args.promtool)
    finally:
        h.stdin.write(b"stop\n")
        h.stdin.flush()
        answer = h.stdout.readline().decode().strip()
        h.wait(30)
        check(answer == "exit 0", "dirtyd exits 0 on SIGTERM (%s)" % answer)
        if failures:
            print("---- dirtyd log (tail) ----")
            print(open(log).read()[-3000:])
    print("metrics: %d failed" % len(failures))
    return 1 if failures else 0


def run(sock, ndev, promtool):
    a = Client(sock)
    d = a.create("sim0")
    a.map(d, GIB, 64 * MIB)
    a.domain_op(TRACK_START, d)
    # CLEAN: the subscription waits for a round (round 1, nothing written)
    a.call(SUBSCRIBE, struct.pack("<IIII", d, 0, 1, 0))
    a.dma(d, GIB, 16 * KIB)             # 4 pages
    a.dma(d, GIB + MIB, 4 * KIB)        # 1 page
    a.domain_op(SYNC, d)                # round 2: 5 pages

    text, npk = a.metrics()
    check(text.endswith("# EOF\n"), "the text ends with # EOF")
    s = parse(text)
    promtool_check(promtool, text, "root's text")
    want = {
        "dirtyd_domain_rounds_total": 2, "dirtyd_domain_dirty_pages_total": 5,
        "dirtyd_domain_last_round_dirty_pages": 5, "dirtyd_domain_pending_pages": 5,
        "dirtyd_domain_unacknowledged_pages": 0, "dirtyd_domain_round_errors_total": 0,
        "dirtyd_domain_mapped_bytes": 64 * MIB, "dirtyd_domain_page_size_bytes": 4096,
        "dirtyd_domain_subscriptions": 1, "dirtyd_domain_tracking": 1,
    }
    for name, v in want.items():
        check(dom(s, name, d) == v, "after 5 pages and 2 rounds: %s is %s (%s)" % (name, v, dom(s, name, d)))
    hs, last = dom(s, "dirtyd_domain_harvest_seconds_total", d), dom(s, "dirtyd_domain_last_harvest_seconds", d)
    check(hs is not None and last is not None and 0 < last <= hs,
          "harvest seconds: 0 < last round (%s) <= total (%s)" % (last, hs))
    check(s.get(("dirtyd_rounds_total", ())) == 2 and s.get(("dirtyd_dirty_pages_total", ())) == 5 and
          s.get(("dirtyd_round_errors_total", ())) == 0,
          "daemon-wide: 2 rounds, 5 pages, 0 errors")
    check(s.get(("dirtyd_clients", ())) == 1 and s.get(("dirtyd_subscriptions", ())) == 1 and
          s.get(("dirtyd_domains", ())) == 1, "daemon-wide: 1 client, 1 subscription, 1 domain")
    check(s.get(("dirtyd_store_kept", ())) == 0, "no store: dirtyd_store_kept 0")
    check((s.get(("dirtyd_resident_memory_bytes", ())) or 0) > 1 * MIB, "resident memory is there")
    check(npk == 1, "a short text is one packet (%d)" % npk)

    # take the 5 pages (in flight), write 2 more, a round: 2 pending, 5 unacked
    mid = a.send(GET_RANGES, struct.pack("<IIQ", d, 0, 0))
    gen = None
    for t, flags, body in a.packets(mid):
        assert t == RANGES, hex(t)
        gen, = struct.unpack_from("<Q", body)
    a.dma(d, GIB + 2 * MIB, 8 * KIB)    # 2 pages
    a.domain_op(SYNC, d)                # round 3
    s = parse(a.metrics(d)[0])
    for name, v in (("dirtyd_domain_pending_pages", 2), ("dirtyd_domain_unacknowledged_pages", 5),
                    ("dirtyd_domain_rounds_total", 3), ("dirtyd_domain_dirty_pages_total", 7),
                    ("dirtyd_domain_last_round_dirty_pages", 2)):
        check(dom(s, name, d) == v, "after a take and 2 more pages: %s is %d (%s)" % (name, v, dom(s, name, d)))
    a.call(ACK, struct.pack("<IIQ", d, 0, gen))
    s = parse(a.metrics(d)[0])
    check(dom(s, "dirtyd_domain_unacknowledged_pages", d) == 0, "after ACK: 0 unacknowledged")

    # another uid: its own domain only, nothing daemon-wide
    as_nobody(nobody_part, sock, d, promtool)
    s = parse(a.metrics()[0])
    doms = sorted({dict(l)["domain"] for (n, l) in s if dict(l).get("domain")})
    check(s.get(("dirtyd_domains", ())) == 2 and len(doms) == 2, "root sees both domains (%s)" % doms)
    s = parse(a.metrics(d)[0])
    doms = sorted({dict(l)["domain"] for (n, l) in s if dict(l).get("domain")})
    check(doms == [str(d)], "METRICS of domain %d: its samples only (%s)" % (d, doms))

    # every domain the sim can have: each family groups the samples of
    # every domain (the parser refuses a family interleaved with another);
    # packets are checked in Client.metrics (seq, line ends), and texts of
    # many packets in tests/unit/test_metrics_packets.c
    for i in range(2, ndev):
        a.create("sim%d" % i)
    text, npk = a.metrics()
    s = parse(text)
    check(s.get(("dirtyd_domains", ())) == ndev, "dirtyd_domains %d" % ndev)
    check(len([1 for (n, l) in s if n == "dirtyd_domain_tracking"]) == ndev,
          "one dirtyd_domain_tracking sample per domain (%d bytes, %d packets)" % (len(text), npk))
    promtool_check(promtool, text, "the text of %d domains" % ndev)


if __name__ == "__main__":
    sys.exit(main())
