"""esbuild's bundle time: the NetBSD build under nbemu vs the Linux build of the
same version under qemu-user (Debian's qemu-user), for x86-64 and arm64.

Both sides bundle and minify the test project of fixtures/esbuild.py with the
same flags, as whole processes (nbemu's includes starting Python, qemu's its own
start-up); the outputs are compared so a fast wrong answer cannot pass.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fixtures import esbuild as E

# NetBSD package -> (Linux package of the same architecture, qemu-user binary)
PAIRS = {"netbsd-x64": ("linux-x64", "qemu-x86_64"), "netbsd-arm64": ("linux-arm64", "qemu-aarch64")}
REPO = Path(__file__).resolve().parents[1]


def _best(cmd: list[str], reps: int, out: Path) -> tuple[float, bytes]:
    best = float("inf")
    data = b""
    for _ in range(reps):
        out.unlink(missing_ok=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, cwd=REPO, timeout=600)
        best = min(best, time.perf_counter() - t0)
        data = out.read_bytes()
    return best, data


def rows(reps: int = 3) -> list[tuple[str, str, str, str]]:
    out = []
    with tempfile.TemporaryDirectory(prefix="nbemu-esbuild-bench-") as tmp:
        root = Path(tmp)
        E.write_project(root)
        bundle = root / "out" / "bundle.js"
        args = E.build_args(root)
        for pkg, (linux_pkg, qemu_name) in PAIRS.items():
            what = f"esbuild {E.ESBUILD_VERSION} bundle+minify ({pkg})"
            try:
                nb = E.esbuild_binary(pkg)
                t_nb, d_nb = _best([sys.executable, "-m", "nbemu.emu.cli", "--ncpu", "4", str(nb), *args],
                                   reps, bundle)
                qemu = shutil.which(qemu_name)
                if qemu is None:
                    out.append((what, f"{t_nb:.2f} s", f"{qemu_name} not installed "
                                "(apt-get install qemu-user)", ""))
                    continue
                lx = E.esbuild_binary(linux_pkg)
                t_q, d_q = _best([qemu, str(lx), *args], reps, bundle)
            except E.EsbuildUnavailable as e:
                out.append((what, "skipped", str(e)[:100], ""))
                continue
            except Exception as e:  # reported, not hidden
                out.append((what, "FAILED", str(e)[:100], ""))
                continue
            same = "same bytes" if d_nb == d_q else "**OUTPUT DIFFERS**"
            out.append((what, f"{t_nb:.2f} s (whole process, 4 vCPUs)",
                        f"{qemu_name} on @esbuild/{linux_pkg}: {t_q:.2f} s: **{t_nb / t_q:.1f}x**; "
                        f"{same}", ""))
    return out
