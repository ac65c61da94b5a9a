"""Reports for a guest that died of a fault or deadlocked: the LWP table,
the faulting LWP's registers, capstone disassembly at its PC, and the last
system calls of each LWP."""
from __future__ import annotations

from typing import TextIO

from syscalls.lwp import LSSLEEP, Lwp


def _lwp_line(l: Lwp) -> str:
    cpu = l.l_cpu.ci_index if l.l_cpu is not None else "-"
    name = (l.l_name or b"").decode("latin-1")
    what = ""
    if l.l_stat == LSSLEEP:
        what = f" waiting on {l.l_wmesg}"
        if l.l_wmesg == "parked":
            what += f" (hint {l.l_park_hint:#x})"
        elif l.l_waitingfor:
            what += f" (lid {l.l_waitingfor})"
    recent = ", ".join(l.l_recent[-3:])
    return (f"  lid {l.l_lid:<6} {l.l_stat.name:<12} cpu {cpu:<3} {name:<16}{what}"
            + (f"  last: {recent}" if recent else ""))


def lwp_table(s, out: TextIO) -> None:
    p = s.kernel.proc
    print(f"LWPs of pid {p.p_pid}:", file=out)
    for l in sorted(p.p_lwps.values(), key=lambda x: x.l_lid):
        print(_lwp_line(l), file=out)


def disassemble(s, pc: int, n: int = 6) -> list[str]:
    import capstone
    abi = s.machine.abi
    vm = s.kernel.proc.p_vmspace
    code = vm.copyin(pc, 16 * n)
    if isinstance(code, int):
        return [f"  {pc:#x}: <unreadable>"]
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64) if abi.name == "amd64" else None
    if md is None:
        return []
    out = []
    for ins in md.disasm(code, pc):
        out.append(f"  {'=>' if ins.address == pc else '  '} {ins.address:#x}: {ins.mnemonic} {ins.op_str}")
        if len(out) >= n:
            break
    return out


def crash_report(s, out: TextIO) -> None:
    m = s.machine
    f = m.last_fault
    l = m.last_fault_lwp
    print(f"nbemu: crash: lid {l.l_lid}: {f.what}", file=out)
    if l.l_md is not None or l is m.loaded:
        names = [n for n, _ in m.abi.report_regs]
        vals = m.regs_get(l, [r for _, r in m.abi.report_regs])
        regs = dict(zip(names, vals))
        for i in range(0, len(names), 4):
            print("  " + "  ".join(f"{n:>7}={regs[n]:#018x}" for n in names[i:i + 4]), file=out)
        pc = m.regs_get(l, (m.abi.pc_reg,))[0]
        for line in disassemble(s, pc):
            print(line, file=out)
    lwp_table(s, out)


def deadlock_report(s, out: TextIO) -> None:
    print("nbemu: deadlock: every LWP is blocked and no timeout is pending", file=out)
    lwp_table(s, out)


def internal_error_report(s, err, out: TextIO) -> None:
    """A Python exception escaped the kernel: show it with the guest's state."""
    import traceback
    from syscalls.table import name_of
    l = err.lwp
    code = err.vals[0] if err.vals else -1
    print(f"nbemu: internal error (a bug in nbemu, not in the guest) while serving "
          f"{name_of(code)} for lid {l.l_lid}:", file=out)
    traceback.print_exception(err.exc, file=out)
    m = s.machine
    if l is m.loaded or l.l_md is not None:
        pc = m.regs_get(l, (m.abi.pc_reg,))[0]
        for line in disassemble(s, pc):
            print(line, file=out)
    lwp_table(s, out)
