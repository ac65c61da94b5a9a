"""NetBSD/aarch64 under nbemu: the trap mechanics Unicorn gives us, the ABI module
(guest/arch/aarch64.py) against NetBSD's headers and syscall.c, and real programs
(a C program probing the system-call ABI register by register; the shared C and
Go fixtures run parametrized in test_c_guest.py / test_go_guest.py).
"""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM, Uc
from unicorn import arm64_const as A

from fixtures.build import REPO_ROOT, build_c, zig_command
from nbemu.guest.arch import aarch64 as AA
from nbemu.guest.arch import for_elf_machine
from tests.guest import run_nbemu

ABI = AA.ABI


def _svc(imm: int) -> int:
    return 0xD4000001 | (imm << 5)


def _in_vals(x: list[int], x17: int = 0, sp: int = 0x7000, nzcv: int = 0, pc: int = 0x1004,
             insn: int = _svc(0)) -> list[int]:
    """syscall_in_regs values (plus the appended instruction word) for x0..x7 = x."""
    regs = {A.UC_ARM64_REG_X0 + i: v for i, v in enumerate(x)}
    regs.update({A.UC_ARM64_REG_X17: x17, A.UC_ARM64_REG_SP: sp, A.UC_ARM64_REG_NZCV: nzcv,
                 A.UC_ARM64_REG_PC: pc})
    return [regs[r] for r in ABI.syscall_in_regs] + [insn]


# -- Unicorn: what the trap hook sees ------------------------------------------------
def test_unicorn_svc_is_an_interrupt_with_pc_past_the_instruction() -> None:
    """The facts emu/machine.py's "intr" trap path relies on."""
    code = struct.pack("<5I",
                       0xD28000A0,            # movz x0, #5
                       _svc(0x1B5),           # svc #0x1b5
                       0x91000401,            # add x1, x0, #1
                       _svc(0),               # svc #0
                       0xD4200000)            # brk #0
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(0x10000, 0x1000)
    uc.mem_write(0x10000, code)
    seen = []

    def hook(uc, intno, user):
        pc = uc.reg_read(A.UC_ARM64_REG_PC)
        word = struct.unpack("<I", uc.mem_read(pc - 4, 4))[0]
        seen.append((intno, pc, word))
        if len(seen) == 1:                     # a system call's return values
            uc.reg_write(A.UC_ARM64_REG_X0, 100)
            uc.reg_write(A.UC_ARM64_REG_NZCV, AA.NZCV_C)
        elif intno != AA.EXCP_SWI:
            uc.emu_stop()
    uc.hook_add(UC_HOOK_INTR, hook)
    uc.emu_start(0x10000, 0x10000 + len(code))
    assert seen[0] == (AA.EXCP_SWI, 0x10008, _svc(0x1B5))     # PC already past the svc
    assert seen[1][:2] == (AA.EXCP_SWI, 0x10010)
    assert uc.reg_read(A.UC_ARM64_REG_X1) == 101              # resumed after the svc
    assert seen[2][0] == AA.EXCP_BKPT and seen[2][1] == 0x10010  # brk: PC at the insn


# -- the ABI module ---------------------------------------------------------------------
def test_registered_by_elf_machine() -> None:
    assert for_elf_machine(183) is ABI
    assert ABI.elf_class == 64 and ABI.page_size == 4096
    assert ABI.vm_maxuser_address == (1 << 48) - 4096 == ABI.usrstack


def test_decode_svc_immediate() -> None:
    code, args, sp = ABI.decode_syscall(_in_vals(list(range(10, 18)), x17=99,
                                                 insn=_svc(478)))
    assert code == 478 and args == list(range(10, 18)) and sp == 0x7000


@pytest.mark.parametrize("indirect", [0, 198])
def test_decode_indirect_number_in_x17(indirect: int) -> None:
    # syscall.c: SYS_syscall and SYS___syscall take the number from x17 and keep
    # the arguments in x0..x7 (no shift, unlike amd64's first-argument number).
    code, args, _ = ABI.decode_syscall(_in_vals([1, 2, 3, 4, 5, 6, 7, 8], x17=20,
                                                insn=_svc(indirect)))
    assert code == 20 and args == [1, 2, 3, 4, 5, 6, 7, 8]
    code, _, _ = ABI.decode_syscall(_in_vals([0] * 8, x17=512 + 20, insn=_svc(indirect)))
    assert code == 20                                    # code &= SYS_NSYSENT - 1
    code, _, _ = ABI.decode_syscall(_in_vals([0] * 8, x17=198, insn=_svc(0)))
    assert code not in (0, 198)                          # never re-interpreted


