"""NetBSD/amd64: registers, system-call convention, mcontext layout, setregs.

Facts from NetBSD's sys/arch/amd64/include/{mcontext.h,frame_regs.h,vmparam.h,
segments.h} and x86/include/psl.h (as shipped in ziglang's NetBSD headers) and
sys/arch/amd64/amd64/machdep.c (setregs, cpu_mcontext_validate).
"""
from __future__ import annotations

import operator
import struct

from unicorn import UC_ARCH_X86, UC_MODE_64
from unicorn import x86_const as X

from .base import Abi, NparkTrap

# mcontext __gregs[] order (frame_regs.h): index -> Unicorn register, None for
# segment/trap slots the emulator does not load from user contexts.
_REG_RDI, _REG_RSI, _REG_RDX, _REG_RCX, _REG_R8, _REG_R9, _REG_R10, _REG_R11 = range(8)
_REG_R12, _REG_R13, _REG_R14, _REG_R15, _REG_RBP, _REG_RBX, _REG_RAX = range(8, 15)
_REG_GS, _REG_FS, _REG_ES, _REG_DS, _REG_TRAPNO, _REG_ERR = range(15, 21)
_REG_RIP, _REG_CS, _REG_RFLAGS, _REG_RSP, _REG_SS = range(21, 26)
NGREG = 26

GREG_UC: dict[int, int] = {
    _REG_RDI: X.UC_X86_REG_RDI, _REG_RSI: X.UC_X86_REG_RSI, _REG_RDX: X.UC_X86_REG_RDX,
    _REG_RCX: X.UC_X86_REG_RCX, _REG_R8: X.UC_X86_REG_R8, _REG_R9: X.UC_X86_REG_R9,
    _REG_R10: X.UC_X86_REG_R10, _REG_R11: X.UC_X86_REG_R11, _REG_R12: X.UC_X86_REG_R12,
    _REG_R13: X.UC_X86_REG_R13, _REG_R14: X.UC_X86_REG_R14, _REG_R15: X.UC_X86_REG_R15,
    _REG_RBP: X.UC_X86_REG_RBP, _REG_RBX: X.UC_X86_REG_RBX, _REG_RAX: X.UC_X86_REG_RAX,
    _REG_RIP: X.UC_X86_REG_RIP, _REG_RFLAGS: X.UC_X86_REG_RFLAGS, _REG_RSP: X.UC_X86_REG_RSP,
}
_GREG_IDX = tuple(GREG_UC)
_GREG_IDS = tuple(GREG_UC.values())
# getcontext's registers (getmcontext_ids) and the XMM registers (sendsig_vregs),
# made once: getcontext runs for every pthread_create.
_MCTX_IDS = _GREG_IDS + (X.UC_X86_REG_FS_BASE, X.UC_X86_REG_FPCW, X.UC_X86_REG_MXCSR)
_XMM_IDS = tuple(X.UC_X86_REG_XMM0 + i for i in range(16))
_I_RAX = _GREG_IDS.index(X.UC_X86_REG_RAX)
_I_RFLAGS = _GREG_IDS.index(X.UC_X86_REG_RFLAGS)
_mc_gregs = operator.itemgetter(*_GREG_IDX)     # __gregs words -> _GREG_IDS order
# build_ucontext's packs: the ucontext_t from uc_flags to the fxsave's fcw, and
# fxsave's mxcsr + mxcsr_mask
_UC_HEAD = struct.Struct("<I4xQ4IQQi4x26QQH").pack_into
_FX_MXCSR = struct.Struct("<II").pack_into

# ucontext_t layout (sys/ucontext.h + amd64 mcontext.h): 784 bytes.
UC_FLAGS_OFF = 0
UC_LINK_OFF = 8
UC_SIGMASK_OFF = 16          # sigset_t: 4 x uint32
UC_STACK_OFF = 32            # stack_t: ss_sp, ss_size, ss_flags (+pad) = 24 bytes
UC_MCONTEXT_OFF = 56
MC_TLSBASE_OFF = UC_MCONTEXT_OFF + 8 * NGREG      # 264
MC_FPREGS_OFF = MC_TLSBASE_OFF + 8                # 272, fxsave layout, 512 bytes
UCONTEXT_SIZE = 784

