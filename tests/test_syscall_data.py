"""Syscall table, errno and signal data checked against NetBSD's headers.

The headers are the NetBSD ones shipped in the ``ziglang`` package; tests that
need them are skipped when it is not installed.  Spot values were looked up
independently in NetBSD's sys/kern/syscalls.master (rev. 1.313) and
sys/sys/{errno,signal,signalvar}.h.
"""

from __future__ import annotations

import errno as host_errno
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from nbemu.syscalls import syscalls_master
from nbemu.syscalls.errno import LINUX_TO_NETBSD, Errno, KernErrno, errno_name, from_host
from nbemu.syscalls.signals import DEFAULT_ACTION, NSIG, SIGPROP, Sig, SigProp, default_action, signame
from nbemu.syscalls.syscalls_master import KERNEL_FUNCS, SYSCALLS

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "tools" / "gen_syscalls_master.py"
COMMITTED = REPO / "nbemu" / "syscalls" / "syscalls_master.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_syscalls_master", GENERATOR)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()


@pytest.fixture(scope="module")
def include() -> Path:
    pytest.importorskip("ziglang")
    path: Path = gen.default_include_dir()
    if not (path / "sys" / "syscall.h").exists():
        pytest.skip(f"no NetBSD headers under {path}")
    return path


def _header(include: Path, name: str) -> str:
    return (include / "sys" / name).read_text()


def _defines(text: str, prefix: str) -> dict[str, int]:
    """``#define <prefix>NAME <int>`` lines of a header (aliases to other names skipped)."""
    return {
        m.group(1): int(m.group(2), 0)
        for m in re.finditer(rf"^#define\s+({prefix}\w*)\s+(-?(?:0x[0-9a-fA-F]+|\d+))\b", text, re.M)
    }


# --------------------------------------------------------------------------- syscalls


def test_regeneration_is_byte_identical(include: Path) -> None:
    _, text = gen.generate(include)
    assert text == COMMITTED.read_text(), "run: python3 tools/gen_syscalls_master.py"