def test_encode_return_carry_and_x1() -> None:
    vals = _in_vals([7, 0x1111, 0, 0, 0, 0, 0, 0], nzcv=0x60000000)
    x0, x1, nzcv = ABI.encode_return(vals, 0, 42, 43)
    assert (x0, x1, nzcv) == (42, 43, 0x40000000)        # C cleared, other flags kept
    x0, x1, nzcv = ABI.encode_return(vals, 9, 42, 43)
    assert (x0, x1, nzcv) == (9, 0x1111, 0x60000000)     # errno, x1 untouched, C set
    # The kernel starts rval[1] from vals[3]: for aarch64 that must be x1
    # (NetBSD: rval[1] = tf->tf_reg[1]).
    assert ABI.syscall_in_regs[3] == A.UC_ARM64_REG_X1


def test_setregs_as_exec_machdep() -> None:
    regs = ABI.setregs(0x400100, 0xFFFFFFFFE458, 0xFFFFFFFFEFE0)
    assert regs[A.UC_ARM64_REG_X2] == 0xFFFFFFFFEFE0
    assert regs[A.UC_ARM64_REG_SP] == 0xFFFFFFFFE450
    assert regs[A.UC_ARM64_REG_PC] == 0x400100
    assert all(regs[A.UC_ARM64_REG_X0 + i] == 0 for i in (0, 1, 3, 4, 5))
    assert regs[A.UC_ARM64_REG_NZCV] == 0 and regs[A.UC_ARM64_REG_TPIDR_EL0] == 0


def _ctx_vals(**over: int) -> list[int]:
    ids = ABI.getmcontext_ids()
    vals = [0x1000 + i for i in range(len(ids))]
    named = {A.UC_ARM64_REG_SP: 0x7FFFFFF0, A.UC_ARM64_REG_PC: 0x400200,
             A.UC_ARM64_REG_NZCV: 0x60000000, A.UC_ARM64_REG_TPIDR_EL0: 0xCAFE0,
             A.UC_ARM64_REG_FPCR: 0, A.UC_ARM64_REG_FPSR: 0}
    for rid, v in named.items():
        vals[ids.index(rid)] = v
    for name, v in over.items():
        vals[ids.index(getattr(A, "UC_ARM64_REG_" + name))] = v
    return vals


def test_ucontext_round_trip_and_validate() -> None:
    vals = _ctx_vals()
    ABI.set_syscall_success_in_gregs(vals)
    uc = ABI.build_ucontext(vals, (1, 2, 3, 4), (0, 0, 4), None)
    assert len(uc) == ABI.ucontext_size == 944
    flags = ABI.ucontext_flags(uc)
    assert flags == AA._UC_SIGMASK | AA._UC_STACK | AA._UC_CPU | AA._UC_TLSBASE
    assert ABI.ucontext_sigmask(uc) == (1, 2, 3, 4)
    g = ABI.unpack_mcontext_gregs(uc)
    assert g[0] == 0 and g[AA._REG_SPSR] == 0x40000000  # x0 = 0, C clear: a success
    assert g[AA._REG_TPIDR] == 0xCAFE0
    assert ABI.cpu_mcontext_validate(g)
    ids, out = ABI.mcontext_regs(uc, flags)
    back = dict(zip(ids, out))
    assert back[A.UC_ARM64_REG_PC] == 0x400200 and back[A.UC_ARM64_REG_SP] == 0x7FFFFFF0
    assert back[A.UC_ARM64_REG_TPIDR_EL0] == 0xCAFE0
    # Without _UC_TLSBASE, TPIDR_EL0 is not loaded (cpu_setmcontext).
    ids, _ = ABI.mcontext_regs(uc, AA._UC_CPU)
    assert A.UC_ARM64_REG_TPIDR_EL0 not in ids
    for bad in (dict(spsr=0x3C5), dict(pc=0x400202), dict(sp=0x7FFFFFF8)):
        g2 = list(g)
        g2[{"spsr": AA._REG_SPSR, "pc": AA._REG_PC, "sp": AA._REG_SP}[next(iter(bad))]] = \
            next(iter(bad.values()))
        assert not ABI.cpu_mcontext_validate(g2), bad


