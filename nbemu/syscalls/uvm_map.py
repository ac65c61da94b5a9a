"""The process address space (NetBSD's struct vm_map of uvm_map.c), simplified.

Entries are page-aligned [start, end) ranges with a protection, a maximum
protection and host backing (a HostChunk and an offset into it). Every change
is mirrored into the engine through the Pmap interface that emu/ provides
(pmap_enter / pmap_remove / pmap_protect), the way uvm drives pmap(9).

The kernel itself touches guest memory only through `copyin`/`copyout` here:
they check that the range is mapped with the needed protection and return
EFAULT exactly where NetBSD's copyin(9) would.
"""
from __future__ import annotations

import bisect
from typing import Protocol

from nbemu.plain import ValueRecord

from .errno import Errno
from .host_mem import Arena, HostChunk, memmove, memset, read_host, resident_runs

PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
PROT_ALL = 7


class Pmap(Protocol):
    arena: Arena | None                 # host memory kept across its address spaces
    def pmap_enter(self, va: int, size: int, prot: int, host_addr: int) -> None: ...
    def pmap_remove(self, va: int, size: int) -> None: ...
    def pmap_protect(self, va: int, size: int, prot: int) -> None: ...
    def pmap_park(self) -> bool: ...    # address space ends: keep regions? (True: kept)
    def pmap_update(self) -> None: ...  # a new address space is in place


class NullPmap:
    """A pmap that mirrors nothing: for unit tests of the map alone."""
    arena: Arena | None = None
    def pmap_enter(self, va: int, size: int, prot: int, host_addr: int) -> None: pass
    def pmap_remove(self, va: int, size: int) -> None: pass
    def pmap_protect(self, va: int, size: int, prot: int) -> None: pass
    def pmap_park(self) -> bool: return False
    def pmap_update(self) -> None: pass


class MapEntry(ValueRecord):
    _fields = ("start", "end", "prot", "maxprot", "chunk", "off", "name", "inherit")

    def __init__(self, start: int, end: int, prot: int, maxprot: int, chunk: HostChunk,
                 off: int, name: str = "", inherit: int = 1) -> None:
        self.start = start
        self.end = end
        self.prot = prot
        self.maxprot = maxprot
        self.chunk = chunk
        self.off = off            # offset of `start` inside chunk
        self.name = name          # what mapped it: "text", "stack", "anon", a file name
        self.inherit = inherit    # MAP_INHERIT_COPY; MAP_INHERIT_SHARE for MAP_SHARED (fork)

    @property
    def host(self) -> int:
        return self.chunk.addr + self.off


