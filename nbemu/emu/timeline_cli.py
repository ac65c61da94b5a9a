"""`nbemu timeline FILE [--png OUT] [--width W]`: look at a --timeline trace.

Without --png, prints a summary: per LWP the time spent running, runnable,
parked, sleeping and suspended and the wakeups it received; per vCPU how busy
it was. With --png, renders a static picture (for reports and issues): one row
per vCPU and per LWP, wakeup arrows as lines from waker to wakee, ticks for
instant events, a time axis and a legend. LWP rows are coloured by state (the
state colours are used nowhere else); vCPU rows are coloured by the LWP that
ran, each LWP's colour being the swatch beside its row's name (the key), and
wide enough bars carry the lid.

The PNG is drawn here, with zlib and struct only (no plotting dependency): an
RGB buffer, a 5x7 bitmap font for labels, and a minimal PNG encoder; `read_png`
decodes what `write_png` writes (the tests use it).
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import zlib
from collections import defaultdict

# -- colours ---------------------------------------------------------------------------
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = (225, 225, 225)
STATE_COLOURS = {
    "running": (44, 160, 44),
    "runnable": (255, 191, 0),
    "parked": (31, 119, 180),
    "sleep": (148, 103, 189),
    "suspended": (214, 39, 40),
    "stopped": (140, 86, 75),
}
FLOW = (60, 60, 60)
SIGNAL = (214, 39, 40)
# LWP colours (vCPU rows and the key beside LWP names): none of the state colours.
LWP_PALETTE = [(23, 190, 207), (227, 119, 194), (188, 189, 34), (57, 59, 121),
               (127, 127, 127), (0, 128, 128), (250, 128, 114), (107, 174, 214),
               (99, 121, 57), (206, 109, 189), (82, 84, 163), (255, 127, 14)]


def state_colour(name: str) -> tuple[int, int, int]:
    return STATE_COLOURS.get(name.split(" ", 1)[0], (127, 127, 127))


# -- a 5x7 bitmap font -------------------------------------------------------------------
_FONT = {
    "0": (14, 17, 19, 21, 25, 17, 14), "1": (4, 12, 4, 4, 4, 4, 14),
    "2": (14, 17, 1, 2, 4, 8, 31), "3": (31, 2, 4, 2, 1, 17, 14),
    "4": (2, 6, 10, 18, 31, 2, 2), "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14), "7": (31, 1, 2, 4, 8, 8, 8),
    "8": (14, 17, 17, 14, 17, 17, 14), "9": (14, 17, 17, 15, 1, 2, 12),
    "A": (14, 17, 17, 17, 31, 17, 17), "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14), "D": (28, 18, 17, 17, 17, 18, 28),
    "E": (31, 16, 16, 30, 16, 16, 31), "F": (31, 16, 16, 30, 16, 16, 16),
    "G": (14, 17, 16, 23, 17, 17, 15), "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14), "J": (7, 2, 2, 2, 2, 18, 12),
    "K": (17, 18, 20, 24, 20, 18, 17), "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17), "N": (17, 17, 25, 21, 19, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14), "P": (30, 17, 17, 30, 16, 16, 16),
    "Q": (14, 17, 17, 17, 21, 18, 13), "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30), "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14), "V": (17, 17, 17, 17, 17, 10, 4),
    "W": (17, 17, 17, 21, 21, 21, 10), "X": (17, 17, 10, 4, 10, 17, 17),
    "Y": (17, 17, 17, 10, 4, 4, 4), "Z": (31, 1, 2, 4, 8, 16, 31),
    " ": (0, 0, 0, 0, 0, 0, 0), "-": (0, 0, 0, 31, 0, 0, 0), ".": (0, 0, 0, 0, 0, 12, 12),
    ":": (0, 12, 12, 0, 12, 12, 0), "_": (0, 0, 0, 0, 0, 0, 31),
    "(": (2, 4, 8, 8, 8, 4, 2), ")": (8, 4, 2, 2, 2, 4, 8), "<": (2, 4, 8, 16, 8, 4, 2),
    ">": (8, 4, 2, 1, 2, 4, 8), "+": (0, 4, 4, 31, 4, 4, 0), "/": (0, 1, 2, 4, 8, 16, 0),
    "#": (10, 10, 31, 10, 31, 10, 10), "=": (0, 0, 31, 0, 31, 0, 0),
    "?": (14, 17, 1, 2, 4, 0, 4), "%": (24, 25, 2, 4, 8, 19, 3),
    ",": (0, 0, 0, 0, 12, 4, 8), "'": (4, 4, 8, 0, 0, 0, 0), "*": (0, 4, 21, 14, 21, 4, 0),
    "[": (14, 8, 8, 8, 8, 8, 14), "]": (14, 2, 2, 2, 2, 2, 14), "@": (14, 17, 23, 21, 23, 16, 14),
    # lowercase
    "a": (0, 0, 14, 1, 15, 17, 15), "b": (16, 16, 22, 25, 17, 17, 30),
    "c": (0, 0, 14, 16, 16, 17, 14), "d": (1, 1, 13, 19, 17, 17, 15),
    "e": (0, 0, 14, 17, 31, 16, 14), "f": (6, 9, 8, 28, 8, 8, 8),
    "g": (0, 0, 15, 17, 15, 1, 14), "h": (16, 16, 22, 25, 17, 17, 17),
    "i": (4, 0, 12, 4, 4, 4, 14), "j": (2, 0, 6, 2, 2, 18, 12),
    "k": (16, 16, 18, 20, 24, 20, 18), "l": (12, 4, 4, 4, 4, 4, 14),
    "m": (0, 0, 26, 21, 21, 17, 17), "n": (0, 0, 22, 25, 17, 17, 17),
    "o": (0, 0, 14, 17, 17, 17, 14), "p": (0, 0, 30, 17, 30, 16, 16),
    "q": (0, 0, 13, 19, 15, 1, 1), "r": (0, 0, 22, 25, 16, 16, 16),
    "s": (0, 0, 14, 16, 14, 1, 30), "t": (8, 8, 28, 8, 8, 9, 6),
    "u": (0, 0, 17, 17, 17, 19, 13), "v": (0, 0, 17, 17, 17, 10, 4),
    "w": (0, 0, 17, 17, 21, 21, 10), "x": (0, 0, 17, 10, 4, 10, 17),
    "y": (0, 0, 17, 17, 15, 1, 14), "z": (0, 0, 31, 2, 4, 8, 31),
}
GLYPH_W = 6          # 5 pixels and a space
GLYPH_H = 7


class Canvas:
    """An RGB image in a bytearray, with rectangles, lines and text."""

    def __init__(self, w: int, h: int, bg: tuple[int, int, int] = WHITE) -> None:
        self.w, self.h = w, h
        self.px = bytearray(bytes(bg) * (w * h))
        self.rows: dict = {}           # render(): track -> its row's (top, bottom)
        self.plot_left = 0

    def rect(self, x0: int, y0: int, x1: int, y1: int, c: tuple[int, int, int]) -> None:
        """Fill [x0, x1) x [y0, y1), clipped."""
        x0, x1 = max(0, x0), min(self.w, x1)
        y0, y1 = max(0, y0), min(self.h, y1)
        if x0 >= x1 or y0 >= y1:
            return
        row = bytes(c) * (x1 - x0)
        for y in range(y0, y1):
            o = (y * self.w + x0) * 3
            self.px[o:o + len(row)] = row

    def dot(self, x: int, y: int, c: tuple[int, int, int]) -> None:
        if 0 <= x < self.w and 0 <= y < self.h:
            o = (y * self.w + x) * 3
            self.px[o:o + 3] = bytes(c)

    def line(self, x0: int, y0: int, x1: int, y1: int, c: tuple[int, int, int]) -> None:
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.dot(x0, y0, c)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x: int, y: int, s: str, c: tuple[int, int, int] = BLACK) -> None:
        for i, ch in enumerate(s):
            g = _FONT.get(ch) or _FONT.get(ch.upper(), _FONT["?"])
            for r, bits in enumerate(g):
                for b in range(5):
                    if bits & (16 >> b):
                        self.dot(x + i * GLYPH_W + b, y + r, c)


# -- PNG -----------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(c: Canvas) -> bytes:
    stride = c.w * 3
    raw = b"".join(b"\x00" + bytes(c.px[y * stride:(y + 1) * stride]) for y in range(c.h))
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", c.w, c.h, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


def write_png(c: Canvas, path: str) -> None:
    with open(path, "wb") as f:
        f.write(png_bytes(c))


def read_png(path: str) -> tuple[int, int, bytes]:
    """Decode an 8-bit RGB, non-interlaced PNG: (width, height, RGB bytes).
    Checks signature and CRCs; all five filter types."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad CRC in {kind!r}")
        if kind == b"IHDR":
            w, h, depth, ctype, _c, _f, inter = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype != 2 or inter:
                raise ValueError("only 8-bit RGB non-interlaced PNGs")
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * 3
    out = bytearray()
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b = prev[i]
            cc = prev[i - 3] if i >= 3 else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
                line[i] = (line[i] + pr) & 255
        out += line
        prev = line
    return w, h, bytes(out)


