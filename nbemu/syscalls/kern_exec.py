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
import struct
from typing import Any, Generator

from .errno import Errno, KernErrno
from .kern_descrip import fd_closeexec, fd_getfile
from .kern_exit import lwp_off_queues
from .kern_lwp import lwp_free
from .kern_sig import kpsignal2
from .lwp import LSONPROC, LSRUN, LSSLEEP, LSZOMB, PSL_TRACED, Lwp
from .signals import TRAP_EXEC, Ksiginfo, Sig
from .table import syscall
from .vfs_lookup import AT_FDCWD, MAXPATHLEN, namei_path

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
        lwp_off_queues(l2)
        if l2.l_stat != LSZOMB:
            p.p_nzlwps += 1
            if l2.l_stat in (LSRUN, LSONPROC, LSSLEEP):
                p.p_nrlwps -= 1
        l2.l_kstack = None
        l2.l_stat = LSZOMB               # (forced: any state may end here)
        k.platform.context_free(l2)
        k.event("exit", l2)
        lwp_free(k, l2)


def exec_lookup(l: Lwp, path: bytes, read: Any = None) -> tuple[str, Any] | int:
    """namei + the checks of check_exec for a program or an interpreter: its
    guest path and read(host path naming exactly the object) -- called while
    the lookup holds it -- or an errno (also one read returns)."""
    ni = namei_path(l, AT_FDCWD, path, True)
    if isinstance(ni, int):
        return ni
    with ni:
        if not ni.ni_exists:
            return Errno.ENOENT
        error = _check_file(ni.ni_proc)
        if error:
            return error
        got = read(ni.ni_proc) if read is not None else None
        if isinstance(got, int):
            return got
        return os.fsdecode(ni.ni_guest), got


def execve1(l: Lwp, path: bytes, argv_va: int, envp_va: int,
            spawn: bool = False) -> Generator[str, int, int]:
    p = l.l_proc
    k = p.k
    ni = namei_path(l, AT_FDCWD, path, True)
    if isinstance(ni, int):
        return ni
    with ni:
        if not ni.ni_exists:
            return Errno.ENOENT
        host = ni.ni_proc                       # the object itself, while ni is held
        guest = os.fsdecode(ni.ni_guest)
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
        if script is None:
            img = k.platform.exec_check(host)
        else:
            interp, arg = script
            found = exec_lookup(l, interp, lambda host: (
                Errno.ENOEXEC if _script_line(host) is not None   # a binary, not a script
                else k.platform.exec_check(host)))
            if isinstance(found, int):
                return found
            guest, img = found
            argv = [interp] + ([arg] if arg else []) + [path] + argv[1:]
            execname = interp
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
    p.p_textvp = img
    from .kern_prot import PK_EXEC
    p.p_flag |= PK_EXEC
    p.p_comm = os.path.basename(execname).split(b"\0")[0][:16]
    p.p_path = guest
    fd_closeexec(p)
    # Caught signals go back to the default action; ignored ones stay ignored.
    p.p_sigacts = {s: act for s, act in p.p_sigacts.items() if act[0] in (SIG_DFL, SIG_IGN)}
    l.l_sigstk = (0, 0, SS_DISABLE)
    p.p_raslist = []
    p.p_lwpctl_pages, p.p_lwpctl_free = {}, []
    l.l_lwpctl = 0
    l.l_private = 0
    from .kern_exit import vfork_done
    vfork_done(p)
    k.event("exec", l, path=execname.decode(errors="replace"))
    if p.p_slflag & PSL_TRACED and not spawn:
        # stop for the tracer before the new image's first instruction
        # (execve_runproc's eventswitch(TRAP_EXEC)): l finds it at userret;
        # a spawned child reports one event, its TRAP_CHLD (sys_ptrace.py)
        kpsignal2(p, Ksiginfo(Sig.SIGTRAP, TRAP_EXEC, lid=l.l_lid))
    return int(KernErrno.EJUSTRETURN)          # the new image's registers stand


@syscall(59, "execve")
def sys_execve(l: Lwp, a, retval: list[int]) -> Generator[str, int, int] | int:
    path = l.l_proc.p_vmspace.copyinstr(a.path, MAXPATHLEN)
    if isinstance(path, int):
        return path
    return execve1(l, path, a.argp, a.envp)


