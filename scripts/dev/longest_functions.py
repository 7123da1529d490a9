#!/usr/bin/env python3
"""Prints the longest function bodies in proxy/ (lines from the signature's
first line to the closing brace), longest first.

    scripts/dev/longest_functions.py [N] [dir]

A function is a definition whose body opens at the end of a line and closes
with a brace at the signature's indentation (the project's clang-format
style); lambdas and class bodies are not counted on their own. Exit 1 when
one is longer than LIMIT (120) lines."""
import os
import re
import sys

LIMIT = 120
n_show = int(sys.argv[1]) if len(sys.argv) > 1 else 10
root = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), '..', '..', 'proxy')
start = re.compile(r'^(\s*)(?!if\b|for\b|while\b|switch\b|else\b|do\b|namespace\b|struct\b|class\b|enum\b|union\b|return\b|case\b)'
                   r'[A-Za-z_~][^;{}()]*\([^;]*\)\s*(const\s*)?(noexcept\s*)?(override\s*)?(->\s*[^{;]+)?\{\s*$')
found = []
for dirpath, _, files in os.walk(root):
    for f in sorted(files):
        if not f.endswith(('.cpp', '.hpp')):
            continue
        path = os.path.join(dirpath, f)
        lines = open(path, encoding='utf-8', errors='replace').read().split('\n')
        i = 0
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if not stripped or stripped.startswith(('//', '#', '*', '/*')):
                i += 1
                continue
            # A signature may span lines: join up to 4 lines ending in '{'.
            joined, j = line, i
            while not joined.rstrip().endswith(('{', ';', '}')) and j < i + 4 and j + 1 < len(lines):
                j += 1
                joined += ' ' + lines[j].strip()
            m = start.match(joined) if joined.rstrip().endswith('{') else None
            if m and '=' not in joined.split('(')[0]:
                indent = m.group(1)
                close = re.compile('^' + re.escape(indent) + r'\}')
                k = j + 1
                while k < len(lines) and not close.match(lines[k]):
                    k += 1
                name = re.search(r'([A-Za-z_~][\w:~<>]*)\s*\(', joined)
                found.append((k - i + 1, os.path.relpath(path, os.path.join(root, '..')), i + 1,
                              name.group(1) if name else '?'))
                i = k + 1
                continue
            i += 1
found.sort(reverse=True)
for length, path, line, name in found[:n_show]:
    print(f'{length:5d}  {path}:{line}  {name}')
sys.exit(1 if found and found[0][0] > LIMIT else 0)