# -- reading a trace -------------------------------------------------------------------------
class Trace:
    """A --timeline file: tracks (pid, tid) in display order, with their slices."""

    def __init__(self, doc: dict) -> None:
        evs = doc["traceEvents"] if isinstance(doc, dict) else doc
        self.other = doc.get("otherData", {}) if isinstance(doc, dict) else {}
        self.pnames: dict[int, str] = {}
        self.psort: dict[int, int] = {}
        self.tnames: dict[tuple[int, int], str] = {}
        self.tsort: dict[tuple[int, int], int] = {}
        self.slices: dict[tuple[int, int], list[dict]] = defaultdict(list)
        self.instants: list[dict] = []
        self.flows: dict[object, dict[str, dict]] = defaultdict(dict)
        for e in evs:
            ph = e.get("ph")
            key = (e.get("pid"), e.get("tid"))
            if ph == "M":
                a = e.get("args", {})
                if e["name"] == "process_name":
                    self.pnames[e["pid"]] = a.get("name", "")
                elif e["name"] == "process_sort_index":
                    self.psort[e["pid"]] = a.get("sort_index", 0)
                elif e["name"] == "thread_name":
                    self.tnames[key] = a.get("name", "")
                elif e["name"] == "thread_sort_index":
                    self.tsort[key] = a.get("sort_index", 0)
            elif ph == "X":
                self.slices[key].append(e)
            elif ph == "i":
                self.instants.append(e)
            elif ph in ("s", "f"):
                self.flows[e.get("id")][ph] = e
        keys = set(self.tnames) | set(self.slices)
        self.tracks = sorted(keys, key=lambda k: (self.psort.get(k[0], 99), k[0],
                                                  self.tsort.get(k, k[1] or 0), k[1] or 0))
        ends = [s["ts"] + s.get("dur", 0) for v in self.slices.values() for s in v]
        starts = [s["ts"] for v in self.slices.values() for s in v]
        self.t0 = min(starts, default=0.0)
        self.t1 = max(ends, default=1.0)

    @classmethod
    def load(cls, path: str) -> "Trace":
        with open(path) as f:
            return cls(json.load(f))

    def label(self, key: tuple[int, int]) -> str:
        return self.tnames.get(key, f"{key[0]}/{key[1]}")


