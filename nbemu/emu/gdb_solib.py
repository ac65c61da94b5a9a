"""Shared libraries of a dynamic NetBSD program, as gdb needs to see them.

NetBSD's run-time linker (ld.elf_so) keeps the list of loaded objects where a
debugger finds it: it stores the address of its ``struct r_debug``
(``_rtld_debug``) in the program's DT_DEBUG entry, ``r_map`` heads a list of
``struct link_map`` {l_addr, l_name, l_ld, l_next, l_prev}, and it calls the empty
function ``_rtld_debug_state`` (also ``r_brk``) before and after every change
(libexec/ld.elf_so/rtld.c, include/link_elf.h).

The stub gives gdb that list as ``qXfer:libraries:read`` (gdb's target-reported
library list, what its default "solib-target" support reads when the OS ABI is
none), naming each object by its host path so gdb can read it through vFile,
and watches ``_rtld_debug_state`` to tell gdb (a ``library`` stop) when the
list has changed, so pending breakpoints in libpthread resolve when it loads.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable
from xml.sax.saxutils import quoteattr

if TYPE_CHECKING:
    from nbemu.guest.exec_elf import ExecResult

    from .boot import Session

DT_NULL, DT_DEBUG = 0, 21
PT_LOAD, PT_DYNAMIC = 1, 2
MAX_OBJECTS = 4096            # a guard against a corrupt (cyclic) list
MAX_NAME = 1024               # MAXPATHLEN

ReadMem = Callable[[int, int], bytes]


@dataclass(frozen=True)
class SharedObject:
    name: str                 # l_name: the guest path ld.elf_so opened
    l_addr: int               # load bias
    l_ld: int                 # its _DYNAMIC
    lm: int                   # the link_map's own address


class SharedLibraries:
    """The loaded objects of one process, read from guest memory."""

    def __init__(self, word_size: int, dynamic: int, root: str,
                 debug_state: int | None) -> None:
        self.ws = word_size
        self.fmt = "<Q" if word_size == 8 else "<I"
        self.dynamic = dynamic            # the program's _DYNAMIC (0: a static program)
        self.root = root
        self.debug_state = debug_state    # _rtld_debug_state's address, if known
        self.reported: tuple[SharedObject, ...] = ()
        self._first_seg: dict[str, int] = {}

    def _word(self, read: ReadMem, addr: int) -> int | None:
        data = read(addr, self.ws)
        if len(data) != self.ws:
            return None
        return struct.unpack(self.fmt, data)[0]

    def r_debug(self, read: ReadMem) -> int:
        """&_rtld_debug from the program's DT_DEBUG (0 until ld.elf_so has set it)."""
        if not self.dynamic:
            return 0
        for i in range(4096):
            tag = self._word(read, self.dynamic + 2 * i * self.ws)
            val = self._word(read, self.dynamic + (2 * i + 1) * self.ws)
            if tag is None or val is None or tag == DT_NULL:
                return 0
            if tag == DT_DEBUG:
                return val
        return 0

    def objects(self, read: ReadMem) -> tuple[SharedObject, ...]:
        """Every object on r_map but the program itself (the first entry)."""
        rd = self.r_debug(read)
        if not rd:
            return ()
        # struct r_debug { int r_version; struct link_map *r_map; ... }: r_map is
        # one word in (the int is padded to a pointer's alignment).
        lm = self._word(read, rd + self.ws)
        out: list[SharedObject] = []
        seen: set[int] = set()
        first = True
        while lm and lm not in seen and len(seen) < MAX_OBJECTS:
            seen.add(lm)
            words = [self._word(read, lm + i * self.ws) for i in range(4)]
            if any(w is None for w in words):
                break
            l_addr, l_name, l_ld, l_next = words  # type: ignore[misc]
            if not first:
                out.append(SharedObject(self._string(read, l_name), l_addr, l_ld, lm))
            first = False
            lm = l_next
        return tuple(out)

    def _string(self, read: ReadMem, addr: int) -> str:
        if not addr:
            return ""
        raw = read(addr, MAX_NAME)
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def host_path(self, name: str) -> str:
        """Where the host has a guest path (inside --root)."""
        if self.root in ("", "/"):
            return name
        return os.path.join(self.root, name.lstrip("/"))

    def _segment_base(self, obj: SharedObject) -> int:
        """Where the object's first PT_LOAD landed: l_addr + its p_vaddr."""
        path = self.host_path(obj.name)
        if path not in self._first_seg:
            self._first_seg[path] = _first_load_vaddr(path)
        return obj.l_addr + self._first_seg[path]

    def xml(self, objs: tuple[SharedObject, ...]) -> bytes:
        """gdb's <library-list> (features/library-list.dtd)."""
        lines = ['<library-list version="1.0">']
        for o in objs:
            lines.append(f"  <library name={quoteattr(self.host_path(o.name))}>"
                         f'<segment address="{self._segment_base(o):#x}"/></library>')
        lines.append("</library-list>\n")
        return "\n".join(lines).encode()


def _first_load_vaddr(path: str) -> int:
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF":
                return 0
            is64 = head[4] == 2
            if is64:
                phoff, = struct.unpack_from("<Q", head, 0x20)
                phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            else:
                phoff, = struct.unpack_from("<I", head, 0x1c)
                phentsize, phnum = struct.unpack_from("<HH", head, 0x2a)
            f.seek(phoff)
            table = f.read(phentsize * min(phnum, 512))
    except (OSError, struct.error):
        return 0
    for i in range(len(table) // max(phentsize, 1)):
        ph = table[i * phentsize:(i + 1) * phentsize]
        if len(ph) < 16:
            break
        if struct.unpack_from("<I", ph, 0)[0] == PT_LOAD:
            return struct.unpack_from("<Q" if is64 else "<I", ph, 16 if is64 else 8)[0]
    return 0


def _symbol(path: str, name: str) -> int | None:
    """The value of a symbol of an ELF file (.symtab, else .dynsym)."""
    try:
        from elftools.elf.elffile import ELFFile
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for sec in (".symtab", ".dynsym"):
                tab = elf.get_section_by_name(sec)
                if tab is None:
                    continue
                syms = tab.get_symbol_by_name(name)
                if syms:
                    return int(syms[0]["st_value"])
    except Exception:              # a damaged or missing file: no events, list still served
        return None
    return None


def for_session(session: "Session") -> SharedLibraries | None:
    """The library view of a session's first program; None for a static program."""
    return for_exec(session.exec_result, session.opts.root)


def for_exec(res: "ExecResult", root: str) -> SharedLibraries | None:
    """The library view of a program exec_image loaded; None for a static one."""
    img = res.image
    if img.interp is None:
        return None
    dyn = next((ph for ph in img.phdrs if ph.p_type == PT_DYNAMIC), None)
    if dyn is None:
        return None
    libs = SharedLibraries(res.abi.word_size, dyn.p_vaddr + res.prog_bias, root, None)
    off = _symbol(libs.host_path(img.interp), "_rtld_debug_state")
    if off is not None:
        libs.debug_state = res.interp_base + off
    return libs
