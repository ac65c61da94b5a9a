"""Program execution (NetBSD's kern_exec.c and exec_script.c): execve, fexecve.

execve1() does what kern_exec.c does, in its order:
1. look the program up (namei, following links) and check it: a regular
   file (EACCES otherwise), executable by the caller (EACCES), recognised
   (a `#!` script, whose interpreter is looked up the same way, or an ELF
   image of this machine; ENOEXEC otherwise); copy in argv and envp (EFAULT,
   E2BIG beyond ARG_MAX) -- all before the point of no return;
2. then, outside the CPU engine (the handler yields once and is resumed by
   the run loop: the old image's code is still executing the trap when the
   call begins), end the other LWPs (exit_lwps), replace the address space
   with the new image (the loader of guest/ through the Platform), close
   close-on-exec descriptors, reset caught signals to SIG_DFL, the signal
   stack, RAS sequences and lwpctl pages, and let a vfork parent run again.
"""
from __future__ import annotations

import os
import stat as host_stat
from typing import Generator

from .errno import Errno, KernErrno
from .kern_descrip import fd_closeexec, fd_getfile
from .lwp import LSONPROC, LSRUN, LSSLEEP, LSZOMB, LPR_DETACHED, Lwp
from .table import syscall
from .vfs_lookup import MAXPATHLEN, namei, split_guest

ARG_MAX = 256 * 1024          # sys/syslimits.h
MAXINTERP = MAXPATHLEN        # exec_script.c: the longest "#!" line it reads
SIG_DFL, SIG_IGN = 0, 1
SS_DISABLE = 4


def copyin_strings(l: Lwp, va: int, budget: list[int]) -> list[bytes] | int:
    """A NULL-terminated array of string pointers (argv / envp): EFAULT on a bad
    pointer, E2BIG once the strings with their NULs pass ARG_MAX."""
    if va == 0:
        return []
    vm = l.l_proc.p_vmspace
    ws = l.l_proc.k.abi.word_size
    out: list[bytes] = []
    while True:
        raw = vm.copyin(va, ws)
        if isinstance(raw, int):
            return raw
        ptr = int.from_bytes(raw, "little")
        if ptr == 0:
            return out
        s = vm.copyinstr(ptr, ARG_MAX)
        if isinstance(s, int):
            return Errno.E2BIG if s == Errno.ENAMETOOLONG else s
        budget[0] -= len(s) + 1
        if budget[0] < 0:
            return Errno.E2BIG
        out.append(s)
        va += ws


def _check_file(host: bytes) -> int:
    """A regular file the caller may execute: 0, or EACCES (exec_vnode checks)."""
    try:
        st = os.stat(host)
    except OSError:
        return Errno.ENOENT
    if not host_stat.S_ISREG(st.st_mode):
        return Errno.EACCES
    if not st.st_mode & 0o111 or not os.access(host, os.X_OK):
        return Errno.EACCES
    return 0


def _script_line(host: bytes) -> tuple[bytes, bytes | None] | None | int:
    """exec_script_makecmds: (interpreter, optional argument) of a "#!" file,
    None if the file is not a script, ENOEXEC for a malformed "#!" line."""
    try:
        with open(host, "rb") as f:
            head = f.read(MAXINTERP)
    except OSError:
        return Errno.EACCES
    if not head.startswith(b"#!"):
        return None
    nl = head.find(b"\n")
    if nl < 0:
        return Errno.ENOEXEC
    line = head[2:nl].strip(b" \t")
    if not line:
        return Errno.ENOEXEC
    parts = line.split(None, 1)
    return parts[0], (parts[1].strip(b" \t") if len(parts) > 1 else None)