def test_signal_frame_as_sendsig_siginfo() -> None:
    vals = _ctx_vals(SP=0x7FFFF000, X28=0x5A5A)
    si = bytes(range(128))
    fp, frame, ids, nvals, vids, _ = ABI.sendsig_frame(
        vals, bytes(16 * 32), si, (5, 0, 0, 0), False, None, 0x401000, 0x402000, 23)
    ucp = 0x7FFFF000 - 944
    assert fp == ucp - 128 and len(frame) == 128 + 944 and frame[:128] == si
    regs = dict(zip(ids, nvals))
    assert regs[A.UC_ARM64_REG_X0] == 23 and regs[A.UC_ARM64_REG_X1] == fp
    assert regs[A.UC_ARM64_REG_X2] == regs[A.UC_ARM64_REG_X28] == ucp
    assert regs[A.UC_ARM64_REG_SP] == fp and regs[A.UC_ARM64_REG_PC] == 0x401000
    assert regs[A.UC_ARM64_REG_X30] == 0x402000                 # lr = trampoline
    uc = frame[128:]
    # Go's sigtramp reloads g with MOVD 8*36(R28): the interrupted x28.
    assert struct.unpack_from("<Q", uc, 8 * 36)[0] == 0x5A5A
    flags = ABI.ucontext_flags(uc)
    assert flags & AA._UC_CPU and flags & AA._UC_SIGMASK and flags & AA._UC_CLRSTACK
    assert ABI.ucontext_onstack(flags) is False
    assert ABI.ucontext_sigmask(uc) == (5, 0, 0, 0)
    assert ABI.ucontext_tlsbase(uc) == 0xCAFE0
    # On the alternate stack: below its 16-aligned top.
    fp2, *_ = ABI.sendsig_frame(vals, bytes(16 * 32), si, (0, 0, 0, 0), False, 0x9000_0008,
                                0x401000, 0x402000, 23)
    assert fp2 == 0x9000_0000 - 944 - 128


def test_siginfo_packs_a_32_bit_esr() -> None:
    class K:
        signo, code, errno, fault, addr, trap2, trap3 = 11, 1, 0, True, 0x10, 0, 0
        trap = ABI.fault_siginfo("unmapped", 0x10, 0x400000)[3]   # EC 0x24: bit 31 set
    si = ABI.pack_siginfo(K)
    assert struct.unpack_from("<iii", si, 0) == (11, 1, 0)
    assert struct.unpack_from("<QI", si, 16) == (0x10, K.trap)    # si_addr, si_trap


def test_fault_siginfo() -> None:
    assert ABI.fault_siginfo("unmapped", 0x10, 0x400000)[:3] == (11, 1, 0x10)
    assert ABI.fault_siginfo("prot", 0x20, 0x400000, access="write")[:3] == (11, 2, 0x20)
    assert ABI.fault_siginfo("intr", 0, 0x400004, AA.EXCP_UDEF)[:3] == (4, 4, 0x400004)
    assert ABI.fault_siginfo("intr", 0, 0x400004, AA.EXCP_BKPT)[:3] == (5, 1, 0x400004)


