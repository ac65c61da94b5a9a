"""The --root escape suite (issue 16): fixtures/c/root_escape.c, a hostile guest on
our raw-syscall runtime, tries to read, write, create, remove and connect to things
in a host directory beside its root, through every path-taking call: symlinks
(absolute, relative, chains, loops), ".." beyond the root, /proc/self/root, NUL,
over-long paths, renamed working directories and directory descriptors whose
directory was swapped for a symlink, stale parents, AF_LOCAL bind/connect, and
races against another LWP swapping directories. The guest reports each trick;
the host side is checked too: the host directory and the root's parent are
exactly as they were, and nobody connected to the host socket."""
from __future__ import annotations

import hashlib
import os
import re
import socket
import stat
from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu

SECRET = b"TOPSECRET" + b"x" * (4242 - 9)
MIN_TRICKS = 60


def snapshot(top: Path, skip: Path) -> dict[str, tuple]:
    """Everything under top except skip: type, mode, size, mtime, content, link."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        d = Path(dirpath)
        if d == skip:
            dirnames[:] = []
            continue
        dirnames[:] = [n for n in dirnames if d / n != skip]
        for name in dirnames + filenames:
            p = d / name
            if p == skip:
                continue
            st = os.lstat(p)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            out[str(p.relative_to(top))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                            st.st_size, st.st_mtime_ns, extra)
    return out


@pytest.fixture
def world(tmp_path):
    """tmp/root: the guest's empty root; tmp/outside: the host directory to protect."""
    root = tmp_path / "root"
    root.mkdir()
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret").write_bytes(SECRET)
    os.chmod(out / "secret", 0o644)
    (out / "onlyhost").write_bytes(b"only on the host")
    (out / "victim").write_bytes(b"host victim")
    (out / "victim2").write_bytes(b"host victim2")
    (out / "subdir").mkdir()
    os.symlink("HOSTLINK-TARGET", out / "hostlink")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(out / "sock"))
    sock.listen(64)
    sock.setblocking(False)
    dsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dsock.bind(str(out / "dsock"))
    dsock.setblocking(False)
    yield tmp_path, root, out
    try:
        leaked = dsock.recv(64)
    except BlockingIOError:
        leaked = None
    dsock.close()
    assert leaked is None, "a guest datagram reached the host socket"
    sock_ok = True
    try:
        sock.accept()
        sock_ok = False
    except BlockingIOError:
        pass
    sock.close()
    assert sock_ok, "a guest connected to the host socket"


def run_escape(world, arch: str, opts: tuple[str, ...]):
    top, root, out = world
    before = snapshot(top, root)
    r = run_nbemu(build_c("root_escape", arch), str(out), opts=("--root", str(root), *opts))
    after = snapshot(top, root)
    return r, before, after, root


@pytest.mark.parametrize("arch", ARCHES)
def test_root_escape(world, arch: str) -> None:
    r, before, after, root = run_escape(world, arch, ("--ncpu", "4"))
    assert "Traceback" not in r.stderr, r.stderr
    escapes = [ln for ln in r.stdout.splitlines() if ln.startswith(("ESCAPE", "FAIL"))]
    assert not escapes, r.stdout
    assert after == before, "the host directory beside the root changed"
    m = re.search(r"tricks (\d+) escaped 0 failed 0", r.stdout)
    assert m and int(m.group(1)) >= MIN_TRICKS, r.stdout
    assert r.stdout.rstrip().endswith("PASS") and r.returncode == 0, (r.stdout, r.stderr)
    # where NetBSD puts the effects: in the directory that was entered, renamed
    for name in ("made", "mdir", "renamed", "newlink", "hl", "ff", "bsock"):
        assert os.path.lexists(root / "s.old" / name), name
    assert not os.path.lexists(root / "s.old" / "victim")
    assert (root / "s.old" / "secret").read_bytes() == b"dec"         # truncated to 3
    assert os.path.lexists(root / "d.old" / "made")
    assert os.path.lexists(root / "p.old" / "made")


def test_root_escape_deterministic(world) -> None:
    r, before, after, _ = run_escape(world, "x86_64", ("--deterministic", "--seed", "7"))
    assert not re.search(r"^(ESCAPE|FAIL)", r.stdout, re.M), r.stdout
    assert after == before
    assert r.stdout.rstrip().endswith("PASS") and r.returncode == 0, (r.stdout, r.stderr)
