"""Process benchmarks (issue: processes): fork+exit+wait, execve of a static
program, a two-process pipe's throughput -- each under nbemu (per operation,
from two runs of different sizes so that start-up cancels out) next to the same
source built for Linux under qemu-x86_64 (Debian's qemu-user) and natively."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from fixtures.build import build_c, zig_command

SRC = Path(__file__).resolve().parents[1] / "fixtures" / "c" / "bench_fork.c"


def linux_build() -> Path:
    """bench_fork.c for linux/amd64 (musl, static) -- the qemu-user reference."""
    out = Path(tempfile.gettempdir()) / "nbemu-bench_fork-linux"
    exit0 = Path(tempfile.gettempdir()) / "nbemu-exit0-linux"
    if not out.exists():
        subprocess.run([*zig_command(), "cc", "-target", "x86_64-linux-musl", "-static", "-O2",
                        str(SRC), "-o", str(out)], check=True)
    if not exit0.exists():
        c = exit0.with_suffix(".c")
        c.write_text("int main(void) { return 0; }\n")
        subprocess.run([*zig_command(), "cc", "-target", "x86_64-linux-musl", "-static", "-O2",
                        str(c), "-o", str(exit0)], check=True)
    return out


def _timed(cmd: list[str], reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def per_op(cmd_of, n1: int, n2: int) -> float:
    return max(_timed(cmd_of(n2)) - _timed(cmd_of(n1)), 0.0) / (n2 - n1)


def rows() -> list[tuple[str, str, str, str]]:
    import sys
    nb = [sys.executable, "-m", "nbemu.emu.cli", str(build_c("bench_fork"))]
    exit42 = str(build_c("exit42"))
    lx = linux_build()
    lx_exit0 = str(Path(tempfile.gettempdir()) / "nbemu-exit0-linux")
    qemu = shutil.which("qemu-x86_64")
    out = []

    def ref(kind: str, cmd_of, n1: int, n2: int, unit: float, fmt: str) -> str:
        parts = [f"native {fmt.format(per_op(lambda n: [str(lx), *cmd_of(n)], n1, n2) * unit)}"]
        if qemu:
            q = per_op(lambda n: [qemu, str(lx), *cmd_of(n)], n1, n2)
            parts.insert(0, f"qemu-x86_64 {fmt.format(q * unit)}")
        else:
            parts.insert(0, "qemu-x86_64 not installed")
        return ", ".join(parts)

    t = per_op(lambda n: [*nb, "fork", str(n)], 20, 220)
    out.append(("fork + _exit + wait4 (static program)", f"{t * 1e3:.2f} ms",
                ref("fork", lambda n: ["fork", str(n)], 20, 220, 1e3, "{:.3f} ms"), "<= 1 ms"))
    t = per_op(lambda n: [*nb, "exec", str(n), exit42], 5, 45)
    out.append(("fork + execve + exit + wait4 (static program)", f"{t * 1e3:.1f} ms",
                ref("exec", lambda n: ["exec", str(n), lx_exit0], 5, 45, 1e3, "{:.3f} ms"),
                "execve <= 20 ms"))
    t = per_op(lambda n: [*nb, "pipe", str(n)], 4, 132)
    mbs = 1 / t if t else float("inf")

    def mb(n: int) -> list[str]:
        return ["pipe", str(n)]
    q = per_op(lambda n: [qemu, str(lx), *mb(n)], 4, 132) if qemu else None
    nat = per_op(lambda n: [str(lx), *mb(n)], 4, 132)
    out.append(("two-process pipe throughput", f"{mbs:.0f} MB/s",
                (f"qemu-x86_64 {1 / q:.0f} MB/s, " if q else "") + f"native {1 / nat:.0f} MB/s",
                ">= 100 MB/s"))
    return out


if __name__ == "__main__":
    for r in rows():
        print(" | ".join(r))
