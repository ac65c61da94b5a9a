"""NetBSD/earmv7hf under nbemu: the trap and engine mechanics Unicorn gives us for
32-bit ARM, the ABI module (guest/arch/arm.py) against NetBSD's headers and
syscall.c, and a real program probing the system-call ABI in ARM and Thumb state
(the shared C and Go fixtures run parametrized in test_c_guest.py / test_go_guest.py).
"""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from unicorn import (UC_ARCH_ARM, UC_ERR_INSN_INVALID, UC_HOOK_INTR, UC_MODE_ARM, Uc,
                     UcError)
from unicorn import arm_const as A

from fixtures.build import REPO_ROOT, build_c, zig_command
from nbemu.guest.arch import arm as AR
from nbemu.guest.arch import for_elf_machine
from tests.guest import run_nbemu

ABI = AR.ABI
BASE = 0x10000


def _engine(code: bytes, init: bool = True) -> Uc:
    uc = Uc(UC_ARCH_ARM, UC_MODE_ARM)
    if init:
        ABI.init_engine(uc)
    uc.mem_map(BASE, 0x1000)
    uc.mem_map(0x20000, 0x1000)
    uc.mem_write(BASE, code)
    uc.reg_write(A.UC_ARM_REG_SP, 0x20800)
    return uc


# -- Unicorn: what the trap hook and the run loop see ---------------------------------
def test_unicorn_svc_arm_and_thumb_pc_past_the_instruction() -> None:
    """svc is exception EXCP_SWI with the PC past it: 4 bytes in ARM state, 2 in
    Thumb; the CPU stays in user mode (the hook replaces the exception entry)."""
    code = struct.pack("<4I", 0xE3A00005,      # mov r0, #5
                       0xEFA00014,             # svc #0xa00014
                       0xE28F4001,             # add r4, pc, #1  (Thumb at +12)
                       0xE12FFF14)             # bx r4
    code += struct.pack("<4H", 0xDF05, 0xBF00, 0xBF00, 0xBF00)   # svc #5; nops
    uc = _engine(code)
    seen = []
    uc.hook_add(UC_HOOK_INTR, lambda uc, intno, u: seen.append(
        (intno, uc.reg_read(A.UC_ARM_REG_PC), uc.reg_read(A.UC_ARM_REG_CPSR))))
    uc.emu_start(BASE, BASE + len(code) - 4)
    assert seen[0] == (AR.EXCP_SWI, BASE + 8, AR.PSR_USR32_MODE)
    assert seen[1] == (AR.EXCP_SWI, BASE + 18, AR.PSR_USR32_MODE | AR.PSR_T_BIT)
    assert ABI.trap_pc_past(seen[0][2]) == 4 and ABI.trap_pc_past(seen[1][2]) == 2


def test_unicorn_pc_writes_carry_the_thumb_state() -> None:
    """A PC write (and uc_emu_start's begin) sets CPSR.T from bit 0: resuming Thumb
    code needs resume_address(); a CPSR write sets T too."""
    uc = _engine(b"\x00\xbf" * 8)
    uc.reg_write(A.UC_ARM_REG_PC, BASE + 5)
    assert uc.reg_read(A.UC_ARM_REG_CPSR) & AR.PSR_T_BIT
    assert uc.reg_read(A.UC_ARM_REG_PC) == BASE + 4
    uc.reg_write(A.UC_ARM_REG_PC, BASE + 4)
    assert not uc.reg_read(A.UC_ARM_REG_CPSR) & AR.PSR_T_BIT
    uc.reg_write(A.UC_ARM_REG_CPSR, AR.PSR_USR32_MODE | AR.PSR_T_BIT)
    assert uc.reg_read(A.UC_ARM_REG_CPSR) & AR.PSR_T_BIT
    assert ABI.resume_address(BASE + 4, AR.PSR_T_BIT) == BASE + 5
    assert ABI.resume_address(BASE + 4, 0) == BASE + 4


