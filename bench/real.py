"""Real code: fixtures/c/bench_real.c (LZ77 compression, quicksort, hash table,
pointer chasing) under nbemu vs the same source natively, under qemu-user and
on a bare Unicorn engine (bench/bare_elf.py), per workload and architecture.

The NetBSD build is the fixture (nbrt runtime); the Linux build is the same
file compiled by the same zig with the same flags for <arch>-linux-musl,
static. Every side must print the same checksum line, or the row says so.

Times are host CPU time (user + system) of the emulation, best of `reps` (5:
with 2, one side's best was often at this host's slow speed level and the
other's at its fast one): this machine is shared, and wall time under load
measures the neighbours.
nbemu and the bare engine exclude Python's start-up (nbemu's ELF load is
included); native and qemu-user are whole processes (their start-up is a few
ms against seconds of work).

    python -m bench.real [--quick] [--arch A]... [--engine stock|patched]   prints the rows
    python -m bench.real --insn [...]     the same workloads in host instructions (callgrind)
    python -m bench.real one [--deterministic] PROG ARGS...   one nbemu sample
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures import build as fb  # noqa: E402

WORKLOADS = ("lz", "sort", "hash", "list")
ARCHES = ("x86_64", "aarch64")
ABI_NAME = {"x86_64": "amd64", "aarch64": "aarch64"}
QEMU = {"x86_64": "qemu-x86_64", "aarch64": "qemu-aarch64"}
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def build_linux(arch: str, name: str = "bench_real") -> Path:
    """The Linux (musl, static) build of fixtures/c/<name>.c, cached like the fixtures."""
    src = fb.C_SRC_DIR / f"{name}.c"
    target = f"{arch}-linux-musl"
    flags = [f for f in fb._C_FLAGS if f != "-g"]
    key = fb._hash_inputs(["linux-c", fb._RECIPE_VERSION, fb._zig_version(), target,
                           " ".join(flags)], [(src.name, src)])
    out_dir = fb.OUT_ROOT / f"linux-{arch}-c"
    out_dir.mkdir(parents=True, exist_ok=True)

    def build(tmp_out: Path, workdir: Path) -> None:
        fb._run([*fb.zig_command(), "cc", "-target", target, "-static", *flags,
                 str(src), "-o", str(tmp_out)], cwd=workdir, env=fb._zig_env(),
                what=f"building {name} for {target}")

    return fb._cached_build(out_dir / name, key, build)


def _child_cpu(cmd: list[str]) -> tuple[float, str]:
    """(user+system CPU seconds, stdout) of a child process."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()[-200:]}")
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), p.stdout.strip()


def _nbemu_one(prog: str, args: list[str], deterministic: bool) -> None:
    """One nbemu run in this process: prints "<cpu seconds> <guest stdout>"."""
    from nbemu.emu.boot import Options, Session
    out = tempfile.TemporaryFile()
    saved = os.dup(1)
    s = Session(prog, args, Options(deterministic=deterministic, seed=1 if deterministic else 0))
    os.dup2(out.fileno(), 1)
    try:
        t0 = time.process_time()
        status = s.run()
        dt = time.process_time() - t0
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
    out.seek(0)
    text = out.read().decode(errors="replace").strip()
    if status != 0:
        raise SystemExit(f"nbemu: {prog} {args} exited {status}")
    print(f"{dt:.6f} {text}")


