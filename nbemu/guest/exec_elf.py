"""Build a process image from a NetBSD ELF program, as NetBSD's kern_exec.c
and exec_elf.c do: check the file (check_exec), map the PT_LOAD segments and
the interpreter named by PT_INTERP, set up the data segment (break) and the
main stack with argc/argv/envp/auxv and ps_strings, and give the first LWP the
registers of the port's setregs().

Refusals are ElfErrors carrying the exit status a shell gives for execve's
errno: 127 for ENOENT, 126 for the others (EACCES: not a regular file, no
execute permission; ENOEXEC: malformed headers or segments; ENOMEM: text or
data beyond MAXTSIZ / RLIMIT_DATA, segments outside the user address space).
"""
from __future__ import annotations

import mmap
import os
import stat
import struct
from typing import Any

from nbemu.plain import ValueRecord

from nbemu.syscalls.uvm_map import PROT_ALL, PROT_EXEC, PROT_READ, PROT_WRITE, VmMap

from . import arch as archmod
from .elf import (ET_DYN, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD, PT_PHDR, Buffer, ElfError,
                  ElfImage, parse)

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_STACKBASE = 13
AT_EUID, AT_RUID, AT_EGID, AT_RGID = 2000, 2001, 2002, 2003
AT_SUN_EXECNAME = 2014       # NetBSD's name for the executable's path (Linux: AT_EXECFN)

# MAXTSIZ of each port's vmparam.h: kern_exec.c refuses a larger text (ENOMEM).
MAXTSIZ = {"amd64": 256 << 20, "i386": 256 << 20, "aarch64": 1 << 30, "earmv7hf": 128 << 20}


class ExecResult(ValueRecord):
    _fields = ("entry", "sp", "ps_strings", "regs", "image", "abi", "interp_base", "prog_bias")

    def __init__(self, entry: int, sp: int, ps_strings: int, regs: dict[int, int],
                 image: ElfImage, abi: archmod.Abi, interp_base: int = 0,
                 prog_bias: int = 0) -> None:
        self.entry = entry
        self.sp = sp
        self.ps_strings = ps_strings
        self.regs = regs
        self.image = image
        self.abi = abi
        self.interp_base = interp_base    # AT_BASE: where the interpreter was loaded (0: none)
        self.prog_bias = prog_bias        # where an ET_DYN program was placed (0: ET_EXEC)


def open_exec(path: str) -> Buffer:
    """check_exec(): the contents of a regular file we may execute. stat first,
    so that a FIFO or a device is refused without being opened or read."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ElfError(f"{path}: No such file or directory", 127) from None
    except OSError as e:
        raise ElfError(f"{path}: {e.strerror}", 126) from None
    if stat.S_ISDIR(st.st_mode):
        raise ElfError(f"{path}: Is a directory", 126)
    if not stat.S_ISREG(st.st_mode):
        raise ElfError(f"{path}: Permission denied (not a regular file)", 126)
    # VOP_ACCESS(VEXEC): even root needs one execute bit (access(2) agrees).
    if not os.access(path, os.X_OK):
        raise ElfError(f"{path}: Permission denied", 126)
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b""
            # Mapped, not read: pages come in as the loader copies them.
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise ElfError(f"{path}: {e.strerror}", 126) from None


def read_program(path: str) -> tuple[ElfImage, archmod.Abi]:
    """Open and check a program; ElfError with the shell's exit code otherwise."""
    data = open_exec(path)
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
    _check_class(path, img, abi)
    if img.e_type not in (ET_EXEC, ET_DYN):
        raise ElfError(f"{path}: not an executable (ELF type {img.e_type})")
    return img, abi


def _check_class(path: str, img: ElfImage, abi: archmod.Abi) -> None:
    if img.elf_class != abi.elf_class or not img.little:
        raise ElfError(f"{path}: ELF class/byte order ({img.elf_class}-bit, "
                       f"{'little' if img.little else 'big'}-endian) contradicts its machine "
                       f"({abi.name})")


def _prot(flags: int) -> int:
    return ((PROT_READ if flags & PF_R else 0) | (PROT_WRITE if flags & PF_W else 0)
            | (PROT_EXEC if flags & PF_X else 0))