def test_unicorn_vfp_and_tpidruro_after_init_engine() -> None:
    """VFP faults until CPACR cp10/cp11 and FPEXC.EN are set (init_engine does);
    TPIDRURO (MRC p15, 0, rX, c13, c0, 3) is readable in user mode and is part
    of a saved context."""
    code = struct.pack("<3I", 0xEE1D0F70,      # mrc p15, 0, r0, c13, c0, 3
                       0xEC400B11,             # vmov d1, r0, r0
                       0xEE300B01)             # vadd.f64 d0, d0, d1
    raw = _engine(code, init=False)
    with pytest.raises(UcError) as e:
        raw.emu_start(BASE, BASE + len(code))
    assert e.value.errno == UC_ERR_INSN_INVALID
    uc = _engine(code)
    assert uc.reg_read(A.UC_ARM_REG_CPSR) & AR.PSR_MODE == AR.PSR_USR32_MODE
    uc.reg_write(AR._TPIDRURO, 0x1234)
    uc.emu_start(BASE, BASE + len(code))
    assert uc.reg_read(A.UC_ARM_REG_R0) == 0x1234
    assert uc.reg_read(A.UC_ARM_REG_D1) == 0x0000123400001234
    ctx = uc.context_save()
    uc.reg_write(AR._TPIDRURO, 0x9999)
    uc.context_restore(ctx)
    assert uc.reg_read(AR._TPIDRURO) == 0x1234
    ctx.reg_write(AR._TPIDRURO, 0x5678)             # a CP register: fine in a context
    uc.context_restore(ctx)
    assert uc.reg_read(AR._TPIDRURO) == 0x5678


def test_unicorn_yield_continues_through_init_engines_hook() -> None:
    """YIELD comes out of Unicorn's ARM loop as an invalid instruction (PC past it);
    init_engine's UC_HOOK_INSN_INVALID lets it continue, an undefined one not."""
    code = struct.pack("<4I", 0xE3A00005, 0xE320F001,   # mov r0, #5; yield
                       0xE2800001, 0xE7F000F0)          # add r0, r0, #1; udf
    with pytest.raises(UcError):
        _engine(code, init=False).emu_start(BASE, BASE + 12)
    uc = _engine(code)
    uc.emu_start(BASE, BASE + 12)
    assert uc.reg_read(A.UC_ARM_REG_R0) == 6
    with pytest.raises(UcError) as e:
        uc.emu_start(BASE + 12, BASE + 16)
    assert e.value.errno == UC_ERR_INSN_INVALID
    assert uc.reg_read(A.UC_ARM_REG_PC) == BASE + 12


def test_unicorn_cannot_write_a_saved_contexts_pc() -> None:
    """Why ABI.context_pc_writable is False: uc_context_reg_write(PC) on ARM
    dereferences a pointer the saved copy does not hold (a host crash). In a child
    process; when a Unicorn release fixes it, this fails and the Machine's
    workaround can go."""
    prog = ("from unicorn import *; from unicorn.arm_const import *\n"
            "uc = Uc(UC_ARCH_ARM, UC_MODE_ARM); uc.mem_map(0x1000, 0x1000); keep = []\n"
            "for i in range(200):\n"
            "    c = uc.context_save(); keep.append(c); c.reg_write(UC_ARM_REG_PC, 0x1000)\n")
    r = subprocess.run([sys.executable, "-c", prog], capture_output=True, timeout=60)
    assert r.returncode != 0
    assert ABI.context_pc_writable is False


# -- the ABI module ---------------------------------------------------------------------
def _in_vals(r: list[int], r12: int = 0, sp: int = 0x7000, cpsr: int = 0x10,
             pc: int = 0x1004, insn: int = 0xEF000000) -> list[int]:
    regs = {A.UC_ARM_REG_R0 + i: v for i, v in enumerate(r)}
    regs.update({A.UC_ARM_REG_R12: r12, A.UC_ARM_REG_SP: sp, A.UC_ARM_REG_CPSR: cpsr,
                 A.UC_ARM_REG_PC: pc})
    return [regs[x] for x in ABI.syscall_in_regs] + [insn]


