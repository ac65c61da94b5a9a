"""Memory-mapping system calls (NetBSD's uvm_mmap.c and the break of
uvm_unix.c): mmap, munmap, mprotect, madvise, minherit, mlock & co., obreak,
and the kernel-owned pages nbemu maps into a process (lwpctl)."""
from __future__ import annotations

from .errno import Errno
from .lwp import Lwp, Proc
from .table import syscall
from .uvm_map import PROT_ALL, PROT_READ, PROT_WRITE

MAP_SHARED, MAP_PRIVATE, MAP_FIXED = 0x1, 0x2, 0x10
MAP_TRYFIXED, MAP_ANON, MAP_STACK = 0x400, 0x1000, 0x2000
MAP_ALIGNMENT_SHIFT = 24
MADV_DONTNEED, MADV_FREE = 4, 6
FREAD, FWRITE = 1, 2


def _vm(l: Lwp):
    return l.l_proc.p_vmspace


def _default_addr(vm, size: int) -> int:
    """VM_DEFAULT_ADDRESS_TOPDOWN: below the largest possible stack."""
    return (vm.usrstack - vm.maxssiz - size) & ~(vm.page - 1)


@syscall(197, "mmap")
def sys_mmap(l: Lwp, a, retval: list[int]) -> int:
    vm = _vm(l)
    page = vm.page
    flags, prot = a.flags, a.prot
    maxprot = (prot >> 3) & 7 or PROT_ALL     # PROT_MPROTECT(x)
    prot &= 7
    if prot & ~maxprot:
        return Errno.EINVAL
    if flags & (MAP_SHARED | MAP_PRIVATE) == MAP_SHARED | MAP_PRIVATE:
        return Errno.EINVAL
    size = a.len
    pos = a.pos
    if size > vm.max_addr:
        return Errno.EINVAL
    pageoff = pos & (page - 1)
    addr = a.addr
    size = (size + pageoff + page - 1) & ~(page - 1)
    align_log = (flags >> MAP_ALIGNMENT_SHIFT) & 0xFF
    if align_log and (align_log < 12 or align_log >= 48):
        return Errno.EINVAL
    align = 1 << align_log if align_log else page
    if flags & MAP_FIXED:
        if (addr & (page - 1)) != pageoff:
            return Errno.EINVAL
        addr -= pageoff
        if addr < vm.min_addr or addr + size > vm.max_addr or addr + size < addr:
            return Errno.EINVAL
    else:
        addr &= ~(page - 1)
        defaddr = _default_addr(vm, size)
        addr = min(addr, defaddr) if addr else defaddr
    fp = None
    if not flags & MAP_ANON:
        from .kern_descrip import fd_getfile
        fp = fd_getfile(l.l_proc, a.fd)
        if fp is None:
            return Errno.EBADF
        if not fp.f_flag & FREAD:
            return Errno.EACCES
        if flags & MAP_SHARED and prot & PROT_WRITE and not fp.f_flag & FWRITE:
            return Errno.EACCES
        if not fp.f_mmap:
            return Errno.ENODEV
    elif a.fd != -1 and a.fd != 0xFFFFFFFF:
        pass                        # NetBSD ignores fd for MAP_ANON
    if size == 0:
        # uvm_mmap(): "if (size == 0) return 0" -- nothing mapped, the address
        # returned.  The ld.elf_so of 2016 maps a library's bss this way even when
        # it ends in the data segment's last page (map_object.c).
        retval[0] = addr + pageoff
        return 0
    if flags & MAP_FIXED:
        if fp is None and flags & MAP_PRIVATE and vm.covered(addr, addr + size) \
                and all(e.name == "anon" and e.maxprot == maxprot
                        for e in vm.entries() if e.start < addr + size and e.end > addr):
            # Re-commit inside an anonymous reservation: zero it in place
            # instead of replacing the host backing (Go does this constantly).
            vm.zero_fill(addr, addr + size)
            vm.protect(addr, addr + size, prot)
        else:
            vm.unmap(addr, addr + size)
            vm.map_anon(addr, size, prot, maxprot, "anon" if fp is None else fp.name,
                        0 if flags & MAP_SHARED else 1)
    else:
        found = vm.findspace(addr, size, align, topdown=True)
        if found is None:
            found = vm.findspace(vm.min_addr + 0x10000, size, align, topdown=False)
            if found is None:
                return Errno.ENOMEM
        addr = found
        # MAP_SHARED pages stay shared with a forked child (MAP_INHERIT_SHARE).
        vm.map_anon(addr, size, prot, maxprot, "anon" if fp is None else fp.name,
                    0 if flags & MAP_SHARED else 1)
    if fp is not None:
        data = fp.pread(size, pos - pageoff)
        if isinstance(data, int):
            vm.unmap(addr, addr + size)
            return data
        vm.write_force(addr, data)
    retval[0] = addr + pageoff
    return 0


def _range(vm, addr: int, size: int) -> tuple[int, int] | int:
    page = vm.page
    if addr & (page - 1):
        return Errno.EINVAL
    end = addr + ((size + page - 1) & ~(page - 1))
    if end < addr or addr < vm.min_addr or end > vm.max_addr:
        return Errno.EINVAL
    return addr, end


@syscall(73, "munmap")
def sys_munmap(l: Lwp, a, retval: list[int]) -> int:
    vm = _vm(l)
    r = _range(vm, a.addr, a.len)
    if isinstance(r, int):
        return r
    if a.len == 0:
        return Errno.EINVAL
    vm.unmap(*r)
    return 0