_UC_SIGMASK, _UC_STACK, _UC_CPU, _UC_FPU = 0x1, 0x2, 0x4, 0x8
_UC_TLSBASE = 0x00080000

PSL_C = 0x1
PSL_I = 0x200
PSL_MBO = 0x2
PSL_USERSTATIC = 0x2 | 0xFFC08028 | 0x200 | 0x3000 | 0x4000 | 0x20000 | 0x80000 | 0x100000
PSL_USERSET = PSL_MBO | PSL_I
# User selectors of 64-bit processes (amd64 segments.h): GSEL(GUCODE_SEL, SEL_UPL)
# and GSEL(GUDATA_SEL, SEL_UPL); the LDT forms LSEL(LUCODE_SEL/LUDATA_SEL) are
# valid too (VALID_USER_CSEL / VALID_USER_DSEL).
USER_CS = (3 << 3) | 3
USER_SS = (4 << 3) | 3
_VALID_CSEL = (USER_CS, 64 | 4 | 3)
_VALID_DSEL = (USER_SS, 56 | 4 | 3)

PAGE_SIZE = 4096
VM_MAXUSER_ADDRESS = 0x00007F8000000000 - PAGE_SIZE


class Amd64(Abi):
    name = "amd64"
    machine = "amd64"          # NetBSD's MACHINE (hw.machine, uname -m)
    machine_arch = "x86_64"
    elf_machine = 62           # EM_X86_64
    elf_class = 64
    page_size = PAGE_SIZE
    uspace = 6 * PAGE_SIZE    # vm.uspace of NetBSD 10 GENERIC; the engine's context: 5,608 bytes
    # Saved context at the u-area's start (Unicorn's CPU state after a 40-byte header).
    uarea_regs = {n: (40 + 8 * i, 8) for i, n in enumerate(
        "rax rcx rdx rbx rsp rbp rsi rdi r8 r9 r10 r11 r12 r13 r14 r15 rip".split())} | {
        "fs_base": (328, 8), "gs_base": (352, 8)}
    word_size = 8
    maxcpus = 256              # MAXCPUS (machine/param.h): the kernel's CPU-set size
    usrstack = VM_MAXUSER_ADDRESS
    vm_maxuser_address = VM_MAXUSER_ADDRESS
    dflssiz = 4 * 1024 * 1024
    maxssiz = 128 * 1024 * 1024
    dfldsiz = 256 * 1024 * 1024
    maxdsiz = 8 * 1024 * 1024 * 1024
    ucontext_size = UCONTEXT_SIZE
    syscall_insn_len = 2       # 0f 05
    uc_arch = UC_ARCH_X86
    uc_mode = UC_MODE_64
    pc_reg = X.UC_X86_REG_RIP
    sp_reg = X.UC_X86_REG_RSP
    syscall_in_regs = (X.UC_X86_REG_RAX, X.UC_X86_REG_RDI, X.UC_X86_REG_RSI, X.UC_X86_REG_RDX,
                       X.UC_X86_REG_R10, X.UC_X86_REG_R8, X.UC_X86_REG_R9, X.UC_X86_REG_RSP,
                       X.UC_X86_REG_EFLAGS)
    syscall_out_regs = (X.UC_X86_REG_RAX, X.UC_X86_REG_RDX, X.UC_X86_REG_EFLAGS)
    # The native trap's clock_gettime fast path (emu/native/nbhook.c, which reads
    # rax, rdi, rsi, rdx at the first four places of syscall_in_regs): the call's
    # number (__clock_gettime50), the flags' place, the error bit.
    fast_clock_trap = (427, 8, PSL_C)
    npark_trap = NparkTrap((1, 2, 3, 4, 5, 6), 8, PSL_C, sysno_idx=0)
    report_regs = tuple((n, getattr(X, "UC_X86_REG_" + n.upper())) for n in (
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
        "r12", "r13", "r14", "r15", "rip", "eflags", "fs_base"))
    # Unwinding (crash reports): the psABI's DWARF register numbers, by report_regs
    # names; (pc, sp, frame pointer); `call` pushes the return address.
    dwarf_regs = {0: "rax", 1: "rdx", 2: "rcx", 3: "rbx", 4: "rsi", 5: "rdi", 6: "rbp",
                  7: "rsp", 8: "r8", 9: "r9", 10: "r10", 11: "r11", 12: "r12", 13: "r13",
                  14: "r14", 15: "r15", 16: "rip"}
    frame_regs = ("rip", "rsp", "rbp")
    ra_on_stack = True
    go_lwp_tramp_fn_reg = X.UC_X86_REG_R12   # Go's runtime.lwp_tramp: the start function

    # gdb's view of the port: how each register of its target.xml (base.Abi) is read
    def gdb_reg_map(self) -> dict[str, tuple[str, int, int]]:
        return _gdb_reg_map()

    gdb_fpsw_reg = X.UC_X86_REG_FPSW
    uc_hook_syscall_insn = X.UC_X86_INS_SYSCALL

    # -- system calls ----------------------------------------------------
    def nreg_args(self) -> int:
        return 6

    def decode_syscall(self, vals: list[int]) -> tuple[int, list[int], int]:
        # rax = code; rdi rsi rdx r10 r8 r9; more arguments at rsp+8 (above the
        # libc wrapper's return address), as NetBSD's amd64 syscall() copies them.
        return vals[0], vals[1:7], vals[7] + 8

    def encode_return(self, vals: list[int], error: int, rv0: int, rv1: int) -> list[int]:
        fl = vals[8]
        if error:
            return [error, vals[3], fl | PSL_C]
        return [rv0, rv1, fl & ~PSL_C]

    def tls_reg(self) -> int:
        return X.UC_X86_REG_FS_BASE

    def trap_signal(self, intno: int) -> tuple[int, str]:
        """Signal and description of a CPU exception (Unicorn interrupt number)."""
        from nbemu.syscalls.signals import Sig
        table = {0: (Sig.SIGFPE, "integer divide by zero"), 1: (Sig.SIGTRAP, "debug trap"),
                 3: (Sig.SIGTRAP, "breakpoint"), 4: (Sig.SIGSEGV, "overflow"),
                 5: (Sig.SIGSEGV, "bound range"), 6: (Sig.SIGILL, "illegal instruction"),
                 7: (Sig.SIGFPE, "FPU not available"),
                 13: (Sig.SIGSEGV, "general protection fault"),
                 14: (Sig.SIGSEGV, "page fault"), 16: (Sig.SIGFPE, "x87 floating-point error"),
                 17: (Sig.SIGBUS, "alignment check"),
                 19: (Sig.SIGFPE, "SIMD floating-point error")}
        return table.get(intno, (Sig.SIGILL, f"trap {intno}"))

    def capstone_arch_mode(self) -> tuple[int, int]:
        import capstone
        return capstone.CS_ARCH_X86, capstone.CS_MODE_64

    # -- exec --------------------------------------------------------------
    def setregs(self, entry: int, sp: int, ps_strings: int) -> dict[int, int]:
        # machdep.c setregs(): rbx = ps_strings, rdi/rsi/rbp/rdx/rcx/rax = 0,
        # rflags = PSL_USERSET, rsp = stack (argc), rip = entry.
        regs = {r: 0 for r in _GREG_IDS}
        regs.update({X.UC_X86_REG_RBX: ps_strings, X.UC_X86_REG_RSP: sp,
                     X.UC_X86_REG_RIP: entry, X.UC_X86_REG_RFLAGS: PSL_MBO,
                     X.UC_X86_REG_FS_BASE: 0, X.UC_X86_REG_MXCSR: 0x1F80,
                     X.UC_X86_REG_FPCW: 0x37F})
        return regs

    # -- ucontext / mcontext ---------------------------------------------
    def unpack_mcontext_gregs(self, uc_bytes: bytes) -> list[int]:
        return list(struct.unpack_from("<26Q", uc_bytes, UC_MCONTEXT_OFF))

    def cpu_mcontext_validate(self, gregs: list[int]) -> bool:
        """amd64 cpu_mcontext_validate(): static rflags bits, user selectors
        (%es/%fs/%gs may be null), a user %rip."""
        if (gregs[_REG_RFLAGS] ^ PSL_USERSET) & PSL_USERSTATIC:
            return False
        if gregs[_REG_CS] & 0xFFFF not in _VALID_CSEL:
            return False
        for r in (_REG_ES, _REG_FS, _REG_GS):
            sel = gregs[r] & 0xFFFF
            if sel and sel not in _VALID_DSEL:
                return False
        if gregs[_REG_DS] & 0xFFFF not in _VALID_DSEL or gregs[_REG_SS] & 0xFFFF not in _VALID_DSEL:
            return False
        if gregs[_REG_RIP] >= VM_MAXUSER_ADDRESS:
            return False
        return True

    def cpu_lwp_setprivate(self, ptr: int) -> int:
        """x86_set_sdbase(): a TLS base must be a user address (else EINVAL = 22)."""
        return 22 if ptr >= VM_MAXUSER_ADDRESS else 0

    def mcontext_regs(self, uc_bytes: bytes, flags: int) -> tuple[list[int], list[int]]:
        """(register ids, values) to load from a ucontext's mcontext for `flags`."""
        ids: list[int] = []
        vals: list[int] = []
        if flags & _UC_CPU:
            ids = list(_GREG_IDS)
            vals = list(_mc_gregs(struct.unpack_from("<26Q", uc_bytes, UC_MCONTEXT_OFF)))
            vals[_I_RFLAGS] = (vals[_I_RFLAGS] & ~PSL_USERSTATIC) | PSL_MBO
        if flags & _UC_TLSBASE:
            ids.append(X.UC_X86_REG_FS_BASE)
            vals.append(struct.unpack_from("<Q", uc_bytes, MC_TLSBASE_OFF)[0])
        if flags & _UC_FPU:
            fcw, _fsw, _ftw = struct.unpack_from("<HHB", uc_bytes, MC_FPREGS_OFF)
            mxcsr = struct.unpack_from("<I", uc_bytes, MC_FPREGS_OFF + 24)[0]
            ids += [X.UC_X86_REG_FPCW, X.UC_X86_REG_MXCSR]
            vals += [fcw, mxcsr & 0xFFFF]
        return ids, vals

    def fpu_xmm_from_mcontext(self, uc_bytes: bytes) -> list[tuple[int, int]]:
        """(xmm register id, 128-bit value) pairs of an fxsave area."""
        out = []
        for i in range(16):
            lo, hi = struct.unpack_from("<QQ", uc_bytes, MC_FPREGS_OFF + 160 + 16 * i)
            out.append((X.UC_X86_REG_XMM0 + i, lo | (hi << 64)))
        return out

    def getmcontext_ids(self) -> tuple[int, ...]:
        return _MCTX_IDS

    # machine/ptrace.h (amd64); struct reg is long regs[_NGREG] in __gregs order,
    # struct fpreg the fxsave area (512 bytes).
    ptrace_machdep = {32: "STEP", 33: "GETREGS", 34: "SETREGS", 35: "GETFPREGS",
                      36: "SETFPREGS", 37: "GETDBREGS", 38: "SETDBREGS", 39: "SETSTEP",
                      40: "CLEARSTEP", 41: "GETXSTATE", 42: "SETXSTATE"}
    ptrace_reg_slots = tuple(range(NGREG))
    mcontext_gregs_off = UC_MCONTEXT_OFF
    ptrace_fpreg_size = 512

    def ptrace_fpreg(self, plat, l) -> bytes:
        return fxsave_read(plat, l, 16)

    def ptrace_setfpreg(self, plat, l, data: bytes) -> None:
        fxsave_write(plat, l, data, 16)

    def build_ucontext(self, vals: list[int], sigmask: tuple[int, int, int, int],
                       stack: tuple[int, int, int], xmm: bytes | None) -> bytes:
        """A ucontext_t as NetBSD's getucontext() fills it (values of getmcontext_ids)."""
        buf = bytearray(UCONTEXT_SIZE)
        flags = _UC_SIGMASK | _UC_STACK | _UC_CPU | _UC_TLSBASE
        g = [0] * NGREG
        for idx, v in zip(_GREG_IDX, vals):     # (zip stops at the general registers)
            g[idx] = v
        g[_REG_RFLAGS] = (g[_REG_RFLAGS] & ~PSL_USERSTATIC) | PSL_USERSET
        g[_REG_CS], g[_REG_SS] = USER_CS, USER_SS
        g[_REG_DS] = g[_REG_ES] = USER_SS
        n = len(_GREG_IDX)
        fsbase, fcw, mxcsr = vals[n], vals[n + 1], vals[n + 2]
        if xmm is not None:              # fxsave's XMM area: 16 bytes each
            flags |= _UC_FPU
            buf[MC_FPREGS_OFF + 160:MC_FPREGS_OFF + 160 + len(xmm)] = xmm
        # uc_flags, uc_link, uc_sigmask, uc_stack, __gregs, _mc_tlsbase, the
        # fxsave's control word (one pack: getcontext runs for every thread made)
        _UC_HEAD(buf, 0, flags, 0, *sigmask, *stack, *g, fsbase, fcw)
        _FX_MXCSR(buf, MC_FPREGS_OFF + 24, mxcsr, 0xFFFF)
        return bytes(buf)

    def set_syscall_success_in_gregs(self, vals: list[int]) -> None:
        """getcontext's saved registers resume as a successful call returning 0."""
        vals[_I_RAX] = 0
        vals[_I_RFLAGS] &= ~PSL_C


    # -- signals: siginfo_t, the signal frame, traps (NetBSD amd64) --------
    # sys/siginfo.h: siginfo_t is a 128-byte union over struct _ksiginfo
    # (signo, code, errno at 0/4/8, the reason union at 16 on LP64);
    # sizeof(struct _ksiginfo) is 96 (its largest member, _syscall, is 80).
    # machine/frame.h: struct sigframe_siginfo { sf_ra; siginfo_t sf_si;
    # ucontext_t sf_uc; } = 8 + 128 + 784 = 920 bytes (machdep.c rev 1.290
    # sendsig_siginfo; unchanged in NetBSD 10).
    siginfo_size = 128
    ksiginfo_size = 96
    sigframe_size = 8 + 128 + UCONTEXT_SIZE
    # mcontext.h: _UC_SETSTACK / _UC_CLRSTACK (_UC_MD_BIT16 / _UC_MD_BIT17).
    uc_setstack = 0x00010000
    uc_clrstack = 0x00020000
    uc_fpu = _UC_FPU

    def pack_siginfo(self, ksi) -> bytes:
        """A siginfo_t from a kernel ksiginfo (fault reasons: addr/trap; others:
        pid/uid/value)."""
        buf = bytearray(self.siginfo_size)
        struct.pack_into("<iii", buf, 0, ksi.signo, ksi.code, ksi.errno)
        if ksi.fault:
            struct.pack_into("<Qiii", buf, 16, ksi.addr & 0xFFFFFFFFFFFFFFFF, ksi.trap,
                             ksi.trap2, ksi.trap3)
        else:
            struct.pack_into("<iIQ", buf, 16, ksi.pid, ksi.uid & 0xFFFFFFFF,
                             ksi.value & 0xFFFFFFFFFFFFFFFF)
        return bytes(buf)

    def sendsig_vregs(self) -> tuple[int, ...]:
        """The 128-bit registers a signal frame saves (fxsave XMM area)."""
        return _XMM_IDS

    def sendsig_frame(self, vals: list[int], xmm: bytes, siginfo: bytes,
                      sigmask: tuple[int, int, int, int], was_onstack: bool,
                      alt_top: int | None, handler: int, tramp: int, sig: int,
                      trapno: int = 0, err: int = 0):
        """NetBSD amd64 sendsig_siginfo(): where the frame goes, its bytes, and
        the registers the handler starts with.

        vals are the values of getmcontext_ids() (the interrupted context),
        xmm those of sendsig_vregs(). alt_top: top of the alternate signal
        stack when the frame goes there, else None (below the 128-byte red
        zone of the interrupted rsp). Returns (frame address, frame bytes,
        register ids, values, vector register ids, values).
        """
        rsp = vals[_GREG_IDS.index(X.UC_X86_REG_RSP)]
        sp = alt_top if alt_top is not None else rsp - 128
        sp -= self.sigframe_size
        fp = ((sp & ~15) - 8) & 0xFFFFFFFFFFFFFFFF
        uc = bytearray(self.build_ucontext(vals, sigmask, (0, 0, 0), xmm))
        flags = _UC_SIGMASK | _UC_CPU | _UC_TLSBASE | _UC_FPU
        flags |= self.uc_setstack if was_onstack else self.uc_clrstack
        struct.pack_into("<I", uc, UC_FLAGS_OFF, flags)
        struct.pack_into("<QQ", uc, UC_MCONTEXT_OFF + 8 * _REG_TRAPNO, trapno, err)
        frame = struct.pack("<Q", tramp) + siginfo + bytes(uc)
        si_addr = fp + 8
        uc_addr = fp + 8 + self.siginfo_size
        # buildcontext(): rip = handler, rsp = frame, rflags &= ~PSL_CLEARSIG,
        # FPU state reset (fpu_save_area_reset: default control words, zeroed
        # registers); then rdi = sig, rsi = &sf_si, rdx = r15 = &sf_uc.
        rflags = vals[_GREG_IDS.index(X.UC_X86_REG_RFLAGS)]
        PSL_CLEARSIG = 0x100 | 0x20000 | 0x40000 | 0x400   # PSL_T|PSL_VM|PSL_AC|PSL_D
        ids = [X.UC_X86_REG_RIP, X.UC_X86_REG_RSP, X.UC_X86_REG_RFLAGS, X.UC_X86_REG_RDI,
               X.UC_X86_REG_RSI, X.UC_X86_REG_RDX, X.UC_X86_REG_R15, X.UC_X86_REG_FPCW,
               X.UC_X86_REG_MXCSR]
        nvals = [handler, fp, (rflags & ~PSL_CLEARSIG) | PSL_MBO, sig, si_addr, uc_addr,
                 uc_addr, 0x37F, 0x1F80]
        vids = list(self.sendsig_vregs())
        return fp, frame, ids, nvals, vids, [0] * len(vids)

    def ucontext_tlsbase(self, uc_bytes: bytes) -> int | None:
        """_mc_tlsbase when _UC_TLSBASE is set, else None."""
        if self.ucontext_flags(uc_bytes) & _UC_TLSBASE:
            return struct.unpack_from("<Q", uc_bytes, MC_TLSBASE_OFF)[0]
        return None

    def fault_siginfo(self, kind: str, addr: int, pc: int, intno: int = -1,
                      access: str = "read") -> tuple[int, int, int, int, int, str]:
        """NetBSD amd64 trap(): (signo, si_code, si_addr, trapno, err, description)
        of a guest fault. kind: "unmapped" / "prot" (page faults at addr, access
        read/write/exec), "intr" (CPU exception intno), "invalid" (#UD)."""
        SIGILL, SIGTRAP, SIGFPE, SIGBUS, SIGSEGV = 4, 5, 8, 10, 11
        T_PRIVINFLT, T_BPTFLT, T_PROTFLT, T_TRCTRAP, T_PAGEFLT, T_ALIGNFLT = 0, 1, 4, 5, 6, 7
        T_DIVIDE, T_OFLOW, T_BOUND, T_DNA, T_ARITHTRAP, T_XMM = 8, 10, 11, 12, 2, 19
        if kind in ("unmapped", "prot"):
            # PGEX_P (protection), PGEX_W (write), PGEX_U (user), PGEX_X (fetch)
            err = 4 | (1 if kind == "prot" else 0) | (2 if access == "write" else 0) \
                | (0x10 if access == "exec" else 0)
            if kind == "unmapped":
                return (SIGSEGV, 1, addr, T_PAGEFLT, err,
                        f"{access} of unmapped address {addr:#x}")
            return SIGSEGV, 2, addr, T_PAGEFLT, err, f"{access} not permitted at {addr:#x}"
        if kind == "invalid" or intno == 6:
            return SIGILL, 5, pc, T_PRIVINFLT, 0, "illegal instruction"     # ILL_PRVOPC
        table = {
            0: (SIGFPE, 1, pc, T_DIVIDE, "integer divide by zero"),           # FPE_INTDIV
            1: (SIGTRAP, 2, pc, T_TRCTRAP, "trace trap"),                     # TRAP_TRACE
            3: (SIGTRAP, 1, pc, T_BPTFLT, "breakpoint"),                      # TRAP_BRKPT
            4: (SIGFPE, 2, pc, T_OFLOW, "overflow"),                          # FPE_INTOVF
            5: (SIGFPE, 8, pc, T_BOUND, "bound range exceeded"),              # FPE_FLTSUB
            7: (SIGFPE, 0, pc, T_DNA, "FPU not available"),
            13: (SIGSEGV, 2, 0, T_PROTFLT, "general protection fault"),       # SEGV_ACCERR
            14: (SIGSEGV, 1, addr, T_PAGEFLT, "page fault"),
            16: (SIGFPE, 7, pc, T_ARITHTRAP, "x87 floating-point error"),     # FPE_FLTINV
            17: (SIGBUS, 1, addr, T_ALIGNFLT, "alignment check"),             # BUS_ADRALN
            19: (SIGFPE, 7, pc, T_XMM, "SIMD floating-point error"),          # FPE_FLTINV
        }
        sig, code, a, trapno, what = table.get(intno, (SIGILL, 0, pc, intno, f"trap {intno}"))
        return sig, code, a, trapno, 0, what


