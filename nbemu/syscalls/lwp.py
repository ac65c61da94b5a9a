"""struct lwp and struct proc: the kernel's view of threads and processes
(sys/lwp.h, sys/proc.h). Behaviour lives in kern_*.py; this module holds the
data, NetBSD's state and flag values, and the legal state transitions.
"""
from __future__ import annotations

from collections import deque
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Generator

from .signals import Sigpend

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
    """One LWP (struct lwp). Its user context lives in its u-area (l_uarea;
    l_md points at it, as md_regs at the trapframe) while it is off-CPU;
    l_kstack holds the kernel continuation of a system call that blocked (a
    generator, resumed with the wakeup's error). Every field is declared here, grouped as sys/lwp.h groups
    them; subsystems never add fields on the fly."""

    __slots__ = (
        "l_proc", "l_lid", "l_stat", "l_flag", "l_prflag", "l_pflag", "l_cpu", "l_priority",
        # scheduling (sys_sched.py)
        "l_class", "l_schedprio", "l_affinity", "l_protectdepth", "l_protectprio",
        "l_pctr", "l_ticks",
        # CPU time (kern_resource.py): run time, system calls, the current turn's start
        "l_rtime", "l_nsyscall", "l_stime_ns", "l_stime_nsyscall",
        # sleep state (kern_sleepq.py)
        "l_wchan", "l_wmesg", "l_sleepq", "l_syncobj", "l_sleeperr", "l_timeout",
        "l_park_hint", "l_npark",
        # the system call being served / blocked
        "l_kstack", "l_sysvals", "l_syscode", "l_sysargs", "l_retval",
        # user context, TLS, lwpctl, u-area
        "l_md", "l_private", "l_name", "l_lwpctl", "l_uarea",
        # signals (kern_sig.py)
        "l_sigmask", "l_sigstk", "l_sigpend", "l_sigrestore", "l_sigoldmask",
        "l_sigwaited", "l_sigwaitset",
        # _lwp_wait
        "l_waiter", "l_waitingfor",
        # reports
        "l_created_by", "l_recent", "l_syshist",
        "__weakref__",
    )

    def __init__(self, proc: "Proc", lid: int) -> None:
        self.l_proc = proc
        self.l_lid = lid
        self.l_stat: LwpStat = LSIDL
        self.l_flag = 0
        self.l_prflag = 0
        self.l_pflag = 0                  # LP_* (ptrace single-stepping)
        self.l_cpu: CpuInfo | None = None
        self.l_priority = 0
        # scheduling class and priority (_sched_setparam), affinity (a CPU-index
        # bit mask or None), _sched_protect's depth and priority
        self.l_class = 0                    # SCHED_OTHER
        self.l_schedprio = -1               # -1: the class default (sys_sched.l_schedprio)
        self.l_affinity: int | None = None
        self.l_protectdepth = 0
        self.l_protectprio = -1
        self.l_pctr = 0                     # preemptions (lc_pctr)
        self.l_ticks = 0                    # ticks used of the current quantum
        self.l_rtime = 0                    # ns of CPU time charged (turns ended)
        self.l_nsyscall = 0                 # system calls made in those turns
        self.l_stime_ns = -1                # Clock.cpu_ns() at the start of its turn; -1: off
        self.l_stime_nsyscall = 0           # Clock.syscalls then
        # sleep state (kern_sleepq.c)
        self.l_wchan: Any = None
        self.l_wmesg = ""
        self.l_sleepq: SleepQueue | None = None
        self.l_syncobj: SyncObj | None = None
        self.l_sleeperr = 0
        self.l_timeout: Any = None          # callout handle while sleeping with a timeout
        self.l_park_hint = 0
        self.l_npark = False               # the machine's native park path holds an entry
                                            # for it (parked or running: emu/npark.py)
        # kernel continuation of a blocked system call
        self.l_kstack: Generator | None = None
        self.l_sysvals: list[int] | None = None   # registers at trap (for the return)
        self.l_syscode = -1
        self.l_sysargs: Any = ()
        self.l_retval: list[int] = [0, 0]
        # user context and TLS
        self.l_md: int | None = None        # host address of its saved user context (in
                                            # its u-area, emu/); None: none (exited)
        self.l_private = 0
        self.l_name: bytes | None = None
        self.l_lwpctl = 0                   # guest address of this LWP's lwpctl_t, or 0
        self.l_uarea = 0                    # host address of its u-area (kern_lwp.UareaArena)
        # signals: mask, stack, pending set; the mask to restore after
        # sigsuspend/pselect (l_sigrestore); sigtimedwait's result holder and set
        self.l_sigmask = (0, 0, 0, 0)
        self.l_sigstk = (0, 0, 4)          # ss_sp, ss_size, ss_flags (SS_DISABLE)
        self.l_sigpend = Sigpend()
        self.l_sigrestore = False
        self.l_sigoldmask = (0, 0, 0, 0)
        self.l_sigwaited: list | None = None
        self.l_sigwaitset = 0
        self.l_waiter = 0                   # lid of the LWP waiting for us in _lwp_wait
        self.l_waitingfor = 0
        self.l_created_by = 0
        self.l_recent: list[str] = []       # last system calls (crash/deadlock reports)
        self.l_syshist: deque[int] = deque(maxlen=8)   # codes of the last system calls

    def set_stat(self, new: LwpStat) -> None:
        old = self.l_stat
        if new not in _LEGAL[old]:
            raise AssertionError(f"LWP {self.l_lid}: illegal transition {old.name} -> {new.name}")
        if self.l_npark:
            self.l_proc.k.platform.npark_end(self)
        self.l_stat = new

    def npark_end(self) -> None:
        """The kernel acts on l (a signal, a suspension, a pending unpark, its
        lwpctl): if the machine's native park path holds an entry for l (parked:
        Platform.npark_begin; or running), it lets go."""
        if self.l_npark:
            self.l_proc.k.platform.npark_end(self)

    def __repr__(self) -> str:
        return f"<lwp {self.l_proc.p_pid}.{self.l_lid} {self.l_stat.name}>"