def test_registered_by_elf_machine() -> None:
    assert for_elf_machine(40) is ABI
    assert (ABI.elf_class, ABI.word_size, ABI.page_size) == (32, 4, 4096)
    assert ABI.usrstack == 0x7FFFF000 and ABI.machine == "evbarm"
    assert ABI.fault_siginfo("prot", 0x20, 0x400000, access="write")[:3] == (11, 2, 0x20)
    assert ABI.fault_siginfo("invalid", 0, 0x400004)[:3] == (4, 1, 0x400004)
    assert ABI.fault_siginfo("intr", 0, 0x400004, AR.EXCP_BKPT)[:3] == (5, 1, 0x400004)


def test_decode_arm_immediate_and_thumb_r0() -> None:
    vals = _in_vals([1, 2, 3, 4], r12=9, insn=0xEFA00000 | 4)
    assert ABI.decode_syscall(vals) == (4, [1, 2, 3, 4], 0x7000)
    assert ABI.decode_syscall(_in_vals([1, 2, 3, 4], insn=0xEF000000 | 20))[0] == 20
    # Thumb: number in r0, first argument in ip; the instruction word is not used.
    thumb = _in_vals([4, 2, 3, 5], r12=1, cpsr=0x30, insn=0xDEADBEEF)
    assert ABI.decode_syscall(thumb) == (4, [1, 2, 3, 5], 0x7000)
    # Other SWI ranges: NetBSD raises SIGILL; here the out-of-table ENOSYS slot.
    assert ABI.decode_syscall(_in_vals([0] * 4, insn=0xEFB00014))[0] == AR.SYS_NSYSENT - 1
    # Stale high bits of the 64-bit trap slots are dropped.
    assert ABI.decode_syscall(_in_vals([1 << 40 | 7, 0, 0, 0], insn=0xEFA00006))[1][0] == 7


def test_encode_return_carry_and_r1() -> None:
    vals = _in_vals([0, 0x55, 0, 0], cpsr=0x60000010)
    assert ABI.encode_return(vals, 9, 0, 0) == [9, 0x55, 0x60000000 | AR.PSR_C_BIT]
    assert ABI.encode_return(vals, 0, -1, 7) == [0xFFFFFFFF, 7, 0x40000000]
    assert ABI.syscall_out_regs[2] == A.UC_ARM_REG_APSR        # no mode bits written


def test_setregs_as_arm_machdep() -> None:
    regs = ABI.setregs(0x10100, 0x7FFFE000, 0x7FFFEFF0)
    assert list(regs)[0] == A.UC_ARM_REG_CPSR                  # mode before sp
    assert regs[A.UC_ARM_REG_CPSR] == AR.PSR_USR32_MODE
    assert regs[A.UC_ARM_REG_R0] == 0x7FFFEFF0                  # ps_strings
    assert regs[A.UC_ARM_REG_R12] == regs[A.UC_ARM_REG_SP] == 0x7FFFE000
    assert regs[A.UC_ARM_REG_LR] == regs[A.UC_ARM_REG_PC] == 0x10100
    assert ABI.setregs(0x10101, 0x7FFFE000, 0)[A.UC_ARM_REG_CPSR] & AR.PSR_T_BIT


def _ctx_vals(**over: int) -> list[int]:
    vals = [0x100 + i for i in range(13)] + [0x7FFF0000, 0x2000, 0x3000, 0x20000010]
    vals += [0xABC, 0x03000000] + [(i << 32) | i for i in range(32)]
    names = {"sp": 13, "pc": 15, "cpsr": 16, "tls": 17}
    for k, v in over.items():
        vals[names[k]] = v
    return vals