def test_generator_check_mode(include: Path, tmp_path: Path) -> None:
    out = tmp_path / "sm.py"
    assert gen.main(["--include", str(include), "--output", str(out)]) == 0
    assert gen.main(["--include", str(include), "--output", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "# edited\n")
    assert gen.main(["--include", str(include), "--output", str(out), "--check"]) == 1


def test_every_slot_present() -> None:
    assert sorted(SYSCALLS) == list(range(syscalls_master.SYS_MAXSYSCALL))
    assert syscalls_master.SYS_MAXSYSCALL == 507
    for number, (name, args, flags) in SYSCALLS.items():
        assert flags in ("", "compat", "indir", "obsolete", "excluded", "ignored", "unimpl"), number
        assert (name == "") == (flags == "unimpl"), number
        assert (flags == "compat") == name.startswith("compat_"), number
        assert len(args) <= syscalls_master.SYS_MAXSYSARGS, number
        assert all(isinstance(t, str) and isinstance(a, str) and t and a for t, a in args), number
        if flags in ("", "compat", "indir"):
            assert number in KERNEL_FUNCS, number


def test_numbers_match_syscall_h_defines(include: Path) -> None:
    defines = _defines(_header(include, "syscall.h"), "SYS_")
    for macro in ("SYS_MAXSYSARGS", "SYS_MAXSYSCALL", "SYS_NSYSENT"):
        assert getattr(syscalls_master, macro) == defines.pop(macro)
    assert len(defines) == 459
    for name, number in defines.items():
        assert SYSCALLS[number][0] == name.removeprefix("SYS_")
    defined = set(defines.values())
    for number, (_, _, flags) in SYSCALLS.items():
        assert (number in defined) == (flags in ("", "compat", "indir")), number


def test_args_match_syscallargs_h(include: Path) -> None:
    """Re-read every argument struct with a regex independent of the generator's."""
    text = _header(include, "syscallargs.h")
    structs = {
        m.group(1): re.findall(r"syscallarg\((.+?)\) (\w+)(\[\w+\])?;", m.group(2))
        for m in re.finditer(r"^struct (\w+)_args \{\n(.*?)^\};", text, re.M | re.S)
    }
    for number, func in KERNEL_FUNCS.items():
        want = [(t + arr, n) for t, n, arr in structs.get(func, [])]
        assert list(SYSCALLS[number][1]) == want, (number, func)


SPOT: dict[int, tuple[str, tuple[tuple[str, str], ...], str]] = {
    0: ("syscall", (("int", "code"), ("register_t[SYS_MAXSYSARGS]", "args")), "indir"),
    1: ("exit", (("int", "rval"),), ""),
    2: ("fork", (), ""),
    3: ("read", (("int", "fd"), ("void *", "buf"), ("size_t", "nbyte")), ""),
    4: ("write", (("int", "fd"), ("const void *", "buf"), ("size_t", "nbyte")), ""),
    5: ("open", (("const char *", "path"), ("int", "flags"), ("mode_t", "mode")), ""),
    11: ("execv", (), "obsolete"),
    17: ("break", (("char *", "nsize"),), ""),
    172: ("", (), "unimpl"),
    173: ("pread", (("int", "fd"), ("void *", "buf"), ("size_t", "nbyte"), ("int", "PAD"), ("off_t", "offset")), ""),
    197: (
        "mmap",
        (
            ("void *", "addr"),
            ("size_t", "len"),
            ("int", "prot"),
            ("int", "flags"),
            ("int", "fd"),
            ("long", "PAD"),
            ("off_t", "pos"),
        ),
        "",
    ),
    199: ("lseek", (("int", "fd"), ("int", "PAD"), ("off_t", "offset"), ("int", "whence")), ""),
    202: (
        "__sysctl",
        (
            ("const int *", "name"),
            ("u_int", "namelen"),
            ("void *", "oldv"),
            ("size_t *", "oldlenp"),
            ("const void *", "newv"),
            ("size_t", "newlen"),
        ),
        "",
    ),
    309: ("_lwp_create", (("const struct __ucontext *", "ucp"), ("u_long", "flags"), ("lwpid_t *", "new_lwp")), ""),
    310: ("_lwp_exit", (), ""),
    311: ("_lwp_self", (), ""),
    312: ("_lwp_wait", (("lwpid_t", "wait_for"), ("lwpid_t *", "departed")), ""),
    313: ("_lwp_suspend", (("lwpid_t", "target"),), ""),
    314: ("_lwp_continue", (("lwpid_t", "target"),), ""),
    315: ("_lwp_wakeup", (("lwpid_t", "target"),), ""),
    316: ("_lwp_getprivate", (), ""),
    317: ("_lwp_setprivate", (("void *", "ptr"),), ""),
    318: ("_lwp_kill", (("lwpid_t", "target"), ("int", "signo")), ""),
    319: ("_lwp_detach", (("lwpid_t", "target"),), ""),
    320: (
        "compat_50__lwp_park",
        (
            ("const struct timespec50 *", "ts"),
            ("lwpid_t", "unpark"),
            ("const void *", "hint"),
            ("const void *", "unparkhint"),
        ),
        "compat",
    ),
    321: ("_lwp_unpark", (("lwpid_t", "target"), ("const void *", "hint")), ""),
    322: ("_lwp_unpark_all", (("const lwpid_t *", "targets"), ("size_t", "ntargets"), ("const void *", "hint")), ""),
    323: ("_lwp_setname", (("lwpid_t", "target"), ("const char *", "name")), ""),
    324: ("_lwp_getname", (("lwpid_t", "target"), ("char *", "name"), ("size_t", "len")), ""),
    325: ("_lwp_ctl", (("int", "features"), ("struct lwpctl **", "address")), ""),
    340: (
        "__sigaction_sigtramp",
        (
            ("int", "signum"),
            ("const struct sigaction *", "nsa"),
            ("struct sigaction *", "osa"),
            ("const void *", "tramp"),
            ("int", "vers"),
        ),
        "",
    ),
    391: ("posix_fadvise", (), "ignored"),
    427: ("__clock_gettime50", (("clockid_t", "clock_id"), ("struct timespec *", "tp")), ""),
    434: (
        "compat_60__lwp_park",
        (
            ("const struct timespec *", "ts"),
            ("lwpid_t", "unpark"),
            ("const void *", "hint"),
            ("const void *", "unparkhint"),
        ),
        "compat",
    ),
    453: ("pipe2", (("int *", "fildes"), ("int", "flags")), ""),
    478: (
        "___lwp_park60",
        (
            ("clockid_t", "clock_id"),
            ("int", "flags"),
            ("struct timespec *", "ts"),
            ("lwpid_t", "unpark"),
            ("const void *", "hint"),
            ("const void *", "unparkhint"),
        ),
        "",
    ),
}


@pytest.mark.parametrize("number", sorted(SPOT))
def test_spot_values(number: int) -> None:
    assert SYSCALLS[number] == SPOT[number]


def test_compat_and_conditional_slots() -> None:
    assert SYSCALLS[435][0] == "compat_100___kevent50"
    assert SYSCALLS[435][2] == "compat"
    assert SYSCALLS[501][0] == "__kevent100"
    assert KERNEL_FUNCS[17] == "sys_obreak"
    assert KERNEL_FUNCS[320] == "compat_50_sys__lwp_park"
    assert KERNEL_FUNCS[434] == "compat_60_sys__lwp_park"
    assert KERNEL_FUNCS[478] == "sys____lwp_park60"
    park = {n for n, (name, _, _) in SYSCALLS.items() if name.endswith("_lwp_park") or "_lwp_park6" in name}
    assert park == {320, 434, 478}
    # 169-171 exist only where !_LP64; elsewhere the slot is excluded.
    assert SYSCALLS[169][:1] == ("compat_10_osemsys",)
    assert syscalls_master.CONDITIONS[169] == "!defined(_LP64)"
    assert syscalls_master.SLOT_NOTES[169] == "excluded 1.0 semsys"


def test_generator_rejects_inconsistent_headers() -> None:
    sh = gen.parse_syscall_h(
        "/* $NetBSD: syscall.h,v 1.1 2024/01/01 00:00:00 x Exp $ */\n"
        " * created from\tNetBSD: syscalls.master,v 1.1 2024/01/01 00:00:00 x Exp\n"
        "#define\tSYS_MAXSYSARGS\t8\n"
        '/* syscall: "exit" ret: "void" args: "long" */\n'
        "#define\tSYS_exit\t1\n\n"
        "#define\tSYS_MAXSYSCALL\t2\n#define\tSYS_NSYSENT\t2\n"
    )
    sa = gen.parse_syscallargs_h(
        "/* $NetBSD: syscallargs.h,v 1.1 2024/01/01 00:00:00 x Exp $ */\n"
        " * created from\tNetBSD: syscalls.master,v 1.1 2024/01/01 00:00:00 x Exp\n"
        "struct sys_exit_args {\n\tsyscallarg(int) rval;\n};\n"
        "int\tsys_exit(struct lwp *, const struct sys_exit_args *, register_t *);\n"
    )
    with pytest.raises(gen.HeaderError, match="syscall.h says"):
        gen.build_table(sh, sa)


# --------------------------------------------------------------------------- errno


def test_errno_matches_header(include: Path) -> None:
    text = _header(include, "errno.h")
    values = _defines(text, "E")
    assert values.pop("ELAST") == max(Errno)
    kern = {k: values.pop(k) for k in list(values) if values[k] < 0}
    assert {e.name: int(e) for e in Errno} == values
    assert {e.name: int(e) for e in KernErrno} == kern
    assert Errno.EWOULDBLOCK is Errno.EAGAIN


def test_errno_values() -> None:
    assert (Errno.EPERM, Errno.ENOENT, Errno.EFAULT, Errno.ERANGE) == (1, 2, 14, 34)
    assert (Errno.EAGAIN, Errno.EINPROGRESS, Errno.EALREADY) == (35, 36, 37)
    assert (Errno.ETIMEDOUT, Errno.ENOSYS, Errno.EOPNOTSUPP, Errno.ENOTSUP) == (60, 78, 45, 86)
    assert Errno.ENOTRECOVERABLE == 98
    assert (KernErrno.EJUSTRETURN, KernErrno.ERESTART, KernErrno.EPASSTHROUGH) == (-2, -3, -4)


def test_errno_name() -> None:
    assert errno_name(14) == "EFAULT"
    assert errno_name(35) == "EAGAIN"
    assert errno_name(-3) == "ERESTART"
    assert errno_name(-2) == "EJUSTRETURN"
    assert errno_name(12345) == "12345"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="host errno values are Linux's")
