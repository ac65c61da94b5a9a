"""mincore(2): which pages of a range are resident (uvm_mmap.c, sys_mincore).

A guest page is resident when its host memory is: guest pages live in
anonymous host mappings (host_mem.HostChunk) that the host fills on first
touch, which is what NetBSD's anon layer does for a page nobody has touched
(no vm_page yet, the byte is 0) and touched (1).

Checks in NetBSD's order: the address must be page aligned and the rounded
range must not wrap (EINVAL, a zero length included); the vector must be
writable for one byte per page (uvm_vslock: EFAULT); every page of the range
must be mapped (ENOMEM at the first hole).
"""
from __future__ import annotations

from .errno import Errno
from .host_mem import HOST_PAGE, resident_runs
from .lwp import Lwp
from .table import syscall

PROT_WRITE = 0x2


def _writable(vm, va: int, n: int) -> bool:
    end = va + n
    while va < end:
        e = vm.lookup(va)
        if e is None or not e.prot & PROT_WRITE:
            return False
        va = e.end
    return True


def _residency(e, start: int, end: int, page: int) -> bytearray:
    """One byte per guest page of [start, end) inside map entry e."""
    npgs = (end - start) // page
    vec = bytearray(npgs)
    host = e.host + (start - e.start)
    if host % HOST_PAGE:                      # the host cannot tell: call it resident
        return bytearray(b"\x01" * npgs)
    for off, length in resident_runs(host, end - start):
        first, last = off // page, (off + length + page - 1) // page
        vec[first:last] = b"\x01" * (last - first)
    return vec


@syscall(78, "mincore")
def sys_mincore(l: Lwp, a, retval: list[int]) -> int:
    vm = l.l_proc.p_vmspace
    page = vm.page
    wordmask = (1 << (8 * l.l_proc.k.abi.word_size)) - 1
    start = a.addr
    if start & (page - 1):
        return Errno.EINVAL
    length = (a.len + page - 1) & ~(page - 1) & wordmask
    end = (start + length) & wordmask
    if end <= start:
        return Errno.EINVAL
    npgs = length // page
    if not _writable(vm, a.vec, npgs):
        return Errno.EFAULT
    out = bytearray()
    va = start
    while va < end:
        e = vm.lookup(va)
        if e is None:
            return Errno.ENOMEM
        lim = min(end, e.end)
        out += _residency(e, va, lim, page)
        va = lim
    return vm.copyout(bytes(out), a.vec)