def test_ucontext_layout_matches_netbsd_headers(tmp_path: Path) -> None:
    """Offsets and flag values compiled from NetBSD's own headers (zig's)."""
    src = tmp_path / "off.c"
    src.write_text("""
#include <sys/types.h>
#include <sys/ucontext.h>
#include <stddef.h>
long v[] = { sizeof(ucontext_t), offsetof(ucontext_t, uc_sigmask),
  offsetof(ucontext_t, uc_stack), offsetof(ucontext_t, uc_mcontext),
  offsetof(ucontext_t, uc_mcontext.__fregs), offsetof(ucontext_t, uc_mcontext.__fregs.__fpcr),
  offsetof(ucontext_t, uc_mcontext.__fregs.__fpsr), _NGREG, _REG_SP, _REG_PC, _REG_SPSR,
  _REG_TPIDR, _UC_TLSBASE, _UC_CPU, _UC_FPU };
""")
    r = subprocess.run([*zig_command(), "cc", "-target", "aarch64-netbsd", "-ffreestanding",
                        "-S", "-o", str(tmp_path / "off.s"), str(src)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "off.s").read_text().splitlines()
    start = lines.index("v:") + 1
    got = [int(x.split()[1]) for x in lines[start:start + 15]]
    assert got == [AA.UCONTEXT_SIZE, AA.UC_SIGMASK_OFF, AA.UC_STACK_OFF, AA.UC_MCONTEXT_OFF,
                   AA.MC_FREGS_OFF, AA.MC_FPCR_OFF, AA.MC_FPSR_OFF, AA.NGREG, AA._REG_SP,
                   AA._REG_PC, AA._REG_SPSR, AA._REG_TPIDR, AA._UC_TLSBASE, AA._UC_CPU,
                   AA._UC_FPU]


# -- a real program probing the ABI ---------------------------------------------------------
_PROBE = r"""
/* a64probe: the NetBSD/aarch64 system-call ABI seen from a program. */
#include "nbrt.h"

struct res { long x0, x1; int c; };

/* svc with an explicit immediate and x17 (number), x0, x1 in; x0, x1, C out */
#define SVC(imm, n, a0, a1, r) do {                                          \
	register long x0 __asm__("x0") = (a0);                               \
	register long x1 __asm__("x1") = (a1);                               \
	register long x17 __asm__("x17") = (n);                              \
	int c_;                                                             \
	__asm__ volatile("svc %[i]" : "+r"(x0), "+r"(x1), "=@cccs"(c_)        \
	    : [i] "i"(imm), "r"(x17) : "memory", "x2", "x3", "x4", "x5",     \
	      "x6", "x7");                                                  \
	(r).x0 = x0; (r).x1 = x1; (r).c = c_;                                \
} while (0)

#include <sys/siginfo.h>
#define STR_(x) #x
#define STR(x) STR_(x)

/* The trampoline a handler returns to (as NetBSD's libc __sigtramp_siginfo_2 on
 * aarch64): setcontext(x28), sendsig having left &uc in callee-saved x28. */
extern void a64_tramp(void);
__asm__(".text\n.globl a64_tramp\na64_tramp:\n\tmov x0, x28\n"
    "\tsvc #" STR(SYS_setcontext) "\n\tmov x0, #1\n\tsvc #" STR(SYS_exit) "\n");

static volatile int nsig, last_sig, last_code, last_pid, sp_aligned;
static volatile long last_sp_saved;

static void
handler(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	long sp;

	__asm__ volatile("mov %0, sp" : "=r"(sp));
	nsig++;
	last_sig = sig;
	last_code = si->si_code;
	last_pid = si->si_pid;
	sp_aligned = (sp & 15) == 0 && (unsigned long)si < (unsigned long)uc;
	last_sp_saved = (long)uc->uc_mcontext.__gregs[_REG_SP];
	if (sig == SIGUSR1)
		uc->uc_mcontext.__gregs[_REG_X0] = 4242;	/* kill()'s result */
}

static int
sig_install(int sig, int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = flags | SA_SIGINFO;
	return (int)__syscall5(SYS___sigaction_sigtramp, sig, (long)&sa, 0,
	    (long)a64_tramp, 2);
}

static int pfd[2];
static volatile long read_result;
static char read_buf[2];

static void
reader(void *arg)
{
	(void)arg;
	read_result = read(pfd[0], read_buf, 1);
}

static void
msleep(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	__nanosleep50(&ts, NULL);
}

/* A reader blocked in read(2) takes a signal: with SA_RESTART the read is
 * restarted (pc backs up over the svc), without it returns EINTR. */
static long
interrupted_read(int flags, lwpid_t *lid, void *stack, size_t size)
{
	long w;

	sig_install(SIGUSR2, flags);
	read_result = 12345;
	read_buf[0] = 0;
	if (lwp_spawn(reader, NULL, stack, size, 0, lid) != 0)
		return -1000;
	msleep(30);
	_lwp_kill(*lid, SIGUSR2);
	msleep(30);
	w = write(pfd[1], "z", 1);
	_lwp_wait(*lid, NULL);
	if (read_result == -EINTR) {
		char c;
		read(pfd[0], &c, 1);		/* drain */
	}
	return w == 1 ? read_result : -2000;
}

static volatile int resumed;
static volatile long child_tpidr;
static volatile int child_done;

static void
child(void *arg)
{
	long t;

	(void)arg;
	__asm__ volatile("mrs %0, tpidr_el0" : "=r"(t));
	child_tpidr = t;
	child_done = 1;
}

int
main(int argc, char **argv, char **envp)
{
	struct res r;
	ucontext_t uc;
	long t;
	lwpid_t lid;
	static char stack[16384] __attribute__((aligned(16)));

	(void)envp;
	if (argc > 1 && strcmp(argv[1], "udf") == 0)
		__asm__ volatile(".inst 0x00000000");	/* udf #0: SIGILL */
	if (argc > 1 && strcmp(argv[1], "brk") == 0)
		__asm__ volatile("brk #7");		/* SIGTRAP */

	SVC(SYS_getpid, 0, 0x5555, 0x6666, r);
	CHECK("svc #20: pid in x0, carry clear", r.x0 == getpid() && !r.c);
	CHECK("svc #20: ppid in x1 (second result)", r.x1 != 0x6666);
	SVC(0, SYS_getpid, 0, 0, r);
	CHECK("svc #0 with x17 = SYS_getpid", r.x0 == getpid() && !r.c);
	SVC(198, SYS_getpid, 0, 0, r);
	CHECK("svc #198 (__syscall) with x17 = SYS_getpid", r.x0 == getpid() && !r.c);
	SVC(SYS_close, 0, 9999, 0x1234, r);
	CHECK("close(9999): carry set, x0 = EBADF", r.c && r.x0 == EBADF);
	CHECK_EQ("close(9999): x1 untouched", r.x1, 0x1234);
	SVC(SYS__lwp_self, 0, 0, 0x7777, r);
	CHECK("_lwp_self: x1 kept (rval[1] = x1)", !r.c && r.x1 == 0x7777);

	_lwp_setprivate((void *)0x123450);
	__asm__ volatile("mrs %0, tpidr_el0" : "=r"(t));
	CHECK_EQ("_lwp_setprivate sets TPIDR_EL0", t, 0x123450);
	CHECK_EQ("_lwp_getprivate", (long)_lwp_getprivate(), 0x123450);

	memset(&uc, 0, sizeof(uc));
	CHECK_EQ("getcontext", getcontext(&uc), 0);
	if (resumed++ == 0) {
		CHECK_EQ("uc_flags", uc.uc_flags & (_UC_CPU | _UC_TLSBASE),
		    _UC_CPU | _UC_TLSBASE);
		CHECK_EQ("__gregs[_REG_TPIDR]", uc.uc_mcontext.__gregs[_REG_TPIDR], 0x123450);
		CHECK_EQ("spsr: NZCV only", uc.uc_mcontext.__gregs[_REG_SPSR] & ~0xf0000000UL,
		    0);
		CHECK_EQ("x0 = 0 in the saved context", uc.uc_mcontext.__gregs[_REG_X0], 0);
		uc.uc_flags &= ~_UC_SIGMASK;
		__syscall1(SYS_setcontext, (long)&uc);
		CHECK("setcontext returned", 0);
	}
	CHECK_EQ("setcontext resumed after getcontext's svc once", resumed, 2);

	/* _lwp_create: _UC_TLSBASE sets the child's TPIDR_EL0; bad contexts: EINVAL */
	lwp_makecontext(&uc, child, NULL, stack, sizeof(stack));
	uc.uc_mcontext.__gregs[_REG_TPIDR] = 0xabcd00;
	uc.uc_flags |= _UC_TLSBASE;
	CHECK_EQ("_lwp_create", _lwp_create(&uc, 0, &lid), 0);
	CHECK_EQ("_lwp_wait", _lwp_wait(lid, NULL), 0);
	CHECK("child ran", child_done);
	CHECK_EQ("child TPIDR_EL0 from _REG_TPIDR", child_tpidr, 0xabcd00);
	lwp_makecontext(&uc, child, NULL, stack, sizeof(stack));
	uc.uc_mcontext.__gregs[_REG_SPSR] = 0x3c5;		/* EL1h: not a user spsr */
	CHECK_EQ("_lwp_create(spsr EL1) == -EINVAL", _lwp_create(&uc, 0, &lid), -EINVAL);
	lwp_makecontext(&uc, child, NULL, stack, sizeof(stack));
	uc.uc_mcontext.__gregs[_REG_SP] |= 8;
	CHECK_EQ("_lwp_create(sp % 16 != 0) == -EINVAL", _lwp_create(&uc, 0, &lid), -EINVAL);
	lwp_makecontext(&uc, child, NULL, stack, sizeof(stack));
	uc.uc_mcontext.__gregs[_REG_PC] |= 2;
	CHECK_EQ("_lwp_create(pc % 4 != 0) == -EINVAL", _lwp_create(&uc, 0, &lid), -EINVAL);

	/* signals: the frame, the trampoline's setcontext, SA_RESTART */
	CHECK_EQ("__sigaction_sigtramp(SIGUSR1)", sig_install(SIGUSR1, 0), 0);
	t = __syscall2(SYS_kill, getpid(), SIGUSR1);
	CHECK_EQ("handler ran once", nsig, 1);
	CHECK_EQ("signo", last_sig, SIGUSR1);
	CHECK_EQ("si_code SI_USER", last_code, SI_USER);
	CHECK_EQ("si_pid", last_pid, getpid());
	CHECK("handler sp 16-aligned, siginfo below ucontext", sp_aligned);
	CHECK("saved sp 16-aligned", (last_sp_saved & 15) == 0);
	CHECK_EQ("handler's x0 in the ucontext became kill()'s result", t, 4242);
	CHECK_EQ("pipe2", pipe2(pfd, 0), 0);
	CHECK_EQ("SA_RESTART: read restarted, got the byte",
	    interrupted_read(SA_RESTART, &lid, stack, sizeof(stack)), 1);
	CHECK_EQ("SA_RESTART: the byte", read_buf[0], 'z');
	CHECK_EQ("SA_RESTART: handler ran", nsig, 2);
	CHECK_EQ("no SA_RESTART: read returns EINTR",
	    interrupted_read(0, &lid, stack, sizeof(stack)), -EINTR);
	CHECK_EQ("no SA_RESTART: handler ran", nsig, 3);
	return nbrt_done();
}
"""


@pytest.fixture(scope="module")
def probe() -> Path:
    # A stable source folder, so that the build cache works across runs.
    src_dir = REPO_ROOT / ".cache" / "test-src" / "aarch64"
    src_dir.mkdir(parents=True, exist_ok=True)
    src = src_dir / "a64probe.c"
    if not src.exists() or src.read_text() != _PROBE:
        src.write_text(_PROBE)
    return build_c("a64probe", "aarch64", src_dir=src_dir)


@pytest.mark.parametrize("ncpu", [1, 4])
def test_probe_system_call_abi(probe: Path, ncpu: int) -> None:
    r = run_nbemu(probe, opts=("--ncpu", str(ncpu)))
    assert "FAIL" not in r.stdout, r.stdout
    assert r.returncode == 0 and r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)


