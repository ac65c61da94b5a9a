"""The Python kernel: one object that ties the run queues, sleep queues,
callouts, clock and process together, and the system-call trap path
(NetBSD's syscall() + userret()).

emu/ drives it through a narrow interface: `syscall(l, regs)` from the trap;
from the run loop, once per turn, `next_turn()` (which LWP on which vCPU) or
`idle()` (stopped, or idle until when), `enter(l)` (its kernel work before
user code), `slice(ci, l)` (for how long) and `tick(ci)` (the slice ended).
The kernel reaches the hardware only through the Platform (registers of an
LWP, its saved context, the pmap, "stop the engine after this trap") and the
Abi, both complete protocols.
"""
from __future__ import annotations

import random
import sys
from types import GeneratorType
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from .errno import Errno, KernErrno, errno_name
from .kern_lwp import UareaArena, lwp_exit, lwp_suspend_self
from .kern_resource import PHYSMEM, lwp_maxlwp
from .kern_prot import proc_pgid
from .kern_ras import ras_switch_in
from .kern_runq import CpuInfo, RunQueues
from .kern_sig import psignal, sig_sleep_check, sig_userret
from .kern_sleepq import SleepTab
from .kern_synch import mi_switch, nextlwp, preempt
from .kern_tc import Clock
from .kern_timeout import CalloutQueue
from .kern_tty import pgsignal
from .lwp import (LSONPROC, LSRUN, LSSLEEP, LSSTOP, LSSUSPENDED, LW_USERRET, PSL_SYSCALL, SSTOP,
                  SZOMB, Lwp, LwpFlag, Proc)
from .signals import Sig
from .sys_ptrace import trace_syscall
from .table import SYS___syscall, SYS_syscall, SYSENT, name_of
from .vfs_mount import MountTable

if TYPE_CHECKING:                # a type only: the kernel imports nothing of guest/
    from nbemu.guest.arch.base import Abi

EJUSTRETURN = int(KernErrno.EJUSTRETURN)
ERESTART = int(KernErrno.ERESTART)
RR_TICKS = 4             # ticks an LWP keeps its CPU while others queue there
DET_SLICE_BLOCKS = (2_000, 20_000)   # --deterministic: translated blocks per turn (seeded)
# host signals delivered to the first process's group when the terminal sent them
# (Kernel.post_host_signals)
TTY_GROUP_SIGNALS = frozenset({Sig.SIGINT, Sig.SIGQUIT, Sig.SIGHUP, Sig.SIGWINCH})


class Platform(Protocol):
    """What emu/ provides to the kernel: the kernel's whole view of the machine
    (emu/machine.py's Machine; tests/khelp.py's FakePlatform). The kernel uses
    no other member, and probes none."""
    curlwp: Lwp | None      # the LWP executing the current vCPU turn (None between turns)
    in_hook: bool           # inside the system-call hook: registers are not to be rewritten

    # -- registers of an LWP: live in the engine or in its saved context
    def regs_get(self, l: Lwp, ids: Sequence[int]) -> list[int]: ...
    def regs_set(self, l: Lwp, ids: Sequence[int], vals: Sequence[int]) -> None: ...
    def vregs_get(self, l: Lwp, ids: Sequence[int]) -> list[int]: ...   # 128-bit vectors
    def vregs_raw(self, l: Lwp, ids: Sequence[int]) -> bytes: ...   # the same, 16 bytes LE each
    def vregs_set(self, l: Lwp, ids: Sequence[int], vals: Sequence[int]) -> None: ...
    def with_live_regs(self, l: Lwp, fn: Callable[[Any], None]) -> None: ...  # fn(engine)
    def context_fork(self, parent: Lwp, child: Lwp) -> None: ...
    def context_free(self, l: Lwp) -> None: ...
    # -- the trap being served
    def restart_syscall(self, l: Lwp) -> None: ...
    def syscall_return(self, l: Lwp, vals: Sequence[int]) -> None: ...
    # -- the turn: end it after this trap; work appeared; guest time
    def request_stop(self) -> None: ...
    def work_added(self) -> None: ...
    def blocks_executed(self) -> int: ...
    # -- parks the machine may end itself (emu/npark.py; sys_lwp.lwp_park_native_*)
    def npark_begin(self, l: Lwp) -> None: ...   # l parked with no timeout, nothing pending
    def npark_end(self, l: Lwp) -> None: ...     # the kernel acts on l: the machine lets go
    # -- signals: a handler was installed (host signals); a process dies dumping core
    def signal_caught(self, sig: int) -> None: ...
    def note_core(self, l: Lwp, sig: int) -> None: ...
    # -- address spaces and exec
    def vmspace_new(self) -> Any: ...          # a pmap (engine) for a new address space
    def vmspace_free(self, pmap: Any) -> None: ...
    def exec_check(self, host_path: str) -> Any: ...   # guest/'s loader: an image or an errno
    def exec_image(self, l: Lwp, img: Any, argv: list[bytes], envp: list[bytes],
                   execname: bytes) -> None: ...


