"""Just enough ELF to recognise and load a NetBSD program.

NetBSD's toolchain and zig leave EI_OSABI at SYSV; Go sets it to NetBSD. The
trustworthy mark is the `.note.netbsd.ident` note (name "NetBSD", type
NT_NETBSD_IDENT = 1), found here through the PT_NOTE segments.

parse() refuses, with ENOEXEC's exit status 126 and one line, what NetBSD's
exec_elf.c refuses while reading the headers (elf_check_header, the reads of
elf_read_from that must not come up short, the PT_INTERP checks). `data` is
bytes or a read-only mmap of the file: nothing here reads past its end.
"""
from __future__ import annotations

import mmap
import struct
from typing import Union

from nbemu.plain import ValueRecord

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_PHDR, PT_TLS = 1, 2, 3, 4, 6, 7
PF_X, PF_W, PF_R = 1, 2, 4
ET_EXEC, ET_DYN = 2, 3
ELFOSABI_NETBSD = 2
NT_NETBSD_IDENT = 1
ELF_MAXPHNUM = 128          # exec_elf.c: more program headers is ENOEXEC
ELF_MAXSHNUM = 32768        # exec_elf.c: more section headers is ENOEXEC
ELF_MAXNOTESIZE = 1024      # exec_elf.c: larger PT_NOTE segments are not scanned
MAXPATHLEN = 1024           # sys/param.h: PT_INTERP's limit

Buffer = Union[bytes, bytearray, memoryview, mmap.mmap]


class ElfError(Exception):
    """A file nbemu cannot run, with the shell-style exit code to use."""

    def __init__(self, msg: str, code: int = 126) -> None:
        super().__init__(msg)
        self.code = code


class Phdr(ValueRecord):
    _fields = ("p_type", "p_flags", "p_offset", "p_vaddr", "p_filesz", "p_memsz", "p_align")

    def __init__(self, p_type: int, p_flags: int, p_offset: int, p_vaddr: int, p_filesz: int,
                 p_memsz: int, p_align: int) -> None:
        self.p_type = p_type
        self.p_flags = p_flags
        self.p_offset = p_offset
        self.p_vaddr = p_vaddr
        self.p_filesz = p_filesz
        self.p_memsz = p_memsz
        self.p_align = p_align


class ElfImage(ValueRecord):
    _fields = ("data", "elf_class", "little", "osabi", "e_type", "e_machine", "e_entry",
               "e_phoff", "e_phentsize", "phdrs", "netbsd_version", "interp")

    def __init__(self, data: Buffer, elf_class: int, little: bool, osabi: int, e_type: int,
                 e_machine: int, e_entry: int, e_phoff: int, e_phentsize: int,
                 phdrs: list[Phdr] | None = None, netbsd_version: int | None = None,
                 interp: str | None = None) -> None:
        self.data = data
        self.elf_class = elf_class      # 32 or 64
        self.little = little
        self.osabi = osabi
        self.e_type = e_type
        self.e_machine = e_machine
        self.e_entry = e_entry
        self.e_phoff = e_phoff
        self.e_phentsize = e_phentsize
        self.phdrs = [] if phdrs is None else phdrs
        self.netbsd_version = netbsd_version
        self.interp = interp

    @property
    def is_netbsd(self) -> bool:
        return self.netbsd_version is not None or self.osabi == ELFOSABI_NETBSD


def _read(data: Buffer, off: int, n: int, what: str) -> bytes:
    """elf_read_from(): n bytes at off, all of them, or ENOEXEC."""
    if off < 0 or n < 0 or off + n > len(data):
        raise ElfError(f"{what} beyond the end of the file")
    return bytes(data[off:off + n])


def parse(data: Buffer) -> ElfImage:
    if len(data) < 16 or data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ElfError(f"bad ELF identification (class {ei_class}, data {ei_data})")
    is64 = ei_class == 2
    end = "<" if ei_data == 1 else ">"
    hdr = end + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH")
    if len(data) < 16 + struct.calcsize(hdr):
        raise ElfError("truncated ELF header")
    (e_type, e_machine, _v, e_entry, e_phoff, _sh, _fl, _eh, e_phentsize,
     e_phnum, _she, e_shnum, _shs) = struct.unpack_from(hdr, data, 16)
    img = ElfImage(data, 64 if is64 else 32, ei_data == 1, data[7], e_type, e_machine,
                   e_entry, e_phoff, e_phentsize)
    if e_shnum > ELF_MAXSHNUM:
        raise ElfError(f"{e_shnum} section headers (NetBSD accepts at most {ELF_MAXSHNUM})")
    if e_phnum == 0 or e_phnum > ELF_MAXPHNUM:
        raise ElfError(f"{e_phnum} program headers (NetBSD accepts 1 to {ELF_MAXPHNUM})")
    # NetBSD reads e_phnum * sizeof(Elf_Phdr) at e_phoff, whatever e_phentsize says.
    phfmt = end + ("IIQQQQQQ" if is64 else "IIIIIIII")
    phsize = struct.calcsize(phfmt)
    table = _read(data, e_phoff, e_phnum * phsize, "the program headers lie")
    for i in range(e_phnum):
        if is64:
            t, fl, o, va, _pa, fs, ms, al = struct.unpack_from(phfmt, table, i * phsize)
        else:
            t, o, va, _pa, fs, ms, fl, al = struct.unpack_from(phfmt, table, i * phsize)
        img.phdrs.append(Phdr(t, fl, o, va, fs, ms, al))
    for ph in img.phdrs:
        if ph.p_type == PT_NOTE and ph.p_filesz <= ELF_MAXNOTESIZE \
                and ph.p_offset + ph.p_filesz <= len(data):
            _scan_notes(img, bytes(data[ph.p_offset:ph.p_offset + ph.p_filesz]), end)
        elif ph.p_type == PT_INTERP and img.interp is None:
            img.interp = _interp(data, ph)
    return img


def _interp(data: Buffer, ph: Phdr) -> str:
    """exec_elf.c: 2 to MAXPATHLEN bytes, NUL-terminated exactly at the end."""
    if ph.p_filesz < 2 or ph.p_filesz > MAXPATHLEN:
        raise ElfError(f"bad interpreter name length {ph.p_filesz}")
    raw = _read(data, ph.p_offset, ph.p_filesz, "the interpreter name lies")
    if raw.find(b"\0") != len(raw) - 1:
        raise ElfError("the interpreter name is not a NUL-terminated string")
    return raw[:-1].decode("latin-1")


def _scan_notes(img: ElfImage, notes: bytes, end: str) -> None:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from(end + "III", notes, pos)
        pos += 12
        name = notes[pos:pos + namesz].rstrip(b"\0")
        pos += (namesz + 3) & ~3
        desc = notes[pos:pos + descsz]
        pos += (descsz + 3) & ~3
        if name == b"NetBSD" and ntype == NT_NETBSD_IDENT and len(desc) >= 4:
            img.netbsd_version = struct.unpack_from(end + "I", desc)[0]
