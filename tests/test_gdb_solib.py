"""The gdb stub's view of a dynamic program's shared objects (nbemu/emu/gdb_solib.py):
ld.elf_so's r_debug / link_map list as laid out in guest memory, on 64- and 32-bit
ports, and gdb's <library-list> made of it.  The end-to-end check with gdb and a
real dynamic NetBSD program is in tests/test_netbsd_dynamic.py."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from nbemu.emu.gdb_solib import DT_DEBUG, SharedLibraries


class Memory:
    """A sparse guest memory: read() returns what is mapped (short reads past it)."""

    def __init__(self, ws: int) -> None:
        self.ws = ws
        self.bytes: dict[int, int] = {}

    def put(self, addr: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.bytes[addr + i] = b

    def word(self, addr: int, v: int) -> None:
        self.put(addr, struct.pack("<Q" if self.ws == 8 else "<I", v))

    def read(self, addr: int, n: int) -> bytes:
        out = bytearray()
        for a in range(addr, addr + n):
            if a not in self.bytes:
                break
            out.append(self.bytes[a])
        return bytes(out)


def _layout(ws: int, names: list[str], cyclic: bool = False) -> tuple[Memory, int]:
    m = Memory(ws)
    dyn, rdebug, lms, strs = 0x1000, 0x2000, 0x3000, 0x4000
    # _DYNAMIC: DT_NEEDED (1), DT_DEBUG, DT_NULL
    for i, (tag, val) in enumerate([(1, 5), (DT_DEBUG, rdebug), (0, 0)]):
        m.word(dyn + 2 * i * ws, tag)
        m.word(dyn + (2 * i + 1) * ws, val)
    m.put(rdebug, struct.pack("<i", 1) + b"\0" * (ws - 4))     # r_version, padding
    m.word(rdebug + ws, lms)                                    # r_map
    for i, name in enumerate(names):
        lm = lms + i * 5 * ws
        m.put(strs + 64 * i, name.encode() + b"\0")
        nxt = lms + (i + 1) * 5 * ws if i + 1 < len(names) else (lms if cyclic else 0)
        for j, v in enumerate([0x10000 * i, strs + 64 * i, 0x500 + i, nxt,
                               lm - 5 * ws if i else 0]):
            m.word(lm + j * ws, v)
    return m, dyn


@pytest.mark.parametrize("ws", [8, 4])
def test_objects_follow_r_map_past_the_program(ws: int) -> None:
    m, dyn = _layout(ws, ["", "/usr/lib/libpthread.so.1", "/usr/lib/libc.so.12",
                          "/libexec/ld.elf_so"])
    libs = SharedLibraries(ws, dyn, "/", None)
    objs = libs.objects(m.read)
    assert [o.name for o in objs] == ["/usr/lib/libpthread.so.1", "/usr/lib/libc.so.12",
                                      "/libexec/ld.elf_so"]
    assert [o.l_addr for o in objs] == [0x10000, 0x20000, 0x30000]
    assert [o.l_ld for o in objs] == [0x501, 0x502, 0x503]


def test_no_list_before_ld_elf_so_sets_dt_debug() -> None:
    m, dyn = _layout(8, ["", "/usr/lib/libc.so.12"])
    m.word(dyn + 3 * 8, 0)                      # DT_DEBUG's value not filled in yet
    assert SharedLibraries(8, dyn, "/", None).objects(m.read) == ()
    assert SharedLibraries(8, 0, "/", None).objects(m.read) == ()     # static program


def test_a_cyclic_or_unmapped_list_ends() -> None:
    m, dyn = _layout(8, ["", "/a.so", "/b.so"], cyclic=True)
    assert [o.name for o in SharedLibraries(8, dyn, "/", None).objects(m.read)] \
        == ["/a.so", "/b.so"]
    m, dyn = _layout(8, ["", "/a.so"])
    m.word(0x3000 + 5 * 8 + 3 * 8, 0xdead0000)   # /a.so's l_next: unmapped memory
    assert [o.name for o in SharedLibraries(8, dyn, "/", None).objects(m.read)] == ["/a.so"]


def test_library_list_xml_names_host_paths_under_the_root(tmp_path: Path) -> None:
    lib = tmp_path / "usr" / "lib" / "libc.so.12"
    lib.parent.mkdir(parents=True)
    # A minimal ELF64 header whose first PT_LOAD has p_vaddr 0x1000.
    ehdr = bytearray(64)
    ehdr[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", ehdr, 0x20, 64)
    struct.pack_into("<HH", ehdr, 0x36, 56, 1)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x1000, 0x1000, 0x100, 0x100, 0x1000)
    lib.write_bytes(bytes(ehdr) + phdr)
    m, dyn = _layout(8, ["", "/usr/lib/libc.so.12"])
    libs = SharedLibraries(8, dyn, str(tmp_path), None)
    xml = libs.xml(libs.objects(m.read)).decode()
    assert f'<library name="{lib}"><segment address="0x11000"/></library>' in xml, xml
    assert xml.startswith('<library-list version="1.0">')
