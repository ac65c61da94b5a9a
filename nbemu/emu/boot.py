"""Boot one NetBSD program: check it, build the machine and the process image,
run it, and turn the way it ended into an exit status."""
from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from nbemu.plain import ValueRecord
from nbemu.guest.arch.base import Abi
from nbemu.guest.elf import ElfError
from nbemu.guest.exec_elf import exec_image, host_ids, read_program
from nbemu.syscalls.kern_lwp import lwp_create, lwp_start
from nbemu.syscalls.kern_resource import PHYSMEM
from nbemu.syscalls.kernel import Kernel
from nbemu.syscalls.lwp import Lwp, Proc
from nbemu.syscalls.signals import signame
from nbemu.syscalls.vfs_mount import MountError
from nbemu.syscalls.kern_proc import proc_enter
from nbemu.syscalls.kern_tc import MONOTONIC_AT_BOOT_NS

from .machine import DeadlockError, InternalError, Machine
from .space import vmmap_new
from .survivors import detach as detach_survivors, has_survivors, run_on

EXIT_DEADLOCK = 125      # distinct from guest statuses 0..124 and 128+N signal deaths
EXIT_INTERNAL = 70       # EX_SOFTWARE: nbemu itself failed (a bug), with a crash report


class Options(ValueRecord):
    _fields = ("ncpu", "memory", "deterministic", "seed", "root", "strace", "env", "argv0",
               "pid", "sched_log", "stats", "trace", "timeline", "gdb", "record", "replay",
               "binds", "survivors", "extra")

    def __init__(self, ncpu: int = 4, memory: int = PHYSMEM, deterministic: bool = False,
                 seed: int = 0, root: str = "/", strace: TextIO | None = None,
                 env: dict[str, str] | None = None, argv0: str | None = None, pid: int = 100,
                 sched_log: bool = False, stats: bool = False, trace: str | None = None,
                 timeline: str | None = None, gdb: str | None = None,
                 record: str | None = None, replay: Any = None,
                 binds: list[tuple[str, str]] | None = None, survivors: str = "kill",
                 extra: dict | None = None) -> None:
        self.ncpu = ncpu
        self.memory = memory              # -m SIZE: the guest's RAM, bytes (hw.physmem64)
        self.deterministic = deterministic
        self.seed = seed
        self.root = root
        self.strace = strace
        self.env = env
        self.argv0 = argv0
        self.pid = pid
        self.sched_log = sched_log
        self.stats = stats
        self.trace = trace                # --trace classes (emu/trace.py)
        self.timeline = timeline          # --timeline FILE (emu/timeline.py)
        self.gdb = gdb                    # -g PORT | HOST:PORT | unix:PATH (emu/gdbstub.py)
        self.record = record              # --record LOG (emu/record.py)
        self.replay = replay              # --replay LOG: an opened emu/record.Replayer
        self.binds = [] if binds is None else binds   # --bind (host, guest)
        self.survivors = survivors        # processes outliving the first: emu/survivors.py
        self.extra = {} if extra is None else extra


def guest_cwd(root: str, binds: list[tuple[str, str]] = (),  # type: ignore[assignment]
              host_cwd: str | None = None) -> str:
    """The guest starts in nbemu's working directory (qemu-user keeps the cwd too),
    as seen inside the guest root or through a --bind (the deepest host directory
    that holds it); "/" when the guest cannot see that directory."""
    try:
        cwd = os.path.realpath(host_cwd if host_cwd is not None else os.getcwd())
    except OSError:
        return "/"
    best: tuple[int, str] | None = None
    for host, guest in [(root, "/"), *binds]:
        h = os.path.realpath(host)
        if cwd == h or cwd.startswith(h.rstrip("/") + "/"):
            if best is None or len(h) > best[0]:
                rest = cwd[len(h.rstrip("/")):]
                g = ("/" + guest.strip("/")).rstrip("/")
                best = (len(h), os.path.normpath(g + rest) if g + rest else "/")
    return best[1] if best is not None else "/"


