#!/usr/bin/env python3
# How tests/unit/state_v3/ was made: a format-3 store written by the dirtyd
# of commit 108e264 (the last to write format 3), kept here so that every
# later dirtyd is tested on reading it (test_state_format.c).
#
#   tests/unit/state_v3/gen.py BUILD/daemon/dirtyd OUTDIR
#
# It plays systemd's notify socket and file descriptor store, drives dirtyd
# through the conformance suite's client (two domains, devices, mappings, a
# retired range, tracking, a generation in flight, pages pending, a parked
# session) and writes what the store holds: super.bin (the superblock),
# version.bin (the committed version), bits.txt (the non-zero words of
# dirtyd-bits: "offset value" in hex) and expect.txt (what the test checks).
import array, os, socket, struct, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../conformance"))
import conformance as C

binary, out = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(tmp + "/notify")
os.environ["NOTIFY_SOCKET"] = tmp + "/notify"
store = {}

def pump(t=0.3):
    end = time.monotonic() + t
    while time.monotonic() < end:
        ns.settimeout(max(0.01, end - time.monotonic()))
        try:
            data, anc, _, _ = ns.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
        except socket.timeout:
            continue
        fds = array.array("i")
        for lvl, typ, c in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(c[:len(c) - len(c) % 4])
        kv = dict(l.split("=", 1) for l in data.decode().split("\n") if "=" in l)
        if kv.get("FDSTORE") == "1":
            store[kv["FDNAME"]] = fds[0]
        elif kv.get("FDSTOREREMOVE") == "1":
            store.pop(kv["FDNAME"], None)

conf = ("[daemon]\nbackend = sim\nsocket = %s/s.sock\nlog_level = debug\n"
        "resume_grace = 600\n[sim]\ndevices = sim0:dirty, sim1:dirty, sim2:nodirty\n"
        "backing_page_size = 4k\n" % tmp)
d = C.Daemon(binary, tmp, "d", conf, tmp + "/s.sock")
assert d.ready, d.logtext()
pump()
c = C.connect(tmp + "/s.sock", C.FEAT_RESUME | C.FEAT_EVENTS)
token = c.hello_reply.f["session_token"]
G, M = 1 << 30, 1 << 20
dom = C.create(c, "sim0", C.CREATE_TRACKING | C.CREATE_NO_HUGE_PAGES)
C.must(c, C.ATTACH_DEVICE, {"domain_id": dom, "device": "sim1"})
for iova, ln in ((G, 64 * M), (2 * G + 3 * 4096, 8 * M + 5 * 4096), (3 * G, 4 * M)):
    C.must(c, C.MAP, {"domain_id": dom, "flags": C.MAP_READABLE | C.MAP_WRITEABLE,
                      "iova": iova, "length": ln})
C.must(c, C.TRACK_START, {"domain_id": dom})
C.must(c, C.SUBSCRIBE, {"domain_id": dom, "interval_ms": 0, "flags": C.SUBSCRIBE_CLEAN})
other = C.create(c, "sim2", C.CREATE_NO_HUGE_PAGES)
C.must(c, C.MAP, {"domain_id": other, "flags": C.MAP_READABLE, "iova": 0, "length": 2 * M})
C.must(c, C.SUBSCRIBE, {"domain_id": other, "interval_ms": 0, "flags": 0})
w = lambda iova: C.must(c, C.DMA_WRITE, {"domain_id": dom, "flags": 0, "iova": iova, "length": 4096})
# in flight: pages of the mapping about to be unmapped (it stays retired)
for p in (0, 5, 6, 7, 100):
    w(3 * G + p * 4096)
w(G + 4096 * 9)
C.must(c, C.SYNC, {"domain_id": dom})
C.get_ranges(c, dom)
C.must(c, C.UNMAP, {"domain_id": dom, "flags": 0, "iova": 3 * G, "length": 4 * M})
# pending
for p in (1, 2, 3, 1000, 16383):
    w(G + p * 4096)
w(2 * G + 3 * 4096 + 4096 * 17)
C.must(c, C.SYNC, {"domain_id": dom})
c.close()
pump(1.0)	# the tick records the park
meta = store["dirtyd-meta"]
sb = os.pread(meta, 4096, 0)
magic, fmt, tries = struct.unpack_from("<QII", sb, 0)
assert fmt == 3, fmt
slots = [struct.unpack_from("<QQQ", sb, 16 + 24 * s) for s in range(2)]
commit = struct.unpack_from("<Q", sb, 64)[0]
os.makedirs(out, exist_ok=True)
# which slot: the test finds it the same way (state_commit_word)
def fnv(b):
    h = (0xcbf29ce484222325 ^ len(b)) & (2**64 - 1)
    for i in range(0, len(b) - len(b) % 8, 8):
        h = ((h ^ struct.unpack_from("<Q", b, i)[0]) * 0x100000001b3) & (2**64 - 1)
        h ^= h >> 29
    return h
slot = [s for s in range(2) if fnv(struct.pack("<QQQ", magic, slots[s][0], s)) == commit]
assert len(slot) == 1
slot = slot[0]
seq, ln, _ = slots[slot]
version = os.pread(meta, ln, 4096 + slot * (256 << 20))
open(out + "/super.bin", "wb").write(sb)
open(out + "/version.bin", "wb").write(version)
bits = store["dirtyd-bits"]
size = os.fstat(bits).st_size
with open(out + "/bits.txt", "w") as fh:
    off = 0
    while off < size:
        try:
            off = os.lseek(bits, off, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(bits, off, os.SEEK_HOLE)
        while off < end:
            n = min(end - off, 1 << 20)
            b = os.pread(bits, n, off)
            for i in range(0, n, 8):
                v = struct.unpack_from("<Q", b, i)[0]
                if v:
                    fh.write("%x %x\n" % (off + i, v))
            off += n
with open(out + "/expect.txt", "w") as fh:
    fh.write("token %x\nuid %d\ndomain %d\nother %d\nslot %d\nseq %d\nlen %d\n"
             % (token, os.getuid(), dom, other, slot, seq, ln))
d.proc.kill()
d.proc.wait()
print(open(out + "/expect.txt").read(), sorted(store))
