"""Just enough ELF to recognise and load a NetBSD program.

NetBSD's toolchain and zig leave EI_OSABI at SYSV; Go sets it to NetBSD. The
trustworthy mark is the `.note.netbsd.ident` note (name "NetBSD", type
NT_NETBSD_IDENT = 1), found here through the PT_NOTE segments.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_PHDR, PT_TLS = 1, 2, 3, 4, 6, 7
PF_X, PF_W, PF_R = 1, 2, 4
ET_EXEC, ET_DYN = 2, 3
ELFOSABI_NETBSD = 2
NT_NETBSD_IDENT = 1


class ElfError(Exception):
    """A file nbemu cannot run, with the shell-style exit code to use."""

    def __init__(self, msg: str, code: int = 126) -> None:
        super().__init__(msg)
        self.code = code


@dataclass
class Phdr:
    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_filesz: int
    p_memsz: int
    p_align: int


@dataclass
class ElfImage:
    data: bytes
    elf_class: int          # 32 or 64
    little: bool
    osabi: int
    e_type: int
    e_machine: int
    e_entry: int
    e_phoff: int
    e_phentsize: int
    phdrs: list[Phdr] = field(default_factory=list)
    netbsd_version: int | None = None
    interp: str | None = None

    @property
    def is_netbsd(self) -> bool:
        return self.netbsd_version is not None or self.osabi == ELFOSABI_NETBSD


def parse(data: bytes) -> ElfImage:
    if len(data) < 16 or data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ElfError(f"bad ELF identification (class {ei_class}, data {ei_data})")
    is64 = ei_class == 2
    end = "<" if ei_data == 1 else ">"
    try:
        if is64:
            (e_type, e_machine, _v, e_entry, e_phoff, _sh, _fl, _eh, e_phentsize,
             e_phnum) = struct.unpack_from(end + "HHIQQQIHHH", data, 16)
        else:
            (e_type, e_machine, _v, e_entry, e_phoff, _sh, _fl, _eh, e_phentsize,
             e_phnum) = struct.unpack_from(end + "HHIIIIIHHH", data, 16)
    except struct.error:
        raise ElfError("truncated ELF header") from None
    img = ElfImage(data, 64 if is64 else 32, ei_data == 1, data[7], e_type, e_machine,
                   e_entry, e_phoff, e_phentsize)
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        try:
            if is64:
                t, fl, o, va, _pa, fs, ms, al = struct.unpack_from(end + "IIQQQQQQ", data, off)
            else:
                t, o, va, _pa, fs, ms, fl, al = struct.unpack_from(end + "IIIIIIII", data, off)
        except struct.error:
            raise ElfError("truncated program headers") from None
        img.phdrs.append(Phdr(t, fl, o, va, fs, ms, al))
    for ph in img.phdrs:
        if ph.p_type == PT_NOTE:
            _scan_notes(img, data[ph.p_offset:ph.p_offset + ph.p_filesz], end)
        elif ph.p_type == PT_INTERP:
            img.interp = data[ph.p_offset:ph.p_offset + ph.p_filesz].rstrip(b"\0").decode(
                "latin-1")
    return img


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
