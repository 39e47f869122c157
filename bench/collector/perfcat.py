#!/usr/bin/env python3
"""Sorts the samples of `perf record -g` profiles of collectors into the
parts of a collector's work, by the frames on each sample's stack, and
prints one column per profile (bench/collector/run.sh PERF=1).

    perfcat.py stock=/tmp/perf-stock.data meshlens=/tmp/perf-meshlens.data

The first part whose frame pattern is on a stack takes the sample, so the
store path's parts come before the receiver's that call them.
"""
import collections
import subprocess
import sys

# (part, substring of a frame); first match wins.
PARTS = [
    ("store: rows from spans (conversion)", "storeexporter.newSpanRequest"),
    ("store: queue write (Offer)", "]).Offer"),
    ("store: queue read", "]).Read"),
    ("store: batching, done", "exporterhelper/internal/queuebatch"),
    ("store: PostgreSQL (pgx)", "jackc/pgx"),
    ("store: write-through (grouping, handing over)", "storeexporter.(*groupWriter)"),
    ("analytics exporter", "analyticsexporter"),
    ("stock: batch processor", "batchprocessor"),
    ("pipeline: processors, fan-out, counters", "ConsumeTraces"),
    ("receive: OTLP protobuf decode", "UnmarshalProto"),
    ("receive: gRPC, HTTP/2", "google.golang.org/grpc"),
    ("runtime: garbage collector", "runtime.gcBgMarkWorker"),
    ("runtime: garbage collector", "runtime.bgsweep"),
    ("runtime: garbage collector", "runtime.bgscavenge"),
    ("runtime: sysmon", "runtime.sysmon"),
    ("runtime: scheduler", "runtime.schedule"),
    ("runtime: scheduler", "runtime.mcall"),
    ("runtime: scheduler", "runtime.morestack"),
]


def samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym"],
                         capture_output=True, text=True, check=True).stdout
    stack = []
    for line in out.splitlines():
        line = line.strip()
        if not line:
            if stack:
                yield stack
            stack = []
            continue
        parts = line.split(None, 1)
        stack.append(parts[1] if len(parts) > 1 else "?")
    if stack:
        yield stack


def main(args):
    names, counts = [], {}
    for arg in args:
        name, _, path = arg.partition("=")
        c = collections.Counter()
        for stack in samples(path):
            joined = " ".join(stack)
            for part, pattern in PARTS:
                if pattern in joined:
                    c[part] += 1
                    break
            else:
                c["other"] += 1
        names.append(name)
        counts[name] = c
    order = list(dict.fromkeys([p for p, _ in PARTS] + ["other"]))
    print("| part | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for part in order:
        if any(counts[n][part] for n in names):
            print(f"| {part} | " + " | ".join(str(counts[n][part]) for n in names) + " |")
    print("| **all samples** | " + " | ".join(str(sum(counts[n].values())) for n in names) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
