"""Host memory that backs guest mappings (anonymous host mmap through libc).

Guest pages live in host mappings handed to Unicorn with mem_map_ptr, so that
splitting or re-protecting a guest range never copies it (splitting a large
mem_map region costs seconds: facts/unicorn-costs.md), and so that the kernel
reads and writes guest memory with memmove, without going through the engine.
"""
from __future__ import annotations

import ctypes
import mmap as _mmap

# The C library Python itself is linked with (ctypes.util.find_library would
# run `ldconfig -p` in a subprocess at every start: ~10 ms).
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_MAP_FAILED = ctypes.c_void_p(-1).value
MAP_NORESERVE = 0x4000


def host_view(addr: int, size: int) -> memoryview:
    """Host memory at addr as a writable memoryview of unsigned bytes (no copy)."""
    return memoryview((ctypes.c_char * size).from_address(addr)).cast("B")


class HostChunk:
    """One anonymous host mapping; guest map entries reference parts of it."""

    __slots__ = ("addr", "size", "refs", "window", "_mem")

    def __init__(self, size: int) -> None:
        addr = _libc.mmap(None, size, _mmap.PROT_READ | _mmap.PROT_WRITE,
                          _mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if addr is None or addr == _MAP_FAILED:
            raise MemoryError(f"host mmap of {size:#x} bytes failed")
        self.addr: int = addr
        self.size = size
        self.refs = 0
        self.window = False        # an Arena's: kept (pages discarded) when unreferenced
        self._mem: memoryview | None = None

    @property
    def mem(self) -> memoryview:
        """The chunk as bytes: the kernel's copyin/copyout slice it (a slice
        costs a quarter of a ctypes memmove or string_at call)."""
        m = self._mem
        if m is None:
            m = self._mem = host_view(self.addr, self.size)
        return m

    def discard(self, off: int, size: int) -> None:
        """Give pages back to the host; they read as zero afterwards."""
        _libc.madvise(self.addr + off, size, _mmap.MADV_DONTNEED)

    def release(self) -> None:
        if self.addr:
            self._mem = None            # (never used after this: the chunk is gone)
            _libc.munmap(self.addr, self.size)
            self.addr = 0


class Arena:
    """Host memory laid out as the guest's: the guest range [w, w + WINDOW) of
    a window w lives in one HostChunk, at the same offset. Mappings placed
    here are host-adjacent when they are guest-adjacent, so the engine can
    hold them in one region (emu/space.py). Host address space is only
    reserved (MAP_NORESERVE, untouched pages cost nothing). The arena belongs
    to the engine (emu/space.py) and outlives a process: the next process on
    that engine gets the same host addresses, so the engine's regions can be
    reused as they are (a fork after a child's exit maps nothing anew)."""

    WINDOW = 1 << 30

    __slots__ = ("_win",)

    def __init__(self) -> None:
        self._win: dict[int, HostChunk] = {}

    def place(self, start: int, end: int) -> tuple[HostChunk, int] | None:
        """(chunk, offset) for guest [start, end), or None when the range
        crosses a window (it gets a chunk of its own)."""
        w = start // self.WINDOW
        if (end - 1) // self.WINDOW != w:
            return None
        c = self._win.get(w)
        if c is None:
            c = self._win[w] = HostChunk(self.WINDOW)
            c.window = True
        return c, start - w * self.WINDOW

    def owns(self, chunk: HostChunk) -> bool:
        return any(c is chunk for c in self._win.values())

    def release(self) -> None:
        for c in self._win.values():
            c.release()
        self._win.clear()


read_host = ctypes.string_at
memmove = ctypes.memmove
memset = ctypes.memset


_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
HOST_PAGE = _mmap.PAGESIZE


def resident_runs(addr: int, size: int) -> list[tuple[int, int]]:
    """(offset, length) runs of [addr, addr+size) that the host has pages for.
    A page never touched reads as zero and need not be copied (fork copies only
    these: a Go program's 512 MB reservations cost nothing)."""
    npages = (size + HOST_PAGE - 1) // HOST_PAGE
    vec = (ctypes.c_ubyte * npages)()
    if _libc.mincore(addr, npages * HOST_PAGE, vec) != 0:
        return [(0, size)]                # cannot tell: copy everything
    runs: list[tuple[int, int]] = []
    raw = bytes(vec)
    i = 0
    while i < npages:
        if not raw[i] & 1:
            j = raw.find(b"\x01", i)      # mincore's vector: bit 0 = resident
            if j < 0:
                break
            i = j
            continue
        j = i
        while j < npages and raw[j] & 1:
            j += 1
        runs.append((i * HOST_PAGE, min(size, j * HOST_PAGE) - i * HOST_PAGE))
        i = j
    return runs