class Kernel:
    def __init__(self, abi: "Abi", platform: Platform, ncpu: int = 4, deterministic: bool = False,
                 seed: int = 0, root: str = "/", env_warn: Callable[[str], None] | None = None,
                 physmem: int = PHYSMEM) -> None:
        self.abi = abi
        self._ilp32 = abi.word_size == 4     # argument words are 32-bit (table.decode32)
        self.platform = platform
        self.ncpu = ncpu
        self.deterministic = deterministic
        self.seed = seed
        self.rng = random.Random(seed)
        self.runq = RunQueues(self, ncpu, self._choose)
        self.cpus: list[CpuInfo] = self.runq.cpus
        self.sleeptab = SleepTab()
        self.callout = CalloutQueue()
        self.clock = Clock(deterministic, platform.blocks_executed)
        self.root = root
        self.proc: Proc | None = None            # the first process: nbemu ends with it
        self.allproc: dict[int, Proc] = {}       # every process, zombies included (kern_proc)
        self.lastpid = 0
        self.nprocs_created = 1                  # --stats: the first process and every fork
        self.nprocs_max = 1
        self.trapvals: list[int] = []            # registers of the trap being served (fork)
        self.warn = env_warn or (lambda msg: print(f"nbemu: {msg}", file=sys.stderr))
        self._enosys_warned: set[int] = set()
        self._fastents: dict[int, tuple] = {}   # code -> Kernel._fastent(code), made once
        self.strace: Callable[[Lwp, int, tuple, int, list[int]], None] | None = None
        self.listeners: list[Callable[[str, Lwp, dict], None]] = []
        self.sched_log: list[tuple] | None = None   # scheduling decisions (for a schedule hash)
        self.sched_policy: Any = None   # --deterministic: picks vCPUs (emu/explore.py), None = seeded random
        self._rr = -1
        self.nsyscalls = 0
        # Signals sent to nbemu by the host (emu/hostsig.py), posted to the process
        # at the next delivery point (post_host_signals); hostsig_log: the
        # record/replay log that records or replays those posts.
        # (NetBSD signal, sent by a host process: kill(2) rather than the terminal)
        self.host_sigs: list[tuple[int, bool]] = []
        self.hostsig_check = False
        self.hostsig_log: Any = None
        self.nlwps_created = 0
        self.nlwps_max = 0
        self.config: dict[str, Any] = {}
        # Subsystem state, declared here (made by the subsystem's first call):
        # uipc_sem.KsemState, sys_mqueue.MqState; the bounded u-area arena.
        self.ksem_state: Any = None
        self.mqueue_state: Any = None
        self.lockf_state: Any = None             # vfs_lockf.LockfState (record locks)
        self.unp_state: Any = None               # uipc_usrreq.UnpState (files in flight)
        self.tty_state: Any = None               # kern_tty: host st_rdev -> Tty
        self.vfs_rootvp: tuple[str, Any] | None = None   # (k.root, its vfs_lookup.RootVnode)
        self.vfs_mounts = MountTable()           # vfs_mount: --bind HOST[:GUEST]
        self.fifo_opens: dict[tuple, Any] = {}   # fifo_vnops: (dev, ino) -> FifoCounts
        self.unp_names: dict[str, bytes] = {}    # uipc_syscalls: host socket name -> guest path
        # The guest's RAM (`-m`: hw.physmem64); half of it is the kernel arena
        # u-areas come from (lwp_create's ENOMEM when it runs out).
        self.physmem = physmem
        self.maxlwp = lwp_maxlwp(physmem)         # kern.maxlwp
        self.uarea_arena = UareaArena(physmem // 2, abi.uspace)

    # -- events ----------------------------------------------------------------
    def event(self, kind: str, l: Lwp, **data: Any) -> None:
        """One event of the kernel's stream (LWP created, run, slept, woke, ...)."""
        if self.listeners:
            data["t"] = self.clock.stamp_ns()
            for fn in self.listeners:
                fn(kind, l, data)

    def _choose(self, seq: list) -> Any:
        if self.deterministic:
            return seq[self.rng.randrange(len(seq))]
        return seq[0]

    # -- scheduler glue ---------------------------------------------------------
    def setrunnable(self, l: Lwp) -> None:
        """setrunnable(): a sleeping, stopped or suspended LWP becomes runnable."""
        assert l.l_stat in (LSSLEEP, LSSTOP, LSSUSPENDED) or l.l_stat == 1, l
        l.set_stat(LSRUN)
        self.runq.sched_enqueue(l)
        # Work appeared while a slice may be running without preemption (it
        # started with nothing else to do): make that slice preemptible, or a
        # spinning waker would keep its vCPU from the woken LWP forever.
        self.platform.work_added()

    def cpu_release(self, l: Lwp) -> None:
        """l leaves its CPU (it is about to sleep, stop, suspend or exit): the
        first half of mi_switch (kern_synch.py), for the modules below it."""
        mi_switch(self, l)

    def pick_cpu(self) -> CpuInfo | None:
        """The vCPU the host thread serves next: round-robin over CPUs with work
        (a seeded choice in --deterministic mode)."""
        cpus = self.cpus
        n = len(cpus)
        if self.deterministic:
            busy = [ci for ci in cpus if ci.has_work()]
            if not busy:
                return None
            if self.sched_policy is not None:
                ci = self.sched_policy.pick_cpu(busy)
            else:
                ci = busy[self.rng.randrange(len(busy))] if len(busy) > 1 else busy[0]
        else:
            # (CpuInfo.has_work inline: this runs once per turn, for every vCPU)
            ci = None
            rr = self._rr
            for i in range(1, n + 1):
                c = cpus[(rr + i) % n]
                if c.ci_curlwp is not None or c.spc_count:
                    ci = c
                    break
            if ci is None:
                return None
        self._rr = ci.ci_index
        return ci

    def switch_in(self, ci: CpuInfo) -> Lwp | None:
        l = ci.ci_curlwp
        if l is None:
            l = nextlwp(self, ci)
            if l is not None:
                if self.sched_log is not None:
                    self.sched_log.append((ci.ci_index, l.l_lid))
                if l.l_proc.p_raslist:
                    ras_switch_in(self, l)
        return l

    def tick(self, ci: CpuInfo) -> None:
        """A time slice of ci ended (hardclock + preemption check)."""
        l = ci.ci_curlwp
        if l is None:
            return
        l.l_ticks += 1
        if l.l_ticks >= RR_TICKS and ci.spc_count:
            preempt(self, ci)
            if self.sched_log is not None:
                self.sched_log.append(("preempt", ci.ci_index, l.l_lid))

    # -- the run loop's questions (emu/machine.py run) ---------------------------
    # Once per turn the run loop asks next_turn(): which LWP runs next on which
    # vCPU, once what fell due has run (host signals, callouts). None: no vCPU
    # has work, and idle() says whether the process is stopped, else until when
    # nothing can happen (None: never, a deadlock). The run loop then loads the
    # LWP's registers; enter(l) finishes its kernel work (a blocked system call
    # resumed, userret) and says whether its user code runs; slice(ci, l) says
    # for how long. The run loop only switches contexts and runs the engine.
    def next_turn(self) -> tuple[CpuInfo, Lwp | None] | None:
        """(vCPU, the LWP it runs now -- None: ask again), or None: all idle."""
        if self.hostsig_check:
            self.post_host_signals(at_turn=True)
        if self.callout.pending:
            self.run_callouts()
        ci = self.pick_cpu()
        if ci is None:
            return None
        return ci, self.switch_in(ci)

    def idle(self) -> tuple[bool, int | None]:
        """No vCPU has work: (the process is stopped by a signal, the next
        callout's deadline -- None: nothing will ever wake an LWP)."""
        p = self.proc
        if p is not None and p.p_stat == SSTOP:
            return True, None
        return False, self.callout.next_deadline()

    def idle_until(self, deadline: int) -> None:
        """Let guest time pass to deadline and run what fell due."""
        self.clock.wait_until(deadline)
        self.run_callouts()

    def enter(self, l: Lwp) -> bool:
        """l is on its vCPU with its registers loaded: continue its blocked
        system call, or do its deferred work on the way to user mode. True: its
        user code runs now."""
        if l.l_kstack is not None:
            self.resume(l)
        elif l.l_flag & LW_USERRET:
            self.userret(l)
        else:
            return True
        return l.l_stat == LSONPROC and not l.l_proc.p_exiting

    def slice(self, ci: CpuInfo, l: Lwp) -> tuple[bool, int]:
        """How long l's turn on ci may be: (cut: end it in time for the others --
        LWPs wait or a timeout is pending --, budget: --deterministic's seeded
        number of translated blocks, a scheduling decision; 0 in fast mode)."""
        cut = self.must_preempt_soon(ci)
        if not self.deterministic:
            return cut, 0
        pol = self.sched_policy
        budget = pol.slice_budget(ci, l) if pol is not None else self.rng.randint(*DET_SLICE_BLOCKS)
        if self.sched_log is not None:
            # Every turn is a decision: which vCPU and LWP run, for how long.
            self.sched_log.append(("turn", ci.ci_index, l.l_lid, budget))
        return cut, budget

    def must_preempt_soon(self, ci: CpuInfo) -> bool:
        """Should the running slice be cut by the ticker (others wait, or a timeout)?"""
        if ci.spc_count or self.callout.pending:
            return True
        for c in self.cpus:            # (CpuInfo.has_work inline: once per turn)
            if c is not ci and (c.ci_curlwp is not None or c.spc_count):
                return True
        return False

    def run_callouts(self) -> None:
        if self.callout.pending:
            self.callout.run_due(self.clock.monotonic_ns())

    # -- signals (kern_sig.py) ------------------------------------------------------
    def sig_pending_for(self, l: Lwp) -> int:
        """At the start of an interruptible sleep: EINTR / ERESTART when a signal
        is already pending for l (the sleep ends at once), else 0."""
        if not l.l_flag & LwpFlag.LW_PENDSIG:
            return 0
        return sig_sleep_check(l)

    # -- the system-call trap ----------------------------------------------------
    def decode_args(self, l: Lwp, vals: list[int]) -> tuple[int, tuple | int]:
        """(code, decoded arguments) of the trap whose registers are `vals`; the
        arguments are an errno (EFAULT) when stack words cannot be read, () for a
        call the table does not know. NetBSD's syscall() + the sy_args copyin."""
        abi = self.abi
        code, regargs, sp = abi.decode_syscall(vals)
        ws = abi.word_size
        if code == SYS_syscall or code == SYS___syscall:
            # The real number is the first argument: an int for syscall(), a
            # quad_t for __syscall() (two words on ILP32 ports).
            shift = 1 if code == SYS_syscall or ws == 8 else 2
            if len(regargs) < shift:          # i386: everything is on the stack
                more = self._stack_words(l, sp, shift - len(regargs))
                if isinstance(more, int):
                    return code, more
                sp += (shift - len(regargs)) * ws
                regargs = list(regargs) + more
            code = regargs[0] & 0xFFFFFFFF
            regargs = regargs[shift:]
        ent = SYSENT.get(code)
        if ent is None:
            return code, ()
        if ws == 4:
            n, decode = ent.nwords32, ent.decode32
        else:
            n, decode = ent.nargs, ent.decode
        raw = regargs
        if n > len(regargs):
            more = self._stack_words(l, sp, n - len(regargs))
            if isinstance(more, int):
                return code, more
            raw = list(regargs) + more
        return code, ent.argcls(decode(raw))  # type: ignore[misc]

    def _fastent(self, code: int) -> tuple:
        """What the trap needs of a direct call `code` whose arguments come in
        registers -- (argument words, decoder, argument class, handler) for
        this ABI's word size --, or () for syscall() / __syscall() and calls
        the table does not know (decode_args serves them)."""
        ent = SYSENT.get(code)
        if ent is None or code == SYS_syscall or code == SYS___syscall:
            return ()
        if self._ilp32:
            return (ent.nwords32, ent.decode32, ent.argcls, ent.handler)
        return (ent.nargs, ent.decode, ent.argcls, ent.handler)

    def syscall(self, l: Lwp, vals: list[int]) -> None:
        """Serve the system call whose registers are `vals` (abi.syscall_in_regs)."""
        abi = self.abi
        code, regargs, sp = abi.decode_syscall(vals)
        # The common case inline (it is every system call's cost): a direct call
        # whose arguments all came in registers, its table row's parts taken
        # once (_fastents). Anything else: decode_args.
        fe = self._fastents.get(code)
        if fe is None:
            fe = self._fastents[code] = self._fastent(code)
        if fe and fe[0] <= len(regargs):
            _n, decode, argcls, handler = fe
            args = argcls(decode(regargs))
        else:
            code, args = self.decode_args(l, vals)
            ent = SYSENT.get(code)
            handler = ent.handler if ent is not None else None
        self.nsyscalls += 1
        self.clock.syscalls += 1
        self.trapvals = vals
        l.l_syshist.append(code)     # last system calls, for reports (~20 ns)
        retval = [0, vals[abi.rv1_index]]
        if args.__class__ is int:
            self._finish(l, vals, args, retval, code, ())   # type: ignore[arg-type]
            return
        if handler is None:
            error = self._enosys(code)
        else:
            l.l_syscode = code
            if l.l_proc.p_slflag & PSL_SYSCALL:      # PT_SYSCALL: stops around it
                res = trace_syscall(l, code, args, handler, retval)
            else:
                res = handler(l, args, retval)
            if res.__class__ is GeneratorType:
                try:
                    res.send(None)
                except StopIteration as stop:
                    error = stop.value or 0
                else:
                    l.l_kstack = res
                    l.l_sysvals = vals
                    l.l_sysargs = args
                    l.l_retval = retval
                    self.platform.request_stop()
                    return
            else:
                error = res
        if error == EJUSTRETURN or error == ERESTART:
            self._finish(l, vals, error, retval, code, args)
            return
        # _finish's common case inline: the call's values go back to l.
        self.platform.syscall_return(l, abi.encode_return(vals, error, retval[0], retval[1]))
        if self.strace is not None:
            self.strace(l, code, args, error, retval)
        if self.hostsig_check:
            self.post_host_signals()
        if l.l_stat == LSONPROC and l.l_flag & LW_USERRET:
            self.userret(l)

    def resume(self, l: Lwp) -> None:
        """Continue l's blocked system call after a wakeup (l is on a CPU, its
        registers loaded)."""
        gen = l.l_kstack
        assert gen is not None
        try:
            gen.send(l.l_sleeperr)
        except StopIteration as stop:
            l.l_kstack = None
            vals, retval, args = l.l_sysvals, l.l_retval, l.l_sysargs
            l.l_sysvals = None
            self._finish(l, vals, stop.value or 0, retval, l.l_syscode, args)  # type: ignore[arg-type]
        # else: blocked again; l is asleep

    def _finish(self, l: Lwp, vals: list[int], error: int, retval: list[int], code: int,
                args: tuple) -> None:
        if error == EJUSTRETURN:
            pass
        elif error == ERESTART:
            self.platform.restart_syscall(l)
        else:
            self.platform.syscall_return(l, self.abi.encode_return(vals, error, retval[0],
                                                                   retval[1]))
        if self.strace is not None:
            self.strace(l, code, args, error, retval)
        if self.hostsig_check:
            self.post_host_signals()
        if l.l_stat == LSONPROC and l.l_flag & LW_USERRET:
            self.userret(l)

    # -- signals from the host -------------------------------------------------------
    # Sent to nbemu by its terminal (Ctrl-C, Ctrl-\, a resize, a hang-up), these
    # reach every process of the foreground job natively: here, the guest processes
    # in the first process's group (a shell's asynchronous jobs ignore SIGINT/SIGQUIT,
    # as POSIX has them do). Sent by a host process (kill(2) of nbemu's pid: the
    # host tells them apart, emu/hostsig.py), any signal reaches the first process
    # only, as a kill(2) of one pid does. (A host shell's killpg of nbemu's job is a
    # kill(2) too: the first process.)
    def host_signal(self, sig: int, by_process: bool = False) -> None:
        """Queue NetBSD signal sig, sent to nbemu by the host (by_process: by a
        host process, not by the terminal), for the guest."""
        self.host_sigs.append((sig, by_process))
        self.hostsig_check = True

    def post_host_signals(self, at_turn: bool = False) -> None:
        """A delivery point (a system call's end, or at_turn: before a vCPU
        turn): psignal() what the host sent. Under record/replay the posts are
        logged where they happen, and a replay posts the logged ones at the
        same points."""
        log = self.hostsig_log
        if log is not None and log.replaying:
            sigs = log.host_signals(at_turn, self.nsyscalls)
        else:
            sigs, self.host_sigs = self.host_sigs, []
            self.hostsig_check = False
            if log is not None:
                for sig, by_process in sigs:
                    log.host_signal(sig, by_process, at_turn, self.nsyscalls)
        p = self.proc
        if p is not None and not p.p_exiting:
            for sig, by_process in sigs:
                if sig in TTY_GROUP_SIGNALS and not by_process:
                    # what the terminal sends goes to nbemu's whole job: the
                    # first process's group
                    pgsignal(self, proc_pgid(p), sig)
                else:
                    psignal(p, sig)
        elif sigs:
            # the first process is gone and others run on (emu/survivors.py):
            # what is sent to nbemu now is sent to each of them
            for q in self.live_procs():
                for sig, _ in sigs:
                    psignal(q, sig)

    def live_procs(self) -> list[Proc]:
        """The processes that have not begun to exit."""
        return [q for q in self.allproc.values() if not q.p_exiting and q.p_stat != SZOMB]

    def _stack_words(self, l: Lwp, sp: int, n: int) -> list[int] | int:
        ws = self.abi.word_size
        data = l.l_proc.p_vmspace.copyin(sp, n * ws)
        if isinstance(data, int):
            return data
        return [int.from_bytes(data[i * ws:(i + 1) * ws], "little") for i in range(n)]

    def _enosys(self, code: int) -> int:
        if code not in self._enosys_warned:
            self._enosys_warned.add(code)
            self.warn(f"unimplemented system call {code} ({name_of(code)}): ENOSYS")
        return Errno.ENOSYS

    def userret(self, l: Lwp) -> None:
        """Deferred work on the way back to user mode (userret/lwp_userret)."""
        if (l.l_flag & (LwpFlag.LW_PENDSIG | LwpFlag.LW_WEXIT | LwpFlag.LW_WCORE)
                == LwpFlag.LW_PENDSIG):
            # Signals first (lwp_userret); inside the system-call hook this only
            # stops the engine, and the run loop calls userret again.
            sig_userret(l)
            if l.l_stat != LSONPROC or l.l_proc.p_exiting:
                return
        if l.l_flag & LwpFlag.LW_WEXIT:
            lwp_exit(l)
            return
        if l.l_flag & LwpFlag.LW_WSUSPEND:
            lwp_suspend_self(l)

    def errname(self, e: int) -> str:
        return errno_name(e)
