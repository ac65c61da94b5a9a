"""A kernel without an engine, for pure-Python tests of handlers and queues.

`make_kernel()` gives a Kernel whose platform keeps registers in dicts and a
process with a real VmMap (host memory, no Unicorn) and one LWP on CPU 0.
`call(l, "name", args...)` runs a handler through the table as the trap would.
"""
from __future__ import annotations

from types import GeneratorType
from typing import Any

import nbemu.syscalls  # noqa: F401  (registers every handler)
from nbemu.guest.arch.amd64 import ABI
from nbemu.syscalls.kern_lwp import lwp_create, lwp_start
from nbemu.syscalls.kernel import Kernel
from nbemu.syscalls.kern_proc import proc_enter
from nbemu.syscalls.lwp import LSONPROC, LSRUN, Lwp, Proc
from nbemu.syscalls.table import SYSENT
from nbemu.syscalls.uvm_map import NullPmap, VmMap


class FakePlatform:
    """The kernel's Platform with registers in dicts (vector registers too) and
    no engine: a turn never runs (curlwp None), exec and new address spaces are
    refused."""
    curlwp: Lwp | None = None
    in_hook = False

    def __init__(self) -> None:
        self.regs: dict[int, dict[int, int]] = {}
        self.stops = 0
        self.cores: list[tuple[int, int]] = []

    def regs_get(self, l: Lwp, ids):
        r = self.regs.setdefault(l.l_lid, {})
        return [r.get(i, 0) for i in ids]

    def regs_set(self, l: Lwp, ids, vals) -> None:
        self.regs.setdefault(l.l_lid, {}).update(zip(ids, vals))

    def syscall_return(self, l: Lwp, vals) -> None:
        self.regs_set(l, ABI.syscall_out_regs, vals)

    def context_fork(self, parent: Lwp, child: Lwp) -> None:
        self.regs[child.l_lid] = dict(self.regs.get(parent.l_lid, {}))

    def context_free(self, l: Lwp) -> None:
        self.regs.pop(l.l_lid, None)

    def request_stop(self) -> None:
        self.stops += 1

    def npark_begin(self, l: Lwp) -> None:
        pass                        # (no engine: every park is the kernel's)

    def npark_end(self, l: Lwp) -> None:
        l.l_npark = False

    def restart_syscall(self, l: Lwp) -> None:
        pass

    def blocks_executed(self) -> int:
        return 0

    vregs_get = regs_get

    def vregs_raw(self, l, ids) -> bytes:
        return b"".join(v.to_bytes(16, "little") for v in self.regs_get(l, ids))
    vregs_set = regs_set

    def with_live_regs(self, l: Lwp, fn) -> None:
        raise NotImplementedError("no engine in unit tests")

    def work_added(self) -> None:
        pass

    def signal_caught(self, sig: int) -> None:
        pass

    def note_core(self, l: Lwp, sig: int) -> None:
        self.cores.append((l.l_lid, sig))

    def vmspace_new(self) -> Any:
        raise NotImplementedError("no engine in unit tests")

    def vmspace_free(self, pmap: Any) -> None:
        pass

    def exec_check(self, host_path: str) -> Any:
        raise NotImplementedError("no loader in unit tests")

    def exec_image(self, l: Lwp, img: Any, argv: list[bytes], envp: list[bytes],
                   execname: bytes) -> None:
        raise NotImplementedError("no loader in unit tests")


def make_kernel(ncpu: int = 4, deterministic: bool = True, root: str = "/",
                abi: Any = ABI, physmem: int | None = None) -> tuple[Kernel, Lwp]:
    """A kernel with one process and its first LWP on CPU 0 (amd64 unless `abi`;
    the default guest RAM unless `physmem`)."""
    more = {} if physmem is None else {"physmem": physmem}
    k = Kernel(abi, FakePlatform(), ncpu=ncpu, deterministic=deterministic, root=root, **more)
    p = Proc(100, 1)
    proc_enter(k, p, None)
    k.proc = p
    vm = VmMap(NullPmap(), abi.page_size, 0x1000, abi.vm_maxuser_address)
    vm.usrstack, vm.maxssiz = abi.usrstack, abi.maxssiz
    vm.vm_daddr, vm.vm_dsize, vm.dsiz_limit = 0x600000, 0, abi.dfldsiz
    p.p_vmspace = vm
    from nbemu.syscalls.vfs_syscalls import filedesc_init
    filedesc_init(p)
    l = lwp_create(k, None, p, 0)
    assert isinstance(l, Lwp)
    lwp_start(k, l, False)
    ci = k.cpus[0]
    k.runq.sched_dequeue(l)
    l.set_stat(LSONPROC)
    ci.ci_curlwp = l
    l.l_cpu = ci
    return k, l