def test_ucontext_round_trip_and_validate() -> None:
    vals = _ctx_vals()
    uc = ABI.build_ucontext(vals, (1, 2, 3, 4), (0x5000, 0x1000, 4), None)
    assert len(uc) == AR.UCONTEXT_SIZE == ABI.ucontext_size
    flags = ABI.ucontext_flags(uc)
    assert flags & AR._UC_ARM_VFP and flags & AR._UC_TLSBASE
    assert ABI.ucontext_sigmask(uc) == (1, 2, 3, 4)
    assert ABI.ucontext_ss_flags(uc) == 4
    assert ABI.ucontext_tlsbase(uc) == 0xABC
    ids, got = ABI.mcontext_regs(uc, flags)
    assert dict(zip(ids, got)) == dict(zip(ABI.getmcontext_ids(), vals))
    # The CPSR comes after the PC: its T bit, not the PC's bit 0, decides.
    assert ids.index(A.UC_ARM_REG_CPSR) > ids.index(A.UC_ARM_REG_PC)
    assert ABI.cpu_mcontext_validate(ABI.unpack_mcontext_gregs(uc))
    for bad in (0x13, 0x10 | AR.I32_BIT, 0x10 | AR.F32_BIT):
        uc2 = ABI.build_ucontext(_ctx_vals(cpsr=bad), (0,) * 4, (0, 0, 0), None)
        assert not ABI.cpu_mcontext_validate(ABI.unpack_mcontext_gregs(uc2))


def test_signal_frame_as_sendsig_siginfo() -> None:
    vals = _ctx_vals(sp=0x7FFF0004)
    si = bytes(128)
    fp, frame, ids, nvals, _, _ = ABI.sendsig_frame(vals, b"", si, (0,) * 4, False, None,
                                                   0x20001, 0x30000, 10)
    assert fp == (0x7FFF0004 - 528) & ~7 and len(frame) == 528
    regs = dict(zip(ids, nvals))
    assert regs[A.UC_ARM_REG_R0] == 10 and regs[A.UC_ARM_REG_R1] == fp
    assert regs[A.UC_ARM_REG_R2] == regs[A.UC_ARM_REG_R5] == fp + 128   # libc's r5, Go's sp+0x80
    assert regs[A.UC_ARM_REG_SP] == fp and regs[A.UC_ARM_REG_LR] == 0x30000
    assert regs[A.UC_ARM_REG_PC] == 0x20001 and regs[A.UC_ARM_REG_CPSR] & AR.PSR_T_BIT
    uc = frame[128:]
    assert ABI.ucontext_flags(uc) & AR._UC_CLRSTACK
    assert ABI.unpack_mcontext_gregs(uc)[AR._REG_SP] == 0x7FFF0004


def test_siginfo_ilp32_layout() -> None:
    class K:
        signo, code, errno, fault, pid, uid, value = 10, 0, 0, False, 42, 7, 0xDEAD
    data = ABI.pack_siginfo(K)
    assert len(data) == 128
    assert ABI.unpack_siginfo(data) == (10, 0, 0, 42, 7, 0xDEAD)
    assert struct.unpack_from("<iI", data, 16) == (42, 7)          # union at 16 (EABI)


