"""NetBSD/i386: registers, system-call convention, mcontext layout, setregs.

Facts from NetBSD's i386 headers as shipped in ziglang (x86-netbsd-none:
machine/{mcontext.h,frame.h,segments.h,vmparam.h}, generic-netbsd x86/psl.h),
NetBSD's sys/arch/i386/i386/machdep.c (setregs, buildcontext, sendsig_siginfo,
cpu_getmcontext / cpu_mcontext_validate / cpu_setmcontext, read on a GitHub
mirror of NetBSD/src), sys/arch/x86/x86/sys_machdep.c (x86_set_sdbase32), and
Go's runtime/sys_netbsd_386.s.

System calls (i386 syscall.c): `int $0x80`; the number in %eax; EVERY argument
on the user stack, starting at %esp + 4 (above the libc stub's return address;
Go's stubs leave a zero "syscall gap" word there). Success: %eax, %edx =
rval[0], rval[1], PSL_C clear; failure: %eax = errno, PSL_C set, %edx kept.
ERESTART backs %eip up by the 2-byte instruction. Old binaries used
`lcall $7,$0` (a call gate); neither NetBSD 10's libc nor Go uses it, and nbemu
does not emulate call gates (it faults).

Trap mechanics under Unicorn (UC_MODE_32): `int $0x80` reaches a UC_HOOK_INTR
hook as exception 0x80 with EIP already past the 2-byte instruction; the IDT is
not consulted. Other exception numbers are CPU faults (trap_signal).

TLS: NetBSD gives each LWP a %gs whose GDT descriptor (GUGS_SEL) has base
l_private (x86_set_sdbase32, no range check). Unicorn ignores
UC_X86_REG_GS_BASE in 32-bit mode, but `wrmsr IA32_GS_BASE` (uc.msr_write)
sets the hidden %gs base directly, without a descriptor table, and
uc_context_save/restore carry it per LWP. The MSR cannot be written into a
saved context (Unicorn crashes: its MSR helper needs a live CPU), so set_tls
goes through the platform's with_live_regs(). The %gs base cannot be read in a
register batch either: DR0, which no user program can touch on NetBSD
(privileged), shadows it as "the TLS register" so that getcontext and signal
frames read _mc_tlsbase like any other register. Segment selectors stay
Unicorn's flat defaults; mcontexts show NetBSD's user selectors.
"""
from __future__ import annotations

import struct

from unicorn import UC_ARCH_X86, UC_MODE_32
from unicorn import x86_const as X

from . import amd64
from .base import Abi

# mcontext __gregs[] (i386 mcontext.h): 19 ints.
_REG_GS, _REG_FS, _REG_ES, _REG_DS, _REG_EDI, _REG_ESI, _REG_EBP, _REG_ESP = range(8)
_REG_EBX, _REG_EDX, _REG_ECX, _REG_EAX, _REG_TRAPNO, _REG_ERR, _REG_EIP = range(8, 15)
_REG_CS, _REG_EFL, _REG_UESP, _REG_SS = range(15, 19)
NGREG = 19

# gregs index -> Unicorn register (the stack pointer comes from _REG_UESP).
GREG_UC: dict[int, int] = {
    _REG_EDI: X.UC_X86_REG_EDI, _REG_ESI: X.UC_X86_REG_ESI, _REG_EBP: X.UC_X86_REG_EBP,
    _REG_EBX: X.UC_X86_REG_EBX, _REG_EDX: X.UC_X86_REG_EDX, _REG_ECX: X.UC_X86_REG_ECX,
    _REG_EAX: X.UC_X86_REG_EAX, _REG_EIP: X.UC_X86_REG_EIP, _REG_EFL: X.UC_X86_REG_EFLAGS,
    _REG_UESP: X.UC_X86_REG_ESP,
}
_GREG_IDX = tuple(GREG_UC)
_GREG_IDS = tuple(GREG_UC.values())
_I_EAX = _GREG_IDS.index(X.UC_X86_REG_EAX)
_I_EFL = _GREG_IDS.index(X.UC_X86_REG_EFLAGS)
_I_ESP = _GREG_IDS.index(X.UC_X86_REG_ESP)

# The TLS base as a readable register: see the module comment.
TLS_SHADOW = X.UC_X86_REG_DR0
MSR_GSBASE = 0xC0000101