def call(l: Lwp, name: str, *args: int) -> tuple[Any, list[int]]:
    """Run handler `name` with raw argument words; (error or generator, retval)."""
    ent = next(e for e in SYSENT.values() if e.name == name)
    assert ent.handler is not None, f"{name} has no handler"
    if l.l_proc.k.abi.word_size == 4:          # ILP32: 32-bit words, off_t in two
        n, decode = ent.nwords32, ent.decode32
    else:
        n, decode = ent.nargs, ent.decode
    raw = list(args) + [0] * (n - len(args))
    a = ent.argcls(decode(raw))
    retval = [0, 0]
    res = ent.handler(l, a, retval)
    if isinstance(res, GeneratorType):
        try:
            res.send(None)
        except StopIteration as s:
            return s.value or 0, retval
        return res, retval
    return res, retval


def scratch(l: Lwp, size: int = 0x10000, prot: int = 3) -> int:
    """Map a scratch area in l's process; its address."""
    vm = l.l_proc.p_vmspace
    va = vm.findspace(0x10000000, size, vm.page, topdown=False)
    vm.map_anon(va, size, prot)
    return va


def u64(args: tuple) -> list[int]:
    """Raw argument words are unsigned, as the trap hands them over."""
    return [a & (2**64 - 1) for a in args]


def ok(l: Lwp, name: str, *args: int) -> list[int]:
    """Call `name`, which must succeed; its retval."""
    from nbemu.syscalls.errno import Errno
    e, rv = call(l, name, *u64(args))
    assert e == 0, f"{name}{args}: {Errno(e).name if e in Errno._value2member_map_ else e}"
    return rv


def err(l: Lwp, name: str, *args: int) -> int:
    """Call `name`, which must not block; its errno."""
    e, _ = call(l, name, *u64(args))
    assert not hasattr(e, "send"), f"{name} blocked"
    return e


def second_lwp(k, l: Lwp) -> Lwp:
    """Another LWP of the process, running on CPU 1."""
    l2 = lwp_create(k, l, l.l_proc, 0)
    assert isinstance(l2, Lwp)
    lwp_start(k, l2, False)
    k.runq.sched_dequeue(l2)
    l2.set_stat(LSONPROC)
    k.cpus[1].ci_curlwp = l2
    l2.l_cpu = k.cpus[1]
    return l2


def resume(k, l: Lwp, gen):
    """Put a woken LWP back on CPU 0 and continue its blocked system call: its
    result, or the generator when it blocks again."""
    assert l.l_stat == LSRUN
    k.runq.sched_dequeue(l)
    l.set_stat(LSONPROC)
    k.cpus[0].ci_curlwp = l
    l.l_cpu = k.cpus[0]
    try:
        gen.send(l.l_sleeperr)
    except StopIteration as stop:
        return stop.value or 0
    return gen


def put(l: Lwp, va: int, data: bytes) -> int:
    """Copy data out to guest address va; va."""
    assert l.l_proc.p_vmspace.copyout(data, va) == 0
    return va


def get(l: Lwp, va: int, n: int):
    return l.l_proc.p_vmspace.copyin(va, n)


HANDLER, TRAMP = 0x401000, 0x402000     # a signal handler and trampoline address (amd64)


def catch(l: Lwp, sig: int, flags: int | None = None, mask: int = 0) -> None:
    """__sigaction_sigtramp(sig, HANDLER, ...) with TRAMP (SA_RESTART unless flags)."""
    import struct
    from nbemu.syscalls import kern_sig as ks
    if flags is None:
        flags = ks.SA_RESTART
    va = scratch(l, 0x1000)
    l.l_proc.p_vmspace.copyout(struct.pack("<Q4Ii4x", HANDLER, *ks.words_of(mask), flags), va)
    err, _ = call(l, "__sigaction_sigtramp", sig, va, 0, TRAMP, 2)
    assert err == 0