def _engine_env(engine: str) -> dict[str, str]:
    """Environment that makes nbemu and the bare harness load `engine`: "stock"
    (Unicorn from PyPI) or "patched" (nbemu/emu/native/engine_lib.py)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LIBUNICORN_PATH", "NBEMU_ENGINE")}
    if engine == "stock":
        env["NBEMU_ENGINE"] = "stock"
    else:
        from nbemu.emu.native.engine_lib import built
        d = built()
        if d is None:
            raise RuntimeError("the patched engine is not built (make setup)")
        env["LIBUNICORN_PATH"] = str(d)
    return env


def _timed_line(cmd: list[str], engine: str) -> tuple[float, str]:
    """Run a harness that prints "<seconds> <output>"."""
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=_engine_env(engine))
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[-3:])}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
    t, _, text = p.stdout.strip().partition(" ")
    return float(t), text


def nbemu(prog: Path, args: list[str], deterministic: bool = False,
          engine: str = "patched") -> tuple[float, str]:
    cmd = [sys.executable, "-m", "bench.real", "one"]
    if deterministic:
        cmd.append("--deterministic")
    return _timed_line(cmd + [str(prog), *args], engine)


def bare(prog: Path, args: list[str], engine: str = "patched") -> tuple[float, str]:
    """CPU seconds of emu_start on a bare engine (bench/bare_elf.py, fresh process)."""
    return _timed_line([sys.executable, "-m", "bench.bare_elf", str(prog), *args], engine)


def _best(fn, reps: int) -> tuple[float, str]:
    samples = [fn() for _ in range(reps)]
    outs = {o for _, o in samples}
    return min(t for t, _ in samples), (outs.pop() if len(outs) == 1 else f"MIXED {outs}")


def rows(quick: bool = False, arches: tuple[str, ...] = ARCHES,
         workloads: tuple[str, ...] = WORKLOADS, reps: int = 5,
         deterministic: bool = True, engine: str = "patched") -> list[tuple[str, str, str, str]]:
    """Rows per architecture and workload; `engine`: "stock" (Unicorn from PyPI) or
    "patched" (what `make setup` builds: nbemu/emu/native/build_engine.py), for
    nbemu and the bare engine alike."""
    scale = "10" if quick else "100"
    reps = 1 if quick else reps
    host = HOST_ARCH.get(platform.machine())
    out = []
    for arch in arches:
        abi = ABI_NAME[arch]
        try:
            nb_prog = fb.build_c("bench_real", arch)
            lx_prog = build_linux(arch)
        except Exception as e:  # reported, not hidden
            out.append((f"real code ({abi})", "FAILED to build", str(e)[:100], ""))
            continue
        qemu = shutil.which(QEMU[arch])
        for w in workloads:
            args = [w, scale]
            what = f"real code `{w}` ({abi}), CPU s"
            what += (", patched engine (make setup)" if engine == "patched"
                     else ", PyPI's engine (NBEMU_ENGINE=stock)")
            try:
                t_nb, o_nb = _best(lambda: nbemu(nb_prog, args, engine=engine), reps)
                t_det = o_det = None
                if deterministic:
                    t_det, o_det = _best(lambda: nbemu(nb_prog, args, True, engine), reps)
                t_bare, o_bare = _best(lambda: bare(nb_prog, args, engine), reps)
                refs = [f"bare Unicorn {t_bare:.2f} s: **{t_nb / t_bare:.2f}x**"]
                outs = {o_nb, o_bare} | ({o_det} if o_det else set())
                if qemu:
                    t_q, o_q = _best(lambda: _child_cpu([qemu, str(lx_prog), *args]), reps)
                    refs.append(f"{QEMU[arch]} {t_q:.2f} s: **{t_nb / t_q:.2f}x**")
                    outs.add(o_q)
                else:
                    refs.append(f"{QEMU[arch]} not installed (apt-get install qemu-user): "
                                "no qemu-user column")
                if host == arch:
                    t_n, o_n = _best(lambda: _child_cpu([str(lx_prog), *args]), reps)
                    refs.append(f"native {t_n:.2f} s: {t_nb / t_n:.1f}x")
                    outs.add(o_n)
                else:
                    refs.append(f"native: host is not {arch}")
                if len(outs) != 1:
                    refs.append(f"OUTPUTS DIFFER: {sorted(outs)}")
                value = f"{t_nb:.2f} s"
                if t_det is not None:
                    value += f"; --deterministic {t_det:.2f} s ({t_det / t_nb:.2f}x fast)"
                out.append((what, value, "; ".join(refs),
                            "<= 3x qemu-user; --deterministic <= 1.5x fast"))
            except Exception as e:  # reported, not hidden
                out.append((what, "FAILED", str(e)[:120], ""))
    return out


def _instructions(cmd: list[str], engine: str) -> int:
    """Host instructions of a command (callgrind's total): a count that does not
    depend on the host's load or on its two speed levels (bench/cpu_loop.py)."""
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                       capture_output=True, text=True, cwd=REPO, env=_engine_env(engine))
    for line in r.stderr.splitlines():
        if r.returncode == 0 and "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    raise RuntimeError(f"{' '.join(cmd[-3:])} under callgrind: exit {r.returncode}: "
                       f"{r.stderr.strip().splitlines()[-1:]}")


