"""The CPU engine nbemu runs on (nbemu/emu/native/engine_lib.py, build_engine.py):
the patched Unicorn that `make setup` builds is the one loaded, NBEMU_ENGINE=stock
and a user's LIBUNICORN_PATH choose otherwise, and guest programs behave the
same on both engines (faults included: the patch changes how the store helper
leaves a translated block on an invalid access)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from nbemu.emu.native import build_engine
from tests.guest import ARCHES, PATCHED, REPO, build_c, engine_env, needs_patched


def _version(env: dict[str, str]) -> str:
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--version"], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_setup_built_the_engine_where_it_can():
    # `make setup` ignores a failed engine build (nbemu then runs on PyPI's
    # engine, and the tests that need the patched one skip): where its tools
    # are, a failure is a bug to see here, not a silent slowdown (a Python
    # without tarfile's data filter once broke it).
    import shutil
    missing = [t for t in ("cmake", "patch", "cc") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)}: the engine cannot be built here")
    assert PATCHED is not None, ("the patched engine is not built: "
                                 "python -m nbemu.emu.native.build_engine says why")


@needs_patched
def test_the_patched_engine_is_the_default():
    out = _version(engine_env())
    assert re.search(r"^engine: Unicorn \S+ \+ nbemu patch \(", out, re.M), out
    assert str(PATCHED) in out
    # and in this process too (tests/conftest.py imports nbemu first)
    from unicorn.unicorn_py3.unicorn import uclib
    assert os.path.dirname(uclib._name) == str(PATCHED)


def test_stock_on_request():
    out = _version(engine_env(NBEMU_ENGINE="stock"))
    assert re.search(r"^engine: Unicorn \S+ \(PyPI\)$", out, re.M), out


@needs_patched
def test_the_guest_does_not_see_nbemus_choice():
    # select() passes the library to the binding through LIBUNICORN_PATH; the
    # guest's environment (os.environ) must not keep it
    r = subprocess.run([sys.executable, "-c", "import os, nbemu; "
                        "print(os.environ.get('LIBUNICORN_PATH'))"],
                       cwd=REPO, env=engine_env(), capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "None", r


def test_users_libunicorn_path_wins(tmp_path):
    # a folder without a library: the binding falls back to its own, and says so
    out = _version(engine_env(LIBUNICORN_PATH=str(tmp_path)))
    assert re.search(r"^engine: Unicorn \S+ \(PyPI\)$", out, re.M), out


def _py(code: str, env: dict[str, str]) -> str:
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize("engine", ["", "stock"])
def test_the_binding_loads_without_its_heavy_imports(engine):
    # _import_unicorn lends the binding's loader stand-ins for importlib.resources and
    # inspect (~60M instructions of start-up); they are gone afterwards, the real
    # modules import as usual, and the library is the one select() chose
    out = _py("import sys, nbemu; "
              "print(sorted(m for m in ('importlib.resources', 'inspect', 'zipfile') "
              "if m in sys.modules)); "
              "import inspect, importlib.resources as r; "
              "print(inspect.ismodule(r), "
              "r.files('unicorn').is_dir()); "
              "from nbemu.emu.native.engine_lib import in_use; print(in_use())",
              engine_env(NBEMU_ENGINE=engine) if engine else engine_env())
    lines = out.splitlines()
    assert lines[0] == "[]" and lines[1] == "True True", out
    if engine == "stock":
        assert lines[2].endswith("(PyPI)"), out
    elif PATCHED is not None:
        assert "+ nbemu patch" in lines[2], out


def test_a_binding_that_wants_more_is_imported_its_own_way(tmp_path):
    # a unicorn whose loader uses more of inspect than the stand-in has: the
    # import is done again with the real modules
    pkg = tmp_path / "unicorn"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import inspect\nSRC = inspect.getsourcefile(inspect.getfile)\n")
    out = _py("import sys, nbemu, unicorn, inspect; "
              "print(unicorn.SRC == inspect.__file__, 'inspect' in sys.modules)",
              engine_env(PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)])))
    assert out == "True True", out


def test_build_refuses_a_version_without_patch(monkeypatch, capsys):
    monkeypatch.setattr(build_engine, "installed_version", lambda: "9.9.9")
    with pytest.raises(SystemExit, match=r"no nbemu patch for unicorn 9\.9\.9"):
        build_engine.build(quiet=True)
    assert build_engine.main(["--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs on Unicorn from PyPI" in err[0], err


def test_build_says_what_tool_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("NBEMU_CACHE", str(tmp_path))      # nothing built there
    monkeypatch.setenv("PATH", str(tmp_path))             # no cmake, patch, cc
    with pytest.raises(SystemExit, match=r"'cmake' is not installed"):
        build_engine.build(quiet=True)


@needs_patched
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", ["sig_fault", "prot_segv", "efault", "hello_c"])
def test_same_behaviour_on_both_engines(arch, name):
    prog = build_c(name, arch)
    # (the same guest environment: NBEMU_ENGINE is removed from it with -U)
    runs = [subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--deterministic",
                            "-U", "NBEMU_ENGINE", str(prog)],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
            for env in (engine_env(), engine_env(NBEMU_ENGINE="stock"))]
    patched, stock = [(r.returncode, r.stdout, re.sub(r"nbemu: .*\n", "", r.stderr))
                      for r in runs]
    assert patched == stock
    assert patched[1] or patched[2], "the program said nothing"


@needs_patched
@pytest.mark.parametrize("arch", ARCHES)
def test_a_growing_tlb_keeps_every_access_right(arch):
    # bench_real hash at scale 100 reads and writes 40 MB at random: the patched
    # engine's TLB is 70 % full within the first inserts and doubles from 4,096
    # entries (cputlb.c, tlb_set_page_with_attrs) several times while the guest's
    # loads and stores are refilling it. The checksum is the same program's on
    # the host (the Linux build, native; i386's for the ILP32 ports, whose size_t
    # arithmetic differs).
    import platform
    from bench.real import build_linux
    if platform.machine() != "x86_64":
        pytest.skip("the reference checksum comes from the Linux build run on an x86-64 host")
    host = "x86" if arch in ("x86", "arm") else "x86_64"
    want = subprocess.run([str(build_linux(host)), "hash", "100"], capture_output=True,
                          text=True, check=True, timeout=300).stdout
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", str(build_c("bench_real", arch)),
                        "hash", "100"], cwd=REPO, env=engine_env(), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == want and want.startswith("hash ")
