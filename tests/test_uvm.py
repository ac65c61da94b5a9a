"""The VM map (uvm_map.py / uvm_mmap.py) without the engine: mapping, holes,
overlaps, MAP_FIXED, protections, copyin/copyout faults, break."""
from __future__ import annotations

import struct

from nbemu.syscalls.errno import Errno
from nbemu.syscalls.uvm_map import PROT_READ, PROT_WRITE
from tests.khelp import call, make_kernel

MAP_PRIVATE, MAP_FIXED, MAP_ANON = 0x2, 0x10, 0x1000
PAGE = 4096


def _mmap(l, addr, size, prot, flags, fd=-1, pos=0):
    err, rv = call(l, "mmap", addr, size, prot, flags, fd & 0xFFFFFFFF, 0, pos)
    return err, rv[0]


def test_anon_mapping_reads_zero_and_copies_round_trip() -> None:
    k, l = make_kernel()
    err, va = _mmap(l, 0, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON)
    assert err == 0 and va % PAGE == 0
    vm = l.l_proc.p_vmspace
    assert vm.copyin(va, 16) == b"\0" * 16
    assert vm.copyout(b"hello", va + PAGE - 2) == 0          # straddles a page
    assert vm.copyin(va + PAGE - 2, 5) == b"hello"


def test_hint_is_honoured_when_free_and_fixed_replaces() -> None:
    k, l = make_kernel()
    err, va = _mmap(l, 0x7000000000, 4 * PAGE, 3, MAP_PRIVATE | MAP_ANON)
    assert (err, va) == (0, 0x7000000000)
    vm = l.l_proc.p_vmspace
    vm.copyout(b"x" * 16, va + PAGE)
    # MAP_FIXED over the middle page: fresh zero memory, neighbours intact.
    vm.copyout(b"keep", va)
    err, va2 = _mmap(l, va + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANON | MAP_FIXED)
    assert (err, va2) == (0, va + PAGE)
    assert vm.copyin(va + PAGE, 16) == b"\0" * 16
    assert vm.copyin(va, 4) == b"keep"
    # The fixed page is read-only now: copyout faults there, not next to it.
    assert vm.copyout(b"y", va + PAGE) == Errno.EFAULT
    assert vm.copyout(b"y", va + 2 * PAGE) == 0


def test_hint_taken_goes_elsewhere_without_overlap() -> None:
    k, l = make_kernel()
    _, a = _mmap(l, 0x7000000000, 2 * PAGE, 3, MAP_PRIVATE | MAP_ANON)
    _, b = _mmap(l, 0x7000000000, 2 * PAGE, 3, MAP_PRIVATE | MAP_ANON)
    assert a != b and (b + 2 * PAGE <= a or a + 2 * PAGE <= b)


def test_munmap_makes_a_hole() -> None:
    k, l = make_kernel()
    _, va = _mmap(l, 0, 3 * PAGE, 3, MAP_PRIVATE | MAP_ANON)
    assert call(l, "munmap", va + PAGE, PAGE)[0] == 0
    vm = l.l_proc.p_vmspace
    assert vm.copyin(va + PAGE, 1) == Errno.EFAULT
    assert vm.copyin(va, 1) == b"\0" and vm.copyin(va + 2 * PAGE, 1) == b"\0"
    assert vm.copyin(va + PAGE - 1, 2) == Errno.EFAULT     # range crossing into the hole
    assert call(l, "munmap", va + 1, PAGE)[0] == Errno.EINVAL   # unaligned


def test_mprotect_errors() -> None:
    k, l = make_kernel()
    _, va = _mmap(l, 0, 2 * PAGE, 3, MAP_PRIVATE | MAP_ANON)
    assert call(l, "mprotect", va, 2 * PAGE, PROT_READ)[0] == 0
    assert call(l, "mprotect", va + 1, PAGE, PROT_READ)[0] == Errno.EINVAL
    assert call(l, "munmap", va + PAGE, PAGE)[0] == 0
    assert call(l, "mprotect", va, 2 * PAGE, PROT_READ)[0] == Errno.ENOMEM   # hole
    # maxprot through PROT_MPROTECT: read-only max refuses write later.
    err, vb = _mmap(l, 0, PAGE, PROT_READ | (PROT_READ << 3), MAP_PRIVATE | MAP_ANON)
    assert err == 0
    assert call(l, "mprotect", vb, PAGE, PROT_READ | PROT_WRITE)[0] == Errno.EACCES


