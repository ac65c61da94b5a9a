"""Build the prototype engine: Unicorn (the installed version's PyPI sdist)
with bench/unicorn-<version>-nbemu.patch applied, for measuring what the
engine costs (bench/real.py --engine DIR). Nothing of it is committed: the
sdist comes from PyPI, the build goes to .cache/engine/.

The patch (four changes to Unicorn 2.1.4, ~70 lines):
- cputlb.c, tlb_set_page_with_attrs: TLB_NOTDIRTY (the write watch that lets
  self-modifying code invalidate its translations) only for pages of regions
  with UC_PROT_EXEC. Without a guest MMU every page is RWX in the TLB, so
  2.1.4 sends every store to the slow path (store_helper, two region lookups,
  notdirty_write). Upstream made the same change after 2.1.4 (PR 2337).
- uc.c, uc_mem_protect: flush the TLB when a region gains UC_PROT_EXEC
  (entries cached without the write watch must go; upstream PR 2414).
- tcg-op.c: the check_exit_request helper call after every guest load and
  store is emitted only when a UC_HOOK_MEM_READ/READ_AFTER/WRITE hook exists
  (one that may call uc_emu_stop on a successful access); cputlb.c's
  store_helper leaves the TB itself (cpu_loop_exit_restore) on an invalid
  write, as load_helper already does, instead of relying on that call.
- cpu-defs.h + cputlb.c: the soft-MMU TLB starts with 4096 entries instead
  of 256 and never shrinks below that. QEMU resizes it only when it is
  flushed, which Unicorn does only when mappings change (a guest mmap): it
  stayed at 256 direct-mapped entries, where the LZ77 window, hash heads and
  chains (~110 pages) already conflict, or shrank to 64 at an mmap after an
  idle 100 ms window (bare engine, aarch64 lz at scale 50: 2.0 s -> 0.7 s).

    python -m bench.build_engine        prints the directory of libunicorn.so.2
    LIBUNICORN_PATH=DIR nbemu ...        runs nbemu on it
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "engine"
ARCHES = "x86;arm;aarch64"          # nbemu's four ports


def _out(version: str | None, arches: str) -> tuple[str, Path, Path]:
    import unicorn
    version = version or unicorn.__version__
    patch = REPO / "bench" / f"unicorn-{version}-nbemu.patch"
    if not patch.is_file():
        raise SystemExit(f"no patch for unicorn {version}: {patch}")
    key = hashlib.sha256(patch.read_bytes() + arches.encode()).hexdigest()[:12]
    return version, patch, CACHE / f"unicorn-{version}-nbemu-{key}"


def cached(version: str | None = None, arches: str = ARCHES) -> Path | None:
    """The directory of the prototype engine when it is built already (make bench
    adds its rows then; building it takes tens of minutes, so bench never does)."""
    try:
        out = _out(version, arches)[2]
    except SystemExit:
        return None
    return out if (out / "libunicorn.so.2").is_file() else None


def build(version: str | None = None, arches: str = ARCHES) -> Path:
    version, patch, out = _out(version, arches)
    key = out.name.rsplit("-", 1)[1]
    if (out / "libunicorn.so.2").is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"unicorn-{version}.tar.gz"
    if not sdist.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", f"unicorn=={version}", "-d", str(CACHE)],
                       check=True)
    work = CACHE / f"src-{key}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    with tarfile.open(sdist) as t:
        t.extractall(work, filter="data")
    src = work / f"unicorn-{version}" / "src"
    subprocess.run(["patch", "-p1", "-i", str(patch)], cwd=src, check=True)
    bdir = work / "build"
    subprocess.run(["cmake", "-B", str(bdir), "-DCMAKE_BUILD_TYPE=Release",
                    "-DUNICORN_BUILD_TESTS=off", f"-DUNICORN_ARCH={arches}", "-S", str(src)],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(bdir), f"-j{os.cpu_count() or 1}"], check=True)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(bdir / "libunicorn.so.2", out / "libunicorn.so.2")
    shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    print(build(*(sys.argv[1:2] or [None])))
