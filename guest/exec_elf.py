"""Build a process image from a NetBSD ELF program, as NetBSD's kern_exec.c
and exec_elf.c do: map the PT_LOAD segments, set up the data segment (break)
and the main stack with argc/argv/envp/auxv and ps_strings, and give the first
LWP the registers of the port's setregs().
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from syscalls.uvm_map import PROT_ALL, PROT_EXEC, PROT_READ, PROT_WRITE, VmMap

from . import arch as archmod
from .elf import ET_DYN, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD, PT_PHDR, ElfError, ElfImage, parse

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_STACKBASE = 13
AT_EUID, AT_RUID, AT_EGID, AT_RGID = 2000, 2001, 2002, 2003
AT_SUN_EXECNAME = 2014       # NetBSD's name for the executable's path (Linux: AT_EXECFN)


@dataclass
class ExecResult:
    entry: int
    sp: int
    ps_strings: int
    regs: dict[int, int]
    image: ElfImage
    abi: archmod.Abi


def read_program(path: str) -> tuple[ElfImage, archmod.Abi]:
    """Open and check a program; ElfError with the shell's exit code otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ElfError(f"{path}: No such file or directory", 127) from None
    except IsADirectoryError:
        raise ElfError(f"{path}: Is a directory", 126) from None
    except PermissionError:
        raise ElfError(f"{path}: Permission denied", 126) from None
    except OSError as e:
        raise ElfError(f"{path}: {e.strerror}", 126) from None
    try:
        img = parse(data)
    except ElfError as e:
        raise ElfError(f"{path}: {e}", e.code) from None
    if not img.is_netbsd:
        raise ElfError(f"{path}: not a NetBSD program (no .note.netbsd.ident note, "
                       f"OS/ABI {img.osabi}): nbemu runs NetBSD binaries only")
    abi = archmod.for_elf_machine(img.e_machine)
    if abi is None:
        name = archmod.KNOWN_UNSUPPORTED.get(img.e_machine, f"machine {img.e_machine}")
        raise ElfError(f"{path}: NetBSD/{name} programs are not supported "
                       f"(supported: {', '.join(archmod.supported_names())})")
    if img.elf_class != abi.elf_class or not img.little:
        raise ElfError(f"{path}: ELF class/byte order ({img.elf_class}-bit, "
                       f"{'little' if img.little else 'big'}-endian) contradicts its machine "
                       f"({abi.name})")
    if img.interp is not None:
        raise ElfError(f"{path}: dynamically linked NetBSD programs (interpreter "
                       f"{img.interp}) are not supported yet; link it statically")
    if img.e_type not in (ET_EXEC, ET_DYN):
        raise ElfError(f"{path}: not an executable (ELF type {img.e_type})")
    return img, abi


def _prot(flags: int) -> int:
    return ((PROT_READ if flags & PF_R else 0) | (PROT_WRITE if flags & PF_W else 0)
            | (PROT_EXEC if flags & PF_X else 0))


def load_segments(vm: VmMap, img: ElfImage, bias: int) -> tuple[int, int]:
    """Map every PT_LOAD; returns (lowest address, end of the highest segment)."""
    page = vm.page
    lo, hi = None, 0
    for ph in img.phdrs:
        if ph.p_type != PT_LOAD or ph.p_memsz == 0:
            continue
        va = ph.p_vaddr + bias
        start = va & ~(page - 1)
        end = (va + ph.p_memsz + page - 1) & ~(page - 1)
        prot = _prot(ph.p_flags)
        # Segments may share a page at their boundary: map only new pages, and
        # give shared pages the union of both protections.
        pg = start
        while pg < end:
            e = vm.lookup(pg)
            if e is None:
                nxt = pg
                while nxt < end and vm.lookup(nxt) is None:
                    nxt += page
                vm.map_anon(pg, nxt - pg, prot, PROT_ALL, "text" if prot & PROT_EXEC else "data")
                pg = nxt
            else:
                vm.protect(pg, pg + page, e.prot | prot)
                pg += page
        vm.write_force(va, img.data[ph.p_offset:ph.p_offset + ph.p_filesz])
        if ph.p_memsz > ph.p_filesz:
            vm.zero_force(va + ph.p_filesz, ph.p_memsz - ph.p_filesz)
        lo = start if lo is None else min(lo, start)
        hi = max(hi, va + ph.p_memsz)
    if lo is None:
        raise ElfError("no loadable segments")
    return lo, hi