class VmMap:
    def __init__(self, pmap: Pmap, page_size: int, min_addr: int, max_addr: int) -> None:
        self.pmap = pmap
        self.page = page_size
        self.min_addr = min_addr
        self.max_addr = max_addr
        self._starts: list[int] = []
        self._entries: list[MapEntry] = []
        self._last: MapEntry | None = None
        # [_td_lo, top of the mmap area) is known to be fully mapped: topdown
        # searches jump over it instead of walking every entry (issue 16 item 8).
        self._td_lo: int | None = None
        # struct vmspace's layout of the process image, set by exec (guest/exec_elf.py)
        # or the boot (emu/space.py); None / 0 in a bare map (unit tests).
        self.usrstack: int | None = None    # USRSTACK: top of the main stack
        self.maxssiz = 0                    # the stack's reservation below it
        self.dsiz_limit: int | None = None  # RLIMIT_DATA at exec (None: the port's default)
        self.vm_daddr = 0                   # data segment (brk) base and size
        self.vm_dsize = 0
        self.vm_minsaddr = 0                # the stack's top and lowest address
        self.vm_maxsaddr = 0
        # host memory of private mappings (host_mem.py): the engine's when it has one
        self.arena: Arena = pmap.arena or Arena()

    # -- lookup ------------------------------------------------------------
    def lookup(self, va: int) -> MapEntry | None:
        e = self._last
        if e is not None and e.start <= va < e.end:
            return e
        i = bisect.bisect_right(self._starts, va) - 1
        if i >= 0:
            e = self._entries[i]
            if va < e.end:
                self._last = e
                return e
        return None

    def next_start(self, va: int) -> int:
        """Start of the first entry above va (the end of the free range at va):
        one bisection, not a page-by-page walk."""
        i = bisect.bisect_right(self._starts, va)
        return self._starts[i] if i < len(self._starts) else self.max_addr

    def entries(self) -> list[MapEntry]:
        return list(self._entries)

    def is_free(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self._starts, end)
        return i == 0 or self._entries[i - 1].end <= start

    def _round(self, x: int) -> int:
        return (x + self.page - 1) & ~(self.page - 1)

    # -- structure -----------------------------------------------------------
    def _td_top(self) -> int | None:
        """Top of the topdown mmap area (VM_DEFAULT_ADDRESS_TOPDOWN's base)."""
        top = self.usrstack
        return None if top is None else top - self.maxssiz

    def _insert(self, e: MapEntry) -> None:
        i = bisect.bisect_left(self._starts, e.start)
        self._starts.insert(i, e.start)
        self._entries.insert(i, e)
        e.chunk.refs += 1
        top = self._td_top()
        if top is not None:
            lo = top if self._td_lo is None else self._td_lo
            if e.end == lo and e.start < lo:
                lo = e.start
                while i > 0 and self._entries[i - 1].end == lo:   # entries mapped earlier
                    i -= 1
                    lo = self._entries[i].start
            self._td_lo = lo

    def _split_at(self, va: int) -> None:
        """Make va an entry boundary (if it falls inside an entry)."""
        i = bisect.bisect_right(self._starts, va) - 1
        if i < 0:
            return
        e = self._entries[i]
        if e.start < va < e.end:
            tail = MapEntry(va, e.end, e.prot, e.maxprot, e.chunk, e.off + (va - e.start), e.name,
                            e.inherit)
            e.end = va
            self._starts.insert(i + 1, va)
            self._entries.insert(i + 1, tail)
            e.chunk.refs += 1
            self._last = None

    def _range(self, start: int, end: int) -> tuple[int, int]:
        """Indices [i, j) of entries overlapping [start, end) after splitting at both ends."""
        self._split_at(start)
        self._split_at(end)
        i = bisect.bisect_left(self._starts, start)
        j = bisect.bisect_left(self._starts, end)
        return i, j

    # -- operations ------------------------------------------------------------
    def _backing(self, start: int, end: int, own: bool) -> tuple[HostChunk, int]:
        """Zero host memory for guest [start, end): in the arena (guest-adjacent
        mappings host-adjacent: one engine region), or a chunk of its own for
        memory another party shares (MAP_SHARED, the kernel's pages)."""
        placed = None if own else self.arena.place(start, end)
        return placed if placed is not None else (HostChunk(end - start), 0)

    def map_anon(self, start: int, size: int, prot: int, maxprot: int = PROT_ALL,
                 name: str = "anon", inherit: int = 1, own: bool = False) -> MapEntry:
        """Map fresh zero pages at [start, start+size); the range must be free.
        own: host memory of its own (the kernel keeps a view of it)."""
        size = self._round(size)
        chunk, off = self._backing(start, start + size, own or inherit == MAP_INHERIT_SHARE)
        e = MapEntry(start, start + size, prot, maxprot, chunk, off, name, inherit)
        self._insert(e)
        self._last = None
        self.pmap.pmap_enter(start, size, prot, chunk.addr + off)
        return e

    def unmap(self, start: int, end: int, park: bool = False) -> None:
        """Remove [start, end); park: the engine keeps its regions for the
        next address space on it (pmap_park)."""
        if start >= end:
            return
        i, j = self._range(start, end)
        if i == j:
            return
        top = self._td_top()
        if self._td_lo is not None and top is not None and end > self._td_lo and start < top:
            self._td_lo = min(max(end, self._td_lo), top)   # the hole is below end
        run = None                          # one pmap_remove per run of adjacent entries
        for e in self._entries[i:j]:
            if run is not None and run[1] != e.start:
                self.pmap.pmap_remove(run[0], run[1] - run[0])
                run = None
            if not park:
                run = [e.start, e.end] if run is None else [run[0], e.end]
            e.chunk.refs -= 1
            if e.chunk.refs == 0 and not e.chunk.window:
                e.chunk.release()
            elif e.inherit != MAP_INHERIT_SHARE:   # (shared pages: another process's too)
                e.chunk.discard(e.off, e.end - e.start)
        if run is not None:
            self.pmap.pmap_remove(run[0], run[1] - run[0])
        del self._starts[i:j]
        del self._entries[i:j]
        self._last = None

    def protect(self, start: int, end: int, prot: int) -> int:
        """uvm_map_protect: EACCES beyond maxprot, ENOMEM over holes."""
        if not self.covered(start, end):
            return Errno.ENOMEM
        i, j = self._range(start, end)
        for e in self._entries[i:j]:
            if prot & ~e.maxprot:
                return Errno.EACCES
        for e in self._entries[i:j]:
            if e.prot != prot:
                e.prot = prot
                self.pmap.pmap_protect(e.start, e.end - e.start, prot)
        return 0

    def covered(self, start: int, end: int) -> bool:
        va = start
        while va < end:
            e = self.lookup(va)
            if e is None:
                return False
            va = e.end
        return True

    def zero_fill(self, start: int, end: int) -> None:
        """Make [start, end) read as zero again (MAP_FIXED anon over anon memory)."""
        va = start
        while va < end:
            e = self.lookup(va)
            assert e is not None
            n = min(end, e.end) - va
            e.chunk.discard(e.off + (va - e.start), n)
            va += n

    def findspace(self, hint: int, size: int, align: int, topdown: bool) -> int | None:
        """uvm_map_findspace: a free, aligned range of `size`, near hint."""
        align = max(align, self.page)
        size = self._round(size)

        def up(x: int) -> int:
            return (x + align - 1) & ~(align - 1)

        def down(x: int) -> int:
            return x & ~(align - 1)
        if topdown:
            cand = down(min(hint, self.max_addr - size))
            top = self._td_top()
            if self._td_lo is not None and top is not None and self._td_lo < cand + size \
                    and cand < top:
                cand = down(self._td_lo - size)         # [_td_lo, top) has no room
            i = bisect.bisect_left(self._starts, cand + size)
            while cand >= self.min_addr:
                # the highest entry starting below cand+size
                if i > 0 and self._entries[i - 1].end > cand:
                    cand = down(self._entries[i - 1].start - size)
                    i -= 1
                    continue
                return cand
            return None
        cand = up(max(hint, self.min_addr))
        i = bisect.bisect_right(self._starts, cand) - 1
        i = max(i, 0)
        while cand + size <= self.max_addr:
            while i < len(self._entries) and self._entries[i].end <= cand:
                i += 1
            if i < len(self._entries) and self._entries[i].start < cand + size:
                cand = up(self._entries[i].end)
                continue
            return cand
        return None

    # -- copyin / copyout (subr_copy.c) ----------------------------------------
    def _segments(self, va: int, n: int, need: int):
        """Host (address, length) pieces of [va, va+n); None if any byte faults."""
        out = []
        end = va + n
        while va < end:
            e = self.lookup(va)
            if e is None or (e.prot & need) != need:
                return None
            k = min(end, e.end) - va
            out.append((e.chunk.addr + e.off + (va - e.start), k))
            va += k
        return out

    def copyin(self, va: int, n: int) -> bytes | int:
        """Bytes of guest memory, or Errno.EFAULT."""
        if n <= 0:
            return b""
        e = self.lookup(va)
        if e is not None and va + n <= e.end and e.prot & PROT_READ:
            o = e.off + (va - e.start)
            c = e.chunk
            m = c._mem                  # (HostChunk.mem without the property's call)
            return bytes((c.mem if m is None else m)[o:o + n])
        segs = self._segments(va, n, PROT_READ)
        if segs is None:
            return Errno.EFAULT
        return b"".join(read_host(h, k) for h, k in segs)

    def copyout(self, data: bytes, va: int) -> int:
        """0, or Errno.EFAULT (nothing is written then)."""
        n = len(data)
        if n == 0:
            return 0
        e = self.lookup(va)
        if e is not None and va + n <= e.end and e.prot & PROT_WRITE:
            o = e.off + (va - e.start)
            c = e.chunk
            m = c._mem                  # (HostChunk.mem without the property's call)
            (c.mem if m is None else m)[o:o + n] = data
            return 0
        segs = self._segments(va, n, PROT_WRITE)
        if segs is None:
            return Errno.EFAULT
        pos = 0
        for h, k in segs:
            memmove(h, data[pos:pos + k], k)
            pos += k
        return 0

    def copyinstr(self, va: int, maxlen: int) -> bytes | int:
        """A NUL-terminated string (without the NUL): EFAULT, or ENAMETOOLONG
        when no NUL is found within maxlen bytes (NUL included)."""
        out = b""
        while len(out) < maxlen:
            e = self.lookup(va)
            if e is None or not e.prot & PROT_READ:
                return Errno.EFAULT
            k = min(e.end - va, maxlen - len(out), 4096)
            chunk = read_host(e.chunk.addr + e.off + (va - e.start), k)
            z = chunk.find(b"\0")
            if z >= 0:
                return out + chunk[:z]
            out += chunk
            va += k
        return Errno.ENAMETOOLONG

    def write_force(self, va: int, data: bytes) -> None:
        """Kernel write that ignores protection (exec image setup)."""
        pos = 0
        while pos < len(data):
            e = self.lookup(va + pos)
            assert e is not None, hex(va + pos)
            k = min(e.end - (va + pos), len(data) - pos)
            memmove(e.chunk.addr + e.off + (va + pos - e.start), data[pos:pos + k], k)
            pos += k

    def zero_force(self, va: int, n: int) -> None:
        pos = 0
        while pos < n:
            e = self.lookup(va + pos)
            assert e is not None
            k = min(e.end - (va + pos), n - pos)
            memset(e.chunk.addr + e.off + (va + pos - e.start), 0, k)
            pos += k

    def set_inherit(self, start: int, end: int, inherit: int) -> None:
        """uvm_map_inherit (minherit(2)); the range must be covered."""
        i, j = self._range(start, end)
        for e in self._entries[i:j]:
            if inherit == MAP_INHERIT_SHARE and e.inherit != inherit \
                    and self.arena.owns(e.chunk):
                self._own_backing(e)
            e.inherit = inherit

    def _own_backing(self, e: MapEntry) -> None:
        """Move e's pages out of the arena into a chunk of its own: shared
        with a child, they must outlive the arena's reuse of their range."""
        size = e.end - e.start
        chunk = HostChunk(size)
        for off, n in resident_runs(e.host, size):
            memmove(chunk.addr + off, e.host + off, n)
        self.pmap.pmap_remove(e.start, size)
        e.chunk.refs -= 1
        e.chunk.discard(e.off, size)
        e.chunk, e.off = chunk, 0
        chunk.refs += 1
        self.pmap.pmap_enter(e.start, size, e.prot, chunk.addr)

    def release_all(self) -> None:
        """The address space ends (exit, exec): its pages go; an engine that
        can keeps its regions for the next address space (pmap_park)."""
        park = self.pmap.pmap_park()        # (before the pages go: it reads the code)
        self.unmap(self.min_addr, self.max_addr, park=park)


