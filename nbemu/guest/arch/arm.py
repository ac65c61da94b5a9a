"""NetBSD/evbarm earmv7hf: 32-bit ARM, little-endian, EABI hard float.

Facts from NetBSD's sys/arch/arm/arm/{syscall.c (rev 1.60), sig_machdep.c,
arm_machdep.c setregs}, arm/include/locore.h (VALID_R15_PSR), arm/mcontext.h and
arm/arm32/vmparam.h (the headers ship in ziglang's generic-netbsd/arm and
arm-netbsd-eabi folders; the sources were read on the NetBSD/src GitHub mirror),
and Go's runtime/sys_netbsd_arm.s, os_netbsd_arm.go.

System calls (syscall.c swi_handler / syscall):
  - ARM state: `swi #(0xa00000 | N)` (SWI_OS_NETBSD); the kernel re-reads the
    instruction at pc - 4 and takes N from its low 20 bits (the old unofficial
    range, os bits 0, is accepted too). Go's runtime and NetBSD's libc both trap so.
  - Thumb state (CPSR.T): the 8-bit immediate cannot hold N: the number is in r0
    and the first argument in ip (r12); the kernel rebuilds the ARM instruction
    from r0 and moves ip into r0. (nbemu leaves r0 alone: the only visible
    difference is that a restarted Thumb call works; NetBSD would restart it
    with the first argument as its number. NetBSD's own userland is ARM code.)
  - four arguments in r0..r3, the rest copied in from the user sp. syscall() and
    __syscall() are plain table entries (kern/sys_syscall.c): the real number is
    the first argument, one word or a quad in r0:r1 (Kernel.decode_args).
  - success: r0, r1 = rval[0], rval[1], C of CPSR clear; failure: r0 = errno,
    C set, r1 untouched; ERESTART: pc -= 4 (2 in Thumb).

Trap mechanics under Unicorn (tests/test_arch_arm.py): `svc` raises exception
EXCP_SWI (2) through UC_HOOK_INTR with the PC already past the instruction (4
bytes in ARM state, 2 in Thumb); no mode change happens (the hook replaces the
exception entry). A PC written through uc_reg_write sets the Thumb state from its
bit 0, and uc_emu_start(begin) does the same with `begin`: resuming Thumb code
needs the address with bit 0 set (resume_address).

Engine set-up: the CPU starts in SVC mode with VFP disabled; init_engine switches
to User mode (cpu_mcontext_validate insists on it, and Go copies getcontext's
CPSR into the contexts of its new LWPs) and enables cp10/cp11 (CPACR) and
FPEXC.EN, as NetBSD's vfp code does for user programs.

TLS: TPIDRURO (cp15 c13 c0 3, read-only to user code), set by _lwp_setprivate and
by cpu_setmcontext with _UC_TLSBASE (_mc_tlsbase). Go on netbsd/arm keeps g in
r10 and never reads it unless cgo is in use.
"""
from __future__ import annotations

import struct

from unicorn import UC_ARCH_ARM, UC_MODE_ARM
from unicorn import arm_const as A

from .base import Abi, NparkTrap

# __gregs[] (arm/mcontext.h): r0..r12, sp, lr, pc, cpsr.
NGREG = 17
_REG_R0, _REG_SP, _REG_LR, _REG_PC, _REG_CPSR = 0, 13, 14, 15, 16

_R = tuple(A.UC_ARM_REG_R0 + i for i in range(13))
_GREG_IDS = _R + (A.UC_ARM_REG_SP, A.UC_ARM_REG_LR, A.UC_ARM_REG_PC, A.UC_ARM_REG_CPSR)
_TPIDRURO = A.UC_ARM_REG_C13_C0_3
_D = tuple(A.UC_ARM_REG_D0 + i for i in range(32))
# getmcontext_ids(): the general registers, then TLS, FPSCR and the VFP registers
# (64 bits each: they fit the batch arrays, no 128-bit access needed).
_MC_IDS = _GREG_IDS + (_TPIDRURO, A.UC_ARM_REG_FPSCR) + _D
_I_TLS, _I_FPSCR, _I_D0 = NGREG, NGREG + 1, NGREG + 2