def test_ucontext_layout_matches_netbsd_headers(tmp_path: Path) -> None:
    """Offsets and flag values compiled from NetBSD's own headers (zig's)."""
    src = tmp_path / "off.c"
    src.write_text("""
#include <sys/types.h>
#include <sys/ucontext.h>
#include <sys/siginfo.h>
#include <stddef.h>
long v[] = { sizeof(ucontext_t), offsetof(ucontext_t, uc_sigmask),
  offsetof(ucontext_t, uc_stack), offsetof(ucontext_t, uc_mcontext),
  offsetof(ucontext_t, uc_mcontext.__fpu.__vfpregs.__vfp_fpscr),
  offsetof(ucontext_t, uc_mcontext.__fpu.__vfpregs.__vfp_fstmx),
  offsetof(ucontext_t, uc_mcontext._mc_tlsbase), _NGREG, _REG_SP, _REG_PC, _REG_CPSR,
  _UC_TLSBASE, _UC_ARM_VFP, _UC_SETSTACK, _UC_CLRSTACK, sizeof(siginfo_t),
  sizeof(struct _ksiginfo), offsetof(siginfo_t, si_pid), offsetof(siginfo_t, si_addr) };
""")
    r = subprocess.run([*zig_command(), "cc", "-target", "arm-netbsd-eabihf",
                        "-ffreestanding", "-S", "-o", str(tmp_path / "off.s"), str(src)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "off.s").read_text().splitlines()
    start = lines.index("v:") + 1
    got = [int(x.split()[1]) for x in lines[start:start + 19]]
    assert got == [AR.UCONTEXT_SIZE, AR.UC_SIGMASK_OFF, AR.UC_STACK_OFF, AR.UC_MCONTEXT_OFF,
                   AR.MC_VFP_OFF, AR.MC_FSTMX_OFF, AR.MC_TLSBASE_OFF, AR.NGREG, AR._REG_SP,
                   AR._REG_PC, AR._REG_CPSR, AR._UC_TLSBASE, AR._UC_ARM_VFP,
                   AR._UC_SETSTACK, AR._UC_CLRSTACK, ABI.siginfo_size, ABI.ksiginfo_size,
                   16, 16]


# -- a real program probing the ABI ---------------------------------------------------------
_PROBE = r"""
/* armprobe: the NetBSD/earmv7hf system-call ABI seen from a program. */
#include "nbrt.h"
#include <sys/siginfo.h>

#define STR2(x) #x
#define STR(x) STR2(x)

struct res { long r0, r1, c; };

/* ARM-state svc with an explicit immediate; r0, r1, r2, ip in; r0, r1, C out */
#define SVC(imm, a0, a1, a2, ip_, r) do {                                     \
	register long r0 __asm__("r0") = (long)(a0);                          \
	register long r1 __asm__("r1") = (long)(a1);                          \
	register long r2 __asm__("r2") = (long)(a2);                          \
	register long r12 __asm__("r12") = (long)(ip_);                       \
	long c_;                                                             \
	__asm__ volatile("svc %[i]\n\tmovcc %[c], #0\n\tmovcs %[c], #1"       \
	    : "+r"(r0), "+r"(r1), [c] "=&r"(c_)                               \
	    : [i] "i"(imm), "r"(r2), "r"(r12) : "memory", "cc");             \
	(r).r0 = r0; (r).r1 = r1; (r).c = c_;                                 \
} while (0)

/* Thumb-state svc: the number in r0, the first argument in ip (syscall.c). */
__attribute__((target("thumb"), noinline)) static void
thumb_svc(long n, long a0, long a1, long a2, struct res *out)
{
	register long r0 __asm__("r0") = n;
	register long r1 __asm__("r1") = a1;
	register long r2 __asm__("r2") = a2;
	register long r12 __asm__("r12") = a0;
	long c_;

	__asm__ volatile("svc #0\n\tite cc\n\tmovcc %[c], #0\n\tmovcs %[c], #1"
	    : "+r"(r0), "+r"(r1), [c] "=&r"(c_) : "r"(r2), "r"(r12) : "memory", "cc");
	out->r0 = r0; out->r1 = r1; out->c = c_;
}

static unsigned long
tpidruro(void)
{
	unsigned long v;

	__asm__ volatile("mrc p15, 0, %0, c13, c0, 3" : "=r"(v));
	return v;
}

/* ---- signals: __sigaction_sigtramp version 2, libc's trampoline (r5 = &uc) ---- */
extern void sig_tramp(void);
__asm__(".text\n.arm\n.globl sig_tramp\nsig_tramp:\n"
    "\tmov r0, r5\n\tsvc #(0xa00000 + " STR(SYS_setcontext) ")\n"
    "\tmov r0, #99\n\tsvc #(0xa00000 + " STR(SYS_exit) ")\n");

static volatile long h_sig, h_si, h_uc, h_sp, h_pid, h_code, h_mode, h_flags;
static volatile int thumb_hits;

static void
h_usr1(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;

	h_sig = sig;
	h_si = (long)si;
	h_uc = (long)uc;
	h_sp = (long)__builtin_frame_address(0);
	h_pid = si->si_pid;
	h_code = si->si_code;
	h_mode = uc->uc_mcontext.__gregs[_REG_CPSR] & 0x1f;
	h_flags = uc->uc_flags;
	uc->uc_mcontext.__gregs[_REG_R1] = 0x5151;	/* back through setcontext */
}

__attribute__((target("thumb"))) static void
h_thumb(int sig, siginfo_t *si, void *ctx)
{
	(void)si; (void)ctx;
	if (sig == SIGUSR2)
		thumb_hits++;
}

static int
sig_install(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	return (int)__syscall5(SYS___sigaction_sigtramp, sig, (long)&sa, 0, (long)sig_tramp, 2);
}

/* A reader blocked in read(2), in ARM or Thumb state, takes a signal: with
 * SA_RESTART the read restarts (pc backs up 4 or 2 bytes over the svc), without
 * it returns EINTR. */
static int pfd[2];
static volatile long read_result;
static char read_buf[2];
static volatile int thumb_reader;

static void
reader(void *arg)
{
	struct res r;

	(void)arg;
	if (thumb_reader)
		thumb_svc(SYS_read, pfd[0], (long)read_buf, 1, &r);
	else
		SVC(0xa00000 | SYS_read, pfd[0], read_buf, 1, 0, r);
	read_result = r.c ? -r.r0 : r.r0;
}

static long
interrupted_read(int thumb, int flags, void *stack, size_t size)
{
	lwpid_t lid;
	long w;

	sig_install(SIGUSR2, h_thumb, flags);
	thumb_reader = thumb;
	read_result = 12345;
	read_buf[0] = 0;
	if (lwp_spawn(reader, NULL, stack, size, 0, &lid) != 0)
		return -1000;
	nbrt_sleep_ms(30);
	_lwp_kill(lid, SIGUSR2);
	nbrt_sleep_ms(30);
	w = write(pfd[1], "z", 1);
	_lwp_wait(lid, NULL);
	if (read_result == -EINTR) {
		char c;
		read(pfd[0], &c, 1);		/* drain */
	}
	return w == 1 ? read_result : -2000;
}

/* ---- LWPs ---- */
static volatile unsigned long child_tls;
static volatile int child_done;

static void
child(void *arg)
{
	(void)arg;
	child_tls = tpidruro();
	nbrt_set_flag(&child_done);
}

int
main(int argc, char **argv, char **envp)
{
	struct res r;
	long pid = getpid();
	char msg[] = "thumb write\n";
	static char stack[16384] __attribute__((aligned(16)));
	ucontext_t uc;
	lwpid_t lid;

	(void)envp;

	if (argc > 1 && strcmp(argv[1], "udf") == 0)
		__asm__ volatile("udf #7");
	if (argc > 1 && strcmp(argv[1], "bkpt") == 0)
		__asm__ volatile("bkpt #3");

	/* ARM state: the number in the svc immediate */
	SVC(0xa00000 | SYS_getpid, 0, 0x77, 0, 0, r);
	CHECK_EQ("svc #0xa00014: getpid", r.r0, pid);
	CHECK_EQ("getpid: C clear", r.c, 0);
	SVC(SYS_getpid, 0, 0, 0, 0, r);
	CHECK_EQ("svc #0x14 (old unofficial range): getpid", r.r0, pid);
	SVC(0xa00000 | SYS_close, 9999, 0x1234, 0, 0, r);
	CHECK_EQ("close(9999): C set", r.c, 1);
	CHECK_EQ("close(9999): r0 = EBADF", r.r0, EBADF);
	CHECK_EQ("close(9999): r1 untouched", r.r1, 0x1234);
	SVC(0xa00000 | SYS_syscall, SYS_getpid, 0, 0, 0, r);
	CHECK_EQ("syscall(SYS_getpid): number in r0", r.r0, pid);
	SVC(0xa00000 | SYS___syscall, SYS_close, 0, 9999, 0, r);
	CHECK_EQ("__syscall(SYS_close, 9999): quad number in r0:r1, fd in r2", r.r0, EBADF);
	CHECK_EQ("__syscall: C set", r.c, 1);
	SVC(0xb00000 | SYS_getpid, 0, 0, 0, 0, r);
	CHECK("svc outside NetBSD's ranges fails", r.c == 1 && r.r0 == ENOSYS);

	/* Thumb state: number in r0, first argument in ip */
	thumb_svc(SYS_write, 1, (long)msg, sizeof(msg) - 1, &r);
	CHECK_EQ("thumb svc: write(ip=1, r1, r2)", r.r0, (long)sizeof(msg) - 1);
	thumb_svc(SYS_close, 9999, 0x4321, 0, &r);
	CHECK("thumb svc: close(9999) = EBADF, C set, r1 kept",
	    r.c == 1 && r.r0 == EBADF && r.r1 == 0x4321);

	/* TLS: TPIDRURO */
	_lwp_setprivate((void *)0x12345678);
	CHECK_EQ("_lwp_setprivate sets TPIDRURO", tpidruro(), 0x12345678);
	CHECK_EQ("_lwp_getprivate", (long)_lwp_getprivate(), 0x12345678);

	/* getcontext */
	memset(&uc, 0, sizeof(uc));
	CHECK_EQ("getcontext", getcontext(&uc), 0);
	CHECK_EQ("getcontext: user mode CPSR", uc.uc_mcontext.__gregs[_REG_CPSR] & 0x3f, 0x10);
	CHECK("getcontext: _UC_CPU|_UC_TLSBASE|_UC_FPU|_UC_ARM_VFP",
	    (uc.uc_flags & (_UC_CPU | _UC_TLSBASE | _UC_FPU | _UC_ARM_VFP)) ==
	    (_UC_CPU | _UC_TLSBASE | _UC_FPU | _UC_ARM_VFP));
	CHECK_EQ("getcontext: _mc_tlsbase", uc.uc_mcontext._mc_tlsbase, 0x12345678);
	CHECK_EQ("getcontext: saved r0 is the call's 0", uc.uc_mcontext.__gregs[_REG_R0], 0);

	/* _lwp_create: CPSR validated; _UC_TLSBASE loads the new LWP's TPIDRURO */
	CHECK_EQ("lwp_makecontext", lwp_makecontext(&uc, child, NULL, stack, sizeof(stack)), 0);
	uc.uc_mcontext.__gregs[_REG_CPSR] = (uc.uc_mcontext.__gregs[_REG_CPSR] & ~0x1f) | 0x13;
	CHECK_EQ("_lwp_create with SVC-mode CPSR: EINVAL", _lwp_create(&uc, 0, &lid), -EINVAL);
	uc.uc_mcontext.__gregs[_REG_CPSR] = (uc.uc_mcontext.__gregs[_REG_CPSR] & ~0x1f) | 0x90;
	CHECK_EQ("_lwp_create with IRQs masked: EINVAL", _lwp_create(&uc, 0, &lid), -EINVAL);
	uc.uc_mcontext.__gregs[_REG_CPSR] &= ~0x80;
	uc.uc_flags |= _UC_TLSBASE;
	uc.uc_mcontext._mc_tlsbase = 0xabc000;
	CHECK_EQ("_lwp_create", _lwp_create(&uc, 0, &lid), 0);
	nbrt_wait_flag(&child_done);
	CHECK_EQ("new LWP's TPIDRURO = _mc_tlsbase", child_tls, 0xabc000);
	CHECK_EQ("_lwp_wait", _lwp_wait(lid, NULL), 0);
	CHECK_EQ("creator's TPIDRURO unchanged", tpidruro(), 0x12345678);

	/* signals: sendsig_siginfo's frame */
	CHECK_EQ("sigaction SIGUSR1", sig_install(SIGUSR1, h_usr1, 0), 0);
	SVC(0xa00000 | SYS_kill, pid, SIGUSR1, 0, 0, r);
	CHECK_EQ("handler ran with signo in r0", h_sig, SIGUSR1);
	CHECK("r1 = &siginfo, r2 = &ucontext = &siginfo + 128",
	    h_si != 0 && h_uc == h_si + 128);
	CHECK_EQ("siginfo: si_pid (reason union at 16)", h_pid, pid);
	CHECK_EQ("siginfo: SI_USER", h_code, SI_USER);
	CHECK_EQ("ucontext: user-mode CPSR", h_mode, 0x10);
	CHECK("ucontext flags: _UC_CPU and _UC_SIGMASK",
	    (h_flags & (_UC_CPU | _UC_SIGMASK)) == (_UC_CPU | _UC_SIGMASK));
	CHECK("kill returned through setcontext with the handler's r1", r.c == 0 &&
	    r.r0 == 0 && r.r1 == 0x5151);
	CHECK_EQ("sigaction SIGUSR2 (Thumb handler)", sig_install(SIGUSR2, h_thumb, 0), 0);
	SVC(0xa00000 | SYS_kill, pid, SIGUSR2, 0, 0, r);
	CHECK_EQ("Thumb handler ran (CPSR.T from the address's bit 0)", thumb_hits, 1);
	CHECK_EQ("back in ARM state after it", tpidruro(), 0x12345678);

	/* ERESTART: the svc again, 4 bytes back in ARM state, 2 in Thumb */
	CHECK_EQ("pipe", pipe(pfd), 0);
	for (int thumb = 0; thumb < 2; thumb++) {
		int before = thumb_hits;

		CHECK_EQ(thumb ? "Thumb SA_RESTART: read restarted" : "ARM SA_RESTART: read restarted",
		    interrupted_read(thumb, SA_RESTART, stack, sizeof(stack)), 1);
		CHECK(thumb ? "Thumb SA_RESTART: the byte" : "ARM SA_RESTART: the byte",
		    read_buf[0] == 'z' && thumb_hits == before + 1);
		CHECK_EQ(thumb ? "Thumb no SA_RESTART: EINTR" : "ARM no SA_RESTART: EINTR",
		    interrupted_read(thumb, 0, stack, sizeof(stack)), -EINTR);
	}
	return nbrt_done();
}
"""


@pytest.fixture(scope="module")
def probe() -> Path:
    # A stable source folder, so that the build cache works across runs.
    src_dir = REPO_ROOT / ".cache" / "test-src" / "arm"
    src_dir.mkdir(parents=True, exist_ok=True)
    src = src_dir / "armprobe.c"
    if not src.exists() or src.read_text() != _PROBE:
        src.write_text(_PROBE)
    return build_c("armprobe", "arm", src_dir=src_dir)


@pytest.mark.parametrize("ncpu", [1, 4])
def test_probe_system_call_abi(probe: Path, ncpu: int) -> None:
    """svc immediates (NetBSD and old ranges, syscall/__syscall), Thumb's r0/ip
    convention, C flag and r1, TPIDRURO through _lwp_setprivate and _UC_TLSBASE,
    getcontext's CPSR, cpu_mcontext_validate, sendsig_siginfo's frame (ARM and
    Thumb handlers, back through libc's r5 trampoline)."""
    r = run_nbemu(probe, opts=("--ncpu", str(ncpu)))
    assert "FAIL" not in r.stdout, r.stdout
    assert r.returncode == 0 and r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)


@pytest.mark.parametrize("what,status,sig,desc", [
    ("udf", 132, "SIGILL", "undefined instruction"),
    ("bkpt", 133, "SIGTRAP", "breakpoint"),
])
def test_exception_signals(probe: Path, what: str, status: int, sig: str, desc: str) -> None:
    r = run_nbemu(probe, what)
    assert r.returncode == status, r.stderr
    assert sig in r.stderr and desc in r.stderr
    assert "=>" in r.stderr and what in r.stderr                 # ARM disassembly
    assert "Traceback" not in r.stderr