# minherit(2) values (sys/mman.h)
MAP_INHERIT_SHARE, MAP_INHERIT_COPY, MAP_INHERIT_NONE = 0, 1, 2


def uvmspace_fork(vm1: VmMap, pmap: Pmap) -> VmMap:
    """uvmspace_fork(): the child's address space. Shared entries (MAP_SHARED,
    MAP_INHERIT_SHARE) reference the same host pages; copied ones get pages of
    their own (in the child's arena) holding what the parent's hold (only pages
    the host has: an untouched page reads as zero in both); MAP_INHERIT_NONE
    ones are left out. The engine gets one mapping per run of entries that are
    adjacent in guest and host memory with one protection."""
    vm2 = VmMap(pmap, vm1.page, vm1.min_addr, vm1.max_addr)
    (vm2.vm_daddr, vm2.vm_dsize, vm2.vm_minsaddr, vm2.vm_maxsaddr, vm2.usrstack, vm2.maxssiz,
     vm2.dsiz_limit) = (vm1.vm_daddr, vm1.vm_dsize, vm1.vm_minsaddr, vm1.vm_maxsaddr,
                        vm1.usrstack, vm1.maxssiz, vm1.dsiz_limit)
    run: list[int] | None = None            # [start, end, prot, host]
    for e in vm1._entries:
        size = e.end - e.start
        if e.inherit == MAP_INHERIT_NONE:
            continue
        if e.inherit == MAP_INHERIT_SHARE:
            e2 = MapEntry(e.start, e.end, e.prot, e.maxprot, e.chunk, e.off, e.name, e.inherit)
        else:
            chunk, off = vm2._backing(e.start, e.end, False)
            src = e.chunk.addr + e.off
            dst = chunk.addr + off
            for o, n in resident_runs(src, size):
                memmove(dst + o, src + o, n)
            e2 = MapEntry(e.start, e.end, e.prot, e.maxprot, chunk, off, e.name, e.inherit)
        vm2._starts.append(e2.start)
        vm2._entries.append(e2)
        e2.chunk.refs += 1
        host = e2.chunk.addr + e2.off
        if run is not None and run[1] == e2.start and run[2] == e2.prot \
                and run[3] + (run[1] - run[0]) == host:
            run[1] = e2.end
            continue
        if run is not None:
            pmap.pmap_enter(run[0], run[1] - run[0], run[2], run[3])
        run = [e2.start, e2.end, e2.prot, host]
    if run is not None:
        pmap.pmap_enter(run[0], run[1] - run[0], run[2], run[3])
    pmap.pmap_update()
    return vm2
