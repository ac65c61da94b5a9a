"""GDB's view of an LWP's registers: the 'g'/'p' register file built from the
port's target description (Abi.gdb_target_xml: written from the one description
of guest/arch/gdb_target.py) and register map (Abi.gdb_reg_map).

The XML is the single source of the register order: the n-th <reg> is gdb's
register n and the n-th field of a 'g' packet. This module maps each name to a
way of reading it from an LWP — a live engine or a saved context, through the
Machine's batched regs_get/regs_set for registers of up to 64 bits, or raw
uc_(context_)reg_read for the wide ones (x87 80-bit, SSE 128-bit) that the
batch arrays cannot hold. An LWP off the engine (parked, runnable, stopped)
keeps its registers in its u-area: the general registers, SP and PC are read
from that memory as a debugger reads a pcb, at the offsets of the port's
layout (Abi.uarea_regs); the rest through the engine's reader of the same
saved context.
"""
from __future__ import annotations

import ctypes
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from unicorn.unicorn_py3.unicorn import uclib

from nbemu.guest.arch.gdb_target import target_xml

if TYPE_CHECKING:
    from nbemu.syscalls.lwp import Lwp

    from .machine import Machine


class Reg:
    __slots__ = ("num", "name", "size", "uc", "kind", "arg")

    def __init__(self, num: int, name: str, size: int, uc: int | None, kind: str,
                 arg: int = 0) -> None:
        self.num, self.name, self.size, self.uc, self.kind, self.arg = (
            num, name, size, uc, kind, arg)


class RegFile:
    """The registers of one architecture as gdb numbers them."""

    def __init__(self, machine: "Machine") -> None:
        self.m = machine
        abi = machine.abi
        xml = self.xml = abi.gdb_target_xml()
        names = abi.gdb_reg_map()
        self.regs: list[Reg] = []
        for el in ET.fromstring(xml).iter("reg"):
            name = el.get("name", "")
            size = int(el.get("bitsize", "0")) // 8
            kind, uc, arg = names.get(name, ("none", None, 0))
            self.regs.append(Reg(len(self.regs), name, size, uc, kind, arg))
        self._batched = [r for r in self.regs if r.kind in ("int", "ro", "ftag", "tls")]
        self._batch_ids = tuple(r.uc for r in self._batched)  # type: ignore[misc]
        self._fpsw = abi.gdb_fpsw_reg         # x87 status word (st<i> are relative to TOP)
        # gdb register number -> (offset, bytes) in the u-area; the other batched ones
        self._in_uarea = {r.num: abi.uarea_regs[r.name] for r in self._batched
                          if r.kind == "int" and r.name in abi.uarea_regs}
        self._uarea_span = max((o + n for o, n in self._in_uarea.values()), default=0)
        self._not_in_uarea = [r for r in self._batched if r.num not in self._in_uarea]
        self._not_in_uarea_ids = tuple(r.uc for r in self._not_in_uarea)  # type: ignore[misc]
        self._pc_num = next((r.num for r in self._batched if r.uc == abi.pc_reg), -1)
        self._buf = ctypes.create_string_buffer(64)

    # -- raw access to wide registers -------------------------------------------
    def _raw_read(self, l: "Lwp", uc_id: int, n: int) -> bytes:
        buf = self._buf
        ctypes.memset(buf, 0, 64)
        if l is self.m.loaded:
            uclib.uc_reg_read(self.m.uch, uc_id, buf)
        else:
            uclib.uc_context_reg_read(l.l_md, uc_id, buf)
        return buf.raw[:n]

    def _raw_write(self, l: "Lwp", uc_id: int, data: bytes) -> None:
        buf = self._buf
        ctypes.memset(buf, 0, 64)
        ctypes.memmove(buf, data, len(data))
        if l is self.m.loaded:
            uclib.uc_reg_write(self.m.uch, uc_id, buf)
        else:
            uclib.uc_context_reg_write(l.l_md, uc_id, buf)

    # -- gdb's view -------------------------------------------------------------
    def read_all(self, l: "Lwp") -> list[bytes | None]:
        """Each register's bytes (target order, little-endian); None: unavailable."""
        if l.l_md is None and l is not self.m.loaded:
            return [None] * len(self.regs)
        if l is self.m.loaded:
            vals = dict(zip((r.num for r in self._batched), self.m.regs_get(l, self._batch_ids)))
        else:
            vals = self._read_uarea(l)
        top = 0
        if self._fpsw is not None:
            top = (self.m.regs_get(l, (self._fpsw,))[0] >> 11) & 7
        out: list[bytes | None] = []
        for r in self.regs:
            if r.kind in ("int", "ro", "tls"):
                out.append((vals[r.num] & ((1 << (8 * r.size)) - 1)).to_bytes(r.size, "little"))
            elif r.kind == "const":
                out.append(r.arg.to_bytes(r.size, "little"))
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

    def _read_uarea(self, l: "Lwp") -> dict[int, int]:
        """The batched registers of an LWP off the engine: from its u-area."""
        raw = ctypes.string_at(l.l_uarea, self._uarea_span)
        vals = {num: int.from_bytes(raw[off:off + n], "little")
                for num, (off, n) in self._in_uarea.items()}
        vals.update(zip((r.num for r in self._not_in_uarea),
                        self.m.regs_get(l, self._not_in_uarea_ids)))
        pc = self.m.pending_pc(l)
        if pc is not None:                 # written by gdb, not in the u-area yet (ARM)
            vals[self._pc_num] = pc
        return vals

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
        elif r.kind == "tls":
            self.m.abi.set_tls(self.m, l, int.from_bytes(data, "little"))
        # 'ro' / 'const' (segment selectors) and 'ftag': accepted, not applied —
        # loading a selector would need descriptor tables nbemu does not model.
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
