"""The compat and statvfs calls from a real NetBSD program on every port
(fixtures/c/compat_calls.c): __statvfs190 / __fstatvfs190 / __getvfsstat90 /
__fhstatvfs190, the COMPAT_90 numbers with struct statvfs90, mincore, and the
COMPAT_50 time calls, with their errnos."""
from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu


@pytest.mark.parametrize("arch", ARCHES)
def test_compat_calls(arch: str, tmp_path: Path) -> None:
    prog = build_c("compat_calls", arch)
    r = run_nbemu(prog, str(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "FAIL" not in r.stdout and r.stdout.rstrip().endswith("PASS"), r.stdout[-3000:]


def test_compat_calls_under_a_root(tmp_path: Path) -> None:
    """With --root, "/" is the root directory: f_mntonname stays "/"."""
    prog = build_c("compat_calls", "x86_64")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    r = run_nbemu(prog, "/sub", opts=("--root", str(root)))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "FAIL" not in r.stdout and r.stdout.rstrip().endswith("PASS"), r.stdout[-3000:]
