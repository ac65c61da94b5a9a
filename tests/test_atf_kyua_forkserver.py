"""The wrappers of `nbemu atf --kyua-suite` fork each case from the suite's warm
server (nbemu/emu/atf/kyua_server.py): same lists, results, exit statuses and signal
deaths as a cold `python -m nbemu.emu.atf.launch`, and a case whose wrapper is
killed (Kyua's timeout) does not outlive it.  Driven without Kyua, so it runs where
Kyua is not installed; tests/test_atf_kyua.py runs the real Kyua over the same
wrappers."""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fixtures.atf import build_atf
from nbemu.emu.atf.kyua import _stop_server, prepare_suite
from nbemu.emu.atf.kyua_client import server_name


@pytest.fixture()
def suite(tmp_path: Path):
    dest = tmp_path / "suite"
    prepare_suite(str(dest), [str(build_atf("atf_basic")), str(build_atf("atf_crash"))], [])
    yield dest
    _stop_server(str(dest))


def _server_listening(dest: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(server_name(str(dest)))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _wrapper(dest: Path, prog: str, *args: str, cwd: Path, env: dict | None = None,
             **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(dest / prog), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env, **kw)


def test_cases_run_through_the_suite_server(suite: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    assert not _server_listening(suite)
    r = _wrapper(suite, "atf_basic", "-l", cwd=work)
    assert r.returncode == 0 and "ident: pass" in r.stdout, r.stderr
    assert _server_listening(suite)              # the first case started it

    res = tmp_path / "pass.res"
    r = _wrapper(suite, "atf_basic", "-r", str(res), "pass", cwd=work)
    assert r.returncode == 0 and res.read_text() == "passed\n", r.stderr
    res = tmp_path / "fail.res"
    r = _wrapper(suite, "atf_basic", "-r", str(res), "fail", cwd=work)
    assert r.returncode == 1 and res.read_text().startswith("failed: "), r.stderr
    # A guest's death by SIGSEGV is the wrapper's death by SIGSEGV, as from launch.
    r = _wrapper(suite, "atf_crash", "-r", str(tmp_path / "segv.res"), "segv", cwd=work)
    assert r.returncode == -signal.SIGSEGV, (r.returncode, r.stderr)
    # The case runs in the wrapper's cwd with the wrapper's environment (as Kyua
    # sets them: HOME = TMPDIR = the work directory).
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL")}
    env.update(HOME=str(work), TMPDIR=str(work))
    res = tmp_path / "workdir.res"
    r = _wrapper(suite, "atf_basic", "-r", str(res), "workdir", cwd=work, env=env)
    assert r.returncode == 0 and res.read_text() == "passed\n", (r.stdout, r.stderr)


def test_same_results_without_the_server(suite: Path, tmp_path: Path) -> None:
    env = dict(os.environ, NBEMU_ATF_FORKSERVER="0")
    r = _wrapper(suite, "atf_basic", "-r", str(tmp_path / "r"), "fail", cwd=tmp_path,
                 env=env)
    assert r.returncode == 1 and (tmp_path / "r").read_text().startswith("failed: ")
    assert not _server_listening(suite)


def _children_of_server(dest: Path) -> list[int]:
    """Pids of the server's forked cases (they share its command line)."""
    name = server_name(str(dest))[1:].encode()
    procs: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if name not in (d / "cmdline").read_bytes():
                continue
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            procs[int(d.name)] = int(fields[1])           # pid -> ppid
    return [pid for pid, ppid in procs.items() if ppid in procs]


def test_killed_wrapper_takes_its_case_along(suite: Path, tmp_path: Path) -> None:
    """Kyua ends an overrunning case by killing the wrapper: the forked case ends too."""
    p = subprocess.Popen([str(suite / "atf_crash"), "-r", str(tmp_path / "t.res"), "timeout"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300           # a bound, not a timing assumption
    while not _children_of_server(suite):
        assert p.poll() is None and time.monotonic() < deadline, "the case never started"
        time.sleep(0.05)
    (child,) = _children_of_server(suite)
    p.kill()
    p.wait()
    assert p.stdout is not None
    # EOF: every holder of the case's stdout is gone (bounded: a case that
    # outlived its wrapper once held it open for good, and the run hung)
    out = b""
    while True:
        ready, _, _ = select.select([p.stdout], [], [], max(deadline - time.monotonic(), 0))
        assert ready, "the case still holds the wrapper's output"
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        out += chunk
    assert out == b""
    while child in _children_of_server(suite):
        assert time.monotonic() < deadline, "the case outlived its wrapper"
        time.sleep(0.05)


def test_fork_case_returns_once_the_case_leads_its_group() -> None:
    """The fork servers report a case's pid only once the case has its own process
    group (forkserver.fork_case), so that killing the group -- what a killed wrapper
    and a timeout do -- always reaches it. Here the child is slow to get there."""
    from nbemu.emu.atf.forkserver import fork_case
    pid, ready = fork_case()
    if pid == 0:                                # the child: late, as a loaded host makes it
        try:
            time.sleep(0.3)
            os.setsid()
            os.close(ready)
            time.sleep(60)
        finally:
            os._exit(0)
    try:
        assert ready == -1
        assert os.getpgid(pid) == pid           # a plain fork would still be in ours
        os.killpg(pid, signal.SIGKILL)
        _, st = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