def test_mmap_argument_errors() -> None:
    k, l = make_kernel()
    assert _mmap(l, 0, PAGE, 3, MAP_PRIVATE | 0x1 | MAP_ANON)[0] == Errno.EINVAL  # SHARED|PRIVATE
    assert _mmap(l, 0x1001, PAGE, 3, MAP_PRIVATE | MAP_ANON | MAP_FIXED)[0] == Errno.EINVAL
    assert _mmap(l, 0, PAGE, 3, MAP_PRIVATE, fd=77)[0] == Errno.EBADF


def test_mmap_zero_length_maps_nothing() -> None:
    """uvm_mmap(): size 0 returns 0 and maps nothing; a MAP_FIXED one gets its
    address back (ld.elf_so of 2016 maps an empty bss this way), a bad fd is still
    EBADF, a misaligned MAP_FIXED address still EINVAL."""
    k, l = make_kernel()
    before = [(e.start, e.end) for e in l.l_proc.p_vmspace.entries()]
    assert _mmap(l, 0x7000000000, 0, 3, MAP_PRIVATE | MAP_ANON | MAP_FIXED) == (0, 0x7000000000)
    err, _ = _mmap(l, 0, 0, 3, MAP_PRIVATE | MAP_ANON)
    assert err == 0
    assert [(e.start, e.end) for e in l.l_proc.p_vmspace.entries()] == before
    assert _mmap(l, 0, 0, 3, MAP_PRIVATE, fd=77)[0] == Errno.EBADF
    assert _mmap(l, 0x1001, 0, 3, MAP_PRIVATE | MAP_ANON | MAP_FIXED)[0] == Errno.EINVAL


def test_aligned_mapping() -> None:
    k, l = make_kernel()
    err, va = _mmap(l, 0, 1 << 21, 3, MAP_PRIVATE | MAP_ANON | (21 << 24))
    assert err == 0 and va % (1 << 21) == 0


def test_copyinstr_limits() -> None:
    k, l = make_kernel()
    _, va = _mmap(l, 0, PAGE, 3, MAP_PRIVATE | MAP_ANON)
    vm = l.l_proc.p_vmspace
    vm.copyout(b"abc\0", va)
    assert vm.copyinstr(va, 16) == b"abc"
    assert vm.copyinstr(va, 3) == Errno.ENAMETOOLONG
    vm.copyout(b"z" * 8, va + PAGE - 8)                      # no NUL before the end
    assert vm.copyinstr(va + PAGE - 8, 64) == Errno.EFAULT


def test_break_grows_and_shrinks() -> None:
    k, l = make_kernel()
    vm = l.l_proc.p_vmspace
    base = vm.vm_daddr
    assert call(l, "break", base + 3 * PAGE)[0] == 0
    assert vm.copyout(b"q", base + 3 * PAGE - 1) == 0
    assert call(l, "break", base + PAGE)[0] == 0
    assert vm.copyin(base + 2 * PAGE, 1) == Errno.EFAULT
    assert call(l, "break", base + (1 << 40))[0] == Errno.ENOMEM


def test_file_backed_private_map(tmp_path) -> None:
    data = bytes(range(256)) * 40
    (tmp_path / "f").write_bytes(data)
    k, l = make_kernel(root=str(tmp_path))
    from tests.khelp import scratch
    buf = scratch(l)
    vm = l.l_proc.p_vmspace
    vm.copyout(b"/f\0", buf)
    err, rv = call(l, "open", buf, 0, 0)
    assert err == 0
    fd = rv[0]
    err, va = _mmap(l, 0, len(data), PROT_READ, MAP_PRIVATE, fd=fd, pos=PAGE)
    assert err == 0
    assert vm.copyin(va, 256) == data[PAGE:PAGE + 256]
    tail = len(data) - PAGE
    assert vm.copyin(va + tail, 8) == b"\0" * 8               # beyond EOF: zero
    assert struct.unpack("<Q", vm.copyin(va, 8))[0] == struct.unpack("<Q", data[PAGE:PAGE + 8])[0]