def check_segments(vm: VmMap, img: ElfImage, abi: archmod.Abi, bias: int, what: str) -> None:
    """What exec_elf.c / kern_exec.c refuse about the PT_LOADs (bias: the load
    offset): ENOEXEC for a malformed segment, ENOMEM for one NetBSD could not
    map (outside [PAGE_SIZE, the stack)) or beyond the text / data limits."""
    page = vm.page
    lo_ok = page                                  # vm.user_va0_disable: page 0 stays unmapped
    hi_ok = abi.usrstack - abi.maxssiz            # the stack's reservation lies above
    tsize = dsize = 0
    nload = 0
    size = len(img.data)
    for i, ph in enumerate(img.phdrs):
        if ph.p_type != PT_LOAD:
            continue
        nload += 1
        seg = f"{what}: segment {i}"
        if ph.p_filesz > ph.p_memsz:
            raise ElfError(f"{seg}: p_filesz {ph.p_filesz:#x} > p_memsz {ph.p_memsz:#x}")
        if ph.p_offset + ph.p_filesz > size:
            raise ElfError(f"{seg}: file data [{ph.p_offset:#x}, +{ph.p_filesz:#x}) lies beyond "
                           f"the end of the file ({size:#x} bytes)")
        if ph.p_align > 1:
            if ph.p_align & (ph.p_align - 1):
                raise ElfError(f"{seg}: p_align {ph.p_align:#x} is not a power of 2")
            if ph.p_align >= page and (ph.p_vaddr - ph.p_offset) % page:
                raise ElfError(f"{seg}: p_vaddr {ph.p_vaddr:#x} and p_offset {ph.p_offset:#x} "
                               f"differ modulo the page size")
        if ph.p_memsz == 0:
            continue
        va = ph.p_vaddr + bias
        start, end = va & ~(page - 1), va + ph.p_memsz
        if start < lo_ok or end > hi_ok:
            raise ElfError(f"{seg}: [{va:#x}, {end:#x}) is outside the user address space "
                           f"[{lo_ok:#x}, {hi_ok:#x})")
        msize = end - start
        if ph.p_flags & PF_X:
            tsize = max(tsize, msize)
        else:
            dsize = msize                          # the last data segment counts (ep_dsize)
    if not nload:
        raise ElfError(f"{what}: no loadable segments")
    maxt = MAXTSIZ.get(abi.name)
    if maxt is not None and tsize > maxt:
        raise ElfError(f"{what}: text of {tsize:#x} bytes exceeds MAXTSIZ ({maxt:#x}): "
                       f"Cannot allocate memory")
    dlimit = vm.dsiz_limit or abi.dfldsiz
    if dsize > dlimit:
        raise ElfError(f"{what}: data of {dsize:#x} bytes exceeds the data size limit "
                       f"({dlimit:#x}): Cannot allocate memory")


def load_segments(vm: VmMap, img: ElfImage, bias: int) -> tuple[int, int]:
    """Map every PT_LOAD (checked by check_segments); returns (lowest address,
    end of the highest segment). Fresh pages are zero already: only pages a
    previous segment mapped get their bss part zeroed, so a large bss costs
    no host memory until the program touches it."""
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
        shared: list[tuple[int, int]] = []
        pg = start
        while pg < end:
            e = vm.lookup(pg)
            if e is None:
                nxt = min(end, vm.next_start(pg))
                vm.map_anon(pg, nxt - pg, prot, PROT_ALL, "text" if prot & PROT_EXEC else "data")
            else:
                nxt = min(end, e.end)
                vm.protect(pg, nxt, e.prot | prot)
                shared.append((pg, nxt))
            pg = nxt
        if ph.p_filesz:
            vm.write_force(va, bytes(img.data[ph.p_offset:ph.p_offset + ph.p_filesz]))
        bss0, bss1 = va + ph.p_filesz, va + ph.p_memsz
        for s, e_ in shared:
            z0, z1 = max(s, bss0), min(e_, bss1)
            if z0 < z1:
                vm.zero_force(z0, z1 - z0)
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


def _check_entry(entry: int, abi: archmod.Abi, what: str) -> None:
    """check_exec(): an entry point below vm_minaddr (page 0 is not mappable) or
    at/above VM_MAXUSER_ADDRESS is ENOEXEC."""
    if entry < abi.page_size or entry >= abi.vm_maxuser_address:
        raise ElfError(f"{what}: entry point {entry:#x} is outside the user address space")


