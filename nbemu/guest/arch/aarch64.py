"""NetBSD/aarch64 (evbarm64): registers, system-call convention, mcontext layout, setregs.

Facts from NetBSD's sys/arch/aarch64/aarch64/{syscall.c,exec_machdep.c,cpu_machdep.c,
vectors.S}, arm/mcontext.h and aarch64/vmparam.h (the headers ship in ziglang's
aarch64-netbsd-none and generic-netbsd folders), and Go's runtime/sys_netbsd_arm64.s.

System calls (syscall.c):
  - `svc #N`: the number is the instruction's 16-bit immediate (the kernel reads it
    from ESR_EL1). For `svc #0` (SYS_syscall) and `svc #198` (SYS___syscall) the
    number is in x17 and the arguments stay in x0..x7 (no shift). The code is masked
    with SYS_NSYSENT - 1 (511). Go's runtime uses `SVC $SYS_x`; its syscall package
    `SVC $0` with the number in R17.
  - eight arguments in x0..x7 (NARGREG = 8); more are copied in from the user sp.
  - success: x0, x1 = rval[0], rval[1], C flag of SPSR (NZCV) clear;
    failure: x0 = errno, C set, x1 untouched; ERESTART: pc -= 4.

Trap mechanics under Unicorn: `svc` raises interrupt EXCP_SWI (2) through
UC_HOOK_INTR, with PC already past the 4-byte instruction; the engine resumes at
PC when the hook returns. ESR_EL1 is not set by Unicorn, so the trap glue fetches
the instruction word at PC - 4 and appends it to the trap registers.

TLS: TPIDR_EL0. NetBSD keeps it equal to l_private (vectors.S saves it at every
entry from EL0 and reloads it from l_private at every return); mcontext carries it
in __gregs[_REG_TPIDR] and cpu_setmcontext loads it only with _UC_TLSBASE.
"""
from __future__ import annotations

import struct

from unicorn import UC_ARCH_ARM64, UC_MODE_ARM
from unicorn import arm64_const as A

from .base import Abi, NparkTrap

# __gregs[] (arm/mcontext.h): x0..x30, sp (_REG_X31), pc (_REG_ELR), spsr, tpidr.
NGREG = 35
_REG_X0, _REG_X17, _REG_SP, _REG_PC, _REG_SPSR, _REG_TPIDR = 0, 17, 31, 32, 33, 34

_X = tuple(A.UC_ARM64_REG_X0 + i for i in range(29)) + (A.UC_ARM64_REG_X29,
                                                         A.UC_ARM64_REG_X30)
_CPU_IDS = _X + (A.UC_ARM64_REG_SP, A.UC_ARM64_REG_PC, A.UC_ARM64_REG_NZCV)
_TPIDR = A.UC_ARM64_REG_TPIDR_EL0

# ucontext_t (sys/ucontext.h + arm/mcontext.h for __aarch64__): 944 bytes; the
# mcontext is 16-byte aligned (its __fregs are), so it starts at 64.
UC_FLAGS_OFF = 0
UC_SIGMASK_OFF = 16
UC_STACK_OFF = 32
UC_MCONTEXT_OFF = 64
MC_FREGS_OFF = UC_MCONTEXT_OFF + 288          # 352: __qregs[32] (16 bytes each)
MC_FPCR_OFF = MC_FREGS_OFF + 512              # 864
MC_FPSR_OFF = MC_FPCR_OFF + 4                 # 868
UCONTEXT_SIZE = 944

_UC_SIGMASK, _UC_STACK, _UC_CPU, _UC_FPU = 0x1, 0x2, 0x4, 0x8
_UC_TLSBASE = 0x00080000                      # _UC_MD_BIT19
_UC_SETSTACK = 0x00020000                     # _UC_MD_BIT17 (arm/mcontext.h)
_UC_CLRSTACK = 0x00040000                     # _UC_MD_BIT18

SPSR_NZCV = 0xF0000000
NZCV_C = 0x20000000

SYS_syscall, SYS___syscall = 0, 198
SYS_NSYSENT = 512