def exit_lwps(l: Lwp) -> None:
    """Every other LWP of l's process ends and is freed at once (exit_lwps, as
    exec and exit need: they never run again)."""
    p = l.l_proc
    k = p.k
    for l2 in list(p.p_lwps.values()):
        if l2 is l:
            continue
        if l2.l_stat == LSONPROC:
            k.cpu_release(l2)
        elif l2.l_stat == LSRUN and l2.l_cpu is not None:
            try:
                k.runq.sched_dequeue(l2)
            except ValueError:
                pass
        elif l2.l_stat == LSSLEEP and l2.l_sleepq is not None:
            l2.l_sleepq.remove(l2)
            k.callout.stop(l2.l_timeout)
        if l2.l_stat != LSZOMB:
            p.p_nzlwps += 1
            if l2.l_stat in (LSRUN, LSONPROC, LSSLEEP):
                p.p_nrlwps -= 1
        l2.l_kstack = None
        l2.l_stat = LSZOMB               # (forced: any state may end here)
        k.platform.context_free(l2)
        k.event("exit", l2)
        del p.p_lwps[l2.l_lid]
        p.p_nlwps -= 1
        p.p_nzlwps -= 1
        if l2.l_prflag & LPR_DETACHED:
            p.p_ndlwps -= 1
        if l2.l_uarea is not None:
            l2.l_uarea.free()
            l2.l_uarea = None


def execve1(l: Lwp, start: list[bytes], path: bytes, argv_va: int, envp_va: int
            ) -> Generator[str, int, int]:
    p = l.l_proc
    k = p.k
    ni = namei(k, start, path, True)
    if isinstance(ni, int):
        return ni
    if not ni.ni_exists:
        return Errno.ENOENT
    host = ni.ni_host
    error = _check_file(host)
    if error:
        return error
    budget = [ARG_MAX]
    argv = copyin_strings(l, argv_va, budget)
    if isinstance(argv, int):
        return argv
    envp = copyin_strings(l, envp_va, budget)
    if isinstance(envp, int):
        return envp
    script = _script_line(host)
    if isinstance(script, int):
        return script
    execname = path
    if script is not None:
        interp, arg = script
        ni2 = namei(k, split_guest(p.p_cwd), interp, True)
        if isinstance(ni2, int):
            return ni2
        if not ni2.ni_exists:
            return Errno.ENOENT
        error = _check_file(ni2.ni_host)
        if error:
            return error
        if _script_line(ni2.ni_host) is not None:
            return Errno.ENOEXEC          # an interpreter must be a binary
        argv = [interp] + ([arg] if arg else []) + [path] + argv[1:]
        host = ni2.ni_host
        execname = interp
    img = k.platform.exec_check(os.fsdecode(host))
    if isinstance(img, int):
        return img
    # -- the point of no return: continue outside the engine -------------------
    ci = l.l_cpu
    if ci is not None and ci.ci_curlwp is l:
        ci.ci_curlwp = None
        l.set_stat(LSRUN)
        k.runq.sched_enqueue(l, ci)
    yield "exec"
    exit_lwps(l)
    k.platform.exec_image(l, img, argv, envp, execname)
    from .kern_prot import PK_EXEC
    p.p_flag |= PK_EXEC
    p.p_comm = os.path.basename(execname).split(b"\0")[0][:16]
    p.p_path = os.fsdecode(host)
    fd_closeexec(p)
    # Caught signals go back to the default action; ignored ones stay ignored.
    p.p_sigacts = {s: act for s, act in p.p_sigacts.items() if act[0] in (SIG_DFL, SIG_IGN)}
    l.l_sigstk = (0, 0, SS_DISABLE)
    p.p_raslist = []
    p.p_lwpctl_pages, p.p_lwpctl_free = [], []
    l.l_lwpctl = 0
    l.l_private = 0
    from .kern_exit import vfork_done
    vfork_done(p)
    k.event("exec", l, path=execname.decode(errors="replace"))
    return int(KernErrno.EJUSTRETURN)          # the new image's registers stand


@syscall(59, "execve")
def sys_execve(l: Lwp, a, retval: list[int]) -> Generator[str, int, int] | int:
    path = l.l_proc.p_vmspace.copyinstr(a.path, MAXPATHLEN)
    if isinstance(path, int):
        return path
    return execve1(l, split_guest(l.l_proc.p_cwd), path, a.argp, a.envp)


@syscall(465, "fexecve")
def sys_fexecve(l: Lwp, a, retval: list[int]) -> Generator[str, int, int] | int:
    fp = fd_getfile(l.l_proc, a.fd)
    if fp is None:
        return Errno.EBADF
    comps = getattr(fp, "f_guest", None)
    if comps is None:
        return Errno.EACCES
    return execve1(l, [], b"/" + b"/".join(comps), a.argp, a.envp)
