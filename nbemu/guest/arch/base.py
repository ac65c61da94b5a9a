"""The interface every per-architecture ABI implements.

An Abi knows registers, trap conventions and structure layouts of one NetBSD
port. The kernel (syscalls/) calls it with a `RegisterFile` (live engine or an
LWP's saved context, provided by emu/) and never tests the architecture.

`Abi` is a complete typing.Protocol: every member that the kernel, the loader
or emu/ uses is declared here, so nobody probes a port with getattr. The ports
(amd64.py, aarch64.py, i386.py, arm.py) subclass it and inherit the defaults
written here; tests/test_layering.py checks that each port defines the rest.
"""
from __future__ import annotations

import struct
from typing import Any, Protocol, Sequence

_U32 = struct.Struct("<I").unpack_from


class NparkTrap:
    """Where a port's trap (its syscall_in_regs values, + the appended
    instruction word) holds what the native park path reads (nbhook.c np_trap):
    the call's number -- a register's index, or (sysno_idx -1) the trapping
    instruction word's immediate, (word >> insn_shift) & insn_mask, whose bits
    under os_mask must be 0 or os_val --; the instruction-set register's index
    and the bit of a mode whose calls are left to the kernel (thumb_idx -1:
    none); the indexes of _lwp_unpark's target (arg_idx[0]) and ___lwp_park60's
    ts and unpark (arg_idx[2], arg_idx[3]), of the flags and their error bit;
    and the bits of a register that count (32-bit ports: the low half)."""

    __slots__ = ("sysno_idx", "insn_shift", "insn_mask", "os_mask", "os_val", "thumb_idx",
                 "thumb_bit", "arg_idx", "flags_idx", "carry", "word_mask")

    def __init__(self, arg_idx: tuple[int, ...], flags_idx: int, carry: int,
                 sysno_idx: int = -1, insn_shift: int = 0, insn_mask: int = 0,
                 os_mask: int = 0, os_val: int = 0, thumb_idx: int = -1, thumb_bit: int = 0,
                 word_mask: int = (1 << 64) - 1) -> None:
        self.sysno_idx, self.insn_shift, self.insn_mask = sysno_idx, insn_shift, insn_mask
        self.os_mask, self.os_val = os_mask, os_val
        self.thumb_idx, self.thumb_bit = thumb_idx, thumb_bit
        self.arg_idx, self.flags_idx, self.carry = arg_idx, flags_idx, carry
        self.word_mask = word_mask


class RegisterFile(Protocol):
    """Register access as emu/ provides it: ids are Unicorn register ids of the ABI."""

    def get(self, ids: Sequence[int]) -> list[int]: ...
    def set(self, ids: Sequence[int], vals: Sequence[int]) -> None: ...