# p_stat and p_sflag bits (sys/proc.h)
SIDL, SACTIVE, SDYING, SSTOP, SZOMB, SDEAD = 1, 2, 3, 4, 5, 6
PS_CONTINUED = 0x40000000
PS_STOPPING = 0x80000000
PSL_TRACED = 0x00000800          # p_slflag: traced by the process p_pptr (sys/proc.h)
# The other p_slflag bits of sys/proc.h that ptrace sets: the event mask
# (PT_SET_EVENT_MASK), PT_SYSCALL's stops and PT_SYSCALLEMU's skip.
PSL_TRACEFORK = 0x00000001
PSL_TRACEVFORK = 0x00000002
PSL_TRACEVFORK_DONE = 0x00000004
PSL_TRACELWP_CREATE = 0x00000008
PSL_TRACELWP_EXIT = 0x00000010
PSL_TRACEPOSIX_SPAWN = 0x00000020
PSL_SYSCALL = 0x04000000
PSL_SYSCALLEMU = 0x08000000
LP_SINGLESTEP = 0x00000400       # l_pflag: PT_SETSTEP (sys/lwp.h)
LP_SSTEP = 0x40000000            # nbemu: the trace flag is on (process_sstep): one instruction
LP_STEPTRAP = 0x80000000         # nbemu: the stepped instruction blocked; trap on return


