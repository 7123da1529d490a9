#!/usr/bin/env bash
# Prints the folder-level include graph of proxy/: one line per edge
# "from -> to (N includes)", then every pair of folders that include each
# other (a cycle of two) and every longer cycle's folders, if any. Exit 1 when
# there is a cycle. Used by the closing notes of issue 12 and by
# the ctest test layering_no_folder_cycles (CMakeLists.txt).
#
#   scripts/dev/include_graph.sh [proxy-dir]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="${1:-$ROOT/proxy}"
python3 - "$SRC" <<'PY'
import os, re, sys
src = sys.argv[1]
edges = {}
inc = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"')
for dirpath, _, files in os.walk(src):
    rel = os.path.relpath(dirpath, src)
    if rel == '.':
        continue
    frm = rel.split(os.sep)[0]
    for f in files:
        if not f.endswith(('.hpp', '.cpp')):
            continue
        for line in open(os.path.join(dirpath, f), encoding='utf-8', errors='replace'):
            m = inc.match(line)
            if m and m.group(1) != frm and os.path.isdir(os.path.join(src, m.group(1))):
                edges[(frm, m.group(1))] = edges.get((frm, m.group(1)), 0) + 1
for (a, b), n in sorted(edges.items()):
    print(f"{a} -> {b} ({n})")
graph = {}
for a, b in edges:
    graph.setdefault(a, set()).add(b)
# Strongly connected components (Tarjan): any with more than one folder is a cycle.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in sorted(graph.get(v, ())):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in sorted(set(graph) | {b for s in graph.values() for b in s}):
    if v not in index: visit(v)
if sccs:
    for c in sccs:
        print("cycle: " + " <-> ".join(c))
    sys.exit(1)
print(f"no cycles: {len(edges)} edges")
PY
