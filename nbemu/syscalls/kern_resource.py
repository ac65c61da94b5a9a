"""Resource limits, priorities and usage (NetBSD's kern_resource.c).

Model
-----
- Limits live in ``p.p_limits``: resource number -> ``[rlim_cur, rlim_max]``
  (struct plimit's pl_rlimit).  :func:`rlimits_init` fills them with the values
  NetBSD 10.1/amd64 gives proc0 (kern_proc.c proc0_init + uvm_glue.c
  uvm_init_limits), which every process inherits, except what site_rlimits()
  and k.config["rlimits"] change (a raised thread limit).  The exec path
  calls it.
- The guest runs as an unprivileged user: kauth lets it lower limits, move
  rlim_cur up to rlim_max, and raise its nice value; raising a hard limit is
  EPERM, lowering the nice value EACCES (kauth_authorize_process).
- System-wide parameters (param.c for amd64 GENERIC, maxusers 64, and a
  modelled 8 GiB of RAM) are defined here; kern_sysctl.py reports the same
  numbers under kern.* and hw.*.
- CPU time: the kernel charges every LWP the work of its turns on a vCPU
  (Clock.cpu_ns: virtual under --deterministic and record/replay, host time
  otherwise) and counts its system calls; getrusage and the CPU-time clocks
  read those counts (system time: SYSCALL_NS per call, user time the rest).

Not modelled: the stack-region mprotect that NetBSD's dosetrlimit does when
RLIMIT_STACK's soft limit moves, and its EINVAL when the new limit is below
the stack in use (no vm_ssize accounting here).

Children's usage (p_cru, NetBSD's p_stats->p_cru): a process's rusage at exit
includes its reaped children's (exit1 folds p_cru into p_ru); reaping a zombie
adds that to the parent's p_cru (proc_free's ruadd), which RUSAGE_CHILDREN reads.
"""
from __future__ import annotations

from typing import Any

from .cstruct import RLIMIT, RUSAGE
from .errno import Errno
from .kern_prot import proc_cred, proc_pgid
from .kern_tc import SYSCALL_NS
from .lwp import Lwp, Proc
from .table import syscall

# sys/resource.h
RLIMIT_CPU = 0
RLIMIT_FSIZE = 1
RLIMIT_DATA = 2
RLIMIT_STACK = 3
RLIMIT_CORE = 4
RLIMIT_RSS = 5
RLIMIT_MEMLOCK = 6
RLIMIT_NPROC = 7
RLIMIT_NOFILE = 8
RLIMIT_SBSIZE = 9
RLIMIT_AS = 10
RLIMIT_VMEM = RLIMIT_AS
RLIMIT_NTHR = 11
RLIM_NLIMITS = 12
RLIM_INFINITY = (1 << 63) - 1

PRIO_MIN, PRIO_MAX = -20, 20
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
NZERO = 20                               # sys/param.h: default nice
RUSAGE_SELF, RUSAGE_CHILDREN = 0, -1

# System-wide parameters (sys/param.h, sys/syslimits.h, conf/param.c, amd64 GENERIC).
PHYSMEM = 8 << 30                        # modelled RAM (hw.physmem64) unless `-m` says


def usermem(physmem: int) -> int:
    """hw.usermem64: RAM not wired by the kernel (8 GiB - 256 MiB by default)."""
    return physmem - physmem // 32


USERMEM = usermem(PHYSMEM)
MAXUSERS = 64                            # amd64 GENERIC "maxusers 64"
NPROC = 20 + 16 * MAXUSERS               # maxproc = 1044
MAXFILES = 3 * (NPROC + MAXUSERS) + 80   # maxfiles = 3404
CHILD_MAX = 160                          # syslimits.h; MAXUPRC defaults to it
MAXUPRC = CHILD_MAX
OPEN_MAX = 128                           # syslimits.h; NOFILE = OPEN_MAX
NOFILE = OPEN_MAX
MAXLWP, MAXMAXLWP = 4096, 65535          # sys/lwp.h 1.217 (netbsd-10)


