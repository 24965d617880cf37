#!/usr/bin/env python3
"""One JSON vocabulary for dirtyctl and dirtyd-migrate (issue 16): every
key of every document the tools printed is one that dirtyctl(1), section
JSON VOCABULARY, lists; no key the vocabulary retired ("id" for a domain,
"dirty_rate") comes back.

    json_keys.py DIRTYCTL.1 FILE...     (each FILE: documents, one a line)
"""
import json
import re
import sys

RETIRED = {"id", "dirty_rate", "pages_copied", "mib_copied", "seconds", "total_seconds",
           "bandwidth_mib_s", "ranges_count", "pages_sent", "subscribers", "rounds_per_s"}


def vocabulary(man):
    text = open(man, encoding="utf-8").read()
    m = re.search(r"^\.SH JSON VOCABULARY\n(.*?)^\.SH ", text, re.S | re.M)
    if not m:
        sys.exit("json_keys: no JSON VOCABULARY section in %s" % man)
    keys = set()
    lines = m.group(1).splitlines()
    for i, l in enumerate(lines):
        if l == ".TP" and i + 1 < len(lines) and lines[i + 1].startswith(".B "):
            for k in lines[i + 1][3:].split(","):
                keys.add(k.strip().strip('"').replace("\\", ""))
    return keys


def keys_of(v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            out.add(k)
            keys_of(x, out)
    elif isinstance(v, list):
        for x in v:
            keys_of(x, out)


def main():
    vocab = vocabulary(sys.argv[1])
    used = set()
    ndocs = 0
    for path in sys.argv[2:]:
        for line in open(path, encoding="utf-8"):
            if line.strip():
                keys_of(json.loads(line), used)
                ndocs += 1
    unknown = sorted(used - vocab)
    retired = sorted(used & RETIRED)
    print("json_keys: %d documents, %d keys, vocabulary of %d" % (ndocs, len(used), len(vocab)))
    if unknown:
        print("FAIL keys not in dirtyctl(1) JSON VOCABULARY: %s" % ", ".join(unknown))
    if retired:
        print("FAIL retired keys printed: %s" % ", ".join(retired))
    if not ndocs:
        print("FAIL no document to check")
    return 1 if unknown or retired or not ndocs else 0


if __name__ == "__main__":
    sys.exit(main())
