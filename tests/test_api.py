"""The Python API (emu/api.py), and the README's example, run as written."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from nbemu.emu.api import EmuError, Emulator
from fixtures.build import build_c, build_go
from tests.guest import ARCHES, GOARCHES, REPO

# (pc, sp) register names per C architecture, as Lwp.regs names them.
PC_SP = {"x86_64": ("rip", "rsp"), "aarch64": ("pc", "sp"), "x86": ("eip", "esp"),
         "arm": ("pc", "sp")}


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Debugging guest threads", 1)[1]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "no python example in the README section"
    return m.group(1)


def test_readme_example_runs() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, "-c", readme_example()], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "lid 100: _lwp_create(flags=0) -> ok" in out
    assert "lid 2 is called 'alice'" in out and "lid 3 is called 'bob'" in out
    assert re.search(r"2 alice LSSLEEP \| parked in ___lwp_park60, hint 0x[0-9a-f]+ <lock_b>", out)
    assert re.search(r"3 bob LSSLEEP \| parked in ___lwp_park60, hint 0x[0-9a-f]+ <lock_a>", out)
    assert re.search(r"100 main LSSLEEP \| in _lwp_wait for lid 2", out)
    assert re.search(r"___lwp_park60\+0x[0-9a-f]+ <- 0x[0-9a-f]+ take_both", out)
    assert "lock_a is held by lid 2" in out
    assert out.rstrip().endswith("exit status 125")
    assert "Wait-for report" in r.stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_hooks_see_decoded_arguments_and_results(capfd, arch: str) -> None:
    emu = Emulator(build_c("lwp_park", arch), ncpu=2, deterministic=True, seed=3)
    before, after, events = [], [], []
    emu.on_syscall("_lwp_unpark", fn=lambda c: before.append((c.lwp.lid, dict(c.args))))
    emu.on_syscall(["___lwp_park60"], when="after",
                   fn=lambda c: after.append((c.lwp.lid, c.args["hint"], c.error_name)))
    emu.on_event("create", "exit", fn=lambda e: events.append((e.kind, e.lwp.lid)))
    assert emu.run() == 0
    assert "PASS" in capfd.readouterr().out
    hint = emu.symbol("main.p1") + 4                  # &p1.wake
    assert (100, {"target": 2, "hint": hint}) in before
    assert (2, hint, None) in after                   # the parker woke with 0
    assert (100, 0, "ETIMEDOUT") in after
    assert (100, 0, "EALREADY") in after
    assert [e for e in events if e[0] == "create"] == [("create", 2), ("create", 3),
                                                       ("create", 4)]
    assert ("exit", 2) in events
    assert emu.finished and emu.run() == 0            # stays finished


@pytest.mark.parametrize("arch", ARCHES)
def test_step_inspect_pause_continue(capfd, arch: str) -> None:
    emu = Emulator(build_c("lwp_park", arch), ncpu=2, deterministic=True, seed=1)
    assert emu.step() is None and emu.turns == 1
    assert emu.run(turns=2) is None and emu.turns == 3
    main = emu.lwp(100)
    regs = main.regs
    pcn, spn = PC_SP[arch]
    assert regs[pcn] == main.pc and regs[spn] == main.sp
    assert emu.symbolize(main.pc)
    # memory: code, data, and an unmapped address
    code = emu.read(emu.symbol("main"), 4)
    assert len(code) == 4
    with pytest.raises(EmuError):
        emu.read(0x10, 4)
    with pytest.raises(EmuError):
        emu.lwp(4242)
    with pytest.raises(EmuError):
        emu.symbol("no_such_symbol")
    with pytest.raises(EmuError):
        emu.on_syscall("not_a_syscall", fn=print)
    # pause at the second LWP creation, look at the new LWP before it ever runs
    seen = []

    def created(call):
        if call.error == 0 and not seen:
            seen.append(call)
            emu.pause()
    emu.on_syscall("_lwp_create", when="after", fn=created)
    assert emu.run() is None and seen
    new = [t for t in emu.lwps() if t.lid != 100]
    fresh = [t for t in new if t.state == "LSRUN"]
    assert fresh, new
    assert emu.symbolize(fresh[0].pc) == "lwp_trampoline"
    # write guest memory: a data word round-trips
    addr = emu.symbol("late_park_result")
    old = emu.read_u32(addr)
    emu.write(addr, (old ^ 0x5A5A).to_bytes(4, "little"))
    assert emu.read_u32(addr) == old ^ 0x5A5A
    emu.write(addr, old.to_bytes(4, "little"))
    with pytest.raises(EmuError):
        emu.write(emu.symbol("main"), b"\xcc")         # text is read-only
    assert emu.run() == 0
    assert "PASS" in capfd.readouterr().out


@pytest.mark.parametrize("goarch", GOARCHES)
def test_go_program_backtraces(capfd, goarch: str) -> None:
    emu = Emulator(build_go("tokenring", "netbsd", goarch), deterministic=True, seed=2)
    parked = []

    def on_sleep(ev):
        if ev.data.get("wmesg") == "parked" and not parked:
            parked.append(ev.lwp.lid)
    emu.on_event("sleep", fn=on_sleep)
    while emu.run(turns=50) is None and not parked:
        pass
    assert parked
    bt = emu.lwp(parked[0]).backtrace()
    assert len(bt) >= 3, bt
    assert any("runtime." in f for f in bt), bt
    assert emu.run() == 0
    capfd.readouterr()


def test_machines_of_different_ports_in_one_process(capfd) -> None:
    """One process, one machine after another of different ports: a 32-bit port's
    trap registers fill only the low half of the native glue's 64-bit slots, which
    an amd64 machine had filled before (regression: the arm PC read back with
    stale high bits, the svc word was fetched from nowhere)."""
    for arch in ("x86_64", "arm", "aarch64", "x86", "x86_64", "arm"):
        assert Emulator(build_c("hello_c", arch)).run() == 0, arch
        assert "hello from C" in capfd.readouterr().out


def test_record_through_the_api_replays_on_the_command_line(capfd, tmp_path) -> None:
    """Emulator(..., record=LOG) writes the same log `nbemu --record` does."""
    log = tmp_path / "api.log"
    prog = build_c("seedorder")
    emu = Emulator(prog, ["3"], record=str(log), ncpu=2)
    assert emu.run() == 0
    out = capfd.readouterr().out
    assert "PASS" in out
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--replay", str(log), str(prog), "3"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == out
