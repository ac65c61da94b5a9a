"""--deterministic on the patched engine: the engine counts translated blocks
itself, inline at every block's start, and ends a slice when the count reaches
its stop (uc_nb_count_blocks in nbemu/emu/native/unicorn-2.1.4-nbemu.patch);
no block hook is called. On PyPI's engine the native block hook counts.

Both must count the same blocks and stop before the same block: the virtual
clock and every slice's end are functions of that count, so a seed's schedule
hash and the blocks counted (--stats) are the same on both engines, on every
port."""
from __future__ import annotations

import os
import re

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, engine_env, needs_patched, run_nbemu

_HASH = re.compile(r"^nbemu: schedule ([0-9a-f]+) \((\d+) decisions\)$", re.M)
_BLOCKS = re.compile(r"^nbemu: stats: .* (\d+) blocks, ", re.M)


def _schedule(arch: str, ncpu: int, engine: str) -> tuple[str, int, int]:
    """(schedule hash, decisions, blocks counted) of one deterministic run of
    fixtures/c/spin.c: two LWPs that wait for each other by spinning, so the
    blocks they spin are a function of where each slice ends."""
    # (-U: NBEMU_ENGINE is not the guest's: its environment's size changes
    # how many blocks its start-up runs)
    r = run_nbemu(build_c("spin", arch), "50",
                  opts=("--ncpu", str(ncpu), "--deterministic", "--seed", "2", "--sched-hash",
                        "--stats", "-U", "NBEMU_ENGINE"),
                  env=engine_env(**({"NBEMU_ENGINE": "stock"} if engine == "stock" else {})),
                  timeout=180)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, (r.stdout, r.stderr)
    h = _HASH.search(r.stderr)
    b = _BLOCKS.search(r.stderr)
    assert h and b, (r.stdout, r.stderr)
    return h.group(1), int(h.group(2)), int(b.group(1))


@needs_patched
@pytest.mark.parametrize("arch", ARCHES)
def test_the_engines_count_gives_the_block_hooks_schedule(arch: str) -> None:
    for ncpu in (1, 2):
        patched = _schedule(arch, ncpu, "patched")
        stock = _schedule(arch, ncpu, "stock")
        # the same blocks counted: every slice the count ended, it ended before
        # the same block (one counted a block more or less per slice: tens to
        # hundreds of blocks apart)
        assert patched == stock, (arch, ncpu)
        assert patched[2] > 1_000_000


@needs_patched
def test_no_block_hook_is_installed_and_blocks_are_counted(tmp_path) -> None:
    from nbemu.emu.boot import Options, Session
    out = tmp_path / "out"
    s = Session(str(build_c("seedorder", "x86_64")), [],
                Options(deterministic=True, seed=1, ncpu=4))
    saved = os.dup(1)
    with open(out, "wb") as f:
        os.dup2(f.fileno(), 1)
        try:
            status = s.run()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    m = s.machine
    try:
        assert status == 0, out.read_text()
        assert m.engine_counts
        assert not m.space.hook_installed
        assert m.blocks_executed() > 10_000
        assert m.native.engine_counts.value == 1
    finally:
        m.native.engine_counts.value = 0     # (the library's globals are per process)
