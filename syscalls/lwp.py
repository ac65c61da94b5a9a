"""struct lwp and struct proc: the kernel's view of threads and processes
(sys/lwp.h, sys/proc.h). Behaviour lives in kern_*.py; this module holds the
data, NetBSD's state and flag values, and the legal state transitions.
"""
from __future__ import annotations

from collections import deque
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Generator

if TYPE_CHECKING:
    from .kern_runq import CpuInfo
    from .kern_sleepq import SleepQueue, SyncObj


class LwpStat(IntEnum):
    LSIDL = 1        # being created
    LSRUN = 2        # runnable, on a run queue
    LSSLEEP = 3      # sleeping on a wait channel
    LSSTOP = 4       # stopped (signal / debugger)
    LSZOMB = 5       # exited, awaiting collection
    LSONPROC = 7     # running on a CPU
    LSSUSPENDED = 8  # suspended by _lwp_suspend


LSIDL, LSRUN, LSSLEEP, LSSTOP, LSZOMB, LSONPROC, LSSUSPENDED = (
    LwpStat.LSIDL, LwpStat.LSRUN, LwpStat.LSSLEEP, LwpStat.LSSTOP, LwpStat.LSZOMB,
    LwpStat.LSONPROC, LwpStat.LSSUSPENDED)

# Legal l_stat transitions (kern_lwp.c's overview comment).
_LEGAL: dict[LwpStat, frozenset[LwpStat]] = {
    LSIDL: frozenset({LSRUN, LSSUSPENDED, LSSTOP, LSONPROC}),
    LSRUN: frozenset({LSONPROC, LSSTOP, LSSUSPENDED}),
    LSONPROC: frozenset({LSRUN, LSSLEEP, LSSTOP, LSSUSPENDED, LSZOMB}),
    LSSLEEP: frozenset({LSRUN, LSSTOP, LSSUSPENDED}),
    LSSTOP: frozenset({LSRUN, LSSLEEP, LSSUSPENDED}),
    LSSUSPENDED: frozenset({LSRUN, LSSTOP}),
    LSZOMB: frozenset(),
}


class LwpFlag:
    """l_flag bits (plain ints: IntFlag arithmetic costs ~1 us on the trap path)."""
    LW_IDLE = 0x00000001
    LW_LWPCTL = 0x00000002
    LW_STIMO = 0x00000040
    LW_SINTR = 0x00000080
    LW_CATCHINTR = 0x00000100
    LW_SYSTEM = 0x00000200
    LW_DBGSUSPEND = 0x00010000
    LW_WSUSPEND = 0x00020000
    LW_BATCH = 0x00040000
    LW_WCORE = 0x00080000
    LW_WEXIT = 0x00100000
    LW_PENDSIG = 0x01000000
    LW_CANCELLED = 0x02000000
    LW_UNPARKED = 0x10000000


LW_USERRET = LwpFlag.LW_WEXIT | LwpFlag.LW_PENDSIG | LwpFlag.LW_WSUSPEND | LwpFlag.LW_WCORE


def lwp_flag_names(flags: int) -> str:
    """`LW_SINTR|LW_UNPARKED` for reports and traces."""
    names = [k for k, v in vars(LwpFlag).items() if k.startswith("LW_") and flags & v]
    return "|".join(names) or "0"

LPR_DETACHED = 0x00800000
LPR_DRAINING = 0x80000000

# _lwp_create flags (sys/lwp.h)
LWP_DETACHED = 0x00000040
LWP_SUSPENDED = 0x00000080

MAXCOMLEN = 16


class Lwp:
    """One LWP. Its user context lives in l_md (a saved register file owned by
    emu/) while it is off-CPU; l_kstack holds the kernel continuation of a
    system call that blocked (a generator, resumed with the wakeup's error)."""

    def __init__(self, proc: "Proc", lid: int) -> None:
        self.l_proc = proc
        self.l_lid = lid
        self.l_stat: LwpStat = LSIDL
        self.l_flag = 0
        self.l_prflag = 0
        self.l_cpu: CpuInfo | None = None
        self.l_priority = 0
        # sleep state (kern_sleepq.c)
        self.l_wchan: Any = None
        self.l_wmesg = ""
        self.l_sleepq: SleepQueue | None = None
        self.l_syncobj: SyncObj | None = None
        self.l_sleeperr = 0
        self.l_timeout: Any = None          # callout handle while sleeping with a timeout
        self.l_park_hint = 0
        # kernel continuation of a blocked system call
        self.l_kstack: Generator | None = None
        self.l_sysvals: list[int] | None = None   # registers at trap (for the return)
        self.l_syscode = -1
        self.l_sysargs: tuple = ()
        # user context and TLS
        self.l_md: Any = None
        self.l_private = 0
        self.l_sigmask = (0, 0, 0, 0)
        self.l_sigstk = (0, 0, 4)          # ss_sp, ss_size, ss_flags (SS_DISABLE)
        self.l_name: bytes | None = None
        self.l_lwpctl = 0                   # guest address of this LWP's lwpctl_t, or 0
        self.l_waiter = 0                   # lid of the LWP waiting for us in _lwp_wait
        self.l_waitingfor = 0
        self.l_pctr = 0                     # preemptions (lc_pctr)
        self.l_ticks = 0                    # ticks used of the current quantum
        self.l_stime_ns = 0
        self.l_created_by = 0
        self.l_uarea: Any = None
        self.l_recent: list[str] = []       # last system calls (crash/deadlock reports)
        self.l_syshist: deque[int] = deque(maxlen=8)   # codes of the last system calls

    def set_stat(self, new: LwpStat) -> None:
        old = self.l_stat
        if new not in _LEGAL[old]:
            raise AssertionError(f"LWP {self.l_lid}: illegal transition {old.name} -> {new.name}")
        self.l_stat = new

    def __repr__(self) -> str:
        return f"<lwp {self.l_proc.p_pid}.{self.l_lid} {self.l_stat.name}>"


class Proc:
    """struct proc, reduced to what nbemu models."""

    def __init__(self, pid: int, ppid: int) -> None:
        self.p_pid = pid
        self.p_ppid = ppid
        self.p_lwps: dict[int, Lwp] = {}
        self.p_nlwpid = 1                   # next LWP id to try
        self.p_nlwps = 0                    # LWPs that exist (zombies included)
        self.p_nzlwps = 0                   # zombies
        self.p_nrlwps = 0                   # not stopped, suspended or zombie
        self.p_ndlwps = 0                   # detached
        self.p_nlwpwait = 0                 # LWPs sleeping in _lwp_wait
        self.p_nstopchild = 0
        self.p_sflag = 0
        self.p_exiting = False
        self.p_xstat: int | None = None     # exit status, once decided
        self.p_xsig = 0                     # killing signal, if any
        self.p_vmspace: Any = None
        self.p_fd: Any = None
        self.p_cwd = "/"
        self.p_comm = b""
        self.p_sigacts: dict[int, tuple] = {}
        self.p_sigignore = 0
        self.p_limits: dict[int, list[int]] = {}
        self.p_lwpctl_pages: dict[int, int] = {}   # lwpctl page va -> the kernel's view (host)
        self.p_lwpctl_free: list[int] = []
        self.p_emul = "netbsd"
        self.p_stat = 0

    def lwp_find(self, lid: int) -> Lwp | None:
        """proc_find_lwp(): the LWP with this id, zombies included."""
        return self.p_lwps.get(lid)