# -- the fxsave area (struct fxsave, x86/cpu_extended_state.h): PT_GETFPREGS ------------
# fx_cw, fx_sw, fx_tw (abridged: a bit per physical register, 1 = not empty),
# fx_opcode, fx_ip, fx_dp, fx_mxcsr, fx_mxcsr_mask; fx_87_ac[8] (ST(i), 10 of 16
# bytes) at 32; fx_xmm[16] at 160. Unicorn's FP0..7 are the physical registers
# (ST(i) is FP[(TOP + i) & 7]); its FPTAG has 2 bits each, 00 = valid (it reads
# an empty one as 01, or 11 once written so).
_FX_INT = (X.UC_X86_REG_FPCW, X.UC_X86_REG_FPSW, X.UC_X86_REG_FPTAG, X.UC_X86_REG_FOP,
           X.UC_X86_REG_FIP, X.UC_X86_REG_FDP, X.UC_X86_REG_MXCSR)
_FP_PHYS = tuple(X.UC_X86_REG_FP0 + i for i in range(8))


def fxsave_read(plat, l, nxmm: int) -> bytes:
    cw, sw, tag, fop, fip, fdp, mxcsr = plat.regs_get(l, _FX_INT)
    top = (sw >> 11) & 7
    ftw = sum(1 << i for i in range(8) if not (tag >> (2 * i)) & 3)
    buf = bytearray(512)
    struct.pack_into("<HHBxHQQII", buf, 0, cw & 0xFFFF, sw & 0xFFFF, ftw, fop & 0x7FF,
                     fip, fdp, mxcsr & 0xFFFFFFFF, 0xFFFF)
    phys = plat.vregs_get(l, _FP_PHYS)
    for i in range(8):
        st = phys[(top + i) & 7] & ((1 << 80) - 1)
        buf[32 + 16 * i:42 + 16 * i] = st.to_bytes(10, "little")
    for i, v in enumerate(plat.vregs_get(l, tuple(X.UC_X86_REG_XMM0 + j for j in range(nxmm)))):
        buf[160 + 16 * i:176 + 16 * i] = v.to_bytes(16, "little")
    return bytes(buf)


