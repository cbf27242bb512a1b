#!/usr/bin/python3
"""Folded stacks, an SVG flame graph and a self-time table from `perf script`.

  flame.py collapse < perf-script.txt > stacks.folded
  flame.py svg --title T < stacks.folded > flamegraph.svg
  flame.py top [-n N] < stacks.folded

collapse reads `perf script -F comm,pid,tid,ip,sym,dso` output: a header line
per sample, then one indented line per frame, leaf first, then a blank line.
It writes one line per distinct stack, root first: "comm;f1;...;leaf COUNT".
Kernel frames get a "_[k]" suffix so the SVG can colour them apart.

svg draws the classic flame graph (root at the bottom, width = samples, x
order alphabetical per level, so equal stacks merge); each frame has a
<title> tooltip with its samples and share. top prints the functions with
the most self samples (samples whose leaf frame they are).
"""
import argparse
import collections
import hashlib
import html
import re
import sys

FRAME_RE = re.compile(r"^\s*([0-9a-fA-F]+)\s+(.*?)\s+\((.*)\)\s*$")


def collapse(lines):
    """Yield a root-first stack tuple per sample in perf script text.

    With --call-graph dwarf, perf lists a sample's user-space IP twice when
    the sample lands in user space (once as the sample IP, once as the first
    unwound frame); a frame repeating the previous one at the same address is
    that artefact and is dropped. Real recursion has different addresses."""
    comm = None
    frames = []
    last_ip = None
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            if comm is not None:
                yield tuple([comm] + frames[::-1])
            comm, frames, last_ip = None, [], None
            continue
        if not line[0].isspace():
            if comm is not None:  # a sample without a blank line after it
                yield tuple([comm] + frames[::-1])
            comm = line.split()[0]
            frames, last_ip = [], None
            continue
        m = FRAME_RE.match(line)
        if m is None:
            continue
        if m.group(1) == last_ip:
            continue
        last_ip = m.group(1)
        sym, dso = m.group(2), m.group(3)
        if sym == "[unknown]":
            base = dso.rsplit("/", 1)[-1]
            sym = "[%s]" % base if base and base != "unknown" else "[unknown]"
        if dso == "[kernel.kallsyms]" or dso.endswith("/vmlinux"):
            sym += "_[k]"
        frames.append(sym)
    if comm is not None:
        yield tuple([comm] + frames[::-1])


def read_folded(stream):
    stacks = collections.Counter()
    for line in stream:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        stacks[tuple(stack.split(";"))] += int(count)
    return stacks


class Node:
    __slots__ = ("name", "total", "kids")

    def __init__(self, name):
        self.name = name
        self.total = 0
        self.kids = {}


def build_tree(stacks):
    root = Node("all")
    for stack, n in stacks.items():
        root.total += n
        node = root
        for name in stack:
            node = node.kids.setdefault(name, Node(name))
            node.total += n
    return root


def colour(name):
    """Stable warm colour per name; kernel frames orange, our code red-ish."""
    h = hashlib.md5(name.encode()).digest()
    if name.endswith("_[k]"):
        return "rgb(%d,%d,%d)" % (230 + h[0] % 26, 140 + h[1] % 60, 40 + h[2] % 30)
    if name.startswith("["):
        return "rgb(%d,%d,%d)" % (200 + h[0] % 40, 200 + h[1] % 40, 80 + h[2] % 40)
    return "rgb(%d,%d,%d)" % (220 + h[0] % 36, 80 + h[1] % 110, 50 + h[2] % 40)


def svg(stacks, title, width=1200, frame_h=16, font=11):
    root = build_tree(stacks)
    total = max(root.total, 1)
    pad_x, pad_top, pad_bottom = 10, 40, 30

    def depth(node):
        return 1 + max((depth(k) for k in node.kids.values()), default=0)

    levels = depth(root)
    height = pad_top + levels * frame_h + pad_bottom
    scale = (width - 2 * pad_x) / total
    char_w = font * 0.59
    out = []
    out.append('<?xml version="1.0" standalone="no"?>')
    out.append('<svg version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" '
               'xmlns="http://www.w3.org/2000/svg">' % (width, height, width, height))
    out.append('<style>text{font-family:Verdana,sans-serif;font-size:%dpx;fill:#000}'
               'rect{stroke:#fff;stroke-width:0.5}</style>' % font)
    out.append('<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f0"/>' % (width, height))
    out.append('<text x="%d" y="24" text-anchor="middle" style="font-size:17px">%s</text>'
               % (width // 2, html.escape(title)))
    out.append('<text x="%d" y="%d">%d samples; width = share of samples; hover for details</text>'
               % (pad_x, height - 10, total))

    # Iterative walk: (node, x in samples, level from the bottom).
    todo = [(root, 0, 0)]
    while todo:
        node, x, level = todo.pop()
        w = node.total * scale
        if w < 0.1:
            continue
        px = pad_x + x * scale
        py = pad_top + (levels - 1 - level) * frame_h
        pct = 100.0 * node.total / total
        label = node.name
        tip = "%s (%d samples, %.2f%%)" % (label, node.total, pct)
        out.append('<g><title>%s</title><rect x="%.2f" y="%d" width="%.2f" height="%d" '
                   'fill="%s" rx="2"/>' % (html.escape(tip), px, py, w, frame_h - 1,
                                           "rgb(200,200,200)" if node is root else colour(label)))
        fit = int((w - 4) / char_w)
        if fit >= 3:
            text = label if len(label) <= fit else label[:fit - 2] + ".."
            out.append('<text x="%.2f" y="%d">%s</text>' % (px + 2, py + frame_h - 4,
                                                            html.escape(text)))
        out.append('</g>')
        cx = x
        for name in sorted(node.kids):
            kid = node.kids[name]
            todo.append((kid, cx, level + 1))
            cx += kid.total
    out.append('</svg>')
    return "\n".join(out) + "\n"


def top(stacks, n):
    selfc = collections.Counter()
    total = 0
    for stack, c in stacks.items():
        selfc[stack[-1]] += c
        total += c
    rows = []
    for name, c in selfc.most_common(n):
        rows.append("%6.2f%%  %7d  %s" % (100.0 * c / max(total, 1), c, name))
    kern = sum(c for name, c in selfc.items() if name.endswith("_[k]"))
    rows.append("kernel self %.1f%%, user space self %.1f%% of %d samples"
                % (100.0 * kern / max(total, 1), 100.0 * (total - kern) / max(total, 1), total))
    return "   self  samples  function (leaf frame; _[k] = kernel)\n" + "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("collapse")
    s = sub.add_parser("svg")
    s.add_argument("--title", default="Flame graph")
    t = sub.add_parser("top")
    t.add_argument("-n", type=int, default=10)
    args = ap.parse_args()
    if args.cmd == "collapse":
        counts = collections.Counter(collapse(sys.stdin))
        for stack, c in sorted(counts.items()):
            sys.stdout.write("%s %d\n" % (";".join(stack), c))
    elif args.cmd == "svg":
        sys.stdout.write(svg(read_folded(sys.stdin), args.title))
    else:
        sys.stdout.write(top(read_folded(sys.stdin), args.n))


if __name__ == "__main__":
    main()