def lwp_maxlwp(physmem: int) -> int:
    """kern_lwp.c 1.250 lwp_maxlwp(): one LWP per MiB of RAM, within [MAXLWP,
    MAXMAXLWP]: kern.maxlwp, the one bound on a process's LWPs (RLIMIT_NTHR's
    hard limit; lwp_create enforces RLIMIT_NTHR only). From the guest's RAM
    (-m, hw.physmem64): 8192 with the default 8 GiB."""
    return max(min(MAXMAXLWP, physmem // (1 << 20)), MAXLWP)




def site_rlimits(physmem: int) -> dict[int, tuple[int, int]]:
    """What nbemu's "login" changes from the kernel defaults (see rlimits_init)."""
    maxlwp = lwp_maxlwp(physmem)
    return {RLIMIT_NTHR: (maxlwp, maxlwp)}



def rlimits_init(p: Proc) -> None:
    """Give p NetBSD's initial limits (proc0's, inherited by every process),
    then any overrides in ``p.k.config["rlimits"]``.  Must be called once the
    process's kernel (p.k) is known.

    The kernel's own soft RLIMIT_NTHR is min(maxlwp, maxuprc) = 160, which
    makes a real machine refuse the 161st thread of a user (EAGAIN) until
    `ulimit -T` raises it.  nbemu's site default (site_rlimits) raises it to
    the hard limit, as such a login would: the guest tests run 200-300 LWPs."""
    abi = p.k.abi
    maxlwp = lwp_maxlwp(p.k.physmem)
    inf = RLIM_INFINITY
    lim = min(abi.vm_maxuser_address, usermem(p.k.physmem))
    table = {
        RLIMIT_CPU: (inf, inf),
        RLIMIT_FSIZE: (inf, inf),
        RLIMIT_DATA: (abi.dfldsiz, abi.maxdsiz),
        RLIMIT_STACK: (abi.dflssiz, abi.maxssiz),
        RLIMIT_CORE: (inf, inf),
        RLIMIT_RSS: (lim, lim),
        RLIMIT_MEMLOCK: (lim // 3, lim),
        RLIMIT_NPROC: (min(NPROC, MAXUPRC), NPROC),
        RLIMIT_NOFILE: (min(MAXFILES, NOFILE), MAXFILES),
        RLIMIT_SBSIZE: (inf, inf),
        RLIMIT_AS: (inf, inf),
        RLIMIT_NTHR: (min(maxlwp, MAXUPRC), maxlwp),
    }
    # Site settings, as a login class or `ulimit` would give them: {resource: (cur, max)}.
    table.update(site_rlimits(p.k.physmem))
    table.update(p.k.config.get("rlimits", {}))
    p.p_limits = {r: [cur, mx] for r, (cur, mx) in table.items()}


def _limits(p: Proc) -> dict[int, list[int]]:
    if len(p.p_limits) < RLIM_NLIMITS:
        rlimits_init(p)
    return p.p_limits


def dosetrlimit(l: Lwp, p: Proc, which: int, cur: int, mx: int) -> int:
    """Set limit `which` of p to (cur, mx) as NetBSD's dosetrlimit does for an
    unprivileged caller."""
    if not 0 <= which < RLIM_NLIMITS:
        return Errno.EINVAL
    if cur > mx:
        return Errno.EINVAL
    old = _limits(p)[which]
    if cur == old[0] and mx == old[1]:
        return 0
    if mx > old[1]:                  # kauth: only root may raise a hard limit
        return Errno.EPERM
    abi = p.k.abi
    clamp = {RLIMIT_DATA: abi.maxdsiz, RLIMIT_STACK: abi.maxssiz, RLIMIT_NOFILE: MAXFILES,
             RLIMIT_NPROC: NPROC, RLIMIT_NTHR: lwp_maxlwp(p.k.physmem)}.get(which)
    if clamp is not None:
        cur, mx = min(cur, clamp), min(mx, clamp)
    if which == RLIMIT_STACK:
        page = abi.page_size
        cur = (cur + page - 1) & ~(page - 1)
    old[0], old[1] = cur, mx
    return 0


@syscall(194, "getrlimit")
def sys_getrlimit(l: Lwp, a, retval: list[int]) -> int:
    which = a.which
    if not 0 <= which < RLIM_NLIMITS:
        return Errno.EINVAL
    cur, mx = _limits(l.l_proc)[which]
    return l.l_proc.p_vmspace.copyout(RLIMIT.on(l.l_proc.k.abi).pack(cur, mx), a.rlp)


@syscall(195, "setrlimit")
def sys_setrlimit(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    data = p.p_vmspace.copyin(a.rlp, RLIMIT.on(l.l_proc.k.abi).size)
    if isinstance(data, int):
        return data
    cur, mx = RLIMIT.on(l.l_proc.k.abi).unpack(data)
    return dosetrlimit(l, p, a.which, cur, mx)


# -- priorities ------------------------------------------------------------------

def _nice(p: Proc) -> int:
    return p.p_nice


def _prio_match(l: Lwp, which: int, who: int) -> bool | None:
    """Does (which, who) name l's process?  None for a bad `which`."""
    p = l.l_proc
    if which == PRIO_PROCESS:
        return who in (0, p.p_pid)
    if which == PRIO_PGRP:
        return who in (0, proc_pgid(p))
    if which == PRIO_USER:
        euid = proc_cred(p).cr_euid
        return (who & 0xFFFFFFFF) == euid or who == 0
    return None


@syscall(100, "getpriority")
def sys_getpriority(l: Lwp, a, retval: list[int]) -> int:
    found = _prio_match(l, a.which, a.who)
    if found is None:
        return Errno.EINVAL
    if not found:
        return Errno.ESRCH
    retval[0] = _nice(l.l_proc) - NZERO
    return 0


@syscall(96, "setpriority")
def sys_setpriority(l: Lwp, a, retval: list[int]) -> int:
    found = _prio_match(l, a.which, a.who)
    if found is None:
        return Errno.EINVAL
    if not found:
        return Errno.ESRCH
    n = min(max(a.prio, PRIO_MIN), PRIO_MAX) + NZERO
    p = l.l_proc
    if n < _nice(p):                 # kauth: only root may lower the nice value
        return Errno.EACCES
    p.p_nice = n
    return 0


# -- usage -------------------------------------------------------------------------

def _timeval(ns: int) -> tuple[int, int]:
    us = ns // 1000
    return us // 1_000_000, us % 1_000_000


# -- CPU time (kern_synch.c updatertime, kern_resource.c calcru) -----------------------
# The kernel charges each LWP the work of its turns on a vCPU (Clock.cpu_ns: guest
# work in virtual time, or host time), and counts its system calls; a freed LWP's
# totals go to its process (lwp_free), as NetBSD adds l_rtime to p_rtime.

def lwp_startrun(l: Lwp) -> None:
    """l starts a turn on a vCPU (NetBSD's l_stime at mi_switch)."""
    clk = l.l_proc.k.clock
    l.l_stime_ns = clk.cpu_ns()
    l.l_stime_nsyscall = clk.syscalls


def updatertime(l: Lwp) -> None:
    """l's turn ended: add its run time and system calls since lwp_startrun."""
    if l.l_stime_ns < 0:
        return
    clk = l.l_proc.k.clock
    l.l_rtime += clk.cpu_ns() - l.l_stime_ns
    l.l_nsyscall += clk.syscalls - l.l_stime_nsyscall
    l.l_stime_ns = -1


def proc_addrtime(l: Lwp) -> None:
    """l leaves its process (lwp_free, exec): its counts go to the process's
    base values, as lwp_free adds l_rtime to p_rtime."""
    updatertime(l)
    p = l.l_proc
    p.p_rtime += l.l_rtime
    p.p_nsyscall += l.l_nsyscall
    l.l_rtime = l.l_nsyscall = 0


def lwp_rtime(l: Lwp) -> tuple[int, int]:
    """(CPU time in ns, system calls) of l, its turn in progress included
    (addrulwp)."""
    rt, ns = l.l_rtime, l.l_nsyscall
    if l.l_stime_ns >= 0:
        clk = l.l_proc.k.clock
        rt += clk.cpu_ns() - l.l_stime_ns
        ns += clk.syscalls - l.l_stime_nsyscall
    return rt, ns


def proc_rtime(p: Proc) -> tuple[int, int]:
    """(CPU time in ns, system calls) of p: its LWPs', freed ones included."""
    rt, ns = p.p_rtime, p.p_nsyscall
    for l in p.p_lwps.values():
        a, b = lwp_rtime(l)
        rt += a
        ns += b
    return rt, ns


def calcru(rtime: int, nsyscall: int) -> tuple[int, int]:
    """(user, system) ns of a CPU time: the system share is what the kernel
    charges per system call (SYSCALL_NS), within the total."""
    sys_ns = min(rtime, nsyscall * SYSCALL_NS)
    return rtime - sys_ns, sys_ns


def rusage_self(p: Proc) -> bytes:
    """struct rusage for RUSAGE_SELF: times from the counted CPU time, the
    resident size from the mapped pages, involuntary switches from the
    preemptions counted per LWP."""
    k = p.k
    user_ns, sys_ns = calcru(*proc_rtime(p))
    vm = p.p_vmspace
    rss_kb = 0
    if vm is not None:
        rss_kb = sum(e.end - e.start for e in vm.entries() if e.prot) // 1024
    nivcsw = sum(l.l_pctr for l in p.p_lwps.values())
    longs = [rss_kb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, nivcsw]
    return RUSAGE.on(k.abi).pack(*_timeval(user_ns), *_timeval(sys_ns), *longs)


def ruadd(abi: Any, ru: bytes | None, ru2: bytes | None) -> bytes | None:
    """kern_resource.c ruadd: times and counters add up, ru_maxrss is the larger."""
    if ru is None or ru2 is None:
        return ru if ru2 is None else ru2
    lay = RUSAGE.on(abi)
    a, b = lay.unpack(ru), lay.unpack(ru2)
    out: list[int] = []
    for i in (0, 2):                          # ru_utime, ru_stime (timeval)
        us = (a[i] + b[i]) * 1_000_000 + a[i + 1] + b[i + 1]
        out += [us // 1_000_000, us % 1_000_000]
    out.append(max(a[4], b[4]))               # ru_maxrss
    out += [x + y for x, y in zip(a[5:], b[5:])]
    return lay.pack(*out)


@syscall(445, "__getrusage50")
def sys___getrusage50(l: Lwp, a, retval: list[int]) -> int:
    if a.who == RUSAGE_SELF:
        data = rusage_self(l.l_proc)
    elif a.who == RUSAGE_CHILDREN:
        data = l.l_proc.p_cru or bytes(RUSAGE.on(l.l_proc.k.abi).size)
    else:
        return Errno.EINVAL
    return l.l_proc.p_vmspace.copyout(data, a.rusage)
