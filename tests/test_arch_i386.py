"""NetBSD/i386 under nbemu: the Unicorn facts the port stands on (int $0x80 as an
interrupt, the %gs base through IA32_GS_BASE), the ABI module (guest/arch/i386.py)
against NetBSD's headers, and a real program (TLS through %gs in C; the shared C
and Go fixtures, Go's signal fixtures among them, run parametrized over the ports
in the guest suites: test_c_guest.py, test_go_guest.py, test_signals_go.py, ...)."""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from unicorn import UC_ARCH_X86, UC_HOOK_INTR, UC_MODE_32, Uc
from unicorn import x86_const as X

from fixtures.build import build_c, zig_command
from nbemu.guest.arch import for_elf_machine
from nbemu.guest.arch import i386 as I
from tests.guest import run_nbemu

ABI = I.ABI


# -- Unicorn ------------------------------------------------------------------------
def _engine() -> Uc:
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0x1000, 0x1000)
    uc.mem_map(0x10000, 0x1000)
    uc.mem_write(0x10000, struct.pack("<4I", 0xA0, 0xA1, 0xA2, 0xA3))
    return uc


def test_unicorn_int80_is_an_interrupt_with_eip_past_the_instruction() -> None:
    code = b"\xb8\x05\x00\x00\x00" + b"\xcd\x80" + b"\x40" + b"\xcd\x80"  # mov; int; inc; int
    uc = _engine()
    uc.mem_write(0x1000, code)
    seen = []

    def hook(uc, intno, user):
        seen.append((intno, uc.reg_read(X.UC_X86_REG_EIP), uc.reg_read(X.UC_X86_REG_EAX)))
        if len(seen) == 2:
            uc.emu_stop()
    uc.hook_add(UC_HOOK_INTR, hook)
    uc.emu_start(0x1000, 0x1000 + len(code))
    assert seen == [(0x80, 0x1007, 5), (0x80, 0x100a, 6)]
    assert ABI.trap_intno == 0x80 and ABI.trap_pc_offset == ABI.syscall_insn_len == 2


def test_unicorn_gs_base_through_the_msr_and_contexts() -> None:
    """UC_X86_REG_GS_BASE is not honoured in 32-bit mode; wrmsr IA32_GS_BASE is,
    and uc_context_save/restore carry the hidden base per context."""
    code = b"\x65\xa1\x00\x00\x00\x00" + b"\x65\x8b\x1d\xfc\xff\xff\xff"  # gs:0 -> eax, gs:-4 -> ebx
    uc = _engine()
    uc.mem_write(0x1000, code)
    uc.msr_write(I.MSR_GSBASE, 0x10004)
    a = uc.context_save()
    uc.msr_write(I.MSR_GSBASE, 0x10008)
    b = uc.context_save()
    for ctx, want in ((a, (0xA1, 0xA0)), (b, (0xA2, 0xA1)), (a, (0xA1, 0xA0))):
        uc.context_restore(ctx)
        uc.emu_start(0x1000, 0x1000 + len(code))
        assert (uc.reg_read(X.UC_X86_REG_EAX), uc.reg_read(X.UC_X86_REG_EBX)) == want


# -- the ABI module --------------------------------------------------------------------
def test_registered_by_elf_machine() -> None:
    assert for_elf_machine(3) is ABI
    assert (ABI.elf_class, ABI.word_size, ABI.int64_align) == (32, 4, 4)
    assert ABI.vm_maxuser_address == 0xBFBFF000 == ABI.usrstack


def test_decode_takes_every_argument_from_the_stack() -> None:
    vals = [197, 0xBFBFE000, 0x202, 0x1234]            # eax, esp, eflags, edx
    assert ABI.decode_syscall(vals) == (197, [], 0xBFBFE004)


def test_encode_return_carry_and_edx() -> None:
    vals = [3, 0x7000, 0x203, 0x55]
    assert ABI.encode_return(vals, 0, 7, 9) == [7, 9, 0x202]
    assert ABI.encode_return(vals, 9, 0, 0) == [9, 0x55, 0x203]


def test_setregs_as_machdep() -> None:
    r = ABI.setregs(0x8048000, 0xBFBFE000, 0xBFBFEFF0)
    assert r[X.UC_X86_REG_EBX] == 0xBFBFEFF0 and r[X.UC_X86_REG_ESP] == 0xBFBFE000
    assert r[X.UC_X86_REG_EIP] == 0x8048000 and r[X.UC_X86_REG_EFLAGS] == I.PSL_USERSET
    assert all(r[x] == 0 for x in (X.UC_X86_REG_EAX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX,
                                   X.UC_X86_REG_ESI, X.UC_X86_REG_EDI, X.UC_X86_REG_EBP))