def test_linux_to_netbsd() -> None:
    assert from_host(2) == 2  # ENOENT
    assert from_host(11) == 35  # EAGAIN / EWOULDBLOCK
    assert from_host(38) == 78  # ENOSYS
    assert from_host(110) == 60  # ETIMEDOUT
    assert from_host(115) == 36  # EINPROGRESS
    assert from_host(35) == 11  # EDEADLK
    assert from_host(95) == Errno.EOPNOTSUPP  # Linux ENOTSUP == EOPNOTSUPP
    assert from_host(61) == Errno.ENOATTR  # Linux ENODATA is what getxattr returns
    assert from_host(host_errno.ENOMEDIUM) == Errno.EIO  # no NetBSD counterpart
    assert from_host(100000) == Errno.EIO
    for host, nb in LINUX_TO_NETBSD.items():
        assert nb in set(Errno)
        if host <= 34 and host != host_errno.EAGAIN:  # 1..34 agree, except Linux 11 is EAGAIN
            assert nb == host


# --------------------------------------------------------------------------- signals


def test_signals_match_header(include: Path) -> None:
    text = _header(include, "signal.h")
    values = {k: v for k, v in _defines(text, "SIG").items() if re.fullmatch(r"SIG[A-Z0-9]+", k)}
    assert values.pop("SIGRTMIN") == 33
    assert values.pop("SIGRTMAX") == 63
    assert {s.name: int(s) for s in Sig if s.name != "SIGIOT"} == values
    assert NSIG == _defines(text, "_NSIG")["_NSIG"] == 64


