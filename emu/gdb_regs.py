"""GDB's view of an LWP's registers: the target description (target.xml, one
file per architecture under guest/arch/) and the 'g'/'p' register file built
from it.

The XML is the single source of the register order: the n-th <reg> is gdb's
register n and the n-th field of a 'g' packet. This module maps each name to a
way of reading it from an LWP — a live engine or a saved context, through the
Machine's batched regs_get/regs_set for registers of up to 64 bits, or raw
uc_(context_)reg_read for the wide ones (x87 80-bit, SSE 128-bit) that the
batch arrays cannot hold.
"""
from __future__ import annotations

import ctypes
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from unicorn.unicorn_py3.unicorn import uclib

if TYPE_CHECKING:
    from syscalls.lwp import Lwp

    from .machine import Machine

ARCH_DIR = Path(__file__).resolve().parents[1] / "guest" / "arch"


def target_xml(arch: str) -> bytes | None:
    p = ARCH_DIR / f"{arch}_gdb.xml"
    return p.read_bytes() if p.is_file() else None


class Reg:
    __slots__ = ("num", "name", "size", "uc", "kind", "arg")

    def __init__(self, num: int, name: str, size: int, uc: int | None, kind: str,
                 arg: int = 0) -> None:
        self.num, self.name, self.size, self.uc, self.kind, self.arg = (
            num, name, size, uc, kind, arg)


def _amd64_map() -> dict[str, tuple[str, int, int]]:
    """name -> (kind, unicorn id, arg). Kinds: 'int' (batched), 'ro' (batched,
    writes ignored: segment selectors), 'ftag' (tag word translated), 'st'
    (x87 register arg relative to TOP), 'wide' (raw bytes)."""
    from unicorn import x86_const as X
    m: dict[str, tuple[str, int, int]] = {}
    for n in ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip "
              "eflags fs_base gs_base mxcsr").split():
        m[n] = ("int", getattr(X, "UC_X86_REG_" + n.upper()), 0)
    for n in ("cs", "ss", "ds", "es", "fs", "gs"):
        m[n] = ("ro", getattr(X, "UC_X86_REG_" + n.upper()), 0)
    for n, u in (("fctrl", "FPCW"), ("fstat", "FPSW"), ("fiseg", "FCS"), ("fioff", "FIP"),
                 ("foseg", "FDS"), ("fooff", "FDP"), ("fop", "FOP")):
        m[n] = ("int", getattr(X, "UC_X86_REG_" + u), 0)
    m["ftag"] = ("ftag", X.UC_X86_REG_FPTAG, 0)
    for i in range(8):
        m[f"st{i}"] = ("st", X.UC_X86_REG_FP0, i)
    for i in range(16):
        m[f"xmm{i}"] = ("wide", getattr(X, f"UC_X86_REG_XMM{i}"), 0)
    return m


_MAPS = {"amd64": _amd64_map}


class RegFile:
    """The registers of one architecture as gdb numbers them."""

    def __init__(self, machine: "Machine", arch: str) -> None:
        self.m = machine
        xml = target_xml(arch)
        if xml is None or arch not in _MAPS:
            raise ValueError(f"no GDB target description for {arch}")
        self.xml = xml
        names = _MAPS[arch]()
        self.regs: list[Reg] = []
        for el in ET.fromstring(xml).iter("reg"):
            name = el.get("name", "")
            size = int(el.get("bitsize", "0")) // 8
            kind, uc, arg = names.get(name, ("none", None, 0))
            self.regs.append(Reg(len(self.regs), name, size, uc, kind, arg))
        self._batched = [r for r in self.regs if r.kind in ("int", "ro", "ftag")]
        self._batch_ids = tuple(r.uc for r in self._batched)  # type: ignore[misc]
        from unicorn import x86_const as X
        self._fpsw = X.UC_X86_REG_FPSW if arch == "amd64" else None
        self._buf = ctypes.create_string_buffer(64)

    # -- raw access to wide registers -------------------------------------------
    def _raw_read(self, l: "Lwp", uc_id: int, n: int) -> bytes:
        buf = self._buf
        ctypes.memset(buf, 0, 64)
        if l is self.m.loaded:
            uclib.uc_reg_read(self.m.uch, uc_id, buf)
        else:
            uclib.uc_context_reg_read(l.l_md.context, uc_id, buf)
        return buf.raw[:n]

    def _raw_write(self, l: "Lwp", uc_id: int, data: bytes) -> None:
        buf = self._buf
        ctypes.memset(buf, 0, 64)
        ctypes.memmove(buf, data, len(data))
        if l is self.m.loaded:
            uclib.uc_reg_write(self.m.uch, uc_id, buf)
        else:
            uclib.uc_context_reg_write(l.l_md.context, uc_id, buf)

    # -- gdb's view -------------------------------------------------------------
    def read_all(self, l: "Lwp") -> list[bytes | None]:
        """Each register's bytes (target order, little-endian); None: unavailable."""
        if l.l_md is None and l is not self.m.loaded:
            return [None] * len(self.regs)
        vals = dict(zip((r.num for r in self._batched), self.m.regs_get(l, self._batch_ids)))
        top = 0
        if self._fpsw is not None:
            top = (self.m.regs_get(l, (self._fpsw,))[0] >> 11) & 7
        out: list[bytes | None] = []
        for r in self.regs:
            if r.kind in ("int", "ro"):
                out.append((vals[r.num] & ((1 << (8 * r.size)) - 1)).to_bytes(r.size, "little"))
            elif r.kind == "ftag":
                # Unicorn: 2 bits per physical register, 01 = empty; gdb: the
                # full x87 tag word, 11 = empty, 00 = valid.
                v = vals[r.num]
                tw = 0
                for i in range(8):
                    if (v >> (2 * i)) & 3 == 1:
                        tw |= 3 << (2 * i)
                out.append(tw.to_bytes(r.size, "little"))
            elif r.kind == "st":
                out.append(self._raw_read(l, r.uc + ((top + r.arg) & 7), 10))  # type: ignore[operator]
            elif r.kind == "wide":
                out.append(self._raw_read(l, r.uc, r.size))  # type: ignore[arg-type]
            else:
                out.append(None)
        return out

    def read_one(self, l: "Lwp", num: int) -> bytes | None:
        return self.read_all(l)[num]

    def write(self, l: "Lwp", num: int, data: bytes) -> bool:
        """Write register `num` (little-endian bytes). False: no such register."""
        if not 0 <= num < len(self.regs):
            return False
        r = self.regs[num]
        if l.l_md is None and l is not self.m.loaded:
            return False
        if len(data) != r.size:
            return False
        if r.kind == "int":
            self.m.regs_set(l, (r.uc,), (int.from_bytes(data, "little"),))  # type: ignore[arg-type]
        elif r.kind == "st":
            top = (self.m.regs_get(l, (self._fpsw,))[0] >> 11) & 7 if self._fpsw else 0
            self._raw_write(l, r.uc + ((top + r.arg) & 7), data)  # type: ignore[operator]
        elif r.kind == "wide":
            self._raw_write(l, r.uc, data)  # type: ignore[arg-type]
        # 'ro' (segment selectors) and 'ftag': accepted, not applied — loading a
        # selector in 64-bit mode would need descriptor tables nbemu does not model.
        return True

    def write_all(self, l: "Lwp", blob: bytes) -> bool:
        pos = 0
        for r in self.regs:
            part = blob[pos:pos + r.size]
            if len(part) < r.size:
                break
            pos += r.size
            self.write(l, r.num, part)
        return pos == len(blob)
