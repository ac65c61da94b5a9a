"""Which libunicorn nbemu runs on: Unicorn from PyPI, or the same release
built from its PyPI source with nbemu's patch (unicorn-<version>-nbemu.patch
beside this file) when `make setup` has built it into the cache.

Why a patched engine (measured, BENCHMARKS.md "real code" rows and
nbemu/emu/engine.py): on memory-heavy C code Unicorn 2.1.4 itself is the floor
(nbemu runs at 0.9-1.1x a bare engine), 4-8x qemu-user, because every guest
store takes the soft-MMU slow path, a helper call follows every load and
store, and the TLB stays at 256 entries. The patch lifts that to 1.3-2.4x
qemu-user (2026-12-07): no write watch on pages that cannot hold code (as
upstream's PRs 2337 and 2414), no exit check after loads and stores without
memory hooks, larger TLBs, QEMU's inline exit check at a block's start, and
uc_nb_count_blocks (--deterministic counts blocks without a block hook).

select() must run before anything imports unicorn (nbemu/__init__.py calls it):
the Python binding loads the library that LIBUNICORN_PATH names first, and
silently falls back to its own when that one does not load -- in_use() says
which one it really took. select() imports unicorn itself, so that the
variable is gone again before anything copies os.environ (the guest's
environment, programs nbemu starts).

    NBEMU_ENGINE=stock      Unicorn from PyPI even when the patched one is built
    LIBUNICORN_PATH=DIR     a library of your own (wins over both)
    python -m nbemu.emu.native.build_engine [--quiet]   build it (make setup does)
"""
from __future__ import annotations

import os
import sys
import zlib

# Paths are strings here (os.path), not pathlib: a run imports this module and
# nothing else of nbemu needs pathlib, whose import (with urllib.parse,
# ipaddress, fnmatch) is ~4 ms of every start.
HERE = os.path.dirname(os.path.realpath(__file__))
ARCHES = "x86;arm;aarch64"          # Unicorn's targets of nbemu's four ports
# Compiler flags of the build (part of its cache key). Hidden visibility: the
# library exports its API only (UNICORN_EXPORT), ~130 symbols instead of ~7,000,
# so loading it binds 83 symbol relocations instead of 9,354 (ld.so: 8.8M ->
# 3.5M instructions of every start) and calls inside it skip the PLT (the Go
# hello's translation and run: 211M -> 208M instructions).
CMAKE_FLAGS = ("-DCMAKE_C_FLAGS=-fvisibility=hidden",)
LIBNAME = "libunicorn.so.2"

_selected: str | None = None       # what select() pointed LIBUNICORN_PATH at


def installed_version() -> str | None:
    """The unicorn distribution's version, read from its metadata folder without
    importing it (importing loads the library, which select() must precede)."""
    spec = _unicorn_spec()
    if spec is None or not spec.submodule_search_locations:
        return None
    site = os.path.dirname(next(iter(spec.submodule_search_locations)))
    try:
        names = sorted(os.listdir(site))
    except OSError:
        return None
    for name in names:
        if name.startswith("unicorn-") and name.endswith(".dist-info"):
            return name[len("unicorn-"):-len(".dist-info")]
    return None


def _unicorn_spec():
    import importlib.util
    return importlib.util.find_spec("unicorn")


def patch_file(version: str) -> str:
    return os.path.join(HERE, f"unicorn-{version}-nbemu.patch")


def build_dir(version: str) -> str | None:
    """Where the patched engine of this unicorn version and patch lives (built
    or not); None when nbemu has no patch for this version."""
    from nbemu.emu.native import cache_dir
    patch = patch_file(version)
    if not os.path.isfile(patch):
        return None
    with open(patch, "rb") as f:
        data = f.read() + ARCHES.encode() + " ".join(CMAKE_FLAGS).encode()
    key = f"{zlib.crc32(data):08x}{len(data):x}"   # (hashlib: ~4 ms of start-up)
    return os.path.join(cache_dir(), "engine", f"unicorn-{version}-nbemu-{key}")


def built() -> str | None:
    """The folder of the built patched engine, or None."""
    version = installed_version()
    d = build_dir(version) if version else None
    return d if d is not None and os.path.isfile(os.path.join(d, LIBNAME)) else None