EXCP_UDEF, EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT = 1, 2, 3, 4
EXCP_BKPT, EXCP_UNALIGNED = 7, 22

PAGE_SIZE = 4096
VM_MAXUSER_ADDRESS = (1 << 48) - PAGE_SIZE

# Order of the trap registers (syscall_in_regs); decode_syscall indexes them.
# x1 sits at index 3: the kernel starts rval[1] from vals[3] (amd64's rdx), and
# NetBSD's aarch64 syscall.c starts it from x1 (rval[1] = tf->tf_reg[1]).
_IN_ARGS = 8
_ARG_ORDER = (0, 3, 1, 2, 4, 5, 6, 7)       # x0..x7 -> index in syscall_in_regs
_IN_X1 = 3
_IN_X17, _IN_SP, _IN_NZCV, _IN_PC = 8, 9, 10, 11


class Aarch64(Abi):
    name = "aarch64"           # nbemu's name for the port
    machine = "evbarm"         # NetBSD's MACHINE (hw.machine, uname -m)
    machine_arch = "aarch64"   # MACHINE_ARCH (hw.machine_arch, uname -p)
    elf_machine = 183          # EM_AARCH64
    elf_class = 64
    page_size = PAGE_SIZE
    uspace = 4 * PAGE_SIZE    # UPAGES 4; the engine's context: 12,640 bytes
    # Saved context at the u-area's start (Unicorn's CPU state after a 40-byte header).
    uarea_regs = {**{f"x{i}": (104 + 8 * i, 8) for i in range(31)}, "sp": (352, 8), "pc": (360, 8)}
    word_size = 8
    maxcpus = 256              # MAXCPUS (machine/param.h): the kernel's CPU-set size
    usrstack = VM_MAXUSER_ADDRESS
    vm_maxuser_address = VM_MAXUSER_ADDRESS
    dflssiz = 1 << 23          # 8 MB
    maxssiz = 1 << 26          # 64 MB
    dfldsiz = 1 << 32          # 4 GB
    maxdsiz = 1 << 36          # 64 GB
    ucontext_size = UCONTEXT_SIZE
    syscall_insn_len = 4
    uc_arch = UC_ARCH_ARM64
    uc_mode = UC_MODE_ARM
    pc_reg = A.UC_ARM64_REG_PC
    sp_reg = A.UC_ARM64_REG_SP
    # Trapping: an exception (UC_HOOK_INTR) whose number is EXCP_SWI; during the hook
    # the PC is already past the svc; the glue appends the svc instruction word.
    trap_kind = "intr"
    trap_intno = EXCP_SWI
    trap_pc_offset = 4
    trap_fetch_insn = True
    syscall_in_regs = (A.UC_ARM64_REG_X0, A.UC_ARM64_REG_X2, A.UC_ARM64_REG_X3,
                       A.UC_ARM64_REG_X1) + tuple(A.UC_ARM64_REG_X0 + i for i in range(4, 8)) + (
        A.UC_ARM64_REG_X17, A.UC_ARM64_REG_SP, A.UC_ARM64_REG_NZCV, A.UC_ARM64_REG_PC)
    syscall_out_regs = (A.UC_ARM64_REG_X0, A.UC_ARM64_REG_X1, A.UC_ARM64_REG_NZCV)
    npark_trap = NparkTrap(_ARG_ORDER[:6], _IN_NZCV, NZCV_C, insn_shift=5, insn_mask=0xFFFF)
    report_regs = tuple((f"x{i}", _X[i]) for i in range(31)) + (
        ("sp", A.UC_ARM64_REG_SP), ("pc", A.UC_ARM64_REG_PC), ("nzcv", A.UC_ARM64_REG_NZCV),
        ("tpidr", _TPIDR))
    # Unwinding (crash reports): AAPCS64 DWARF numbers; the return address is in
    # x30 until the callee saves it.
    dwarf_regs = {**{i: f"x{i}" for i in range(31)}, 31: "sp"}
    frame_regs = ("pc", "sp", "x29")
    ra_on_stack = False
    go_lwp_tramp_fn_reg = A.UC_ARM64_REG_X2   # Go's runtime.lwp_tramp: the start function

    # gdb's view of the port: how each register of its target.xml (base.Abi) is read
    def gdb_reg_map(self) -> dict[str, tuple[str, int, int]]:
        return _gdb_reg_map()

    # -- system calls ----------------------------------------------------
    def nreg_args(self) -> int:
        return _IN_ARGS

    def decode_syscall(self, vals: list[int]) -> tuple[int, list[int], int]:
        insn = vals[-1]
        code = (insn >> 5) & 0xFFFF                   # svc #imm16
        if code == SYS_syscall or code == SYS___syscall:
            code = vals[_IN_X17] & (SYS_NSYSENT - 1)
            if code == SYS_syscall or code == SYS___syscall:
                code = SYS_NSYSENT - 1                # an indirect call of itself: ENOSYS
        else:
            code &= SYS_NSYSENT - 1
        return code, [vals[i] for i in _ARG_ORDER], vals[_IN_SP]

    def encode_return(self, vals: list[int], error: int, rv0: int, rv1: int) -> list[int]:
        nzcv = vals[_IN_NZCV]
        if error:
            return [error, vals[_IN_X1], nzcv | NZCV_C]
        return [rv0, rv1, nzcv & ~NZCV_C]

    def tls_reg(self) -> int:
        return _TPIDR

    def trap_signal(self, intno: int) -> tuple[int, str]:
        """Signal and description of an exception other than the svc trap."""
        from nbemu.syscalls.signals import Sig
        table = {EXCP_UDEF: (Sig.SIGILL, "undefined instruction"),
                 EXCP_BKPT: (Sig.SIGTRAP, "breakpoint (brk)"),
                 EXCP_PREFETCH_ABORT: (Sig.SIGSEGV, "instruction abort"),
                 EXCP_DATA_ABORT: (Sig.SIGSEGV, "data abort"),
                 EXCP_UNALIGNED: (Sig.SIGBUS, "alignment fault")}
        return table.get(intno, (Sig.SIGILL, f"exception {intno}"))

    def capstone_arch_mode(self) -> tuple[int, int]:
        import capstone
        arch = getattr(capstone, "CS_ARCH_ARM64", None)
        if arch is None:
            arch = capstone.CS_ARCH_AARCH64
        return arch, capstone.CS_MODE_ARM

    # -- exec --------------------------------------------------------------
    def setregs(self, entry: int, sp: int, ps_strings: int) -> dict[int, int]:
        # exec_machdep.c setregs(): the whole trapframe zeroed; x2 = ps_strings
        # (__start(cleanup, obj, ps_strings)); sp = stack & -16; pc = entry;
        # spsr = EL0t (NZCV clear). TPIDR_EL0 = l_private = 0.
        regs = {r: 0 for r in _CPU_IDS}
        regs.update({A.UC_ARM64_REG_X2: ps_strings, A.UC_ARM64_REG_SP: sp & ~15,
                     A.UC_ARM64_REG_PC: entry, _TPIDR: 0,
                     A.UC_ARM64_REG_FPCR: 0, A.UC_ARM64_REG_FPSR: 0})
        return regs

    # -- ucontext / mcontext ---------------------------------------------
    def unpack_mcontext_gregs(self, uc_bytes: bytes) -> list[int]:
        return list(struct.unpack_from(f"<{NGREG}Q", uc_bytes, UC_MCONTEXT_OFF))

    def cpu_mcontext_validate(self, gregs: list[int]) -> bool:
        """cpu_machdep.c: only NZCV in spsr (EL0t), a 4-aligned pc, a 16-aligned sp."""
        if gregs[_REG_SPSR] & ~SPSR_NZCV:
            return False
        if gregs[_REG_PC] & 3 or gregs[_REG_SP] & 15:
            return False
        return True

    def mcontext_regs(self, uc_bytes: bytes, flags: int) -> tuple[list[int], list[int]]:
        """(register ids, values) to load from a ucontext's mcontext (cpu_setmcontext)."""
        ids: list[int] = []
        vals: list[int] = []
        g = self.unpack_mcontext_gregs(uc_bytes)
        if flags & _UC_CPU:
            ids += list(_CPU_IDS)
            vals += g[:33] + [g[_REG_SPSR] & SPSR_NZCV]
        if flags & _UC_TLSBASE:
            ids.append(_TPIDR)
            vals.append(g[_REG_TPIDR])
        if flags & _UC_FPU:
            fpcr, fpsr = struct.unpack_from("<II", uc_bytes, MC_FPCR_OFF)
            ids += [A.UC_ARM64_REG_FPCR, A.UC_ARM64_REG_FPSR]
            vals += [fpcr, fpsr]
        return ids, vals

    def fpu_xmm_from_mcontext(self, uc_bytes: bytes) -> list[tuple[int, int]]:
        return self.fpu_vregs_from_mcontext(uc_bytes)

    def fpu_vregs_from_mcontext(self, uc_bytes: bytes) -> list[tuple[int, int]]:
        """(q register id, 128-bit value) pairs of __fregs.__qregs."""
        out = []
        for i in range(32):
            lo, hi = struct.unpack_from("<QQ", uc_bytes, MC_FREGS_OFF + 16 * i)
            out.append((A.UC_ARM64_REG_Q0 + i, lo | (hi << 64)))
        return out

    # machine/ptrace.h (aarch64); struct reg (x0-x30, sp, pc, spsr, tpidr) is
    # __gregs itself; struct fpreg: fp_reg[32] (16 bytes each), fpcr, fpsr,
    # aligned to 16 (528 bytes).
    ptrace_machdep = {32: "GETREGS", 33: "SETREGS", 34: "GETFPREGS", 35: "SETFPREGS",
                      36: "STEP", 37: "SETSTEP", 38: "CLEARSTEP"}
    ptrace_reg_slots = tuple(range(NGREG))
    mcontext_gregs_off = UC_MCONTEXT_OFF
    ptrace_reg_flags = _UC_CPU | _UC_TLSBASE
    ptrace_fpreg_size = 528

    def ptrace_fpreg(self, plat, l) -> bytes:
        q = plat.vregs_get(l, self.sendsig_vregs())
        fpcr, fpsr = plat.regs_get(l, (A.UC_ARM64_REG_FPCR, A.UC_ARM64_REG_FPSR))
        return b"".join(v.to_bytes(16, "little") for v in q) + struct.pack(
            "<II8x", fpcr & 0xFFFFFFFF, fpsr & 0xFFFFFFFF)

    def ptrace_setfpreg(self, plat, l, data: bytes) -> None:
        plat.vregs_set(l, self.sendsig_vregs(),
                       [int.from_bytes(data[16 * i:16 * i + 16], "little") for i in range(32)])
        plat.regs_set(l, (A.UC_ARM64_REG_FPCR, A.UC_ARM64_REG_FPSR),
                      struct.unpack_from("<II", data, 512))

    def getmcontext_ids(self) -> tuple[int, ...]:
        return _CPU_IDS + (_TPIDR, A.UC_ARM64_REG_FPCR, A.UC_ARM64_REG_FPSR)

    def build_ucontext(self, vals: list[int], sigmask: tuple[int, int, int, int],
                       stack: tuple[int, int, int], vregs: bytes | None) -> bytes:
        """A ucontext_t as NetBSD's getucontext() fills it (values of getmcontext_ids)."""
        buf = bytearray(UCONTEXT_SIZE)
        flags = _UC_SIGMASK | _UC_STACK | _UC_CPU | _UC_TLSBASE
        n = len(_CPU_IDS)
        g = list(vals[:33]) + [vals[33] & SPSR_NZCV, vals[n]]
        struct.pack_into(f"<{NGREG}Q", buf, UC_MCONTEXT_OFF, *g)
        struct.pack_into("<II", buf, MC_FPCR_OFF, vals[n + 1] & 0xFFFFFFFF,
                         vals[n + 2] & 0xFFFFFFFF)
        if vregs is not None:            # __fregs.__qregs: 16 bytes each
            flags |= _UC_FPU
            buf[MC_FREGS_OFF:MC_FREGS_OFF + len(vregs)] = vregs
        struct.pack_into("<I", buf, UC_FLAGS_OFF, flags)
        struct.pack_into("<4I", buf, UC_SIGMASK_OFF, *sigmask)
        struct.pack_into("<QQi", buf, UC_STACK_OFF, *stack)
        return bytes(buf)

    def set_syscall_success_in_gregs(self, vals: list[int]) -> None:
        """getcontext's saved registers resume as a successful call returning 0."""
        vals[0] = 0
        vals[_CPU_IDS.index(A.UC_ARM64_REG_NZCV)] &= ~NZCV_C

    # -- signals: siginfo_t, the signal frame, faults ---------------------------
    # siginfo_t is LP64's 128-byte union (signo, code, errno at 0/4/8, the reason
    # at 16), as on amd64. sig_machdep.c sendsig_siginfo(): below the interrupted
    # sp (no red zone) or the 16-aligned top of the alternate stack, a ucontext_t,
    # then the siginfo_t (roundup 16) at the new sp; x0 = signo, x1 = &si,
    # x2 = x28 = &uc (Go's sigtramp reloads g from the saved x28 through x28),
    # lr = the trampoline, pc = the handler.
    siginfo_size = 128
    ksiginfo_size = 96
    sigframe_size = 128 + UCONTEXT_SIZE
    uc_setstack = _UC_SETSTACK
    uc_clrstack = _UC_CLRSTACK
    uc_fpu = _UC_FPU

    def pack_siginfo(self, ksi) -> bytes:
        """A siginfo_t from a kernel ksiginfo (faults: addr/trap; others: pid/uid/value)."""
        buf = bytearray(self.siginfo_size)
        struct.pack_into("<iii", buf, 0, ksi.signo, ksi.code, ksi.errno)
        if ksi.fault:
            # _trap is an int holding the 32-bit ESR (EC in its top bits).
            struct.pack_into("<QIII", buf, 16, ksi.addr & 0xFFFFFFFFFFFFFFFF,
                             ksi.trap & 0xFFFFFFFF, ksi.trap2 & 0xFFFFFFFF,
                             ksi.trap3 & 0xFFFFFFFF)
        else:
            struct.pack_into("<iIQ", buf, 16, ksi.pid, ksi.uid & 0xFFFFFFFF,
                             ksi.value & 0xFFFFFFFFFFFFFFFF)
        return bytes(buf)

    def sendsig_vregs(self) -> tuple[int, ...]:
        """The 128-bit registers a signal frame saves (__fregs.__qregs)."""
        return tuple(A.UC_ARM64_REG_Q0 + i for i in range(32))

    def sendsig_frame(self, vals: list[int], vregs: bytes, siginfo: bytes,
                      sigmask: tuple[int, int, int, int], was_onstack: bool,
                      alt_top: int | None, handler: int, tramp: int, sig: int,
                      trapno: int = 0, err: int = 0):
        """sendsig_siginfo(): (frame address, frame bytes, register ids, values,
        vector register ids, values). vals: getmcontext_ids() values of the
        interrupted context; vregs: sendsig_vregs() values."""
        sp = vals[_CPU_IDS.index(A.UC_ARM64_REG_SP)]
        if alt_top is not None:
            sp = alt_top & ~15
        ucp = (sp - UCONTEXT_SIZE) & ~15
        sip = ucp - self.siginfo_size
        uc = bytearray(self.build_ucontext(vals, sigmask, (0, 0, 0), vregs))
        flags = _UC_SIGMASK | _UC_CPU | _UC_TLSBASE | _UC_FPU
        flags |= _UC_SETSTACK if was_onstack else _UC_CLRSTACK
        struct.pack_into("<I", uc, UC_FLAGS_OFF, flags)
        frame = siginfo + bytes(uc)
        ids = [A.UC_ARM64_REG_X0, A.UC_ARM64_REG_X1, A.UC_ARM64_REG_X2, A.UC_ARM64_REG_X28,
               A.UC_ARM64_REG_SP, A.UC_ARM64_REG_X30, A.UC_ARM64_REG_PC]
        nvals = [sig, sip, ucp, ucp, sip, tramp, handler]
        return sip, frame, ids, nvals, [], []      # FP/SIMD registers carry over

    def ucontext_tlsbase(self, uc_bytes: bytes) -> int | None:
        """__gregs[_REG_TPIDR] when _UC_TLSBASE is set (the new l_private), else None."""
        if self.ucontext_flags(uc_bytes) & _UC_TLSBASE:
            return struct.unpack_from("<Q", uc_bytes, UC_MCONTEXT_OFF + 8 * _REG_TPIDR)[0]
        return None

    def fault_siginfo(self, kind: str, addr: int, pc: int, intno: int = -1,
                      access: str = "read") -> tuple[int, int, int, int, int, str]:
        """trap.c trap_el0_sync(): (signo, si_code, si_addr, trap (ESR), err,
        description) of a guest fault. kind: "unmapped" / "prot" (aborts at addr),
        "intr" (Unicorn exception intno), "invalid" (undefined instruction)."""
        SIGILL, SIGTRAP, SIGBUS, SIGSEGV = 4, 5, 10, 11
        ILL_ILLTRP, TRAP_BRKPT, BUS_ADRALN, SEGV_MAPERR, SEGV_ACCERR = 4, 1, 1, 1, 2
        IL = 1 << 25
        if kind in ("unmapped", "prot"):
            # fault.c hands the ESR over as is: class instruction / data abort, the
            # fault status code (DFSC/IFSC: translation fault 0b0001LL, permission
            # fault 0b0011LL; level 3 here) and, for a data abort, WnR (ISS bit 6).
            ec = 0x20 if access == "exec" else 0x24
            fsc = 0x07 if kind == "unmapped" else 0x0F
            esr = (ec << 26) | IL | fsc | (0x40 if access == "write" else 0)
            if kind == "unmapped":
                return (SIGSEGV, SEGV_MAPERR, addr, esr, 0,
                        f"{access} of unmapped address {addr:#x}")
            return SIGSEGV, SEGV_ACCERR, addr, esr, 0, f"{access} not permitted at {addr:#x}"
        if kind == "invalid" or intno == EXCP_UDEF:
            return SIGILL, ILL_ILLTRP, pc, IL, 0, "undefined instruction"
        if intno == EXCP_BKPT:
            return SIGTRAP, TRAP_BRKPT, pc, (0x3C << 26) | IL, 0, "breakpoint (brk)"
        if intno == EXCP_UNALIGNED:
            return SIGBUS, BUS_ADRALN, addr, (0x24 << 26) | IL, 0, "alignment fault"
        sig, what = self.trap_signal(intno)
        return sig, 0, pc, 0, 0, what


# -- gdb's view (emu/gdb_regs.py): the target description and the register map ----------

def _gdb_reg_map() -> dict[str, tuple[str, int, int]]:
    from unicorn import arm64_const as A
    m: dict[str, tuple[str, int, int]] = {}
    for i in range(29):
        m[f"x{i}"] = ("int", A.UC_ARM64_REG_X0 + i, 0)
    m["x29"] = ("int", A.UC_ARM64_REG_X29, 0)
    m["x30"] = ("int", A.UC_ARM64_REG_X30, 0)
    m["sp"] = ("int", A.UC_ARM64_REG_SP, 0)
    m["pc"] = ("int", A.UC_ARM64_REG_PC, 0)
    m["cpsr"] = ("int", A.UC_ARM64_REG_NZCV, 0)      # EL0: only the flags matter
    for i in range(32):
        m[f"v{i}"] = ("wide", A.UC_ARM64_REG_V0 + i, 0)
    m["fpsr"] = ("int", A.UC_ARM64_REG_FPSR, 0)
    m["fpcr"] = ("int", A.UC_ARM64_REG_FPCR, 0)
    m["tpidr"] = ("int", A.UC_ARM64_REG_TPIDR_EL0, 0)
    return m


ABI = Aarch64()
