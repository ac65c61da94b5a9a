"""GDB's view of an LWP's registers: the target description (target.xml, of
each port in guest/arch/gdb_target.py) and the 'g'/'p' register file built
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


def _aarch64_map() -> dict[str, tuple[str, int, int]]:
    from unicorn import arm64_const as A
    m: dict[str, tuple[str, int, int]] = {}
    for i in range(29):
        m[f"x{i}"] = ("int", A.UC_ARM64_REG_X0 + i, 0)
    m["x29"] = ("int", A.UC_ARM64_REG_X29, 0)
    m["x30"] = ("int", A.UC_ARM64_REG_X30, 0)
    m["sp"] = ("int", A.UC_ARM64_REG_SP, 0)
    m["pc"] = ("int", A.UC_ARM64_REG_PC, 0)
    m["cpsr"] = ("int", A.UC_ARM64_REG_NZCV, 0)      # EL0: only the flags matter
    for i in range(32):
        m[f"v{i}"] = ("wide", A.UC_ARM64_REG_V0 + i, 0)
    m["fpsr"] = ("int", A.UC_ARM64_REG_FPSR, 0)
    m["fpcr"] = ("int", A.UC_ARM64_REG_FPCR, 0)
    m["tpidr"] = ("int", A.UC_ARM64_REG_TPIDR_EL0, 0)
    return m


def _arm_map() -> dict[str, tuple[str, int, int]]:
    from unicorn import arm_const as A
    m: dict[str, tuple[str, int, int]] = {}
    for i in range(13):
        m[f"r{i}"] = ("int", A.UC_ARM_REG_R0 + i, 0)
    for n in ("sp", "lr", "pc", "cpsr", "fpscr"):
        m[n] = ("int", getattr(A, "UC_ARM_REG_" + n.upper()), 0)
    for i in range(32):
        m[f"d{i}"] = ("int", A.UC_ARM_REG_D0 + i, 0)    # 64-bit: fits the batches
    m["tpidruro"] = ("int", A.UC_ARM_REG_C13_C0_3, 0)
    return m


def _i386_map() -> dict[str, tuple[str, int, int]]:
    """As amd64's, plus kinds 'const' (the value arg, writes ignored) and 'tls'
    (batched read, written through abi.set_tls). Unicorn's selectors stay 0 in
    nbemu: gdb sees the user selectors NetBSD loads (as mcontexts show them).
    %gs base: read from its DR0 shadow, written through the IA32_GS_BASE MSR
    (guest/arch/i386.py)."""
    from unicorn import x86_const as X

    from nbemu.guest.arch import i386 as I
    m: dict[str, tuple[str, int, int]] = {}
    for n in "eax ecx edx ebx esp ebp esi edi eip eflags mxcsr".split():
        m[n] = ("int", getattr(X, "UC_X86_REG_" + n.upper()), 0)
    for n, v in (("cs", I.USER_CS), ("ss", I.USER_DS), ("ds", I.USER_DS),
                 ("es", I.USER_DS), ("fs", I.USER_FS), ("gs", I.USER_GS)):
        m[n] = ("const", 0, v)
    for n, u in (("fctrl", "FPCW"), ("fstat", "FPSW"), ("fiseg", "FCS"), ("fioff", "FIP"),
                 ("foseg", "FDS"), ("fooff", "FDP"), ("fop", "FOP")):
        m[n] = ("int", getattr(X, "UC_X86_REG_" + u), 0)
    m["ftag"] = ("ftag", X.UC_X86_REG_FPTAG, 0)
    for i in range(8):
        m[f"st{i}"] = ("st", X.UC_X86_REG_FP0, i)
        m[f"xmm{i}"] = ("wide", getattr(X, f"UC_X86_REG_XMM{i}"), 0)
    m["fs_base"] = ("const", 0, 0)          # NetBSD/i386 TLS uses %gs only
    m["gs_base"] = ("tls", I.TLS_SHADOW, 0)
    return m


_MAPS = {"amd64": _amd64_map, "aarch64": _aarch64_map, "earmv7hf": _arm_map,
         "i386": _i386_map}


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
        self._batched = [r for r in self.regs if r.kind in ("int", "ro", "ftag", "tls")]
        self._batch_ids = tuple(r.uc for r in self._batched)  # type: ignore[misc]
        self._fpsw: int | None = None
        if arch in ("amd64", "i386"):
            from unicorn import x86_const as X
            self._fpsw = X.UC_X86_REG_FPSW
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