# ucontext_t (sys/ucontext.h + arm/mcontext.h, __ARM_EABI__): 400 bytes, measured
# with zig (tests/test_arch_arm.py). The mcontext is 8-aligned (its uint64 VFP
# registers are), the VFP union 8-aligned after the 68 bytes of __gregs.
UC_FLAGS_OFF = 0
UC_LINK_OFF = 4
UC_SIGMASK_OFF = 8
UC_STACK_OFF = 24                       # ss_sp, ss_size, ss_flags: 12 bytes
UC_MCONTEXT_OFF = 40
MC_VFP_OFF = UC_MCONTEXT_OFF + 72       # 112: __vfp_fpscr
MC_FSTMX_OFF = MC_VFP_OFF + 8           # 120: __vfp_fstmx[32] (uint64)
MC_FPSID_OFF = MC_VFP_OFF + 264         # 376
MC_TLSBASE_OFF = UC_MCONTEXT_OFF + 344  # 384: _mc_tlsbase
UCONTEXT_SIZE = 400

_UC_SIGMASK, _UC_STACK, _UC_CPU, _UC_FPU = 0x1, 0x2, 0x4, 0x8
_UC_ARM_VFP = 0x00010000                # _UC_MD_BIT16: the FPU field is VFP
_UC_SETSTACK = 0x00020000               # _UC_MD_BIT17
_UC_CLRSTACK = 0x00040000               # _UC_MD_BIT18
_UC_TLSBASE = 0x00080000                # _UC_MD_BIT19

# CPSR (arm/armreg.h)
PSR_MODE = 0x1F
PSR_USR32_MODE = 0x10
PSR_T_BIT = 0x20
F32_BIT, I32_BIT = 0x40, 0x80
PSR_C_BIT = 0x20000000
# APSR: the user-writable flags of the CPSR (NZCV, Q, GE). The trap writes the
# carry through APSR: a CPSR write makes Unicorn leave its execution loop (it may
# switch the instruction set), an APSR write does not.
APSR_MASK = 0xF80F0000

SWI_OS_MASK = 0xF00000
SWI_OS_NETBSD = 0xA00000
SYS_NSYSENT = 512
THUMB_INSN_SIZE, INSN_SIZE = 2, 4

# Unicorn (qemu target/arm) exception numbers.
EXCP_UDEF, EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT = 1, 2, 3, 4
EXCP_BKPT = 7

PAGE_SIZE = 4096
KERNEL_BASE = 0x80000000                # evbarm armv7 kernels
VM_MAXUSER_ADDRESS = KERNEL_BASE - PAGE_SIZE

M32 = 0xFFFFFFFF

# Order of the trap registers (syscall_in_regs); decode_syscall indexes them.
# The glue appends the instruction word at pc - 4 (trap_fetch_insn).
_IN_R0, _IN_R1, _IN_R2, _IN_R3, _IN_R12, _IN_SP, _IN_CPSR, _IN_PC = range(8)


# The last undefined ARM instruction the engine stopped on: (pc, word). Read by
# the UC_HOOK_INSN_INVALID hook, which sees the engine, for fault_siginfo, which
# does not (undefined.c puts the word in ksi_trap and recognises gdb's breakpoints
# by it). Faults are handled right after the engine stops, on the same thread.
_last_undefined: list[tuple[int, int, bool]] = [(-1, 0, False)]   # (pc, word, thumb)

# gdb's breakpoint words (arm/include/trap.h GDB_BREAKPOINT, GDB5_BREAKPOINT):
# undefined.c gdb_trapper turns them into SIGTRAP / TRAP_BRKPT in user mode.
GDB_BREAKPOINTS = (0xE6000011, 0xE7FFDEFE)
GDB_THUMB_BREAKPOINT = 0xDEFE


def _skip_yield(uc, user_data) -> bool:
    """UC_HOOK_INSN_INVALID: True (continue) when the instruction just executed
    was YIELD (ARM `yield` cond|0x0320f001, Thumb 0xbf10). Otherwise the engine
    stops on an undefined instruction, which is noted (_last_undefined): the ARM
    word, or the Thumb halfword(s) as undefined.c reads them."""
    pc = uc.reg_read(A.UC_ARM_REG_PC)
    thumb = bool(uc.reg_read(A.UC_ARM_REG_CPSR) & PSR_T_BIT)
    try:
        if thumb:
            if int.from_bytes(uc.mem_read(pc - 2, 2), "little") == 0xBF10:
                return True
            word = 0
        else:
            word = int.from_bytes(uc.mem_read(pc - 4, 4), "little")
    except Exception:               # the previous word is unmapped: not a YIELD
        word = 0
    if (word & 0x0FFFFFFF) == 0x0320F001 and word >> 28 != 0xF:
        return True
    try:
        if thumb:
            # undefined.c: a halfword, and the next one too when the first is
            # >= 0xe000 (a 32-bit Thumb-2 encoding).
            word = int.from_bytes(uc.mem_read(pc, 2), "little")
            if word >= 0xE000:
                word = word << 16 | int.from_bytes(uc.mem_read(pc + 2, 2), "little")
        else:
            word = int.from_bytes(uc.mem_read(pc, 4), "little")
        _last_undefined[0] = (pc, word, thumb)
    except Exception:
        _last_undefined[0] = (-1, 0, False)
    return False