# ucontext_t (sys/ucontext.h + i386 mcontext.h): 776 bytes (__UCONTEXT_SIZE),
# checked with zig: uc_sigmask at 8, uc_stack at 24, uc_mcontext at 36.
UC_FLAGS_OFF = 0
UC_LINK_OFF = 4
UC_SIGMASK_OFF = 8
UC_STACK_OFF = 24             # stack_t: ss_sp, ss_size, ss_flags
UC_MCONTEXT_OFF = 36
M32 = 0xFFFFFFFF
MC_FPREGS_OFF = UC_MCONTEXT_OFF + 4 * NGREG      # 112: fxsave area (512) + 33 ints
MC_TLSBASE_OFF = MC_FPREGS_OFF + 512 + 33 * 4    # 756
UCONTEXT_SIZE = 776

_UC_SIGMASK, _UC_STACK, _UC_CPU, _UC_FPU = 0x1, 0x2, 0x4, 0x8
_UC_FXSAVE = 0x20             # _UC_MD_BIT5
_UC_SETSTACK = 0x00010000     # _UC_MD_BIT16
_UC_CLRSTACK = 0x00020000     # _UC_MD_BIT17
_UC_VM = 0x00040000           # _UC_MD_BIT18 (sendsig_siginfo sets it)
_UC_TLSBASE = 0x00080000      # _UC_MD_BIT19

PSL_C, PSL_MBO, PSL_I = 0x1, 0x2, 0x200
PSL_USERSET = PSL_MBO | PSL_I
PSL_USERSTATIC = PSL_MBO | 0xFFC08028 | PSL_I | 0x3000 | 0x4000 | 0x20000 | 0x80000 | 0x100000
PSL_USER = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x800 | 0x400 | 0x40000
PSL_CLEARSIG = 0x100 | 0x20000 | 0x40000 | 0x400      # PSL_T | PSL_VM | PSL_AC | PSL_D

# Selectors (segments.h): GSEL(s, SEL_UPL) = s << 3 | 3; LSEL adds SEL_LDT (4).
SEL_UPL = 3
GUCODE_SEL, GUDATA_SEL, GUFS_SEL, GUGS_SEL = 3, 4, 21, 22
LUCODE_SEL, LUDATA_SEL = 2, 3
USER_GS = GUGS_SEL << 3 | SEL_UPL          # 0xb3
USER_FS = GUFS_SEL << 3 | SEL_UPL          # 0xab
USER_CS = LUCODE_SEL << 3 | 4 | SEL_UPL    # 0x17 (setregs: LSEL(LUCODE_SEL))
USER_DS = LUDATA_SEL << 3 | 4 | SEL_UPL    # 0x1f (setregs: LSEL(LUDATA_SEL))
SIG_CS = GUCODE_SEL << 3 | SEL_UPL         # buildcontext: GSEL(GUCODE_SEL)
SIG_DS = GUDATA_SEL << 3 | SEL_UPL

PAGE_SIZE = 4096
# vmparam.h without PAE: (PDIR_SLOT_PTE = 767) << L2_SHIFT (22) - PAGE_SIZE.
VM_MAXUSER_ADDRESS = (767 << 22) - PAGE_SIZE        # 0xbfbff000
__INITIAL_NPXCW__ = 0x37F
__INITIAL_MXCSR__ = 0x1F80

# sys/siginfo.h on ILP32: signo, code, errno at 0/4/8, the reason union at 12;
# sizeof(siginfo_t) = 128, sizeof(struct _ksiginfo) = 92 (checked with zig).
_SI_REASON_OFF = 12
# machine/frame.h struct sigframe_siginfo: sf_ra, sf_signum, sf_sip, sf_ucp,
# sf_si, sf_uc.
_SF_HEAD = 16


