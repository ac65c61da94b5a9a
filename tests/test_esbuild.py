"""esbuild, a real third-party static NetBSD Go program (npm @esbuild/netbsd-x64 and
@esbuild/netbsd-arm64, pinned), under nbemu: `--version`, and bundling + minifying a
small multi-file TypeScript project byte-identically to the host's @esbuild/linux-x64
of the same version.

The packages are fetched once with `npm pack` into .cache/npm/ (npm's own cache is
kept there too); without npm or the network the tests are skipped.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import esbuild as E
from fixtures.esbuild import BUILD_FLAGS, ESBUILD_VERSION, NETBSD_PACKAGES, build_args
from tests.guest import REPO


def esbuild_binary(pkg: str) -> Path:
    try:
        return E.esbuild_binary(pkg)
    except E.EsbuildUnavailable as e:
        pytest.skip(str(e))


_write_project = E.write_project



def _nbemu(exe: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "nbemu.emu.cli", str(exe), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def linux_reference(tmp_path_factory) -> dict[str, bytes]:
    """The bundle and its source map as the host's linux-x64 esbuild makes them."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the reference build needs a linux/x86_64 host")
    exe = esbuild_binary("linux-x64")
    root = tmp_path_factory.mktemp("esbuild-linux")
    _write_project(root)
    r = subprocess.run([str(exe), *build_args(root)], cwd=root, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return {n: (root / "out" / n).read_bytes() for n in ("bundle.js", "bundle.js.map")}


@pytest.mark.parametrize("pkg", NETBSD_PACKAGES)
def test_esbuild_version(pkg: str, tmp_path: Path) -> None:
    r = _nbemu(esbuild_binary(pkg), ["--version"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{ESBUILD_VERSION}\n"


@pytest.mark.parametrize("pkg", NETBSD_PACKAGES)
def test_esbuild_bundles_like_linux(pkg: str, tmp_path: Path,
                                    linux_reference: dict[str, bytes]) -> None:
    exe = esbuild_binary(pkg)
    _write_project(tmp_path)
    r = _nbemu(exe, build_args(tmp_path), tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    out = {n: (tmp_path / "out" / n).read_bytes() for n in ("bundle.js", "bundle.js.map")}
    assert out["bundle.js"] == linux_reference["bundle.js"]
    assert out["bundle.js.map"] == linux_reference["bundle.js.map"]
    assert b"tree-shaken away" not in out["bundle.js"]        # it really minified/bundled
    assert b"hello from" in out["bundle.js"]


@pytest.mark.parametrize("pkg", NETBSD_PACKAGES)
def test_esbuild_relative_paths(pkg: str, tmp_path: Path) -> None:
    """The guest starts in the host's working directory: relative paths resolve."""
    _write_project(tmp_path)
    r = _nbemu(esbuild_binary(pkg), ["src/index.ts", *BUILD_FLAGS,
                                              "--outfile=out/bundle.js"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "bundle.js").is_file()