@pytest.mark.parametrize("what,status,sig,desc", [
    ("udf", 132, "SIGILL", "undefined instruction"),
    ("brk", 133, "SIGTRAP", "breakpoint"),
])
def test_exception_signals(probe: Path, what: str, status: int, sig: str, desc: str) -> None:
    # trap.c: unknown instruction -> SIGILL, brk -> SIGTRAP (TRAP_BRKPT)
    r = run_nbemu(probe, what)
    assert r.returncode == status, r.stderr
    assert sig in r.stderr and desc in r.stderr
    assert "=>" in r.stderr and ("udf" in r.stderr or "brk" in r.stderr)  # arm64 disasm
    assert "Traceback" not in r.stderr


def test_strace_names_calls_of_both_svc_forms(probe: Path) -> None:
    r = run_nbemu(probe, opts=("--strace",))
    assert r.returncode == 0, r.stderr
    assert "getpid" in r.stderr and "close(9999) = -1 EBADF" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("name", ["signotify", "sigpanic", "sigpreempt"])
def test_go_signals_on_arm64(name: str) -> None:
    """Go's signal paths on arm64 (tests/test_signals_go.py runs them on amd64): the
    sendsig frame (sigtramp reloads g from x28 through the ucontext), faults ->
    si_code/si_addr -> sigpanic, SIGURG preemption, and setcontext back."""
    from fixtures.build import build_go
    from fixtures.expected import GO_OUTPUT, comparable
    r = run_nbemu(build_go(name, "netbsd", "arm64"), opts=("--ncpu", "4"), timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    assert comparable(name, r.stdout) == GO_OUTPUT[name]


def test_elf32_aarch64_is_refused_clearly(tmp_path: Path) -> None:
    """An ELFCLASS32 file whose e_machine says aarch64 contradicts itself."""
    note = struct.pack("<III", 7, 4, 1) + b"NetBSD\0\0" + struct.pack("<I", 1001000000)
    ehdr = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    ehdr += struct.pack("<HHIIIIIHHHHHH", 2, 183, 1, 0x1000, 52, 0, 0, 52, 32, 1, 0, 0, 0)
    phdr = struct.pack("<IIIIIIII", 4, 52 + 32, 0, 0, len(note), len(note), 4, 4)
    f = tmp_path / "a32"
    f.write_bytes(ehdr + phdr + note)
    f.chmod(0o755)
    r = run_nbemu(f)
    assert r.returncode == 126
    assert "aarch64" in r.stderr and "32-bit" in r.stderr, r.stderr