class Proc:
    """struct proc, reduced to what nbemu models. Every field is declared here,
    grouped as sys/proc.h groups them, so that fork (kern_fork.py) can say what
    a child inherits field by field; subsystems never add fields on the fly."""

    __slots__ = (
        "k", "p_pid", "p_ppid", "p_pptr", "p_children", "p_stat", "p_flag", "p_sflag",
        "p_exiting",
        "p_xstat", "p_xsig", "p_ru", "p_cru", "p_start_ns", "p_vforkwaiting",
        "p_rtime", "p_nsyscall",
        # LWPs
        "p_lwps", "p_nlwpid", "p_nlwps", "p_nzlwps", "p_nrlwps", "p_ndlwps", "p_nlwpwait",
        "p_nstopchild", "p_lwpctl_pages", "p_lwpctl_free",
        # image and resources
        "p_vmspace", "p_textvp", "p_fd", "p_cwd", "p_cwdi", "p_comm", "p_path", "p_psstrp", "p_emul", "p_limits",
        "p_nice", "p_cmask", "p_raslist", "p_itimers",
        # credentials, process group, session (kern_prot.py)
        "p_cred", "p_pgid", "p_session", "p_sugid",
        # signals (kern_sig.py)
        "p_sigacts", "p_sigignore", "p_sigpend", "p_sigwaiters", "p_xstopsig",
        # ptrace (sys_ptrace.py)
        "p_slflag", "p_opptr", "p_ptrace_sig", "p_ptrace_lid", "p_ptrace_ksi",
        "p_ptrace_xinfo", "p_sigpass",
        # the machine's own state of the process (struct mdproc), opaque here
        "p_md",
        "__weakref__",
    )

    def __init__(self, pid: int, ppid: int) -> None:
        self.k: Any = None                  # the kernel this process lives in
        self.p_pid = pid
        self.p_ppid = ppid
        self.p_pptr: Proc | None = None     # parent (None: outside the guest, "init")
        self.p_children: list[Proc] = []
        self.p_stat = SACTIVE
        self.p_flag = 0                     # PK_* (PK_EXEC: it has exec'd)
        self.p_sflag = 0
        self.p_exiting = False
        self.p_xstat: int | None = None     # exit status, once decided
        self.p_xsig = 0                     # killing signal, if any
        self.p_ru: Any = None               # rusage of the exited process (wait4)
        self.p_cru: Any = None              # reaped children's rusage (p_stats->p_cru)
        self.p_start_ns = 0                 # kernel clock at fork/boot
        self.p_vforkwaiting = False         # a vfork parent sleeps until exec/exit
        self.p_rtime = 0                    # CPU time (ns) and system calls of freed LWPs
        self.p_nsyscall = 0
        self.p_lwps: dict[int, Lwp] = {}
        self.p_nlwpid = 1                   # next LWP id to try
        self.p_nlwps = 0                    # LWPs that exist (zombies included)
        self.p_nzlwps = 0                   # zombies
        self.p_nrlwps = 0                   # not stopped, suspended or zombie
        self.p_ndlwps = 0                   # detached
        self.p_nlwpwait = 0                 # LWPs sleeping in _lwp_wait
        self.p_nstopchild = 0
        self.p_lwpctl_pages: dict[int, memoryview] = {}   # lwpctl page va -> the kernel's view
        self.p_lwpctl_free: list[int] = []
        self.p_vmspace: Any = None
        self.p_textvp: Any = None           # the running program's image (the loader's, opaque here)
        self.p_fd: Any = None
        self.p_cwd = "/"
        self.p_cwdi: Any = None             # vfs_lookup.Cwdinfo: the held working directory
        self.p_comm = b""
        self.p_path: str | None = None      # kern.proc_args.-1.KERN_PROC_PATHNAME
        self.p_psstrp = 0                   # guest address of ps_strings
        self.p_emul = "netbsd"
        self.p_limits: dict[int, list[int]] = {}
        self.p_nice = 20                    # NZERO
        self.p_cmask = 0o022                # CMASK (umask)
        self.p_raslist: list[tuple[int, int]] = []
        self.p_md: Any = None               # the machine's (emu/npark.py); a child starts without
        self.p_itimers: dict = {}
        self.p_cred: Any = None
        self.p_pgid: int | None = None
        self.p_session: Any = None
        self.p_sugid = False
        self.p_sigacts: dict[int, tuple] = {}
        self.p_sigignore = 0
        self.p_sigpend = Sigpend()
        self.p_sigwaiters: list[Lwp] = []
        self.p_xstopsig = 0
        self.p_slflag = 0                   # PSL_TRACED: a tracer holds it (p_pptr)
        self.p_opptr: Proc | None = None    # the parent before the tracer's attach
        # A trace stop, as p_xsig / p_sigctx.ps_lwp / ps_info keep it: the signal the
        # stopped LWP takes when it resumes (the tracer may change it; 0 none),
        # that LWP (0: none) and the ksiginfo that stopped it.
        self.p_ptrace_sig = 0
        self.p_ptrace_lid = 0
        self.p_ptrace_ksi: Any = None
        # The rest of that stop's siginfo (sys_ptrace.py): ("state", event, pid or
        # lid) for _ptrace_state, ("syscall", code, rv0, rv1, error, args) for _syscall.
        self.p_ptrace_xinfo: Any = None
        self.p_sigpass = 0                  # ps_sigpass: signals that do not stop it

    @property
    def p_lwpcv(self) -> tuple[str, int]:
        """The wait channel of proc::p_lwpcv: _lwp_wait and _lwp_suspend sleep
        on it; LWP exit, free, detach and continue broadcast it."""
        return ("p_lwpcv", self.p_pid)

    def lwp_find(self, lid: int) -> Lwp | None:
        """proc_find_lwp(): the LWP with this id, zombies included."""
        return self.p_lwps.get(lid)