class I386(Abi):
    name = "i386"
    machine = "i386"           # NetBSD's MACHINE
    machine_arch = "i386"      # MACHINE_ARCH
    elf_machine = 3            # EM_386
    elf_class = 32
    page_size = PAGE_SIZE
    uspace = 3 * PAGE_SIZE    # UPAGES 3 (DIAGNOSTIC); the engine's context: 5,608 bytes
    # Saved context at the u-area's start (Unicorn's CPU state after a 40-byte header).
    uarea_regs = {n: (40 + 8 * i, 4) for i, n in enumerate(
        "eax ecx edx ebx esp ebp esi edi".split())} | {"eip": (168, 4)}
    word_size = 4
    maxcpus = 32              # MAXCPUS (machine/param.h): the kernel's CPU-set size
    int64_align = 4            # i386 aligns long long / int64_t members to 4
    alignbytes = 3             # ALIGNBYTES (machine/param.h: sizeof(int) - 1)
    usrstack = VM_MAXUSER_ADDRESS
    vm_maxuser_address = VM_MAXUSER_ADDRESS
    dflssiz = 2 * 1024 * 1024
    maxssiz = 64 * 1024 * 1024
    dfldsiz = 256 * 1024 * 1024
    maxdsiz = 3 * 1024 * 1024 * 1024
    ucontext_size = UCONTEXT_SIZE
    syscall_insn_len = 2       # cd 80
    uc_arch = UC_ARCH_X86
    uc_mode = UC_MODE_32
    pc_reg = X.UC_X86_REG_EIP
    sp_reg = X.UC_X86_REG_ESP
    trap_kind = "intr"
    trap_intno = 0x80
    trap_pc_offset = 2         # EIP is past `int $0x80` inside the hook
    # eax (number), esp (arguments), eflags (carry), edx (rval[1] starts from it)
    syscall_in_regs = (X.UC_X86_REG_EAX, X.UC_X86_REG_ESP, X.UC_X86_REG_EFLAGS,
                       X.UC_X86_REG_EDX)
    rv1_index = 3
    syscall_out_regs = (X.UC_X86_REG_EAX, X.UC_X86_REG_EDX, X.UC_X86_REG_EFLAGS)
    report_regs = tuple((n, getattr(X, "UC_X86_REG_" + n.upper())) for n in (
        "eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags")) + (
        ("gs_base", TLS_SHADOW),)
    # Unwinding (crash reports): i386 SysV DWARF numbers; `call` pushes the return address.
    dwarf_regs = {0: "eax", 1: "ecx", 2: "edx", 3: "ebx", 4: "esp", 5: "ebp", 6: "esi", 7: "edi",
                  8: "eip"}
    frame_regs = ("eip", "esp", "ebp")
    ra_on_stack = True
    go_lwp_tramp_fn_reg = X.UC_X86_REG_ESI   # Go's runtime.lwp_tramp: the start function

    # gdb's view of the port: how each register of its target.xml (base.Abi) is read
    def gdb_reg_map(self) -> dict[str, tuple[str, int, int]]:
        return _gdb_reg_map()

    gdb_fpsw_reg = X.UC_X86_REG_FPSW

    # -- system calls ----------------------------------------------------
    def nreg_args(self) -> int:
        return 0

    def decode_syscall(self, vals: list[int]) -> tuple[int, list[int], int]:
        return vals[0], [], (vals[1] + 4) & 0xFFFFFFFF

    def encode_return(self, vals: list[int], error: int, rv0: int, rv1: int) -> list[int]:
        fl = vals[2]
        if error:
            return [error, vals[3], fl | PSL_C]
        return [rv0 & 0xFFFFFFFF, rv1 & 0xFFFFFFFF, fl & ~PSL_C]

    def tls_reg(self) -> int:
        return TLS_SHADOW

    def set_tls(self, plat, l, value: int) -> None:
        """Load l's %gs base (x86_set_sdbase32) and its readable shadow."""
        value &= 0xFFFFFFFF

        def load(uc) -> None:
            uc.msr_write(MSR_GSBASE, value)
            uc.reg_write(TLS_SHADOW, value)
        plat.with_live_regs(l, load)

    # CPU exceptions are x86's, as on amd64 (trap.c shares T_* numbers).
    trap_signal = amd64.Amd64.trap_signal
    fault_siginfo = amd64.Amd64.fault_siginfo

    def capstone_arch_mode(self) -> tuple[int, int]:
        import capstone
        return capstone.CS_ARCH_X86, capstone.CS_MODE_32

    # -- exec --------------------------------------------------------------
    def setregs(self, entry: int, sp: int, ps_strings: int) -> dict[int, int]:
        # machdep.c setregs(): edi esi ebp edx ecx eax = 0, ebx = ps_strings,
        # eip = entry, eflags = PSL_USERSET, esp = stack; l_private = 0;
        # fpu_clear with __INITIAL_NPXCW__.
        regs = {r: 0 for r in _GREG_IDS}
        regs.update({X.UC_X86_REG_EBX: ps_strings, X.UC_X86_REG_ESP: sp,
                     X.UC_X86_REG_EIP: entry, X.UC_X86_REG_EFLAGS: PSL_USERSET,
                     TLS_SHADOW: 0, X.UC_X86_REG_FPCW: __INITIAL_NPXCW__,
                     X.UC_X86_REG_MXCSR: __INITIAL_MXCSR__})
        return regs

    # -- ucontext / mcontext ---------------------------------------------
    def unpack_mcontext_gregs(self, uc_bytes: bytes) -> list[int]:
        return list(struct.unpack_from(f"<{NGREG}I", uc_bytes, UC_MCONTEXT_OFF))

    def cpu_mcontext_validate(self, gregs: list[int]) -> bool:
        """machdep.c: the static eflags bits unchanged, a user-mode %cs."""
        if (gregs[_REG_EFL] ^ PSL_USERSET) & PSL_USERSTATIC:
            return False
        return gregs[_REG_CS] & 3 == SEL_UPL

    def mcontext_regs(self, uc_bytes: bytes, flags: int) -> tuple[list[int], list[int]]:
        """(register ids, values) cpu_setmcontext loads. The TLS base
        (_UC_TLSBASE) is not among them: the kernel calls set_tls."""
        ids: list[int] = []
        vals: list[int] = []
        if flags & _UC_CPU:
            g = self.unpack_mcontext_gregs(uc_bytes)
            for idx, rid in zip(_GREG_IDX, _GREG_IDS):
                v = g[idx]
                if idx == _REG_EFL:    # only the user-alterable part of eflags
                    v = (PSL_USERSET & ~PSL_USER) | (v & PSL_USER)
                ids.append(rid)
                vals.append(v)
        if flags & _UC_FPU:
            fcw = struct.unpack_from("<H", uc_bytes, MC_FPREGS_OFF)[0]
            ids.append(X.UC_X86_REG_FPCW)
            vals.append(fcw)
            if flags & _UC_FXSAVE:
                mxcsr = struct.unpack_from("<I", uc_bytes, MC_FPREGS_OFF + 24)[0]
                ids.append(X.UC_X86_REG_MXCSR)
                vals.append(mxcsr & 0xFFFF)
        return ids, vals

    def fpu_xmm_from_mcontext(self, uc_bytes: bytes) -> list[tuple[int, int]]:
        """(xmm register id, 128-bit value) pairs of the fxsave area (8 on i386)."""
        if not self.ucontext_flags(uc_bytes) & _UC_FXSAVE:
            return []
        out = []
        for i in range(8):
            lo, hi = struct.unpack_from("<QQ", uc_bytes, MC_FPREGS_OFF + 160 + 16 * i)
            out.append((X.UC_X86_REG_XMM0 + i, lo | (hi << 64)))
        return out

    # machine/ptrace.h (i386); struct reg: eax ecx edx ebx esp ebp esi edi eip
    # eflags cs ss ds es fs gs (its esp is the user's: _REG_UESP); struct fpreg
    # is struct save87 (fsave: 28-byte environment, then ST(0)..ST(7)).
    ptrace_machdep = {32: "STEP", 33: "GETREGS", 34: "SETREGS", 35: "GETFPREGS",
                      36: "SETFPREGS", 37: "GETXMMREGS", 38: "SETXMMREGS", 39: "GETDBREGS",
                      40: "SETDBREGS", 41: "SETSTEP", 42: "CLEARSTEP", 43: "GETXSTATE",
                      44: "SETXSTATE"}
    ptrace_reg_slots = (_REG_EAX, _REG_ECX, _REG_EDX, _REG_EBX, _REG_UESP, _REG_EBP, _REG_ESI,
                        _REG_EDI, _REG_EIP, _REG_EFL, _REG_CS, _REG_SS, _REG_DS, _REG_ES,
                        _REG_FS, _REG_GS)
    mcontext_gregs_off = UC_MCONTEXT_OFF
    ptrace_fpreg_size = 108

    def ptrace_fpreg(self, plat, l) -> bytes:
        from .amd64 import fxsave_read
        fx = fxsave_read(plat, l, 8)
        cw, sw, ftw, fop, fip, fdp = struct.unpack_from("<HHBxHQQ", fx, 0)
        tw = sum(3 << (2 * i) for i in range(8) if not ftw >> i & 1)   # 11: empty
        env = struct.pack("<HxxHxxHxxIHHII", cw, sw, tw, fip & M32, USER_CS, fop,
                          fdp & M32, USER_DS)
        return env + b"".join(fx[32 + 16 * i:42 + 16 * i] for i in range(8))

    def ptrace_setfpreg(self, plat, l, data: bytes) -> None:
        from .amd64 import fxsave_read, fxsave_write
        cw, sw, tw, fip, _cs, fop, fdp = struct.unpack_from("<HxxHxxHxxIHHI", data, 0)
        fx = bytearray(fxsave_read(plat, l, 8))
        ftw = sum(1 << i for i in range(8) if (tw >> (2 * i)) & 3 != 3)
        struct.pack_into("<HHBxHQQ", fx, 0, cw, sw, ftw, fop & 0x7FF, fip, fdp)
        for i in range(8):
            fx[32 + 16 * i:42 + 16 * i] = data[28 + 10 * i:38 + 10 * i]
        fxsave_write(plat, l, bytes(fx), 8)

    def getmcontext_ids(self) -> tuple[int, ...]:
        return _GREG_IDS + (TLS_SHADOW, X.UC_X86_REG_FPCW, X.UC_X86_REG_MXCSR)

    def build_ucontext(self, vals: list[int], sigmask: tuple[int, int, int, int],
                       stack: tuple[int, int, int], xmm: bytes | None) -> bytes:
        """A ucontext_t as cpu_getmcontext() fills it (values of getmcontext_ids)."""
        buf = bytearray(UCONTEXT_SIZE)
        flags = _UC_SIGMASK | _UC_STACK | _UC_CPU | _UC_TLSBASE
        g = [0] * NGREG
        for idx, v in zip(_GREG_IDX, vals[:len(_GREG_IDX)]):
            g[idx] = v & 0xFFFFFFFF
        g[_REG_ESP] = g[_REG_UESP]
        g[_REG_EFL] = (g[_REG_EFL] & ~PSL_USERSTATIC) | PSL_USERSET
        g[_REG_GS], g[_REG_FS] = USER_GS, USER_FS
        g[_REG_ES] = g[_REG_DS] = g[_REG_SS] = USER_DS
        g[_REG_CS] = USER_CS
        n = len(_GREG_IDX)
        tls, fcw, mxcsr = vals[n], vals[n + 1], vals[n + 2]
        struct.pack_into(f"<{NGREG}I", buf, UC_MCONTEXT_OFF, *g)
        struct.pack_into("<I", buf, MC_TLSBASE_OFF, tls & 0xFFFFFFFF)
        struct.pack_into("<H", buf, MC_FPREGS_OFF, fcw & 0xFFFF)
        struct.pack_into("<II", buf, MC_FPREGS_OFF + 24, mxcsr & 0xFFFFFFFF, 0xFFFF)
        if xmm is not None:              # fxsave's XMM area: 16 bytes each
            flags |= _UC_FPU | _UC_FXSAVE
            buf[MC_FPREGS_OFF + 160:MC_FPREGS_OFF + 160 + len(xmm)] = xmm
        struct.pack_into("<I", buf, UC_FLAGS_OFF, flags)
        struct.pack_into("<4I", buf, UC_SIGMASK_OFF, *sigmask)
        sp, size, ssflags = stack
        struct.pack_into("<IIi", buf, UC_STACK_OFF, sp & 0xFFFFFFFF, size & 0xFFFFFFFF, ssflags)
        return bytes(buf)

    def set_syscall_success_in_gregs(self, vals: list[int]) -> None:
        """getcontext's saved registers resume as a successful call returning 0."""
        vals[_I_EAX] = 0
        vals[_I_EFL] &= ~PSL_C

    # -- signals: siginfo_t, the signal frame -------------------------------
    siginfo_size = 128
    ksiginfo_size = 92
    sigframe_size = _SF_HEAD + 128 + UCONTEXT_SIZE
    uc_setstack = _UC_SETSTACK
    uc_clrstack = _UC_CLRSTACK
    uc_fpu = _UC_FPU

    def pack_siginfo(self, ksi) -> bytes:
        """A siginfo_t from a kernel ksiginfo (faults: addr/trap; others:
        pid/uid/value), ILP32 layout."""
        buf = bytearray(self.siginfo_size)
        struct.pack_into("<iii", buf, 0, ksi.signo, ksi.code, ksi.errno)
        if ksi.fault:
            struct.pack_into("<Iiii", buf, _SI_REASON_OFF, ksi.addr & 0xFFFFFFFF, ksi.trap,
                             ksi.trap2, ksi.trap3)
        else:
            struct.pack_into("<iII", buf, _SI_REASON_OFF, ksi.pid, ksi.uid & 0xFFFFFFFF,
                             ksi.value & 0xFFFFFFFF)
        return bytes(buf)

    def sendsig_vregs(self) -> tuple[int, ...]:
        return tuple(X.UC_X86_REG_XMM0 + i for i in range(8))

    def sendsig_frame(self, vals: list[int], xmm: bytes, siginfo: bytes,
                      sigmask: tuple[int, int, int, int], was_onstack: bool,
                      alt_top: int | None, handler: int, tramp: int, sig: int,
                      trapno: int = 0, err: int = 0):
        """sendsig_siginfo(): a struct sigframe_siginfo right below the
        interrupted %esp (or the top of the alternate stack), no alignment;
        the handler runs as if called by sf_ra (the trampoline) with
        (signum, sip, ucp) as its stack arguments."""
        sp = alt_top if alt_top is not None else vals[_I_ESP]
        fp = (sp - self.sigframe_size) & 0xFFFFFFFF
        uc = bytearray(self.build_ucontext(vals, sigmask, (0, 0, 0), xmm))
        flags = _UC_SIGMASK | _UC_VM | _UC_CPU | _UC_TLSBASE | _UC_FPU | _UC_FXSAVE
        flags |= _UC_SETSTACK if was_onstack else _UC_CLRSTACK
        struct.pack_into("<I", uc, UC_FLAGS_OFF, flags)
        struct.pack_into("<II", uc, UC_MCONTEXT_OFF + 4 * _REG_TRAPNO, trapno & 0xFFFFFFFF,
                         err & 0xFFFFFFFF)
        sip = fp + _SF_HEAD
        ucp = sip + self.siginfo_size
        frame = struct.pack("<IiII", tramp, sig, sip, ucp) + siginfo + bytes(uc)
        # buildcontext(): eip = catcher, esp = fp, eflags &= ~PSL_CLEARSIG,
        # fpu_sigreset (default control words, cleared registers).
        eflags = vals[_I_EFL]
        ids = [X.UC_X86_REG_EIP, X.UC_X86_REG_ESP, X.UC_X86_REG_EFLAGS,
               X.UC_X86_REG_FPCW, X.UC_X86_REG_MXCSR]
        nvals = [handler, fp, (eflags & ~PSL_CLEARSIG) | PSL_MBO, __INITIAL_NPXCW__,
                 __INITIAL_MXCSR__]
        vids = list(self.sendsig_vregs())
        return fp, frame, ids, nvals, vids, [0] * len(vids)

    def ucontext_tlsbase(self, uc_bytes: bytes) -> int | None:
        if self.ucontext_flags(uc_bytes) & _UC_TLSBASE:
            return struct.unpack_from("<I", uc_bytes, MC_TLSBASE_OFF)[0]
        return None