def test_ucontext_round_trip_and_validate() -> None:
    ids = ABI.getmcontext_ids()
    vals = [0x100 + i for i in range(len(ids))]
    vals[ids.index(X.UC_X86_REG_EFLAGS)] = 0x203
    uc = ABI.build_ucontext(vals, (1, 2, 3, 4), (0, 0, 0), None)
    assert len(uc) == ABI.ucontext_size == 776
    assert ABI.ucontext_sigmask(uc) == (1, 2, 3, 4)
    assert ABI.ucontext_tlsbase(uc) == vals[ids.index(I.TLS_SHADOW)]
    g = ABI.unpack_mcontext_gregs(uc)
    assert ABI.cpu_mcontext_validate(g)
    assert g[I._REG_GS] == 0xB3 and g[I._REG_CS] & 3 == 3
    rids, rvals = ABI.mcontext_regs(uc, 0x4)
    got = dict(zip(rids, rvals))
    assert got[X.UC_X86_REG_ESP] == vals[ids.index(X.UC_X86_REG_ESP)]
    assert got[X.UC_X86_REG_EFLAGS] == 0x203
    bad = list(g)
    bad[I._REG_CS] = 0x8                               # a kernel %cs
    assert not ABI.cpu_mcontext_validate(bad)


def test_signal_frame_as_sendsig_siginfo() -> None:
    ids = ABI.getmcontext_ids()
    vals = [0] * len(ids)
    vals[ids.index(X.UC_X86_REG_ESP)] = 0xBFBFE000
    vals[ids.index(X.UC_X86_REG_EFLAGS)] = 0x202 | 0x400      # PSL_D is cleared
    si = bytes(128)
    fp, frame, rids, rvals, _v, _vv = ABI.sendsig_frame(
        vals, bytes(16 * 8), si, (0, 0, 0, 0), False, None, 0x8049000, 0x8048800, 10)
    assert fp == 0xBFBFE000 - 920 and len(frame) == 920
    assert struct.unpack_from("<IiII", frame) == (0x8048800, 10, fp + 16, fp + 144)
    got = dict(zip(rids, rvals))
    assert got[X.UC_X86_REG_EIP] == 0x8049000 and got[X.UC_X86_REG_ESP] == fp
    assert not got[X.UC_X86_REG_EFLAGS] & 0x400


def test_layouts_match_netbsd_headers(tmp_path: Path) -> None:
    """The offsets the module uses, as static assertions compiled against
    NetBSD's i386 headers by zig."""
    src = tmp_path / "sz.c"
    src.write_text(f"""
#include <sys/types.h>
#include <sys/ucontext.h>
#include <sys/siginfo.h>
#include <machine/frame.h>
#include <stddef.h>
#define A(x, v) _Static_assert((x) == (v), #x)
A(sizeof(ucontext_t), {I.UCONTEXT_SIZE});
A(offsetof(ucontext_t, uc_sigmask), {I.UC_SIGMASK_OFF});
A(offsetof(ucontext_t, uc_stack), {I.UC_STACK_OFF});
A(offsetof(ucontext_t, uc_mcontext), {I.UC_MCONTEXT_OFF});
A(offsetof(ucontext_t, uc_mcontext.__fpregs), {I.MC_FPREGS_OFF});
A(offsetof(ucontext_t, uc_mcontext._mc_tlsbase), {I.MC_TLSBASE_OFF});
A(sizeof(siginfo_t), {ABI.siginfo_size});
A(sizeof(struct _ksiginfo), {ABI.ksiginfo_size});
A(offsetof(siginfo_t, si_pid), 12);
A(offsetof(siginfo_t, si_addr), 12);
A(offsetof(siginfo_t, si_trap), 16);
A(sizeof(struct sigframe_siginfo), {ABI.sigframe_size});
A(_UC_TLSBASE, {I._UC_TLSBASE});
A(_UC_FXSAVE, {I._UC_FXSAVE});
A(_REG_UESP, {I._REG_UESP});
""")
    r = subprocess.run([*zig_command(), "cc", "-target", "x86-netbsd", "-ffreestanding",
                        "-S", "-o", str(tmp_path / "sz.s"), str(src)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr


# -- real programs ---------------------------------------------------------------------
@pytest.mark.parametrize("ncpu", [1, 4])
def test_tls_through_gs(ncpu: int) -> None:
    r = run_nbemu(build_c("tls_i386", "x86"), opts=("--ncpu", str(ncpu)))
    assert "FAIL" not in r.stdout, r.stdout
    assert r.returncode == 0 and r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)