@syscall(465, "fexecve")
def sys_fexecve(l: Lwp, a, retval: list[int]) -> Generator[str, int, int] | int:
    fp = fd_getfile(l.l_proc, a.fd)
    if fp is None:
        return Errno.EBADF
    comps = fp.f_guest
    if comps is None:
        return Errno.EACCES
    return execve1(l, b"/" + b"/".join(comps), a.argp, a.envp)


# -- posix_spawn (kern_exec.c do_posix_spawn / spawn_return) ---------------------------
POSIX_SPAWN_RESETIDS, POSIX_SPAWN_SETPGROUP = 0x01, 0x02
POSIX_SPAWN_SETSIGDEF, POSIX_SPAWN_SETSIGMASK = 0x10, 0x20
FAE_OPEN, FAE_DUP2, FAE_CLOSE, FAE_CHDIR, FAE_FCHDIR = range(5)
SPAWNATTR_SIZE = 48          # struct posix_spawnattr: the same on every port
RLIMIT_NOFILE = 8
SYS_posix_spawn = 474


def _copyin_attr(l: Lwp, va: int) -> tuple | int | None:
    """(flags, pgroup, sigdefault mask, sigmask words) of a posix_spawnattr."""
    if not va:
        return None
    raw = l.l_proc.p_vmspace.copyin(va, SPAWNATTR_SIZE)
    if isinstance(raw, int):
        return raw
    flags, pgroup = struct.unpack_from("<hxxi", raw, 0)
    sigdef = struct.unpack_from("<4I", raw, 16)
    sigmask = struct.unpack_from("<4I", raw, 32)
    return flags, pgroup, sigdef, sigmask


def _copyin_actions(l: Lwp, va: int) -> list[tuple] | int:
    """posix_spawn_fa_alloc: the file actions, at most 2 * RLIMIT_NOFILE of them
    (EINVAL beyond). Each is (action, fildes, path va / newfildes, oflag, mode)."""
    if not va:
        return []
    p = l.l_proc
    vm = p.p_vmspace
    ws = p.k.abi.word_size
    hdr = vm.copyin(va, 8 + ws)
    if isinstance(hdr, int):
        return hdr
    _size, n = struct.unpack_from("<II", hdr, 0)
    fae = int.from_bytes(hdr[8:8 + ws], "little")
    from .kern_descrip import fd_limit
    if n > 2 * fd_limit(p):
        return Errno.EINVAL
    esize = 16 + ws                # action, fildes, then {path, oflag, mode}
    raw = vm.copyin(fae, n * esize) if n else b""
    if isinstance(raw, int):
        return raw
    out = []
    for i in range(n):
        e = raw[i * esize:(i + 1) * esize]
        action, fildes = struct.unpack_from("<Ii", e, 0)
        ptr = int.from_bytes(e[8:8 + ws], "little")
        oflag, mode = struct.unpack_from("<iI", e, 8 + ws)
        if action == FAE_DUP2:
            ptr = struct.unpack_from("<i", e, 8)[0]
        elif action > FAE_FCHDIR:
            return Errno.EINVAL
        out.append((action, fildes, ptr, oflag, mode))
    return out


def _spawn_actions(l: Lwp, attr: tuple | None, actions: list[tuple]) -> int:
    """The child's side, before exec: attributes, then the file actions in order."""
    from types import SimpleNamespace as Args

    from .kern_descrip import dodup, fd_close
    from .vfs_syscalls import do_open, sys_chdir, sys_fchdir
    p = l.l_proc
    if attr is not None:
        flags, pgroup, sigdef, sigmask = attr
        if flags & POSIX_SPAWN_SETPGROUP:
            p.p_pgid = pgroup or p.p_pid
        if flags & POSIX_SPAWN_SETSIGMASK:
            l.l_sigmask = sigmask
        if flags & POSIX_SPAWN_SETSIGDEF:
            from .kern_sig import mask_of
            m = mask_of(sigdef)
            p.p_sigacts = {s: act for s, act in p.p_sigacts.items() if not m >> (s - 1) & 1}
    rv = [0, 0]
    for action, fildes, arg, oflag, mode in actions:
        if action == FAE_OPEN:
            error = do_open(l, -100, arg, oflag, mode, rv)     # AT_FDCWD
            if not error and rv[0] != fildes:
                newfd = rv[0]
                error = dodup(l, newfd, fildes, 0, rv)
                fd_close(p, newfd)
        elif action == FAE_DUP2:
            if fildes == arg:                  # POSIX: clears FD_CLOEXEC only
                from .kern_descrip import fd_set_exclose
                error = 0 if fd_getfile(p, fildes) is not None else Errno.EBADF
                if not error:
                    fd_set_exclose(p, fildes, False)
            else:
                error = dodup(l, fildes, arg, 0, rv)
        elif action == FAE_CLOSE:
            error = Errno.EBADF if fd_getfile(p, fildes) is None else 0
            if not error:
                fd_close(p, fildes)
        elif action == FAE_CHDIR:
            error = sys_chdir(l, Args(path=arg), rv)
        else:
            error = sys_fchdir(l, Args(fd=fildes), rv)
        if error:
            return error
    return 0