def boot_machine(abi: Abi, opts: Options) -> tuple[Machine, Kernel]:
    """The hardware, then the kernel on it: the Kernel sees the Machine only
    as its Platform (syscalls/kernel.py); the Machine runs the Kernel's turns."""
    m = Machine(abi, deterministic=opts.deterministic)
    k = Kernel(abi, m, ncpu=opts.ncpu, deterministic=opts.deterministic, seed=opts.seed,
               root=opts.root, physmem=opts.memory)
    m.attach(k)
    return m, k


class Session:
    """A booted program, ready to run (also the base of the Python API)."""

    def __init__(self, path: str, args: list[str], opts: Options) -> None:
        img, abi = read_program(path)
        self.opts = opts
        self.machine, self.kernel = m, k = boot_machine(abi, opts)
        self.rr = None
        if opts.binds:
            from nbemu.syscalls.vfs_mount import mount_binds
            mount_binds(k, opts.binds)           # before exec: ld.elf_so may lie in one
        cwd = guest_cwd(opts.root, opts.binds)
        if opts.record is not None or opts.replay is not None:
            # First: every clock reading and host input from here on is logged / replayed.
            from .record import attach as attach_rr
            self.rr = attach_rr(self, path, args, opts, cwd)
            cwd = self.rr.cwd
        p = Proc(opts.pid, 1)
        proc_enter(k, p, None)               # the guest's first process ("init" to nbemu)
        p.p_comm = os.path.basename(path).encode()[:16]
        p.p_start_ns = MONOTONIC_AT_BOOT_NS     # (no clock reading: record/replay logs)
        k.proc = p
        vm = vmmap_new(abi, m.space)
        p.p_vmspace = vm
        self._init_subsystems(p)
        if self.rr is not None and self.rr.replaying:
            self.rr.apply_stdio(p)               # fds 0-2 as they were when recorded
        env = opts.env if opts.env is not None else dict(os.environ)
        argv = [(opts.argv0 or path).encode()] + [a.encode() for a in args]
        envp = [f"{kk}={vv}".encode() for kk, vv in env.items()]
        uid, gid = host_ids()
        res = exec_image(vm, img, abi, argv, envp, path.encode(), uid, gid, root=k)
        p.p_path = os.path.abspath(path)        # kern.proc_args.-1.KERN_PROC_PATHNAME
        p.p_textvp = img
        p.p_cwd = cwd
        p.p_psstrp = res.ps_strings
        l = lwp_create(k, None, p, 0)
        assert isinstance(l, Lwp)
        m.start_lwp0(l, res.regs)
        lwp_start(k, l, False)
        if opts.strace is not None:
            from .strace import Strace
            k.strace = Strace(k, opts.strace)
        if opts.sched_log:
            k.sched_log = []
        self.image = img
        self.exec_result = res           # where the program and its interpreter landed
        self.path = path
        m.on_child_crash = self._child_crash
        self._finishers: list = []       # called with the exit status at the end of run()
        if opts.stats:
            self._finishers.append(self._print_stats)
        if opts.trace:
            from .trace import attach as attach_trace
            attach_trace(self, opts.trace)
        if opts.timeline:
            from .timeline import attach as attach_timeline
            attach_timeline(self, opts.timeline)
        if opts.gdb is not None:
            from .gdbstub import attach as attach_gdb
            attach_gdb(self, opts.gdb)              # waits for gdb before the first instruction

    def _init_subsystems(self, p: Proc) -> None:
        from nbemu.syscalls.vfs_syscalls import filedesc_init
        from nbemu.syscalls.kern_resource import rlimits_init
        filedesc_init(p)
        rlimits_init(p)

    def run(self) -> int:
        """Run to the end; the exit status as a shell reports it."""
        import time
        from .hostsig import HostSignals
        self._t0 = time.perf_counter()
        hs = HostSignals(self.kernel, replay=self.rr is not None and self.rr.replaying)
        installed = hs.install()
        detach = False
        try:
            status = self._run()
            if self.opts.survivors != "kill" and has_survivors(self):
                if self.opts.survivors == "wait":
                    if not run_on(self):
                        status = EXIT_INTERNAL
                else:
                    detach = True
        finally:
            if installed:
                hs.uninstall()
        if detach:
            detach_survivors(self)          # they run on in a child host process
        if self.rr is not None:
            status = self.rr.finish(status)
        for fn in self._finishers:
            fn(status)
        return status

    def _run(self) -> int:
        k = self.kernel
        p = k.proc
        try:
            self.machine.run()
        except DeadlockError:
            from .crash import deadlock_report
            deadlock_report(self, sys.stderr)
            return EXIT_DEADLOCK
        except InternalError as e:
            if self.rr is not None and self.rr.is_divergence(e.exc):   # inside a system call
                return self.rr.report(e.exc)
            from .crash import internal_error_report
            internal_error_report(self, e, sys.stderr)
            return EXIT_INTERNAL
        except Exception as e:
            if self.rr is None or not self.rr.is_divergence(e):   # in the run loop
                raise
            return self.rr.report(e)
        finally:
            if k.sched_log is not None:
                print(f"nbemu: schedule {self.schedule_hash()} "
                      f"({len(k.sched_log)} decisions)", file=sys.stderr)
        if p.p_xsig:
            fault = getattr(self.machine, "last_fault", None)
            if fault is not None:
                from .crash import crash_report
                crash_report(self, sys.stderr)
            print(f"nbemu: guest killed by signal {p.p_xsig} ({signame(p.p_xsig)})",
                  file=sys.stderr)
            return 128 + p.p_xsig
        return p.p_xstat or 0

    def _child_crash(self, l, sig: int) -> None:
        """A process other than the first died of a fault or a core-dumping
        signal: its crash report now (its parent sees WIFSIGNALED and goes on)."""
        from .crash import crash_report
        crash_report(self, sys.stderr)
        print(f"nbemu: pid {l.l_proc.p_pid} killed by signal {sig} ({signame(sig)})",
              file=sys.stderr)

    def _print_stats(self, status: int) -> None:
        import time
        k = self.kernel
        sw = " ".join(f"{ci.ci_index}:{ci.ci_nswitch}" for ci in k.cpus)
        procs = (f"{k.nprocs_created} processes (at most {k.nprocs_max} alive), "
                 if k.nprocs_created > 1 else "")
        # --deterministic: the blocks executed are its virtual clock
        blocks = f"{self.machine.blocks_executed()} blocks, " if self.opts.deterministic else ""
        np = self.machine.npark
        native = (f" ({np.count.value} park/unpark served natively)"
                  if np is not None and np.count.value else "")
        print(f"nbemu: stats: {procs}{k.nlwps_created} LWPs created (at most {k.nlwps_max} "
              f"alive), "
              f"{k.nsyscalls} system calls{native}, switches per vCPU {sw}, {blocks}"
              f"{time.perf_counter() - self._t0:.2f} s", file=sys.stderr)

    def schedule_hash(self) -> str:
        """A digest of every scheduling decision (which LWP ran on which vCPU)."""
        import hashlib
        h = hashlib.sha256()
        for d in self.kernel.sched_log or ():
            h.update(repr(d).encode())
        return h.hexdigest()[:16]


def run_program(path: str, args: list[str], opts: Options) -> int:
    try:
        s = Session(path, args, opts)
    except ElfError as e:
        print(f"nbemu: {e}", file=sys.stderr)
        return e.code
    except MountError as e:
        print(f"nbemu: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if opts.record is None and opts.replay is None:
            raise
        from .record import LogError      # (emu/record.py is imported only when used)
        if isinstance(e, LogError):
            print(f"nbemu: {e}", file=sys.stderr)
        elif isinstance(e, OSError) and e.filename == opts.record:
            print(f"nbemu: --record {opts.record}: {e.strerror}", file=sys.stderr)
        else:
            raise
        return 2
    return s.run()
