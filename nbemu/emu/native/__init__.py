"""Build (once, cached) and load the native block hook (nbhook.c).

The hook is compiled with the host's C compiler the first time it is needed and
cached by the hash of its source. Without a compiler nbemu still runs, with a
Python block hook that is ~190x slower on tight loops (one warning line).
"""
from __future__ import annotations

import ctypes
import os
import sys
import zlib

# (os.path, not pathlib: see engine_lib)
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nbhook.c")


def cache_dir() -> str:
    """Where nbemu caches what it builds: $NBEMU_CACHE; else, run from a checkout,
    its .cache/ (shared with the fixture builds); else, installed, the user's
    cache directory ($XDG_CACHE_HOME/nbemu, by default ~/.cache/nbemu) — never
    inside site-packages."""
    env = os.environ.get("NBEMU_CACHE")
    if env:
        return env
    repo = os.path.realpath(__file__)
    for _ in range(4):
        repo = os.path.dirname(repo)
    if os.path.isfile(os.path.join(repo, "pyproject.toml")) \
            and os.path.isdir(os.path.join(repo, "nbemu", "emu", "native")) \
            and os.access(repo, os.W_OK):
        return os.path.join(repo, ".cache")
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nbemu")                                  # (XDG: absolute only)


class NativeHook:
    """The loaded library and typed views of its globals."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.preempt = ctypes.c_int.in_dll(lib, "nb_preempt")
        self.armed = ctypes.c_int.in_dll(lib, "nb_armed")
        self.budget = ctypes.c_int64.in_dll(lib, "nb_budget")
        self.blocks = ctypes.c_uint64.in_dll(lib, "nb_blocks")
        self.engine_counts = ctypes.c_int.in_dll(lib, "nb_engine_counts")
        self.stop_at = ctypes.c_uint64.in_dll(lib, "nb_stop_at")
        self.async_uc = ctypes.c_void_p.in_dll(lib, "nb_async_uc")
        self.async_stops = ctypes.c_uint64.in_dll(lib, "nb_async_stops")
        self.block_hook = ctypes.cast(lib.nb_block_hook, ctypes.c_void_p)
        lib.nb_start_ticker.argtypes = [ctypes.c_long]
        lib.nb_set_stop.argtypes = [ctypes.c_void_p]
        lib.nb_set_trap.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                    ctypes.c_int, ctypes.c_int]
        self.syscall_hook = ctypes.cast(lib.nb_syscall_hook, ctypes.c_void_p)
        lib.nb_set_intr.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_uint64,
                                    ctypes.c_void_p, ctypes.c_void_p]
        self.intr_hook = ctypes.cast(lib.nb_intr_hook, ctypes.c_void_p)
        # a turn's and a switch's engine calls (Machine._run_slice, _load): no
        # argtypes, no conversion -- callers pass c_void_p / c_uint64 objects
        # and small ints, as regs.raw's functions take them
        lib.nb_set_run.argtypes = [ctypes.c_void_p] * 4
        lib.nb_set_run.restype = None
        self.np_kick = ctypes.c_int.in_dll(lib, "nb_np_kick")
        self.run = lib.nb_run
        self.switch = lib.nb_switch
        self.in_ids = (ctypes.c_int * 16).in_dll(lib, "nb_in_ids")
        self.in_vals = (ctypes.c_uint64 * 16).in_dll(lib, "nb_in_vals")
        self.out_ids = (ctypes.c_int * 8).in_dll(lib, "nb_out_ids")
        self.out_vals = (ctypes.c_uint64 * 8).in_dll(lib, "nb_out_vals")
        self.out_valid = ctypes.c_int.in_dll(lib, "nb_out_valid")
        self.stop_after = ctypes.c_int.in_dll(lib, "nb_stop_after")
        # the clock_gettime fast path (nbhook.c)
        self.fc_sysno = ctypes.c_int.in_dll(lib, "nb_fc_sysno")
        self.fc_flags_idx = ctypes.c_int.in_dll(lib, "nb_fc_flags_idx")
        self.fc_carry = ctypes.c_uint64.in_dll(lib, "nb_fc_carry")
        self.fc_lo = ctypes.c_uint64.in_dll(lib, "nb_fc_lo")
        self.fc_hi = ctypes.c_uint64.in_dll(lib, "nb_fc_hi")
        self.fc_host = ctypes.c_uint64.in_dll(lib, "nb_fc_host")
        self.fc_mono_off = ctypes.c_int64.in_dll(lib, "nb_fc_mono_off")
        self.fc_count = ctypes.c_uint64.in_dll(lib, "nb_fc_count")
        self.fc_keep = (ctypes.c_int * 4).in_dll(lib, "nb_fc_keep")
        # who sent a host signal (emu/hostsig.py)
        lib.nb_sigorigin_wrap.argtypes = [ctypes.c_int]
        lib.nb_sigorigin_take.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_uint32)]
        lib.nb_sigorigin_take.restype = None


_loaded: NativeHook | None = None


def _build(out: str) -> bool:
    import shutil                  # (only when it is built: start-up imports less)
    import subprocess
    import tempfile
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        return False
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out), suffix=".so")
    os.close(fd)
    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", tmp, _SRC, "-lpthread"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.unlink(tmp)
        print(f"nbemu: warning: cannot build native hook: {r.stderr.strip()}", file=sys.stderr)
        return False
    os.replace(tmp, out)
    return True


def load() -> NativeHook | None:
    """The native hook library, built on first use; None when it cannot be built."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with open(_SRC, "rb") as f:
        src = f.read()
    digest = f"{zlib.crc32(src):08x}{len(src):x}"   # (hashlib costs ~4 ms of start-up)
    so = os.path.join(cache_dir(), "native", f"nbhook-{digest}.so")
    if not os.path.exists(so) and not _build(so):
        return None
    _loaded = NativeHook(ctypes.CDLL(so))
    return _loaded