class Abi(Protocol):
    name: str                 # nbemu's name of the port: "amd64", "earmv7hf"
    machine: str              # NetBSD's MACHINE (hw.machine, uname -m): "amd64", "evbarm"
    machine_arch: str         # hw.machine_arch (MACHINE_ARCH): "x86_64"
    maxcpus: int              # MAXCPUS (machine/param.h): the size of a kernel CPU set
    elf_machine: int
    elf_class: int            # 64 or 32
    page_size: int
    word_size: int            # sizeof(long) == sizeof(void *): 8 (LP64) or 4 (ILP32)
    int64_align: int = 8      # alignment of 64-bit integers inside structs (i386: 4)
    alignbytes: int = 7       # ALIGNBYTES (hw.alignbytes): i386 3
    usrstack: int             # USRSTACK: top of the main thread's stack
    vm_maxuser_address: int
    dflssiz: int              # stack rlimit: default and maximum
    maxssiz: int
    dfldsiz: int              # data rlimit
    maxdsiz: int
    ucontext_size: int        # sizeof(ucontext_t)
    syscall_insn_len: int     # bytes to back up to restart a system call
    uc_arch: int
    uc_mode: int
    pc_reg: int
    sp_reg: int
    # Registers read at every system call, in the order decode_syscall expects.
    syscall_in_regs: tuple[int, ...]
    # Index in syscall_in_regs of the second result register (rdx, x1, edx, r1):
    # retval[1] starts from its value, as NetBSD's syscall() does, so calls that
    # set only retval[0] leave it unchanged.
    rv1_index: int = 3
    # Registers written back on return (set_return produces their values).
    syscall_out_regs: tuple[int, ...]
    # (system-call number, flags' index in syscall_in_regs, error bit) of the native
    # trap's clock_gettime fast path (emu/native/nbhook.c); None: no fast path.
    fast_clock_trap: tuple[int, int, int] | None = None
    # The native park path's trap (emu/npark.py, nbhook.c np_trap); None: no
    # such path (i386, whose arguments are all on the stack).
    npark_trap: "NparkTrap | None" = None
    # The u-area (machine/param.h USPACE: bytes per LWP of the kernel arena) and
    # where its saved user context keeps each register while the LWP is off its
    # CPU: gdb register name -> (offset in the u-area, bytes). The context is
    # the engine's saved CPU state at the u-area's start (emu/machine.py
    # uarea_save), so this is that state's layout: a debugger reads a parked
    # LWP's registers there (emu/gdb_regs.py); tests/test_uarea.py checks it.
    uspace: int
    uarea_regs: dict[str, tuple[int, int]]
    # Registers of a crash report, with their names.
    report_regs: tuple[tuple[str, int], ...]
    # Unwinding (emu/crash.py backtraces): the psABI's DWARF register numbers ->
    # report_regs names; the (pc, sp, frame pointer) names -- [fp] is the caller's
    # fp and [fp + word] the return address on every port; whether a call pushes
    # the return address (else it is in a link register until the callee saves it).
    dwarf_regs: dict[int, str]
    frame_regs: tuple[str, str, str]
    ra_on_stack: bool
    # The register Go's runtime.lwp_tramp takes the new LWP's real start function
    # in (its lwp_mcontext_init): emu/timeline.py labels Go's Ms with it.
    go_lwp_tramp_fn_reg: int
    # The x87 status word register where there is an x87 (gdb's st<i> are
    # relative to its TOP field), else None.
    gdb_fpsw_reg: int | None = None
    # How a system call traps. "insn": a UC_HOOK_INSN on `uc_hook_syscall_insn`
    # (x86 `syscall`). "intr": a UC_HOOK_INTR exception numbered `trap_intno`
    # (aarch64 `svc`); other exception numbers are faults (trap_signal).
    trap_kind: str = "insn"
    trap_intno: int = -1
    # How far past the syscall instruction's address the PC reads inside the trap
    # hook (x86 insn hook: 0, Unicorn adds the length afterwards; aarch64: 4).
    trap_pc_offset: int = 0
    # True: the trap glue appends the trapping instruction word (read at
    # PC - trap_pc_offset) to the syscall_in_regs values (svc #imm numbers).
    trap_fetch_insn: bool = False
    # A register whose value selects the instruction set (ARM: CPSR, whose T bit
    # means Thumb: a 2-byte svc, and PCs that resume only with bit 0 set); None
    # where there is one instruction set. The three methods below take its value.
    insn_state_reg: int | None = None
    # The bit of insn_state_reg that says the PC runs Thumb code (resume_address
    # sets the start address's bit 0 from it; the native turn, nb_run, too).
    thumb_state_bit: int = 0
    # False where Unicorn cannot write the PC of a saved context (ARM: it crashes);
    # the Machine then keeps such a PC aside until the LWP is loaded.
    context_pc_writable: bool = True
    # The x86 instruction a UC_HOOK_INSN traps on (trap_kind "insn" only).
    uc_hook_syscall_insn: int = 0
    # Signals and contexts: sizeof(siginfo_t) as copied out, the uc_flags bits
    # of a saved FPU (_UC_FPU) and of the signal stack (_UC_SETSTACK / _UC_CLRSTACK).
    ksiginfo_size: int
    uc_fpu: int
    uc_setstack: int
    uc_clrstack: int

    def syscall_insn_size(self, state: int) -> int:
        """Bytes to back up to restart a system call (syscall_insn_len)."""
        return self.syscall_insn_len

    def trap_pc_past(self, state: int) -> int:
        """How far past the system-call instruction the PC reads in the trap hook."""
        return self.trap_pc_offset

    def resume_address(self, pc: int, state: int) -> int:
        """The address to give uc_emu_start / a PC write to resume at pc."""
        return pc

    def gdb_target_xml(self) -> bytes:
        """gdb's target description of the port (target.xml): the order of its
        <reg>s is gdb's register numbering and the 'g' packet's layout.  Every
        port's is written from the one description in gdb_target.py."""
        from .gdb_target import target_xml
        xml = target_xml(self.name)
        assert xml is not None, f"no gdb target description for {self.name}"
        return xml

    def gdb_reg_map(self) -> dict[str, tuple[str, int, int]]:
        """gdb register name -> (kind, Unicorn id, arg), for emu/gdb_regs.py.
        Kinds: 'int' (batched), 'ro' (batched, writes ignored), 'ftag' (x87 tag
        word translated), 'st' (x87 register arg relative to TOP), 'wide' (raw
        bytes), 'const' (the value arg, writes ignored), 'tls' (batched read,
        written through set_tls)."""
        ...

    def return_pc(self, ra: int) -> int:
        """The PC a return address resumes at (ARM: without the Thumb bit)."""
        return ra

    def init_engine(self, uc: object) -> None:
        """One-time set-up of a new Unicorn engine before any LWP runs (e.g. i386's
        descriptor table for %gs, ARM's VFP enable). Default: nothing."""

    def decode_syscall(self, vals: list[int]) -> tuple[int, list[int], int]:
        """From syscall_in_regs values: (code, register args, stack pointer for more args)."""
        raise NotImplementedError

    def nreg_args(self) -> int:
        raise NotImplementedError

    def encode_return(self, vals: list[int], error: int, rv0: int, rv1: int) -> list[int]:
        """Values for syscall_out_regs after a system call (vals: syscall_in_regs values)."""
        raise NotImplementedError

    def setregs(self, entry: int, sp: int, ps_strings: int) -> dict[int, int]:
        """The first LWP's registers at exec, as the port's setregs() sets them."""
        raise NotImplementedError

    def tls_reg(self) -> int:
        raise NotImplementedError

    def cpu_lwp_setprivate(self, ptr: int) -> int:
        """cpu_lwp_setprivate()'s machine-dependent check of a TLS base: an errno
        (amd64's x86_set_sdbase: EINVAL at or above VM_MAXUSER_ADDRESS) or 0.
        Default: any value (aarch64, arm, i386)."""
        return 0

    # -- faults and reports ----------------------------------------------------
    def trap_signal(self, intno: int) -> tuple[int, str]:
        """Signal and description of a CPU exception (Unicorn interrupt number)."""
        ...

    def fault_siginfo(self, kind: str, addr: int, pc: int, intno: int = -1,
                      access: str = "read") -> tuple[int, int, int, int, int, str]:
        """The port's trap(): (signo, si_code, si_addr, trapno, err, description)
        of a guest fault. kind: "unmapped" / "prot" (a page fault at addr for
        access read/write/exec), "intr" (CPU exception intno), "invalid"."""
        ...

    def capstone_arch_mode(self) -> tuple[int, int]:
        """(capstone arch, mode) to disassemble the port's code (crash reports)."""
        ...

    # -- ucontext / mcontext / signal frames ------------------------------------
    def unpack_mcontext_gregs(self, uc_bytes: bytes) -> list[int]:
        """The general registers of a ucontext's mcontext, as stored."""
        ...

    def cpu_mcontext_validate(self, gregs: list[int]) -> bool:
        """cpu_mcontext_validate(): False makes setcontext / _lwp_create EINVAL."""
        ...

    def mcontext_regs(self, uc_bytes: bytes, flags: int) -> tuple[list[int], list[int]]:
        """(register ids, values) to load from a ucontext's mcontext for `flags`."""
        ...

    def fpu_xmm_from_mcontext(self, uc_bytes: bytes) -> list[tuple[int, int]]:
        """(vector register id, 128-bit value) pairs of the mcontext's FPU area."""
        ...

    def getmcontext_ids(self) -> tuple[int, ...]:
        """The registers getcontext / sendsig save (build_ucontext's `vals`)."""
        ...

    # ptrace(2) (syscalls/sys_ptrace.py): the port's machine-dependent requests
    # (machine/ptrace.h: number -> name without "PT_"), struct reg's members as
    # indexes of the mcontext's __gregs (machine/reg.h), where __gregs start in a
    # ucontext, the _UC_* bits PT_SETREGS loads, and sizeof(struct fpreg).
    ptrace_machdep: dict[int, str] = {}
    ptrace_reg_slots: tuple[int, ...] = ()
    mcontext_gregs_off: int = 0
    ptrace_reg_flags: int = 0x4               # _UC_CPU
    ptrace_fpreg_size: int = 0

    def ptrace_reg(self, vals: list[int]) -> bytes | None:
        """struct reg of PT_GETREGS from the values of getmcontext_ids() (as
        process_read_regs fills it: the registers getcontext would save)."""
        if not self.ptrace_reg_slots:
            return None
        g = self.unpack_mcontext_gregs(self.build_ucontext(vals, (0, 0, 0, 0), (0, 0, 0), None))
        m = (1 << 8 * self.word_size) - 1
        fmt = f"<{len(self.ptrace_reg_slots)}{'Q' if self.word_size == 8 else 'I'}"
        return struct.pack(fmt, *[g[i] & m for i in self.ptrace_reg_slots])

    def ptrace_setreg(self, vals: list[int], reg: bytes) -> tuple[list[int], list[int]] | None:
        """PT_SETREGS: (register ids, values) to load from struct reg `reg` over
        the current values `vals` (getmcontext_ids()); None: EINVAL, the values
        fail cpu_mcontext_validate as process_write_regs checks them."""
        uc = bytearray(self.build_ucontext(vals, (0, 0, 0, 0), (0, 0, 0), None))
        g = self.unpack_mcontext_gregs(bytes(uc))
        w = "Q" if self.word_size == 8 else "I"
        new = struct.unpack(f"<{len(self.ptrace_reg_slots)}{w}", reg)
        for i, v in zip(self.ptrace_reg_slots, new):
            g[i] = v
        if not self.cpu_mcontext_validate(g):
            return None
        struct.pack_into(f"<{len(g)}{w}", uc, self.mcontext_gregs_off, *g)
        return self.mcontext_regs(bytes(uc), self.ptrace_reg_flags)

    def ptrace_fpreg(self, plat: Any, l: Any) -> bytes | None:
        """struct fpreg of PT_GETFPREGS, read through the platform; None where
        nbemu has none for the port."""
        return None

    def ptrace_setfpreg(self, plat: Any, l: Any, data: bytes) -> None:
        """PT_SETFPREGS: load struct fpreg `data` (ptrace_fpreg_size bytes)."""

    def build_ucontext(self, vals: list[int], sigmask: tuple[int, ...],
                       stack: tuple[int, int, int], xmm: bytes | None) -> bytes:
        """A ucontext_t from getmcontext_ids() values (xmm: sendsig_vregs() values
        as Platform.vregs_raw gives them, 16 little-endian bytes each; None: no
        FPU state)."""
        ...

    def set_syscall_success_in_gregs(self, vals: list[int]) -> None:
        """getcontext's saved registers resume as a successful call returning 0."""
        ...

    def ucontext_tlsbase(self, uc_bytes: bytes) -> int | None:
        """The TLS base a ucontext carries (_UC_TLSBASE), else None."""
        ...

    def pack_siginfo(self, ksi: Any) -> bytes:
        """A siginfo_t from a kernel ksiginfo (kern_sig.Ksiginfo)."""
        ...

    def sendsig_vregs(self) -> tuple[int, ...]:
        """The 128-bit registers a signal frame saves."""
        ...

    def sendsig_frame(self, vals: list[int], xmm: bytes, siginfo: bytes,
                      sigmask: tuple[int, ...], was_onstack: bool, alt_top: int | None,
                      handler: int, tramp: int, sig: int, trapno: int, err: int
                      ) -> tuple[int, bytes, list[int], list[int], list[int], list[int]]:
        """sendsig_siginfo(): (frame address, frame bytes, register ids and values
        to load, vector register ids and values to load)."""
        ...

    def set_tls(self, plat, l, value: int) -> None:
        """Load l's TLS base (cpu_lwp_setprivate) through the platform. Default:
        one register write; ports whose TLS base is not a plain register
        (i386's %gs segment base) override it."""
        plat.regs_set(l, (self.tls_reg(),), (value,))

    # -- machine-independent layouts, placed by the data model -----------------
    # siginfo_t: _signo, _code, _errno, then the reason union at the first offset
    # its alignment allows (16 on LP64 and on earm, whose union holds 64-bit
    # members; 12 on i386). sys/ucontext.h's head: uc_flags, uc_link (a word
    # each), uc_sigmask (4 x uint32), uc_stack (stack_t: ss_sp, ss_size, ss_flags).
    @property
    def si_reason_off(self) -> int:
        a = max(self.word_size, self.int64_align)
        return (12 + a - 1) & ~(a - 1)

    def unpack_siginfo(self, data: bytes) -> tuple[int, int, int, int, int, int]:
        """(signo, code, errno, pid, uid, value) of a siginfo_t (sigqueueinfo)."""
        signo, code, errno = struct.unpack_from("<iii", data, 0)
        pid, uid, value = struct.unpack_from("<iIQ" if self.word_size == 8 else "<iII", data,
                                             self.si_reason_off)
        return signo, code, errno, pid, uid, value

    def ucontext_flags(self, uc_bytes: bytes) -> int:
        return _U32(uc_bytes, 0)[0]

    def ucontext_sigmask(self, uc_bytes: bytes) -> tuple[int, ...]:
        return struct.unpack_from("<4I", uc_bytes, 2 * self.word_size)

    def ucontext_ss_flags(self, uc_bytes: bytes) -> int:
        """uc_stack.ss_flags (setcontext with _UC_STACK)."""
        return struct.unpack_from("<i", uc_bytes, 4 * self.word_size + 16)[0]

    def mcontext_flags_valid(self, flags: int) -> bool:
        """cpu_setmcontext's machine-dependent test of uc_flags (before it loads
        anything): False makes setcontext EINVAL. Default: every combination."""
        return True

    def ucontext_onstack(self, flags: int) -> bool | None:
        """setcontext: True (_UC_SETSTACK), False (_UC_CLRSTACK) or None; the two
        bits are machine-dependent (uc_setstack, uc_clrstack)."""
        if flags & self.uc_setstack:
            return True
        if flags & self.uc_clrstack:
            return False
        return None