def insn_rows(quick: bool = False, arches: tuple[str, ...] = ARCHES,
              workloads: tuple[str, ...] = WORKLOADS,
              engine: str = "patched") -> list[tuple[str, str, str, str]]:
    """The workloads at scale 10 in host instructions (callgrind), whole
    processes: nbemu fast mode, --deterministic, and the bare engine. The time
    rows compare best-of-N CPU seconds, which this host's two speed levels can
    move by up to 3x; these counts do not move."""
    if shutil.which("valgrind") is None:
        return [("real code, host instructions", "valgrind not installed", "", "")]
    out = []
    for arch in arches:
        prog = fb.build_c("bench_real", arch)
        for w in workloads:
            args = [str(prog), w, "10"]
            fast = _instructions([sys.executable, "-m", "bench.real", "one", *args], engine)
            det = _instructions([sys.executable, "-m", "bench.real", "one", "--deterministic",
                                 *args], engine)
            bare_n = _instructions([sys.executable, "-m", "bench.bare_elf", *args], engine)
            what = f"real code `{w}` ({ABI_NAME[arch]}), host instructions, scale 10"
            what += ", patched engine" if engine == "patched" else ", PyPI's engine"
            out.append((what, f"{fast / 1e6:,.0f}M; --deterministic {det / 1e6:,.0f}M "
                              f"(**{det / fast:.2f}x** fast)",
                        f"bare Unicorn {bare_n / 1e6:,.0f}M: {fast / bare_n:.2f}x "
                        "(callgrind, whole processes)", "--deterministic <= 1.5x fast"))
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["one"]:
        det = argv[1:2] == ["--deterministic"]
        rest = argv[2:] if det else argv[1:]
        _nbemu_one(rest[0], rest[1:], det)
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--arch", action="append", choices=ARCHES)
    ap.add_argument("--workload", action="append", choices=WORKLOADS)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--no-det", action="store_true")
    ap.add_argument("--engine", choices=("stock", "patched"), default="patched",
                    help="Unicorn from PyPI, or the patched build of make setup (default)")
    ap.add_argument("--insn", action="store_true",
                    help="host instructions at scale 10 (callgrind) instead of CPU seconds")
    ap.add_argument("--update", type=Path, metavar="BENCHMARKS.md",
                    help="replace these rows in that file (or add them after the CPU-loop rows)")
    ns = ap.parse_args(argv)
    lines = []
    got = (insn_rows(ns.quick, tuple(ns.arch or ARCHES), tuple(ns.workload or WORKLOADS),
                     ns.engine) if ns.insn else
           rows(ns.quick, tuple(ns.arch or ARCHES), tuple(ns.workload or WORKLOADS),
                ns.reps, not ns.no_det, ns.engine))
    for r in got:
        lines.append("| " + " | ".join(r) + " |")
        print(lines[-1], flush=True)
    if ns.update is not None:
        update_table(ns.update, lines)
    return 0


def update_table(path: Path, new: list[str]) -> None:
    """Put `new` rows into the table of `path`: a row whose first cell matches
    replaces it, others go after the last real-code row (else the last
    CPU-loop row), so one workload can be re-measured without `make bench`."""
    text = path.read_text().split("\n")
    key = lambda line: line.split("|")[1].strip() if line.startswith("|") else None  # noqa: E731
    for row in new:
        idx = [i for i, l in enumerate(text) if key(l) == key(row)]
        if idx:
            text[idx[0]] = row
            continue
        anchor = [i for i, l in enumerate(text) if (key(l) or "").startswith("real code")] or \
                 [i for i, l in enumerate(text) if (key(l) or "").startswith("CPU loop")]
        text.insert(anchor[-1] + 1 if anchor else len(text), row)
    path.write_text("\n".join(text))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# Written under the table by bench/run.py (and by --update): where the time goes.
NOTES = """Real code (bench/real.py): where the time goes. `perf record` of nbemu running \
`bench_real lz` (amd64, Unicorn 2.1.4 from PyPI), self time: libunicorn 52 % \
(flatview_translate 11.6 %, helper_check_exit_request 7.5 %, phys_page_find 7.5 %, \
load_helper 4.9 %, find_memory_mapping 3.5 %, helper_ret_stb_mmu 3.4 %, \
helper_le_stl_mmu 3.4 %, victim_tlb_hit 3.3 %, notdirty_write 1.8 %, \
tlb_set_page_with_attrs 0.9 %), translated guest code 36 %, host kernel 5.5 %, Python \
5.1 %, nbemu's native hook 0.03 %; aarch64 `sort`: helper_le_stl_mmu 16.2 %, \
flatview_translate 12.2 %, helper_check_exit_request 10.4 %, notdirty_write 4.6 %. \
So nbemu runs at the bare engine's speed (the bare-Unicorn column) and the engine is \
the floor: (1) every guest store takes the soft-MMU slow path, because without a guest \
MMU every page is RWX in the TLB and TLB_NOTDIRTY (the self-modifying-code watch) is \
never cleared -- two region lookups (find_memory_mapping -> flatview_translate -> \
phys_page_find) and notdirty_write per store; (2) a helper call (check_exit_request) \
after every load and store, which also makes TCG spill cached guest registers; \
(3) TLB refills: the TLB stays at 256 entries (QEMU resizes it only on a flush). \
Unicorn's controls do not reach these (emu/engine.py has the measurements: \
UC_TLB_VIRTUAL 2-3x slower, translation-buffer size and the invalid-access hooks no \
change, the ticker no change; the block hook is already installed only while needed). \
The 'patched engine' rows run the same code on Unicorn 2.1.4 with \
nbemu/emu/native/unicorn-2.1.4-nbemu.patch (TLB_NOTDIRTY only on executable regions, as \
upstream PR 2337 + 2414; check_exit_request after loads/stores only when a memory hook \
exists; a TLB of at least 4096 entries): that is what lifts the floor, and since \
2026-12-07 it is the engine nbemu runs on -- `make setup` builds it from unicorn's PyPI \
source (~1.5 min) and nbemu selects it (engine_lib.py; NBEMU_ENGINE=stock for PyPI's). After it, the aarch64 profile of `lz` \
was TLB refills (load_helper, tlb_set_page, phys_page_find) before the TLB change and \
the per-block check_exit_request at each block start (3.6 %)."""
