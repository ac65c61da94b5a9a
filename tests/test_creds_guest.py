"""SCM_CREDS / LOCAL_CREDS on AF_LOCAL sockets (fixtures/c/proc_creds.c): a forked
child's struct sockcred once on a stream, on every datagram after the rights, the
option itself, forged credentials refused, a cut control buffer; every C port."""
from __future__ import annotations

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu


@pytest.mark.parametrize("arch", ARCHES)
def test_proc_creds(arch: str) -> None:
    r = run_nbemu(build_c("proc_creds", arch))
    assert "Traceback" not in r.stderr, r.stderr
    assert "FAIL" not in r.stdout, r.stdout
    assert r.returncode == 0 and r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)


def test_proc_creds_deterministic() -> None:
    r = run_nbemu(build_c("proc_creds"), opts=("--deterministic", "--seed", "4"))
    assert r.returncode == 0 and r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)