def fxsave_write(plat, l, data: bytes, nxmm: int) -> None:
    cw, sw, ftw, fop, fip, fdp, mxcsr = struct.unpack_from("<HHBxHQQI", data, 0)
    top = (sw >> 11) & 7
    tag = sum(3 << (2 * i) for i in range(8) if not ftw >> i & 1)
    plat.regs_set(l, _FX_INT, (cw, sw, tag, fop, fip, fdp, mxcsr & 0xFFFF))
    st = [int.from_bytes(data[32 + 16 * i:42 + 16 * i], "little") for i in range(8)]
    plat.vregs_set(l, _FP_PHYS, [st[(i - top) & 7] for i in range(8)])
    plat.vregs_set(l, tuple(X.UC_X86_REG_XMM0 + j for j in range(nxmm)),
                   [int.from_bytes(data[160 + 16 * i:176 + 16 * i], "little")
                    for i in range(nxmm)])


# -- gdb's view (emu/gdb_regs.py): the target description and the register map ----------
def _gdb_reg_map() -> dict[str, tuple[str, int, int]]:
    """name -> (kind, unicorn id, arg). Kinds: 'int' (batched), 'ro' (batched,
    writes ignored: segment selectors), 'ftag' (tag word translated), 'st'
    (x87 register arg relative to TOP), 'wide' (raw bytes)."""
    from unicorn import x86_const as X
    m: dict[str, tuple[str, int, int]] = {}
    for n in ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip "
              "eflags fs_base gs_base mxcsr").split():
        m[n] = ("int", getattr(X, "UC_X86_REG_" + n.upper()), 0)
    for n in ("cs", "ss", "ds", "es", "fs", "gs"):
        m[n] = ("ro", getattr(X, "UC_X86_REG_" + n.upper()), 0)
    m.update(gdb_x87_sse_map(16))
    return m


def gdb_x87_sse_map(nxmm: int) -> dict[str, tuple[str, int, int]]:
    """The x87 and SSE registers of gdb's x86 descriptions (amd64: 16 xmm, i386: 8)."""
    from unicorn import x86_const as X
    m: dict[str, tuple[str, int, int]] = {}
    for n, u in (("fctrl", "FPCW"), ("fstat", "FPSW"), ("fiseg", "FCS"), ("fioff", "FIP"),
                 ("foseg", "FDS"), ("fooff", "FDP"), ("fop", "FOP")):
        m[n] = ("int", getattr(X, "UC_X86_REG_" + u), 0)
    m["ftag"] = ("ftag", X.UC_X86_REG_FPTAG, 0)
    for i in range(8):
        m[f"st{i}"] = ("st", X.UC_X86_REG_FP0, i)
    for i in range(nxmm):
        m[f"xmm{i}"] = ("wide", getattr(X, f"UC_X86_REG_XMM{i}"), 0)
    return m


ABI = Amd64()