def test_signal_numbers() -> None:
    assert (Sig.SIGBUS, Sig.SIGSEGV, Sig.SIGSYS, Sig.SIGURG) == (10, 11, 12, 16)
    assert (Sig.SIGSTOP, Sig.SIGCONT, Sig.SIGCHLD, Sig.SIGUSR1, Sig.SIGPWR) == (17, 19, 20, 30, 32)
    assert signame(10) == "SIGBUS"
    assert signame(6) == "SIGABRT"
    assert signame(33) == "SIGRTMIN+0"
    assert signame(63) == "SIGRTMIN+30"
    assert signame(64) == "64"


def test_sigprop_matches_signalvar_h(include: Path) -> None:
    text = _header(include, "signalvar.h")
    body = re.search(r"const int sigprop\[NSIG\] = \{(.*?)\};", text, re.S)
    assert body is not None
    rows = re.findall(r"^\s*([\w|]+),\s*/\* (\d+) ", body.group(1), re.M)
    assert [int(n) for _, n in rows] == list(range(NSIG))
    bits = _defines(text, "SA_")
    for expr, n in rows[1:]:
        want = 0
        for flag in expr.split("|"):
            want |= bits[flag]
        assert SIGPROP[int(n)] == want, n
    assert {f.name: int(f) for f in SigProp} == bits
    assert sorted(SIGPROP) == list(range(1, NSIG))


def test_default_actions() -> None:
    assert default_action(Sig.SIGSEGV) == "core"
    assert default_action(Sig.SIGKILL) == "terminate"
    assert default_action(Sig.SIGTERM) == "terminate"
    assert default_action(Sig.SIGCHLD) == "ignore"
    assert default_action(Sig.SIGURG) == "ignore"
    assert default_action(Sig.SIGPWR) == "ignore"
    assert default_action(Sig.SIGTSTP) == "stop"
    assert default_action(Sig.SIGSTOP) == "stop"
    assert default_action(Sig.SIGCONT) == "continue"
    assert default_action(40) == "terminate"
    assert DEFAULT_ACTION[Sig.SIGINFO] == "ignore"