# -- rendering -------------------------------------------------------------------------------
ROW_H = 16
ROW_GAP = 4
TOP = 24


SWATCH = 10          # the LWP's colour beside its name


def lwp_colours(tr: Trace) -> dict[int, tuple[int, int, int]]:
    """Each LWP's colour, in the order of the LWP rows (so few LWPs never share one)."""
    vcpu_pid = tr.other.get("vcpu_pid")
    lids = [k[1] for k in tr.tracks if k[0] != vcpu_pid]
    return {lid: LWP_PALETTE[i % len(LWP_PALETTE)] for i, lid in enumerate(lids)}


def _ink_on(c: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white text, whichever reads on colour c."""
    return BLACK if 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140 else WHITE


def render(tr: Trace, width: int = 1200) -> Canvas:
    """Draw the trace: one row per track, coloured slices, flows, instants, legend."""
    labels = [tr.label(k)[:28] for k in tr.tracks]
    left = 8 + SWATCH + 4 + GLYPH_W * max((len(s) for s in labels), default=4) + 8
    width = max(width, left + 200)
    plot_w = width - left - 16
    nrows = len(tr.tracks)
    # a gap between the vCPU rows and the LWP rows
    pids = [k[0] for k in tr.tracks]
    breaks = {i for i in range(1, nrows) if pids[i] != pids[i - 1]}
    ys = []
    y = TOP
    for i in range(nrows):
        if i in breaks:
            y += ROW_H // 2
        ys.append(y)
        y += ROW_H + ROW_GAP
    axis_y = y + 4
    height = axis_y + 16 + 40
    c = Canvas(width, height)
    c.rows = {k: (ys[i], ys[i] + ROW_H) for i, k in enumerate(tr.tracks)}   # (for tests)
    c.plot_left = left
    span = (tr.t1 - tr.t0) or 1.0

    def x_of(ts: float) -> int:
        return left + int((ts - tr.t0) / span * plot_w)

    title = f"{tr.other.get('program', '').rsplit('/', 1)[-1]}  clock {tr.other.get('clock', '?')}"
    if "exit_status" in tr.other:
        title += f"  exit {tr.other['exit_status']}"
    c.text(8, 8, title)
    row_of = {k: i for i, k in enumerate(tr.tracks)}
    vcpu_pid = tr.other.get("vcpu_pid")
    colour_of = lwp_colours(tr)
    for i, k in enumerate(tr.tracks):
        yy = ys[i]
        c.rect(left, yy + ROW_H // 2, left + plot_w, yy + ROW_H // 2 + 1, GRID)
        ty = yy + (ROW_H - GLYPH_H) // 2
        if k[0] != vcpu_pid:                    # the key: this LWP's colour on vCPU rows
            c.rect(8, ty, 8 + SWATCH, ty + GLYPH_H, colour_of.get(k[1], GRID))
        c.text(8 + SWATCH + 4, ty, labels[i])
        for s in tr.slices.get(k, ()):
            x0 = x_of(s["ts"])
            x1 = max(x0 + 1, x_of(s["ts"] + s.get("dur", 0)))
            if k[0] == vcpu_pid:
                lid = s.get("args", {}).get("lid", 0)
                col = colour_of.get(lid, LWP_PALETTE[lid % len(LWP_PALETTE)])
                c.rect(x0, yy + 2, x1, yy + ROW_H - 2, col)
                tag = str(lid)
                if x1 - x0 >= GLYPH_W * len(tag) + 4:     # wide enough: name the LWP
                    c.text(x0 + 2, ty, tag, _ink_on(col))
            else:
                c.rect(x0, yy + 2, x1, yy + ROW_H - 2, state_colour(s["name"]))
    for fl in tr.flows.values():
        s, f = fl.get("s"), fl.get("f")
        if not s or not f:
            continue
        a, b = row_of.get((s["pid"], s["tid"])), row_of.get((f["pid"], f["tid"]))
        if a is None or b is None:
            continue
        xa, xb = x_of(s["ts"]), x_of(f["ts"])
        ya, yb = ys[a] + ROW_H // 2, ys[b] + ROW_H // 2
        c.line(xa, ya, xb, yb, FLOW)
        c.rect(xb - 1, yb - 1, xb + 2, yb + 2, FLOW)          # the arrow's head
    for e in tr.instants:
        r = row_of.get((e.get("pid"), e.get("tid")))
        if r is None:
            continue
        x = x_of(e["ts"])
        col = SIGNAL if e.get("name", "").startswith("SIG") else BLACK
        c.rect(x, ys[r], x + 1, ys[r] + 4, col)
    # time axis: ticks and labels in ms
    c.rect(left, axis_y, left + plot_w, axis_y + 1, BLACK)
    for j in range(6):
        ts = tr.t0 + span * j / 5
        x = x_of(ts)
        c.rect(x, axis_y, x + 1, axis_y + 4, BLACK)
        lab = f"{(ts - tr.t0) / 1000:.3f} ms"
        c.text(min(x, width - GLYPH_W * len(lab) - 2), axis_y + 6, lab)
    # legend: what the colours of each kind of row mean
    lx, ly = 8, axis_y + 22
    c.text(lx, ly, "lwp rows:")
    lx += GLYPH_W * 10
    for name, col in list(STATE_COLOURS.items()) + [("wakeup", FLOW)]:
        c.rect(lx, ly, lx + 10, ly + 7, col)
        c.text(lx + 14, ly, name)
        lx += 14 + GLYPH_W * len(name) + 12
    c.text(8, ly + 14, "vcpu rows: the lwp that ran (its lid on the bar), in the colour "
                       "beside its name")
    return c


def summary(tr: Trace) -> list[str]:
    """Per LWP: time in each state and wakeups received; per vCPU: busy time."""
    span = (tr.t1 - tr.t0) or 1.0
    vcpu_pid = tr.other.get("vcpu_pid")
    woke: dict[tuple, int] = defaultdict(int)
    for fl in tr.flows.values():
        if "f" in fl:
            woke[(fl["f"]["pid"], fl["f"]["tid"])] += 1
    states = list(STATE_COLOURS)
    lines = [f"{'track':<28} " + " ".join(f"{s:>10}" for s in states) + "   wakeups  (ms)"]
    for k in tr.tracks:
        if k[0] == vcpu_pid:
            continue
        tot = dict.fromkeys(states, 0.0)
        for s in tr.slices.get(k, ()):
            st = s["name"].split(" ", 1)[0]
            if st in tot:
                tot[st] += s.get("dur", 0)
        lines.append(f"{tr.label(k)[:28]:<28} " + " ".join(f"{tot[s] / 1000:10.3f}" for s in states)
                     + f"   {woke.get(k, 0):7d}")
    for k in tr.tracks:
        if k[0] != vcpu_pid:
            continue
        busy = sum(s.get("dur", 0) for s in tr.slices.get(k, ()))
        n = len(tr.slices.get(k, ()))
        lines.append(f"{tr.label(k):<28} busy {busy / 1000:.3f} ms of {span / 1000:.3f} "
                     f"({100 * busy / span:.0f}%), {n} slices")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nbemu timeline",
                                 description="Summarise or render a --timeline trace.")
    ap.add_argument("file", metavar="FILE", help="a trace written by nbemu --timeline FILE")
    ap.add_argument("--png", metavar="OUT", help="render a PNG picture to OUT")
    ap.add_argument("--width", type=int, default=1200, metavar="W",
                    help="picture width in pixels (default 1200)")
    ns = ap.parse_args(argv)
    try:
        tr = Trace.load(ns.file)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"nbemu timeline: {ns.file}: {e}", file=sys.stderr)
        return 1
    if ns.png:
        c = render(tr, ns.width)
        write_png(c, ns.png)
        print(f"nbemu timeline: wrote {ns.png} ({c.w}x{c.h}, {len(tr.tracks)} tracks)",
              file=sys.stderr)
        return 0
    try:
        for line in summary(tr):
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:                    # (| head): the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
