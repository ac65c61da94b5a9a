"""Build the patched Unicorn engine that engine_lib.select() picks: the installed
unicorn release's own source distribution from PyPI, with
unicorn-<version>-nbemu.patch applied, built by cmake and cc into the cache
(~1.5 min on 2 cores, once). `make setup` runs it; when it cannot build, it
says why in one line and nbemu runs on PyPI's Unicorn.

    python -m nbemu.emu.native.build_engine [--quiet]   prints the folder
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from nbemu.emu.native.engine_lib import (ARCHES, CMAKE_FLAGS, LIBNAME, HERE, build_dir,
                                        installed_version, patch_file)
from nbemu.emu.untar import extract_all

def build(quiet: bool = False) -> Path:
    """Build the patched engine into the cache (cmake and a C compiler; ~1.5 min
    on 2 cores): unicorn's own source distribution from PyPI, the patch applied.
    Raises SystemExit with one line when it cannot."""
    version = installed_version()
    if version is None:
        raise SystemExit("engine: unicorn is not installed")
    d = build_dir(version)
    if d is None:
        raise SystemExit(f"engine: no nbemu patch for unicorn {version} "
                         f"(have: {', '.join(p.name for p in Path(HERE).glob('*.patch'))})")
    out = Path(d)
    if (out / LIBNAME).is_file():
        return out
    for tool in ("cmake", "patch"):
        if shutil.which(tool) is None:
            raise SystemExit(f"engine: '{tool}' is not installed (apt-get install {tool})")
    if shutil.which(os.environ.get("CC", "cc")) is None:
        raise SystemExit("engine: no C compiler (cc)")
    out.parent.mkdir(parents=True, exist_ok=True)
    quiet_io = {"stdout": subprocess.DEVNULL} if quiet else {}
    with tempfile.TemporaryDirectory(dir=out.parent, prefix="build-") as tmp:
        work = Path(tmp)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            "--no-binary", ":all:", f"unicorn=={version}", "-d", str(work)],
                           capture_output=True, text=True)
        sdists = list(work.glob(f"unicorn-{version}.tar.gz"))
        if r.returncode != 0 or not sdists:
            raise SystemExit(f"engine: cannot fetch unicorn {version}'s source from PyPI: "
                             f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")
        with tarfile.open(sdists[0]) as t:
            extract_all(t, work)
        src = work / f"unicorn-{version}" / "src"
        steps = [
            ["patch", "-s", "-p1", "-i", patch_file(version)],
            ["cmake", "-B", str(work / "build"), "-DCMAKE_BUILD_TYPE=Release",
             "-DUNICORN_BUILD_TESTS=off", f"-DUNICORN_ARCH={ARCHES}", *CMAKE_FLAGS,
             "-S", str(src)],
            ["cmake", "--build", str(work / "build"), f"-j{os.cpu_count() or 1}"],
        ]
        for cmd in steps:
            r = subprocess.run(cmd, cwd=src, stderr=subprocess.PIPE, text=True, **quiet_io)
            if r.returncode != 0:
                raise SystemExit(f"engine: '{' '.join(cmd[:2])}' failed: "
                                 f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix="stage-"))
        stage.chmod(0o755)
        shutil.copy2(work / "build" / LIBNAME, stage / LIBNAME)
        patch_name = os.path.basename(patch_file(version))
        (stage / ".nbemu-patched").write_text(f"unicorn {version} + {patch_name}\n")
        try:                            # whole or not at all: a half build is never selected
            os.replace(stage, out)
        except OSError:                 # another build got there first
            shutil.rmtree(stage, ignore_errors=True)
    return out


def main(argv: list[str]) -> int:
    quiet = "--quiet" in argv
    try:
        out = build(quiet)
    except SystemExit as e:
        print(f"nbemu: {e.code}; nbemu runs on Unicorn from PyPI (slower on "
              "memory-heavy code)", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