# -- gdb's view (emu/gdb_regs.py): the target description and the register map ----------

def _gdb_reg_map() -> dict[str, tuple[str, int, int]]:
    """As amd64's, plus kinds 'const' (the value arg, writes ignored) and 'tls'
    (batched read, written through abi.set_tls). Unicorn's selectors stay 0 in
    nbemu: gdb sees the user selectors NetBSD loads (as mcontexts show them).
    %gs base: read from its DR0 shadow, written through the IA32_GS_BASE MSR
    (guest/arch/i386.py)."""
    from unicorn import x86_const as X
    m: dict[str, tuple[str, int, int]] = {}
    for n in "eax ecx edx ebx esp ebp esi edi eip eflags mxcsr".split():
        m[n] = ("int", getattr(X, "UC_X86_REG_" + n.upper()), 0)
    for n, v in (("cs", USER_CS), ("ss", USER_DS), ("ds", USER_DS),
                 ("es", USER_DS), ("fs", USER_FS), ("gs", USER_GS)):
        m[n] = ("const", 0, v)
    m.update(amd64.gdb_x87_sse_map(8))
    m["fs_base"] = ("const", 0, 0)          # NetBSD/i386 TLS uses %gs only
    m["gs_base"] = ("tls", TLS_SHADOW, 0)
    return m


ABI = I386()
