#!/usr/bin/env python3
"""Where alloc_tests' counted allocations come from.

    CACHEPROXY_ALLOC_TRACE=1 build/alloc_tests --gtest_filter='*PerUserHit' 2>trace.txt
    python3 scripts/dev/alloc_sources.py build/alloc_tests trace.txt [frames] [requests]

Reads the backtraces the counting operator new / malloc wrote (alloc-trace
blocks, tests/session/alloc_counter.hpp), resolves the binary's frames with
addr2line (inlined frames too) and prints each distinct call path, its
`frames` innermost frames of proxy or library code (default 6), with how many
allocations (and bytes) took it, per request when `requests` (default 1000,
the test's kMeasured) is given.
"""
import collections
import re
import subprocess
import sys

FRAME = re.compile(r"\(\+0x([0-9a-f]+)\)|\((_Z\w+)\+0x[0-9a-f]+\)")
SKIP = ("alloc_counter.cpp", "new_allocator.h", "alloc_traits.h", "allocator.h", "operator new")


def blocks(path):
    """(kind, bytes, [offset, ...]) for each traced allocation."""
    kind, size, frames = None, 0, []
    for line in open(path, errors="replace"):
        if line.startswith("alloc-trace end"):
            yield kind, size, frames
            kind = None
        elif line.startswith("alloc-trace "):
            _, kind, n = line.split()
            size, frames = int(n), []
        elif kind and "alloc_tests" in line:
            m = FRAME.search(line)
            if m and m.group(1):
                frames.append(int(m.group(1), 16) - 1)  # a return address: the call is just before


def resolve(binary, offsets):
    """offset -> [innermost-first 'function at file:line' of the inlined chain]"""
    # addr2line -i prints a variable number of (function, file:line) pairs per
    # address: one call per address keeps the mapping exact.
    names = {}
    for o in sorted(offsets):
        lines = subprocess.run(["addr2line", "-f", "-C", "-i", "-e", binary, hex(o)],
                               capture_output=True, text=True, check=True).stdout.splitlines()
        pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2)]
        names[o] = ["%s at %s" % (fn[:110], loc.split("/work/")[-1].split("/usr/include/")[-1]) for fn, loc in pairs]
    return names


def main():
    binary, trace = sys.argv[1], sys.argv[2]
    depth = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    requests = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    traced = list(blocks(trace))
    names = resolve(binary, {o for _, _, frames in traced for o in frames})
    paths = collections.Counter()
    sizes = collections.Counter()
    for kind, size, frames in traced:
        chain = [n for o in frames for n in names[o] if not any(s in n for s in SKIP)]
        key = (kind,) + tuple(chain[:depth])
        paths[key] += 1
        sizes[key] += size
    for key, n in paths.most_common():
        print("%8.3f per request, %7.1f bytes  [%s]" % (n / requests, sizes[key] / requests, key[0]))
        for frame in key[1:]:
            print("          " + frame)


if __name__ == "__main__":
    main()
