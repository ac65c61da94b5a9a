"""The NetBSD programs Go's standard-library runs give the guest (fixtures.netbsd_bin):
dash as /bin/sh and nbemu's own cat, echo, hostname, pwd and nohup, built against the
NetBSD userland and run under nbemu with the root's bin/ and usr/bin/ bound at /bin
and /usr/bin, as bench.go_stdlib runs them.

Skips with the reason when the NetBSD sources are not there, or dash's source cannot
be fetched (no apt-get or no network)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fixtures import netbsd_bin as nb
from fixtures import netbsd_userland as nu
from tests.guest import run_nbemu

SCRIPT = r"""
set -e
cd "$1"
/bin/echo -n 'a\tb' c; /bin/echo
printf '%s\n' one two | cat - missing-file 2>err || echo "cat status $?"
cat err
kill -l 30; kill -l 1; kill -l 18
cd "$1/link" && /bin/pwd && /bin/pwd -P && PWD="$1/link/../link" /bin/pwd -L
echo "hostname: $(hostname)"; x=$(hostname -s); echo "hostname -s: $x"
nohup sh -c 'kill -HUP $$; echo survived SIGHUP' 2>&1 | cat
test ! -e nohup.out && echo no nohup.out
nohup /no/such/program 2>/dev/null || echo "nohup status $?"
exit 7
"""


@pytest.fixture(scope="module")
def root() -> Path:
    try:
        nu.netbsd_src()
        nu.check_host_tools()
    except (nu.NetBSDSourceMissing, nu.NetBSDToolMissing) as e:
        pytest.skip(str(e).splitlines()[0])
    try:
        return nb.build_root()
    except nb.ShellSourceUnavailable as e:
        pytest.skip(str(e).splitlines()[0])


def test_layout(root: Path) -> None:
    for rel in ("bin/sh", "bin/cat", "bin/echo", "bin/hostname", "bin/pwd", "usr/bin/nohup"):
        head = (root / rel).read_bytes()[:20]
        assert head[:4] == b"\x7fELF" and head[7] == 0, rel  # ELF, ELFOSABI_NONE as NetBSD's


def test_programs_under_dash(root: Path, tmp_path: Path) -> None:
    opts = ("--bind", f"{root / 'bin'}:/bin", "--bind", f"{root / 'usr' / 'bin'}:/usr/bin",
            "-E", "PATH=/bin:/usr/bin")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    r = run_nbemu(root / "bin" / "sh", "-c", SCRIPT, "sh", str(tmp_path), opts=opts)
    host = socket.gethostname()
    assert r.returncode == 7, r.stderr
    assert r.stdout.splitlines() == [
        r"a\tb c",
        "one", "two", "cat status 1",
        "cat: missing-file: No such file or directory",
        "USR1", "HUP", "TSTP",                      # NetBSD's numbers (Linux: 30 is PWR)
        f"{tmp_path}/link", f"{tmp_path}/real", f"{tmp_path}/real",   # -L, -P, -L with ".."
        f"hostname: {host}", f"hostname -s: {host.split('.')[0]}",
        "survived SIGHUP",
        "no nohup.out",
        "nohup status 127",
    ], r.stderr


def test_background_job_outlives_dash(root: Path, tmp_path: Path) -> None:
    """`sh -c 'job &'`: dash exits at once with its status while its background job
    waits on a FIFO this test writes to only after nbemu has returned; the job then
    finishes in nbemu's background host process, as under a NetBSD kernel
    (emu/survivors.py; tests/test_proc_survivors.py has the C version)."""
    import os
    from tests.test_proc_survivors import _wait_for_file, _write_fifo, kill_survivors
    os.mkfifo(tmp_path / "ff")
    opts = ("--bind", f"{root / 'bin'}:/bin", "-E", "PATH=/bin")
    out = tmp_path / "out"
    try:
        # the job's stdio is all redirected, so nbemu's caller sees EOF when dash
        # exits (a job that kept stdout would hold the pipe open, natively too)
        r = run_nbemu(root / "bin" / "sh", "-c",
                      '{ cat "$1/ff" && echo done; } > "$1/out" 2>&1 < /dev/null & '
                      'echo started; exit 3', "sh", str(tmp_path), opts=opts)
        assert (r.returncode, r.stdout, r.stderr) == (3, "started\n", "")
        assert not out.exists() or out.read_text() == ""   # the job waits for the FIFO
        _write_fifo(tmp_path / "ff", b"from the host\n")
        assert _wait_for_file(out, "done") == "from the host\ndone\n"
    finally:
        kill_survivors(tmp_path)
