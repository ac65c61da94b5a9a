"""The system-call modules nbemu imports only at their first call
(nbemu.syscalls.LAZY_MODULES): the lists say what the modules register, a start
imports none of them, and the first call of one imports its module. (Guest
programs calling them: test_sem_poll_sched_guest, test_sockets, every
fork+exec test.)"""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import nbemu.syscalls as pkg
from nbemu.syscalls.table import SYSENT


def test_lists_are_what_the_modules_register() -> None:
    listed = {name: m for m, names in pkg.LAZY_MODULES.items() for name in names}
    for m in pkg.LAZY_MODULES:
        importlib.import_module(f"nbemu.syscalls.{m}")
    registered = {}
    for ent in SYSENT.values():
        h = ent.handler
        mod = getattr(h, "__module__", "")
        short = mod.rsplit(".", 1)[-1]
        if short in pkg.LAZY_MODULES:
            registered[ent.name] = short
    assert registered == listed


def test_a_start_imports_none_of_them_and_a_call_imports_its_module() -> None:
    code = (
        "import sys\n"
        "import nbemu.emu.cli, nbemu.emu.boot, nbemu.emu.machine, nbemu.syscalls\n"
        "from nbemu.syscalls import LAZY_MODULES\n"
        "from nbemu.syscalls.table import SYSENT\n"
        "loaded = [m for m in LAZY_MODULES if 'nbemu.syscalls.' + m in sys.modules]\n"
        "print('loaded at start:', loaded)\n"
        "code = next(c for c, e in SYSENT.items() if e.name == 'pipe2')\n"
        "h = SYSENT[code].handler\n"
        "print('pipe2:', h.__module__, 'nbemu.syscalls.sys_pipe' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "loaded at start: []" in r.stdout, r.stdout
    assert "pipe2: nbemu.syscalls.sys_pipe True" in r.stdout, r.stdout



def test_code_of_names_the_tables_calls() -> None:
    from nbemu.syscalls.table import code_of, name_of
    for name in ("___lwp_park60", "_lwp_unpark", "_lwp_unpark_all", "__clock_gettime50"):
        assert name_of(code_of(name)) == name
    assert code_of("_lwp_unpark") == 321          # sys/kern/syscalls.master
    with pytest.raises(KeyError):
        code_of("no_such_call")
