"""esbuild, a real third-party static NetBSD Go program (npm @esbuild/netbsd-x64 and
@esbuild/netbsd-arm64, pinned), under nbemu: `--version`, and bundling + minifying a
small multi-file TypeScript project byte-identically to the host's @esbuild/linux-x64
of the same version.

The packages are fetched once with `npm pack` into .cache/npm/ (npm's own cache is
kept there too); without npm or the network the tests are skipped.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.guest import REPO

ESBUILD_VERSION = "0.28.2"
NETBSD_PACKAGES = ["netbsd-x64", "netbsd-arm64"]
CACHE = REPO / ".cache" / "npm" / f"esbuild-{ESBUILD_VERSION}"

PROJECT = {
    "src/index.ts": """\
import { Circle, Square, type Shape } from "./shapes";
import { sum, formatArea } from "./lib/util";
import greeting from "./lib/greeting";

enum Mode { Fast = "fast", Exact = "exact" }

const shapes: Shape[] = [new Circle(1.5), new Square(2), new Circle(0.25)];
const total = sum(shapes.map((s) => s.area()));
export function report(mode: Mode = Mode.Exact): string {
  const lines = shapes.map((s, i) =>
    `${i}: ${s.name} ${formatArea(s.area(), mode === Mode.Fast ? 1 : 4)}`);
  return [greeting("nbemu"), ...lines, `total ${formatArea(total, 3)}`].join("\\n");
}
console.log(report());
""",
    "src/shapes.ts": """\
export interface Shape { readonly name: string; area(): number }
abstract class Base implements Shape {
  constructor(public readonly name: string) {}
  abstract area(): number;
}
export class Circle extends Base {
  constructor(private readonly r: number) { super("circle"); }
  area(): number { return Math.PI * this.r ** 2; }
}
export class Square extends Base {
  constructor(private readonly side: number) { super("square"); }
  area(): number { return this.side * this.side; }
}
""",
    "src/lib/util.ts": """\
export const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
export function formatArea<T extends number>(v: T, digits = 2): string {
  return v.toFixed(digits).padStart(10, " ");
}
export const unused = (): never => { throw new Error("tree-shaken away"); };
""",
    "src/lib/greeting.ts": """\
const greet = (who: string): string => `hello from ${who}, bundled by esbuild`;
export default greet;
""",
}
# Absolute paths, so that the linux reference and the guests build the same bytes
# from different folders (relative ones: test_esbuild_relative_paths).
BUILD_FLAGS = ["--bundle", "--minify", "--format=esm", "--sourcemap", "--target=es2020"]


def build_args(root: Path) -> list[str]:
    return [str(root / "src" / "index.ts"), *BUILD_FLAGS, f"--outfile={root}/out/bundle.js"]


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def esbuild_binary(pkg: str) -> Path:
    """bin/esbuild of @esbuild/<pkg>@ESBUILD_VERSION, fetched once with npm pack."""
    dest = CACHE / pkg
    exe = dest / "package" / "bin" / "esbuild"
    if exe.is_file():
        return exe
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    with _locked(CACHE / f".{pkg}.lock"):
        if exe.is_file():
            return exe
        env = dict(os.environ, npm_config_cache=str(CACHE.parent / "_cache"),
                   npm_config_update_notifier="false", npm_config_fund="false",
                   npm_config_audit="false")
        work = CACHE / f".{pkg}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        r = subprocess.run([npm, "pack", "--silent", f"@esbuild/{pkg}@{ESBUILD_VERSION}",
                            "--pack-destination", str(work)],
                           capture_output=True, text=True, env=env, timeout=300, cwd=work)
        tgz = list(work.glob("*.tgz"))
        if r.returncode != 0 or not tgz:
            shutil.rmtree(work, ignore_errors=True)
            pytest.skip(f"npm pack @esbuild/{pkg}@{ESBUILD_VERSION} failed: "
                        f"{(r.stderr or r.stdout).strip()[-300:]}")
        with tarfile.open(tgz[0]) as t:
            if sys.version_info >= (3, 12):
                t.extractall(work, filter="data")
            else:
                t.extractall(work)
        os.chmod(work / "package" / "bin" / "esbuild", 0o755)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(work, dest)
    return exe


def _nbemu(exe: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "emu.cli", str(exe), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


def _write_project(root: Path) -> None:
    for rel, text in PROJECT.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)


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