def spawn_return(l: Lwp, attr: tuple | None, actions: list[tuple], path: bytes,
                 argv_va: int, envp_va: int, state: dict) -> Generator[str, int, int]:
    """The spawned child's first kernel work (it runs before any user code):
    attributes and file actions, then exec. A failure goes to the waiting
    parent, and the child exits 127 as POSIX asks."""
    yield "spawn"                              # (primed: resumed by the run loop)
    error = _spawn_actions(l, attr, actions)
    if not error:
        error = yield from execve1(l, path, argv_va, envp_va, spawn=True)
        if error == KernErrno.EJUSTRETURN:
            return error
    state["error"] = error
    from .kern_exit import exit1
    exit1(l, 127, 0)
    return int(KernErrno.EJUSTRETURN)


@syscall(474, "posix_spawn")
def sys_posix_spawn(l: Lwp, a, retval: list[int]) -> Generator[str, int, int]:
    """As NetBSD's sys_posix_spawn: errors come back as the call's value (the
    call itself succeeds), the pid is written only on success."""
    from .kern_fork import FORK_PPWAIT, FORK_SHAREVM, fork1, vfork_chan
    from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue
    p = l.l_proc
    k = p.k
    retval[0] = 0
    actions = _copyin_actions(l, a.file_actions)
    attr = _copyin_attr(l, a.attrp)
    path = p.p_vmspace.copyinstr(a.path, MAXPATHLEN)
    for v in (actions, attr, path):
        if isinstance(v, int):
            retval[0] = v
            return 0
    # execve_loadvm's checks happen in the parent: no child for a bad program.
    found = exec_lookup(l, path)
    if isinstance(found, int):
        retval[0] = found
        return 0
    rv = [0, 0]
    l2 = fork1(l, FORK_PPWAIT | FORK_SHAREVM, rv)
    if isinstance(l2, int):
        retval[0] = l2
        return 0
    state: dict = {"error": 0}
    # The program was looked up here, in the parent, before any chdir action.
    gen = spawn_return(l2, attr, actions, os.fsencode(found[0]), a.argv, a.envp, state)
    next(gen)
    l2.l_kstack, l2.l_syscode, l2.l_sysargs = gen, SYS_posix_spawn, a
    l2.l_sysvals, l2.l_retval = list(k.trapvals), [0, 0]
    p2 = l2.l_proc
    from .sys_ptrace import PTRACE_POSIX_SPAWN, ptrace_event, ptrace_fork_child
    traced = ptrace_fork_child(p, p2, PTRACE_POSIX_SPAWN)
    while p2.p_vforkwaiting:
        sleepq_enqueue(k, l, vfork_chan(p2), "pspawn", sleep_syncobj, False)
        yield from sleepq_block(k, l, None)
    k.event("vfork_done", l, child=p2.p_pid)      # (a debugger's vforkdone stop)
    if state["error"]:
        retval[0] = state["error"]
        return 0
    if a.pid:
        retval[0] = p.p_vmspace.copyout(rv[0].to_bytes(4, "little"), a.pid)
    if traced:                                 # the parent's TRAP_CHLD, at its return
        from .lwp import PSL_TRACEPOSIX_SPAWN
        ptrace_event(l, PSL_TRACEPOSIX_SPAWN, PTRACE_POSIX_SPAWN, p2.p_pid)
    return 0
