#!/usr/bin/env python3
"""blobdiff.py REFERENCE RECEIVED: where a received copy of a stream differs from the original.

Used by the network soak (lib/netsoak.sh) on a transfer whose checksum did not match. Prints the
sizes, how many bytes differ, and up to 8 runs of differing bytes (runs closer than 64 bytes are
merged): their offset (and offset within a 4 KiB page), length, and what the wrong bytes are:
zeros, or bytes found elsewhere in the original (a stale or reused buffer, with the distance),
or neither. Where the received copy is shorter or longer, says so. Compares 4 KiB blocks first,
so 64 MiB takes a second or two.
"""
import sys

BLOCK = 4096
MERGE = 64
MAX_RUNS = 8


def runs_of_difference(a, b):
    n = min(len(a), len(b))
    runs = []
    for base in range(0, n, BLOCK):
        x, y = a[base:base + BLOCK], b[base:base + BLOCK]
        if x == y:
            continue
        for i in range(len(x)):
            if i < len(y) and x[i] != y[i]:
                off = base + i
                if runs and off - runs[-1][1] <= MERGE:
                    runs[-1][1] = off + 1
                    runs[-1][2] += 1
                else:
                    runs.append([off, off + 1, 1])
    return runs


def describe(ref, got, start, end):
    wrong = got[start:end]
    if not wrong.strip(b"\0"):
        return "zeros"
    probe = wrong[:64] if len(wrong) >= 16 else got[max(0, start - 8):start + 24]
    hits = []
    at = ref.find(probe)
    while at != -1 and len(hits) < 3:
        hits.append(at)
        at = ref.find(probe, at + 1)
    if hits:
        return "found in the original at " + ", ".join(
            f"{h:#x} ({h - start:+d} bytes away)" for h in hits)
    return "not found in the original"


def main():
    ref = open(sys.argv[1], "rb").read()
    got = open(sys.argv[2], "rb").read()
    print(f"blobdiff: original {len(ref)} bytes, received {len(got)} bytes")
    if len(got) != len(ref):
        print(f"blobdiff: received {'fewer' if len(got) < len(ref) else 'more'} bytes than sent")
    runs = runs_of_difference(ref, got)
    total = sum(r[2] for r in runs)
    print(f"blobdiff: {total} byte(s) differ in {len(runs)} run(s)")
    for start, end, count in runs[:MAX_RUNS]:
        print(f"blobdiff: run at {start:#x} (page offset {start % BLOCK:#x}), {end - start} bytes"
              f" ({count} differ): {describe(ref, got, start, end)}")
    if len(runs) > MAX_RUNS:
        print(f"blobdiff: ... and {len(runs) - MAX_RUNS} more run(s)")


if __name__ == "__main__":
    main()