def placedynexec(img: ElfImage, page_size: int) -> int:
    """Load offset of a position-independent executable, as exec_elf.c's
    elf_placedynexec() picks it with PaX ASLR off: the largest PT_LOAD alignment,
    at least a page (so a PIE does not depend on where the host would put it)."""
    align = max((ph.p_align for ph in img.phdrs if ph.p_type == PT_LOAD), default=1)
    return max(align, page_size)


def exec_image(vm: VmMap, img: ElfImage, abi: archmod.Abi, argv: list[bytes],
               envp: list[bytes], execname: bytes, uid: int, gid: int) -> ExecResult:
    page = abi.page_size
    bias = 0
    if img.e_type == ET_DYN:
        bias = placedynexec(img, page)
    lo, hi = load_segments(vm, img, bias)
    # The data segment (break) starts after the highest segment.
    vm.vm_daddr = (hi + page - 1) & ~(page - 1)
    vm.vm_dsize = 0
    # Main stack: the default stack limit below USRSTACK.
    top = abi.usrstack
    ssize = abi.dflssiz
    vm.map_anon(top - ssize, ssize, PROT_READ | PROT_WRITE, PROT_ALL, "stack")
    vm.vm_minsaddr = top
    vm.vm_maxsaddr = top - abi.maxssiz

    ws = abi.word_size
    ps_size = 4 * ws               # struct ps_strings: ptr, int, ptr, int (padded)
    ps_strings = top - ps_size
    # Strings, below ps_strings: exec name, then argv, then envp.
    blob = bytearray()
    offs_arg, offs_env = [], []
    name_off = len(blob)
    blob += execname + b"\0"
    for s in argv:
        offs_arg.append(len(blob))
        blob += s + b"\0"
    for s in envp:
        offs_env.append(len(blob))
        blob += s + b"\0"
    str_base = (ps_strings - len(blob)) & ~(ws - 1)
    vm.write_force(str_base, bytes(blob))

    phdr_va = None
    for ph in img.phdrs:
        if ph.p_type == PT_PHDR:
            phdr_va = ph.p_vaddr + bias
    if phdr_va is None:
        first = next(ph for ph in img.phdrs if ph.p_type == PT_LOAD)
        phdr_va = first.p_vaddr - first.p_offset + img.e_phoff + bias
    entry = img.e_entry + bias
    auxv = [(AT_PHDR, phdr_va), (AT_PHENT, img.e_phentsize), (AT_PHNUM, len(img.phdrs)),
            (AT_PAGESZ, page), (AT_BASE, 0), (AT_FLAGS, 0), (AT_ENTRY, entry),
            (AT_STACKBASE, top), (AT_EUID, uid), (AT_RUID, uid), (AT_EGID, gid),
            (AT_RGID, gid), (AT_SUN_EXECNAME, str_base + name_off), (AT_NULL, 0)]
    nwords = 1 + len(argv) + 1 + len(envp) + 1 + 2 * len(auxv)
    sp = (str_base - nwords * ws) & ~15
    fmt = "<" + ("Q" if ws == 8 else "I") * nwords
    words = [len(argv)] + [str_base + o for o in offs_arg] + [0] \
        + [str_base + o for o in offs_env] + [0]
    for t, v in auxv:
        words += [t, v]
    vm.write_force(sp, struct.pack(fmt, *words))
    argv_va = sp + ws
    envp_va = argv_va + (len(argv) + 1) * ws
    ps = struct.pack("<QiiQii" if ws == 8 else "<IiIi",
                     *((argv_va, len(argv), 0, envp_va, len(envp), 0) if ws == 8
                       else (argv_va, len(argv), envp_va, len(envp))))
    vm.write_force(ps_strings, ps[:ps_size])
    regs = abi.setregs(entry, sp, ps_strings)
    return ExecResult(entry, sp, ps_strings, regs, img, abi)


def host_ids() -> tuple[int, int]:
    return os.getuid(), os.getgid()