@syscall(74, "mprotect")
def sys_mprotect(l: Lwp, a, retval: list[int]) -> int:
    vm = _vm(l)
    r = _range(vm, a.addr, a.len)
    if isinstance(r, int):
        return r
    if a.prot & ~PROT_ALL:
        return Errno.EINVAL
    if r[0] == r[1]:
        return 0
    return vm.protect(r[0], r[1], a.prot)


@syscall(75, "madvise")
def sys_madvise(l: Lwp, a, retval: list[int]) -> int:
    vm = _vm(l)
    page = vm.page
    start = a.addr & ~(page - 1)
    end = (a.addr + a.len + page - 1) & ~(page - 1)
    if end < start:
        return Errno.EINVAL
    if a.behav < 0 or a.behav > 6:
        return Errno.EINVAL
    if a.behav in (MADV_DONTNEED, MADV_FREE):
        if not vm.covered(start, end):
            return Errno.ENOMEM if a.behav == MADV_DONTNEED else Errno.EINVAL
        if a.behav == MADV_FREE:
            vm.zero_fill(start, end)
    return 0


@syscall(273, "minherit")
def sys_minherit(l: Lwp, a, retval: list[int]) -> int:
    vm = _vm(l)
    r = _range(vm, a.addr, a.len)
    if isinstance(r, int):
        return r
    if a.inherit < 0 or a.inherit > 4:
        return Errno.EINVAL
    if not vm.covered(*r):
        return Errno.EINVAL
    if a.inherit <= 2:              # SHARE, COPY, NONE (DONATE_COPY, ZERO: kept as copy)
        vm.set_inherit(*r, a.inherit)
    return 0


@syscall(17, "break")
def sys_obreak(l: Lwp, a, retval: list[int]) -> int:
    """Move the end of the data segment to nsize (uvm_unix.c sys_obreak)."""
    vm = _vm(l)
    page = vm.page
    new_end = (a.nsize + page - 1) & ~(page - 1)
    base = vm.vm_daddr
    old_end = base + vm.vm_dsize
    if new_end < base:
        new_end = base
    if new_end - base > vm.dsiz_limit:
        return Errno.ENOMEM
    if new_end > old_end:
        if not vm.is_free(old_end, new_end):
            return Errno.ENOMEM
        vm.map_anon(old_end, new_end - old_end, PROT_READ | PROT_WRITE, PROT_ALL, "heap")
    elif new_end < old_end:
        vm.unmap(new_end, old_end)
    vm.vm_dsize = new_end - base
    return 0


for _code, _name in ((203, "mlock"), (204, "munlock")):
    def _mlock(l: Lwp, a, retval: list[int]) -> int:
        vm = _vm(l)
        page = vm.page
        start = a.addr & ~(page - 1)
        end = (a.addr + a.len + page - 1) & ~(page - 1)
        return 0 if vm.covered(start, end) else Errno.ENOMEM
    syscall(_code, _name)(_mlock)


@syscall(242, "mlockall")
def sys_mlockall(l: Lwp, a, retval: list[int]) -> int:
    return 0 if a.flags and not a.flags & ~3 else Errno.EINVAL


@syscall(243, "munlockall")
def sys_munlockall(l: Lwp, a, retval: list[int]) -> int:
    return 0


def map_kernel_page(p: Proc, what: str) -> tuple[int, int] | None:
    """Map one user-RW page the kernel owns (lwpctl blocks), topdown: (user va,
    host address of the kernel's view), or None when no space is left. As
    NetBSD's lwpctl pages, the page stays mapped in the kernel (its host memory
    keeps a reference) when the process unmaps its view."""
    vm = p.p_vmspace
    va = vm.findspace(_default_addr(vm, vm.page), vm.page, vm.page, topdown=True)
    if va is None:
        return None
    e = vm.map_anon(va, vm.page, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, what, own=True)
    e.chunk.refs += 1                 # the kernel's mapping
    return va, e.chunk.addr


# -- msync (uvm_mmap.c sys___msync13) ---------------------------------------------
MS_ASYNC, MS_INVALIDATE, MS_SYNC = 0x1, 0x2, 0x4


@syscall(277, "__msync13")
def sys___msync13(l: Lwp, a, retval: list[int]) -> int:
    """Flag checks, page rounding of [addr, addr + len), then uvm_map_clean:
    EFAULT where the range is not wholly mapped (len 0: the entry holding
    addr, ENOMEM without one). nbemu's file mappings are private copies
    (mmap reads the file in), so there is nothing to write back."""
    flags = a.flags
    sync = MS_ASYNC | MS_SYNC
    if flags & ~(sync | MS_INVALIDATE) or not flags & (sync | MS_INVALIDATE) \
            or flags & sync == sync:
        return Errno.EINVAL
    vm = _vm(l)
    page = vm.page
    pageoff = a.addr & (page - 1)
    addr = a.addr - pageoff
    size = (a.len + pageoff + page - 1) & ~(page - 1)
    wmask = (1 << 8 * l.l_proc.k.abi.word_size) - 1
    if addr + size > wmask:
        return Errno.EINVAL                 # wrap-around
    if size == 0:
        return 0 if vm.lookup(addr) is not None else Errno.ENOMEM
    if not vm.covered(addr, addr + size):
        return Errno.EFAULT
    return 0
