"""The CPU-loop benchmark per architecture: the loop of fixtures/c/bench_loop.c
under nbemu vs the very same instructions on a bare Unicorn engine.

The bare side copies the bytes between the ELF symbols bench_loop_body and
bench_loop_end out of the fixture built for that architecture, so both sides
run identical code; the registers each loop uses are listed in bench_loop.c.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import nbemu  # noqa: F401  (first: it picks the engine before unicorn loads)
from unicorn import Uc
from unicorn import arm64_const as A64
from unicorn import arm_const as ARM
from unicorn import x86_const as X

from fixtures.build import build_c
from nbemu.guest.arch import for_elf_machine

REPO = Path(__file__).resolve().parents[1]
CODE = 0x400000
SEED = 88172645463325252

# C architecture name -> (x register, i register, n register) of the loop body.
LOOP_REGS: dict[str, tuple[int, int, int]] = {
    "x86_64": (X.UC_X86_REG_RAX, X.UC_X86_REG_RCX, X.UC_X86_REG_R8),
    "aarch64": (A64.UC_ARM64_REG_X0, A64.UC_ARM64_REG_X1, A64.UC_ARM64_REG_X2),
    "x86": (X.UC_X86_REG_EAX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX),
    "arm": (ARM.UC_ARM_REG_R0, ARM.UC_ARM_REG_R1, ARM.UC_ARM_REG_R2),
}


def loop_body(prog: Path) -> tuple[int, bytes]:
    """(e_machine, bytes of the loop body) of a bench_loop build."""
    from elftools.elf.elffile import ELFFile
    with open(prog, "rb") as f:
        elf = ELFFile(f)
        syms = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
        start, end = syms["bench_loop_body"] & ~1, syms["bench_loop_end"] & ~1
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= start < seg["p_vaddr"] + seg["p_filesz"]:
                off = start - seg["p_vaddr"]
                return _machine(prog), seg.data()[off:off + end - start]
    raise ValueError(f"{prog}: bench_loop_body is not in a loaded segment")


def _machine(prog: Path) -> int:
    """e_machine of an ELF file (little-endian: every port here is)."""
    return int.from_bytes(prog.read_bytes()[18:20], "little")


def _bare_run(arch: str, prog: Path, n: int) -> float:
    machine, body = loop_body(prog)
    abi = for_elf_machine(machine)
    assert abi is not None, f"{prog}: no ABI for e_machine {machine}"
    uc = Uc(abi.uc_arch, abi.uc_mode)
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, body)
    rx, ri, rn = LOOP_REGS[arch]
    uc.reg_write(rx, SEED & ((1 << 8 * abi.word_size) - 1))
    uc.reg_write(ri, 0)
    uc.reg_write(rn, n)
    t0 = time.perf_counter()
    uc.emu_start(CODE, CODE + len(body))
    return time.perf_counter() - t0


def bare_per_iter(arch: str, prog: Path, n: int) -> float:
    """Seconds per iteration on bare Unicorn, by the two-size difference (an
    engine's first run pays one-time costs that would skew a ratio), in a fresh
    process (see rows() for why)."""
    r = subprocess.run([sys.executable, "-m", "bench.cpu_loop", arch, str(prog), str(n)],
                       capture_output=True, text=True, check=True, cwd=REPO)
    return float(r.stdout)


def _bare_main(arch: str, prog: str, n: int) -> None:
    t1 = _bare_run(arch, Path(prog), n // 10)
    t2 = _bare_run(arch, Path(prog), n)
    print(max(t2 - t1, 0.0) / (n - n // 10))


def rows(n: int, per_op: Callable[..., float], pairs: int = 9,
         arches: tuple[str, ...] = ("x86_64", "aarch64", "x86", "arm")) -> list[tuple[str, str, str, str]]:
    """Benchmark rows: per architecture, fast and --deterministic vs bare Unicorn.

    This host runs the very same translated loop at one of two speeds, ~3x
    apart, from one engine to the next (seen on bare Unicorn alone: translate
    some other code first, or start another process, and the time per
    iteration jumps between the two levels; an AMD EPYC under KVM). So each
    side is sampled `pairs` times -- bare Unicorn in fresh processes, nbemu in
    fresh sessions --, interleaved, and the best samples are compared (both at
    the fast level); the rows show the spread and the medians."""
    out = []
    for arch in arches:
        try:
            prog = build_c("bench_loop", arch)
            machine, _ = loop_body(prog)
            abi = for_elf_machine(machine)
            if abi is None:
                out.append((f"CPU loop ({arch})", "not supported yet", "", ""))
                continue
            runs = []
            for _ in range(pairs):
                b = bare_per_iter(arch, prog, n)
                f = per_op(prog, n // 10, n, reps=1)
                d = per_op(prog, n // 10, n, reps=1, deterministic=True, seed=1)
                runs.append((b, f, d))
        except Exception as e:  # reported, not hidden
            out.append((f"CPU loop ({arch})", "FAILED", str(e)[:100], ""))
            continue
        # Best of each side: both at their fast level (the levels are the host's,
        # the same for both sides); the spread shows the two levels.
        bare = min(r[0] for r in runs)
        fast = min(r[1] for r in runs)
        det = min(r[2] for r in runs)
        spread = (f"bare {bare * 1e9:.1f}-{max(r[0] for r in runs) * 1e9:.1f}, "
                  f"nbemu {fast * 1e9:.1f}-{max(r[1] for r in runs) * 1e9:.1f} ns; "
                  f"medians {statistics.median(r[0] for r in runs) * 1e9:.1f} / "
                  f"{statistics.median(r[1] for r in runs) * 1e9:.1f} ns")
        out.append((f"CPU loop ({abi.name}), nbemu fast mode", f"{fast * 1e9:.2f} ns/iter",
                    f"bare Unicorn {bare * 1e9:.2f} ns/iter: **{fast / bare:.2f}x** "
                    f"(best of {pairs} interleaved samples each; {spread})", "<= 1.1x"))
        out.append((f"CPU loop ({abi.name}), nbemu --deterministic", f"{det * 1e9:.2f} ns/iter",
                    f"bare Unicorn: **{det / bare:.2f}x**; fast mode: {det / max(fast, 1e-12):.2f}x",
                    "<= 3x fast"))
    return out


def _callgrind_instructions(cmd: list[str]) -> int:
    """Host instructions a command executes (valgrind's callgrind: a count, the
    same whatever the host's speed or load)."""
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                       capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} under callgrind: exit {r.returncode}: "
                           f"{r.stderr.strip().splitlines()[-1:]}")
    for line in r.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    raise RuntimeError(f"no callgrind total for {' '.join(cmd)}")