class Arm(Abi):
    name = "earmv7hf"          # nbemu's name for the port (NetBSD's MACHINE_ARCH)
    machine = "evbarm"         # NetBSD's MACHINE (hw.machine, uname -m)
    machine_arch = "earmv7hf"  # MACHINE_ARCH (hw.machine_arch, uname -p)
    elf_machine = 40           # EM_ARM
    elf_class = 32
    page_size = PAGE_SIZE
    uspace = 2 * PAGE_SIZE    # UPAGES 2; the engine's context: 4,340 bytes
    # Saved context at the u-area's start (Unicorn's CPU state after a 40-byte header).
    uarea_regs = {f"r{i}": (40 + 4 * i, 4) for i in range(13)} | {
        "sp": (92, 4), "lr": (96, 4), "pc": (100, 4)}
    word_size = 4
    maxcpus = 8              # MAXCPUS (machine/param.h): the kernel's CPU-set size
    int64_align = 8            # EABI: 64-bit members are 8-aligned
    usrstack = VM_MAXUSER_ADDRESS
    vm_maxuser_address = VM_MAXUSER_ADDRESS
    dflssiz = 4 << 20          # arm32/vmparam.h DFLSSIZ: 4 MB
    maxssiz = 64 << 20         # MAXSSIZ: 64 MB
    dfldsiz = 384 << 20        # DFLDSIZ
    maxdsiz = 1856 << 20       # MAXDSIZ
    ucontext_size = UCONTEXT_SIZE
    syscall_insn_len = INSN_SIZE
    uc_arch = UC_ARCH_ARM
    uc_mode = UC_MODE_ARM
    pc_reg = A.UC_ARM_REG_PC
    sp_reg = A.UC_ARM_REG_SP
    trap_kind = "intr"
    trap_intno = EXCP_SWI
    trap_pc_offset = INSN_SIZE
    trap_fetch_insn = True
    # CPSR.T: Thumb's svc is 2 bytes and Thumb PCs resume with bit 0 set.
    insn_state_reg = A.UC_ARM_REG_CPSR
    thumb_state_bit = PSR_T_BIT
    # uc_context_reg_write of the PC crashes (reg_write_arm dereferences env->uc,
    # which the saved copy of the CPU state does not hold): tests/test_arch_arm.py.
    context_pc_writable = False
    syscall_in_regs = (A.UC_ARM_REG_R0, A.UC_ARM_REG_R1, A.UC_ARM_REG_R2, A.UC_ARM_REG_R3,
                       A.UC_ARM_REG_R12, A.UC_ARM_REG_SP, A.UC_ARM_REG_CPSR,
                       A.UC_ARM_REG_PC)
    rv1_index = _IN_R1
    syscall_out_regs = (A.UC_ARM_REG_R0, A.UC_ARM_REG_R1, A.UC_ARM_REG_APSR)
    # (ARM state only: Thumb's svc takes the number in r0 and shifts the
    # arguments; the park calls' first four arguments come in r0-r3)
    npark_trap = NparkTrap((_IN_R0, _IN_R1, _IN_R2, _IN_R3, -1, -1), _IN_CPSR, PSR_C_BIT,
                           insn_mask=SYS_NSYSENT - 1, os_mask=SWI_OS_MASK, os_val=SWI_OS_NETBSD,
                           thumb_idx=_IN_CPSR, thumb_bit=PSR_T_BIT, word_mask=M32)
    report_regs = tuple((f"r{i}", _R[i]) for i in range(13)) + (
        ("sp", A.UC_ARM_REG_SP), ("lr", A.UC_ARM_REG_LR), ("pc", A.UC_ARM_REG_PC),
        ("cpsr", A.UC_ARM_REG_CPSR), ("tpidruro", _TPIDRURO))
    # Unwinding (crash reports): the DWARF numbers of AAPCS; ARM-state frames chain
    # through r11 as clang lays them out; the return address is in lr until saved.
    dwarf_regs = {**{i: f"r{i}" for i in range(13)}, 13: "sp", 14: "lr", 15: "pc"}
    frame_regs = ("pc", "sp", "r11")
    ra_on_stack = False
    go_lwp_tramp_fn_reg = A.UC_ARM_REG_R2   # Go's runtime.lwp_tramp: the start function

    # gdb's view of the port: how each register of its target.xml (base.Abi) is read
    def gdb_reg_map(self) -> dict[str, tuple[str, int, int]]:
        return _gdb_reg_map()

    def return_pc(self, ra: int) -> int:
        """A return address's bit 0 says Thumb; the PC is without it."""
        return ra & ~1

    # -- the engine ----------------------------------------------------------
    def init_engine(self, uc) -> None:
        # Cortex-A15: ARMv7-A with VFPv4 + NEON (what zig's and Go's armv7 code
        # needs); Unicorn's default ARM model, set explicitly so that it stays so.
        uc.ctl_set_cpu_model(A.UC_CPU_ARM_CORTEX_A15)
        # User mode first: a later mode change would swap the banked sp and lr.
        uc.reg_write(A.UC_ARM_REG_CPSR, PSR_USR32_MODE)
        uc.reg_write(A.UC_ARM_REG_C1_C0_2, uc.reg_read(A.UC_ARM_REG_C1_C0_2) | (0xF << 20))
        uc.reg_write(A.UC_ARM_REG_FPEXC, 0x40000000)          # FPEXC.EN
        # YIELD (a hint: Go's procyield spins on it) leaves Unicorn's ARM loop as
        # an invalid instruction with the PC past it; an undefined instruction
        # comes the same way with the PC on it. The hook lets YIELD continue.
        from unicorn import UC_HOOK_INSN_INVALID
        uc.hook_add(UC_HOOK_INSN_INVALID, _skip_yield)

    def syscall_insn_size(self, state: int) -> int:
        return THUMB_INSN_SIZE if state & PSR_T_BIT else INSN_SIZE

    def trap_pc_past(self, state: int) -> int:
        return THUMB_INSN_SIZE if state & PSR_T_BIT else INSN_SIZE

    def resume_address(self, pc: int, state: int) -> int:
        return (pc | 1) if state & PSR_T_BIT else pc & ~1

    # -- system calls ----------------------------------------------------------
    def nreg_args(self) -> int:
        return 4

    def decode_syscall(self, vals: list[int]) -> tuple[int, list[int], int]:
        # Registers are 32-bit; the trap's 64-bit slots may hold stale high bits.
        r1, r2, r3 = vals[_IN_R1] & M32, vals[_IN_R2] & M32, vals[_IN_R3] & M32
        if vals[_IN_CPSR] & PSR_T_BIT:
            insn = SWI_OS_NETBSD | (vals[_IN_R0] & M32)
            args = [vals[_IN_R12] & M32, r1, r2, r3]
        else:
            insn = vals[-1] & M32
            args = [vals[_IN_R0] & M32, r1, r2, r3]
        os_mask = insn & SWI_OS_MASK
        if os_mask != SWI_OS_NETBSD and os_mask != 0:
            # NetBSD: SIGILL (ILL_ILLTRP); here the out-of-range ENOSYS slot.
            return SYS_NSYSENT - 1, args, vals[_IN_SP] & M32
        return insn & (SYS_NSYSENT - 1), args, vals[_IN_SP] & M32

    def encode_return(self, vals: list[int], error: int, rv0: int, rv1: int) -> list[int]:
        apsr = vals[_IN_CPSR] & APSR_MASK
        if error:
            return [error, vals[_IN_R1] & M32, apsr | PSR_C_BIT]
        return [rv0 & M32, rv1 & M32, apsr & ~PSR_C_BIT]

    def tls_reg(self) -> int:
        return _TPIDRURO

    def trap_signal(self, intno: int) -> tuple[int, str]:
        from nbemu.syscalls.signals import Sig
        table = {EXCP_UDEF: (Sig.SIGILL, "undefined instruction"),
                 EXCP_BKPT: (Sig.SIGTRAP, "breakpoint (bkpt)"),
                 EXCP_PREFETCH_ABORT: (Sig.SIGSEGV, "prefetch abort"),
                 EXCP_DATA_ABORT: (Sig.SIGSEGV, "data abort")}
        return table.get(intno, (Sig.SIGILL, f"exception {intno}"))

    def capstone_arch_mode(self) -> tuple[int, int]:
        import capstone
        return capstone.CS_ARCH_ARM, capstone.CS_MODE_ARM

    # -- exec --------------------------------------------------------------------
    def setregs(self, entry: int, sp: int, ps_strings: int) -> dict[int, int]:
        # arm_machdep.c setregs(): trapframe zeroed; r0 = ps_strings, r12 = sp
        # (pre-1.4 crt0), sp = stack, lr = pc = entry, spsr = USR32 (| T for an odd
        # entry). The VFP context is discarded (FPSCR 0). CPSR first: the engine
        # applies registers in this order, and a PC write sets the Thumb state.
        regs = {A.UC_ARM_REG_CPSR: PSR_USR32_MODE | (PSR_T_BIT if entry & 1 else 0)}
        regs.update({r: 0 for r in _R})
        regs.update({A.UC_ARM_REG_R0: ps_strings, A.UC_ARM_REG_R12: sp,
                     A.UC_ARM_REG_SP: sp, A.UC_ARM_REG_LR: entry, A.UC_ARM_REG_PC: entry,
                     _TPIDRURO: 0, A.UC_ARM_REG_FPSCR: 0})
        regs.update({d: 0 for d in _D})
        return regs

    # -- ucontext / mcontext -------------------------------------------------------
    def unpack_mcontext_gregs(self, uc_bytes: bytes) -> list[int]:
        return list(struct.unpack_from(f"<{NGREG}I", uc_bytes, UC_MCONTEXT_OFF))

    def cpu_mcontext_validate(self, gregs: list[int]) -> bool:
        """VALID_R15_PSR: user mode, IRQ and FIQ enabled."""
        psr = gregs[_REG_CPSR]
        return (psr & PSR_MODE) == PSR_USR32_MODE and not psr & (I32_BIT | F32_BIT)

    def mcontext_flags_valid(self, flags: int) -> bool:
        """sig_machdep.c cpu_setmcontext (FPU_VFP kernels, every earmv7hf one):
        _UC_FPU without _UC_ARM_VFP is EINVAL -- the FPU area is not VFP state."""
        return not flags & _UC_FPU or bool(flags & _UC_ARM_VFP)

    def mcontext_regs(self, uc_bytes: bytes, flags: int) -> tuple[list[int], list[int]]:
        """(register ids, values) to load from a ucontext's mcontext (cpu_setmcontext).
        The CPSR comes after the PC: its T bit, not the PC's bit 0, says Thumb."""
        ids: list[int] = []
        vals: list[int] = []
        if flags & _UC_CPU:
            ids += list(_GREG_IDS)
            vals += self.unpack_mcontext_gregs(uc_bytes)
        if flags & _UC_TLSBASE:
            ids.append(_TPIDRURO)
            vals.append(struct.unpack_from("<I", uc_bytes, MC_TLSBASE_OFF)[0])
        if flags & _UC_FPU:
            ids.append(A.UC_ARM_REG_FPSCR)
            vals.append(struct.unpack_from("<I", uc_bytes, MC_VFP_OFF)[0])
            ids += list(_D)
            vals += list(struct.unpack_from("<32Q", uc_bytes, MC_FSTMX_OFF))
        return ids, vals

    def fpu_xmm_from_mcontext(self, uc_bytes: bytes) -> list[tuple[int, int]]:
        return []                  # the VFP registers travel in mcontext_regs

    # machine/ptrace.h (arm: PT_STEP, PT_SETSTEP and PT_CLEARSTEP are gone, 3-4
    # were the FPE's); struct reg (r0-r12, sp, lr, pc, cpsr) is __gregs itself;
    # struct fpreg is struct vfpreg: fpexc, fpscr, fpinst, fpinst2, vfp_regs[33].
    ptrace_machdep = {33: "GETREGS", 34: "SETREGS", 37: "GETFPREGS", 38: "SETFPREGS"}
    ptrace_reg_slots = tuple(range(NGREG))
    mcontext_gregs_off = UC_MCONTEXT_OFF
    ptrace_fpreg_size = 16 + 33 * 8

    def ptrace_fpreg(self, plat, l) -> bytes:
        fpexc, fpscr = plat.regs_get(l, (A.UC_ARM_REG_FPEXC, A.UC_ARM_REG_FPSCR))
        d = plat.regs_get(l, _D)
        return struct.pack("<4I33Q", fpexc & M32, fpscr & M32, 0, 0, *d, 0)

    def ptrace_setfpreg(self, plat, l, data: bytes) -> None:
        fpscr = struct.unpack_from("<I", data, 4)[0]
        plat.regs_set(l, (A.UC_ARM_REG_FPSCR,) + _D,
                      (fpscr,) + struct.unpack_from("<32Q", data, 16))

    def getmcontext_ids(self) -> tuple[int, ...]:
        return _MC_IDS

    def build_ucontext(self, vals: list[int], sigmask: tuple[int, int, int, int],
                       stack: tuple[int, int, int], vregs: bytes | None) -> bytes:
        """A ucontext_t as getucontext() fills it (vals: getmcontext_ids() values);
        the VFP state is always included (a hard-float program owns it from exec)."""
        buf = bytearray(UCONTEXT_SIZE)
        flags = _UC_SIGMASK | _UC_STACK | _UC_CPU | _UC_TLSBASE | _UC_FPU | _UC_ARM_VFP
        struct.pack_into(f"<{NGREG}I", buf, UC_MCONTEXT_OFF, *[v & M32 for v in vals[:NGREG]])
        struct.pack_into("<I", buf, MC_VFP_OFF, vals[_I_FPSCR] & M32)
        struct.pack_into("<32Q", buf, MC_FSTMX_OFF, *vals[_I_D0:_I_D0 + 32])
        struct.pack_into("<I", buf, MC_TLSBASE_OFF, vals[_I_TLS] & M32)
        struct.pack_into("<I", buf, UC_FLAGS_OFF, flags)
        struct.pack_into("<4I", buf, UC_SIGMASK_OFF, *sigmask)
        sp, size, ssflags = stack
        struct.pack_into("<IIi", buf, UC_STACK_OFF, sp & M32, size & M32, ssflags)
        return bytes(buf)

    def set_syscall_success_in_gregs(self, vals: list[int]) -> None:
        """getcontext's saved registers resume as a successful call returning 0."""
        vals[_REG_R0] = 0
        vals[_REG_CPSR] &= ~PSR_C_BIT

    def ucontext_tlsbase(self, uc_bytes: bytes) -> int | None:
        if self.ucontext_flags(uc_bytes) & _UC_TLSBASE:
            return struct.unpack_from("<I", uc_bytes, MC_TLSBASE_OFF)[0]
        return None

    # -- signals: siginfo_t, the signal frame, faults ---------------------------------
    # siginfo_t (ILP32, EABI): signo, code, errno at 0/4/8; the reason union is
    # 8-aligned (its _syscall member holds uint64_t args), so it starts at 16:
    # _rt pid/uid/value at 16/20/24, _trap addr/trap/trap2/trap3 at 16..28.
    # struct _ksiginfo is 96 bytes, siginfo_t 128.
    siginfo_size = 128
    ksiginfo_size = 96
    sigframe_size = 128 + UCONTEXT_SIZE
    uc_setstack = _UC_SETSTACK
    uc_clrstack = _UC_CLRSTACK
    uc_fpu = _UC_FPU

    def pack_siginfo(self, ksi) -> bytes:
        buf = bytearray(self.siginfo_size)
        struct.pack_into("<iii", buf, 0, ksi.signo, ksi.code, ksi.errno)
        if ksi.fault:
            struct.pack_into("<IIII", buf, 16, ksi.addr & M32, ksi.trap & M32,
                             ksi.trap2 & M32, ksi.trap3 & M32)
        else:
            struct.pack_into("<iII", buf, 16, ksi.pid, ksi.uid & M32, ksi.value & M32)
        return bytes(buf)

    def sendsig_vregs(self) -> tuple[int, ...]:
        return ()                  # the VFP registers are in getmcontext_ids()

    def sendsig_frame(self, vals: list[int], vregs: bytes, siginfo: bytes,
                      sigmask: tuple[int, int, int, int], was_onstack: bool,
                      alt_top: int | None, handler: int, tramp: int, sig: int,
                      trapno: int = 0, err: int = 0):
        """sig_machdep.c sendsig_siginfo(): struct sigframe_siginfo (siginfo_t, then
        ucontext_t) below the interrupted sp or at the top of the alternate stack,
        8-aligned (STACK_ALIGN); r0 = signo, r1 = &si, r2 = r5 = &uc (libc's
        trampoline uses r5; Go's adds 0x80 to sp), sp = the frame, lr = the
        trampoline, pc = the handler, CPSR.T = the handler's bit 0."""
        top = alt_top if alt_top is not None else vals[_REG_SP] & M32
        sip = (top - self.sigframe_size) & ~7
        ucp = sip + self.siginfo_size
        uc = bytearray(self.build_ucontext(vals, sigmask, (0, 0, 0), None))
        flags = _UC_SIGMASK | _UC_CPU | _UC_TLSBASE | _UC_FPU | _UC_ARM_VFP
        flags |= _UC_SETSTACK if was_onstack else _UC_CLRSTACK
        struct.pack_into("<I", uc, UC_FLAGS_OFF, flags)
        frame = siginfo + bytes(uc)
        cpsr = vals[_REG_CPSR] & M32
        cpsr = (cpsr | PSR_T_BIT) if handler & 1 else (cpsr & ~PSR_T_BIT)
        ids = [A.UC_ARM_REG_CPSR, A.UC_ARM_REG_R0, A.UC_ARM_REG_R1, A.UC_ARM_REG_R2,
               A.UC_ARM_REG_R5, A.UC_ARM_REG_SP, A.UC_ARM_REG_LR, A.UC_ARM_REG_PC]
        nvals = [cpsr, sig, sip, ucp, ucp, sip, tramp & M32, handler & M32]
        return sip, frame, ids, nvals, [], []

    def fault_siginfo(self, kind: str, addr: int, pc: int, intno: int = -1,
                      access: str = "read") -> tuple[int, int, int, int, int, str]:
        """arm/fault.c data_abort_handler / prefetch_abort_handler and undefined.c:
        (signo, si_code, si_addr, trap, err, description). ksi_trap holds the
        fault status register: 0x5/0x7 translation faults (unmapped), 0xd/0xf
        permission faults, bit 11 (WnR) for a write."""
        SIGILL, SIGTRAP, SIGSEGV = 4, 5, 11
        ILL_ILLOPC, TRAP_BRKPT, SEGV_MAPERR, SEGV_ACCERR = 1, 1, 1, 2
        if kind in ("unmapped", "prot"):
            fsr = (0x7 if kind == "unmapped" else 0xF) | (0x800 if access == "write" else 0)
            if kind == "unmapped":
                return (SIGSEGV, SEGV_MAPERR, addr, fsr, 0,
                        f"{access} of unmapped address {addr:#x}")
            return SIGSEGV, SEGV_ACCERR, addr, fsr, 0, f"{access} not permitted at {addr:#x}"
        if kind == "invalid" or intno == EXCP_UDEF:
            # undefined.c undefinedinstruction(): ksi_trap = the instruction word,
            # ksi_addr = its address (the saved pc stays on it); gdb_trapper makes
            # gdb's breakpoint words a SIGTRAP with ksi_trap 0.
            upc, word, thumb = _last_undefined[0]
            word = word if upc == pc else 0
            if (word == GDB_THUMB_BREAKPOINT) if thumb else (word in GDB_BREAKPOINTS):
                return SIGTRAP, TRAP_BRKPT, pc, 0, 0, "breakpoint (gdb)"
            return SIGILL, ILL_ILLOPC, pc, word, 0, "undefined instruction"
        if intno == EXCP_BKPT:
            return SIGTRAP, TRAP_BRKPT, pc, 0, 0, "breakpoint (bkpt)"
        sig, what = self.trap_signal(intno)
        return sig, 0, pc, 0, 0, what


# -- gdb's view (emu/gdb_regs.py): the target description and the register map ----------

def _gdb_reg_map() -> dict[str, tuple[str, int, int]]:
    from unicorn import arm_const as A
    m: dict[str, tuple[str, int, int]] = {}
    for i in range(13):
        m[f"r{i}"] = ("int", A.UC_ARM_REG_R0 + i, 0)
    for n in ("sp", "lr", "pc", "cpsr", "fpscr"):
        m[n] = ("int", getattr(A, "UC_ARM_REG_" + n.upper()), 0)
    for i in range(32):
        m[f"d{i}"] = ("int", A.UC_ARM_REG_D0 + i, 0)    # 64-bit: fits the batches
    m["tpidruro"] = ("int", A.UC_ARM_REG_C13_C0_3, 0)
    return m


ABI = Arm()