def load_interp(vm: VmMap, name: str, abi: archmod.Abi, root: Any) -> tuple[int, int]:
    """elf_load_interp(): map the interpreter (looked up in the guest root) where
    an mmap(0, size) would go, topdown below the stack; (base, entry)."""
    what = f"interpreter {name}"
    with _lookup_in_root(root, name) as nd:
        data = open_exec(nd.ni_proc)        # the object the lookup reached, nothing else
    try:
        img = parse(data)
    except ElfError as e:
        raise ElfError(f"{what}: {e}", e.code) from None
    if img.e_type != ET_DYN:
        raise ElfError(f"{what}: not a shared object (ELF type {img.e_type})")
    if archmod.for_elf_machine(img.e_machine) is not abi:
        raise ElfError(f"{what}: machine {img.e_machine} is not the program's ({abi.name})")
    _check_class(what, img, abi)
    loads = [ph for ph in img.phdrs if ph.p_type == PT_LOAD]
    if not loads:
        raise ElfError(f"{what}: no loadable segments")
    page = vm.page
    first = loads[0].p_vaddr & ~(page - 1)
    limit = max(ph.p_vaddr + ph.p_memsz for ph in loads)
    size = ((limit + page - 1) & ~(page - 1)) - first
    align = max(loads[0].p_align, page)
    from nbemu.syscalls.uvm_mmap import _default_addr
    base = vm.findspace(_default_addr(vm, size), size, align, topdown=True) \
        if 0 < size < abi.vm_maxuser_address else None
    if base is None:
        raise ElfError(f"{what}: no room for {size:#x} bytes: Cannot allocate memory")
    bias = base - first
    check_segments(vm, img, abi, bias, what)
    load_segments(vm, img, bias)
    entry = img.e_entry + bias
    _check_entry(entry, abi, what)
    return base, entry


class _Root:
    """What vfs_lookup.namei needs of a kernel: the guest root, the slot
    where rootvnode() keeps it open (Kernel.vfs_rootvp), and no mounts."""

    def __init__(self, root: str) -> None:
        from nbemu.syscalls.vfs_mount import MountTable
        self.root = root
        self.vfs_rootvp: tuple[str, object] | None = None
        self.vfs_mounts = MountTable()


def _lookup_in_root(root: Any, name: str):
    """The interpreter `name`, looked up by the kernel's namei inside the guest
    root (symbolic links cannot leave it): a Nameidata holding it. ENOENT: 127.
    `root`: the kernel (its root and --bind mounts), or a root folder alone."""
    from nbemu.syscalls.errno import Errno
    from nbemu.syscalls.vfs_lookup import namei, rootvnode
    k = _Root(root) if isinstance(root, str) else root
    nd = namei(k, rootvnode(k), os.fsencode(name), True)
    if isinstance(nd, int) or not nd.ni_exists:
        err = Errno.ENOENT if not isinstance(nd, int) else nd
        code = 127 if err == Errno.ENOENT else 126
        raise ElfError(f"interpreter {name}: {os.strerror(_host_errno(err))}", code)
    return nd


def _host_errno(err: int) -> int:
    import errno as host
    from nbemu.syscalls.errno import Errno
    try:
        return getattr(host, Errno(err).name)
    except (ValueError, AttributeError):
        return host.ENOENT


def exec_image(vm: VmMap, img: ElfImage, abi: archmod.Abi, argv: list[bytes],
               envp: list[bytes], execname: bytes, uid: int, gid: int,
               root: Any = "/") -> ExecResult:
    page = abi.page_size
    bias = 0
    if img.e_type == ET_DYN:
        bias = placedynexec(img, page)
    what = os.fsdecode(execname)
    check_segments(vm, img, abi, bias, what)
    if img.interp is None:
        _check_entry(img.e_entry + bias, abi, what)
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
    prog_entry = img.e_entry + bias
    interp_base, entry = 0, prog_entry
    if img.interp is not None:
        interp_base, entry = load_interp(vm, img.interp, abi, root)

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

    # AT_PHDR: PT_PHDR's address, else where the PT_LOAD holding file offset 0 puts
    # the headers (exec_elf.c's computed_phdr).
    phdr_va = 0
    for ph in img.phdrs:
        if ph.p_type == PT_PHDR:
            phdr_va = ph.p_vaddr + bias
            break
    else:
        for ph in img.phdrs:
            if ph.p_type == PT_LOAD and ph.p_offset == 0:
                phdr_va = ph.p_vaddr + img.e_phoff + bias
    auxv = [(AT_PHDR, phdr_va), (AT_PHENT, img.e_phentsize), (AT_PHNUM, len(img.phdrs)),
            (AT_PAGESZ, page), (AT_BASE, interp_base), (AT_FLAGS, 0), (AT_ENTRY, prog_entry),
            (AT_EUID, uid), (AT_RUID, uid), (AT_EGID, gid), (AT_RGID, gid),
            (AT_STACKBASE, top), (AT_SUN_EXECNAME, str_base + name_off), (AT_NULL, 0)]
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
    return ExecResult(entry, sp, ps_strings, regs, img, abi, interp_base, bias)


def host_ids() -> tuple[int, int]:
    return os.getuid(), os.getgid()