def insn_rows(quick: bool = False,
              arches: tuple[str, ...] = ("x86_64", "aarch64", "x86", "arm")
              ) -> list[tuple[str, str, str, str]]:
    """The CPU loop in host instructions per iteration (callgrind), nbemu fast
    mode vs bare Unicorn, by the two-size difference: what the time rows above
    cannot show on this host, whose two speed levels make a time ratio move by
    up to 3x between runs of identical code. --deterministic beside it: what
    counting blocks costs per iteration (the loop is one block)."""
    import shutil
    if shutil.which("valgrind") is None:
        return [("CPU loop, host instructions per iteration", "valgrind not installed", "", "")]
    n1, n2 = (100_000, 600_000) if quick else (500_000, 2_500_000)
    out = []
    for arch in arches:
        prog = build_c("bench_loop", arch)
        abi = for_elf_machine(loop_body(prog)[0])
        assert abi is not None

        def nb(n: int, *opts: str) -> int:
            return _callgrind_instructions([sys.executable, "-m", "nbemu.emu.cli", "-U",
                                            "LD_PRELOAD", *opts, str(prog), str(n)])

        def bare(n: int) -> int:
            return _callgrind_instructions([sys.executable, "-m", "bench.cpu_loop", "--once",
                                            arch, str(prog), str(n)])
        f = (nb(n2) - nb(n1)) / (n2 - n1)
        b = (bare(n2) - bare(n1)) / (n2 - n1)
        det = ("--deterministic", "--seed", "1")
        d = (nb(n2, *det) - nb(n1, *det)) / (n2 - n1)
        out.append((f"CPU loop ({abi.name}), host instructions per iteration",
                    f"nbemu fast mode {f:.2f}; --deterministic {d:.2f} ({d / f:.2f}x fast)",
                    f"bare Unicorn {b:.2f}: **{f / b:.2f}x** "
                    f"(callgrind, {n2 - n1:,} iterations' difference)", "<= 1.1x"))
    return out


if __name__ == "__main__":
    if sys.argv[1] == "--once":     # one bare run of N iterations: ARCH PROG N
        _bare_run(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
    else:                           # one bare sample: ARCH PROG N -> seconds per iteration
        _bare_main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