def select() -> None:
    """Point the unicorn binding at the patched engine when it is built, unless
    the user chose (NBEMU_ENGINE=stock, or a LIBUNICORN_PATH of their own), and
    import unicorn (_import_unicorn: without the binding's start-up cost)."""
    global _selected
    if "unicorn" in sys.modules:
        return
    d = None
    if not os.environ.get("LIBUNICORN_PATH") and os.environ.get("NBEMU_ENGINE", "") != "stock":
        d = built()
    if d is None:
        _import_unicorn()
        return
    # The binding reads the variable when it is imported; it must not stay in
    # os.environ, which is what the guest's environment is made of.
    os.environ["LIBUNICORN_PATH"] = d
    try:
        _import_unicorn()
    finally:
        del os.environ["LIBUNICORN_PATH"]
    _selected = d


class _Path:
    """What the binding's library loader does with pathlib's Path and PurePath
    (join with /, parent, str, exists), on a string: its stand-in while unicorn
    is imported, when pathlib itself is not imported yet."""

    __slots__ = ("_s",)

    def __init__(self, *parts) -> None:
        self._s = os.path.join(*map(os.fspath, parts)) if parts else ""

    def __truediv__(self, other) -> "_Path":
        return _Path(self._s, other)

    def __fspath__(self) -> str:
        return self._s or "."

    __str__ = __fspath__

    def __repr__(self) -> str:
        return f"_Path({self._s!r})"

    @property
    def parent(self) -> "_Path":
        return _Path(os.path.dirname(self._s))

    def exists(self) -> bool:
        return os.path.exists(self.__fspath__())


def _import_unicorn() -> None:
    """import unicorn, lending the binding's library loader cheap equivalents of
    the three modules it imports only to list the folders it tries.

    unicorn_py3/unicorn.py's __load_uc_lib() imports importlib.resources (for
    files("unicorn"), the package's folder) and inspect (for getfile() of its own
    function, the same folder) before it looks at LIBUNICORN_PATH; the two pull
    zipfile, tempfile, shutil, random, bz2, lzma, ast, dis, tokenize, linecache
    ...: ~60M of the 200M instructions of `import unicorn` (callgrind), none of
    which a run uses; and pathlib (with urllib.parse, ipaddress, fnmatch: ~4 ms),
    for joining those folders' names. The stand-ins give the same answers (the
    package's folder, the function's source file, the joined names), so the
    binding tries the same folders in the same order and loads the same
    library; they are in sys.modules only while unicorn is imported, and only
    where the real module is not imported yet. Should a later binding want more of them, the import
    is simply done again without them."""
    import types
    spec = _unicorn_spec()
    lend = {}
    if spec is not None and spec.origin:
        if "pathlib" not in sys.modules:
            pl = types.ModuleType("pathlib")
            pl.Path = pl.PurePath = _Path                                 # type: ignore[attr-defined]
            lend["pathlib"] = pl
        if "importlib.resources" not in sys.modules:
            pkg = _Path(os.path.dirname(spec.origin))
            res = types.ModuleType("importlib.resources")
            res.files = lambda name: pkg if name == "unicorn" else _no(name)   # type: ignore[attr-defined]
            lend["importlib.resources"] = res
        if "inspect" not in sys.modules:
            ins = types.ModuleType("inspect")
            ins.getfile = lambda obj: obj.__code__.co_filename                  # type: ignore[attr-defined]
            lend["inspect"] = ins
    sys.modules.update(lend)
    try:
        import unicorn  # noqa: F401
    except Exception:
        if not lend:
            raise
        for name in [m for m in sys.modules if m == "unicorn" or m.startswith("unicorn.")]:
            del sys.modules[name]
        for name in lend:
            sys.modules.pop(name, None)
        lend = {}
        import unicorn  # noqa: F401,F811  (the binding's own way)
    finally:
        for name, mod in lend.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]


def _no(name: str):
    raise LookupError(f"engine_lib: no stand-in for importlib.resources.files({name!r})")


def patched() -> bool:
    """Whether the library unicorn loaded is nbemu's patched build."""
    from unicorn.unicorn_py3.unicorn import uclib
    d = os.path.dirname(getattr(uclib, "_name", "") or "")
    return d == _selected or os.path.isfile(os.path.join(d, ".nbemu-patched"))


def in_use() -> str:
    """The library unicorn loaded, in one phrase (nbemu --version, --stats)."""
    import unicorn
    from unicorn.unicorn_py3.unicorn import uclib
    path = getattr(uclib, "_name", "") or ""
    d = os.path.dirname(path)
    if patched():
        return f"Unicorn {unicorn.__version__} + nbemu patch ({d})"
    if os.environ.get("LIBUNICORN_PATH") and \
            os.path.normpath(d) == os.path.normpath(os.environ["LIBUNICORN_PATH"]):
        return f"Unicorn {unicorn.__version__} ({path})"
    return f"Unicorn {unicorn.__version__} (PyPI)"
