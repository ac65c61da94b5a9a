"""gdb's host I/O (`vFile:` packets) for the one file gdb needs: the program.

With no file on its command line, `gdb -ex 'target remote :PORT'` asks the stub
for the program's path (qXfer:exec-file) and, its sysroot being "target:",
reads the file through the stub. We serve it with its NetBSD OS ABI markers
hidden, because Debian's gdb and gdb-multiarch have no NetBSD OS ABI: an ELF
that says NetBSD (Go sets EI_OSABI to ELFOSABI_NETBSD; zig/NetBSD's toolchain
adds a `.note.netbsd.ident` section) makes them drop the 64-bit register set
(pointers cut to 32 bits, "Architecture rejected target-supplied description").
Hidden, the OS ABI comes from the target description, whose `<osabi>` is
"none" — the `set osabi none` users otherwise had to give before the file.

Only the program and the shared objects the stub has listed to gdb
(emu/gdb_solib.py) are served (read-only); any other path gets ENOENT, so gdb
finds no separate debug files and uses the objects' own DWARF. Replies use
gdb's File-I/O conventions: `F<result>[,<errno>]`, numbers in hex, `struct
stat` as gdb's fixed big-endian layout.
"""
from __future__ import annotations

import os
import struct

# gdb File-I/O errno values (gdb/include/gdb/fileio.h)
FILEIO_ENOENT, FILEIO_EBADF, FILEIO_EACCES, FILEIO_EINVAL = 2, 9, 13, 22
FILEIO_O_ACCMODE = 0x3                # O_RDONLY 0, O_WRONLY 1, O_RDWR 2

ELFOSABI_NONE, ELFOSABI_NETBSD = 0, 2
EI_OSABI = 7
_NETBSD_NOTE = b".note.netbsd.ident\0"
_HIDDEN_NOTE = b".note.nbemu.hidden\0"          # same length: offsets stay valid


def gdb_view(image: bytes) -> bytes:
    """The program as gdb should see it: the same bytes, except that the ELF
    OS/ABI byte and the NetBSD ident note's section name no longer say NetBSD."""
    if image[:4] != b"\x7fELF":
        return image
    b = bytearray(image)
    if b[EI_OSABI] == ELFOSABI_NETBSD:
        b[EI_OSABI] = ELFOSABI_NONE
    # The name lives in the section-header string table; gdb's sniffer matches it
    # by name (the note itself and the PT_NOTE segment are left as they are).
    lo, hi = _shstrtab_range(image)
    i = b.find(_NETBSD_NOTE, lo, hi)
    while i >= 0:
        b[i:i + len(_NETBSD_NOTE)] = _HIDDEN_NOTE
        i = b.find(_NETBSD_NOTE, i + 1, hi)
    return bytes(b)


def _shstrtab_range(image: bytes) -> tuple[int, int]:
    """File offsets [start, end) of the section-header string table (0, 0 if none)."""
    try:
        if image[4] == 2:                                    # ELFCLASS64
            shoff, = struct.unpack_from("<Q", image, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from("<3H", image, 0x3a)
            off, size = struct.unpack_from("<QQ", image, shoff + shstrndx * shentsize + 0x18)
        else:
            shoff, = struct.unpack_from("<I", image, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from("<3H", image, 0x2e)
            off, size = struct.unpack_from("<II", image, shoff + shstrndx * shentsize + 0x10)
    except struct.error:
        return 0, 0
    if shoff == 0 or shstrndx >= shnum or off + size > len(image):
        return 0, 0
    return off, off + size


def _err(errno: int) -> str:
    return f"F-1,{errno:x}"


class HostIO:
    """Serves vFile:setfs/open/pread/fstat/close/readlink/unlink for the program
    and the files ``allow`` adds (its shared objects)."""

    def __init__(self, program: str) -> None:
        self.path = os.path.abspath(program)
        self._views: dict[str, bytes | None] = {self.path: None}   # path -> gdb's view
        self._fds: dict[int, tuple[str, bytes]] = {}
        self._next_fd = 3

    def allow(self, path: str) -> None:
        self._views.setdefault(os.path.abspath(path), None)

    def view(self, path: str | None = None) -> bytes:
        path = self.path if path is None else path
        v = self._views.get(path)
        if v is None:
            with open(path, "rb") as f:
                v = self._views[path] = gdb_view(f.read())
        return v

    def handle(self, text: str) -> bytes | str:
        """The reply to one `vFile:` packet (text without the "vFile:" prefix)."""
        op, _, args = text.partition(":")
        a = args.split(",") if args else []
        try:
            if op == "setfs":
                return "F0"
            if op == "open" and len(a) == 3:
                path = bytes.fromhex(a[0]).decode("utf-8", "replace")
                if int(a[1], 16) & FILEIO_O_ACCMODE:
                    return _err(FILEIO_EACCES)
                path = os.path.abspath(path)
                if path not in self._views:
                    return _err(FILEIO_ENOENT)
                try:
                    data = self.view(path)
                except OSError:
                    return _err(FILEIO_ENOENT)
                fd = self._next_fd
                self._next_fd += 1
                self._fds[fd] = (path, data)
                return f"F{fd:x}"
            if op == "pread" and len(a) == 3:
                f = self._fds.get(int(a[0], 16))
                if f is None:
                    return _err(FILEIO_EBADF)
                data = f[1]
                count, off = int(a[1], 16), int(a[2], 16)
                chunk = data[off:off + count]
                return f"F{len(chunk):x};".encode() + chunk
            if op == "fstat" and len(a) == 1:
                f = self._fds.get(int(a[0], 16))
                if f is None:
                    return _err(FILEIO_EBADF)
                path, data = f
                st = os.stat(path)
                # gdb's struct stat: dev ino mode nlink uid gid rdev (u32), size
                # blksize blocks (u64), atime mtime ctime (u32); big-endian
                blob = struct.pack(">7I3Q3I", 0, 0, 0o100555, 1, 0, 0, 0, len(data),
                                   4096, (len(data) + 511) // 512, int(st.st_atime),
                                   int(st.st_mtime), int(st.st_ctime))
                return f"F{len(blob):x};".encode() + blob
            if op == "close" and len(a) == 1:
                return "F0" if self._fds.pop(int(a[0], 16), None) is not None \
                    else _err(FILEIO_EBADF)
            if op in ("readlink", "unlink"):
                return _err(FILEIO_ENOENT)
        except ValueError:
            return _err(FILEIO_EINVAL)
        return ""
