"""The bare-Unicorn floor of the real-code benchmark: the same NetBSD ELF file
that nbemu runs, on a bare engine with the few system calls it makes stubbed.

Only what fixtures/c/bench_real.c on nbrt needs: PT_LOAD segments copied into
mem_map regions, a stack with argc/argv/envp/auxv terminator, and three
system calls -- write (the output, kept), mmap (anonymous, a fresh region
each), exit (stops the engine) --; anything else returns ENOSYS. No kernel,
no scheduler, no hooks but the trap: what is left is the engine's own cost.

    python -m bench.bare_elf PROG [ARGS...]   prints "<seconds> <guest stdout>"

The seconds are the CPU time of uc.emu_start alone (loading is excluded, as nbemu's
in-process Session.run excludes Python's start-up but includes its ELF load).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from elftools.elf.elffile import ELFFile

from nbemu.emu.native.engine_lib import select as _select_engine

_select_engine()            # the engine nbemu would run on (before unicorn loads)
from unicorn import UC_ARCH_ARM64, UC_ARCH_X86, UC_HOOK_INSN, UC_HOOK_INTR, Uc
from unicorn import arm64_const as A64
from unicorn import x86_const as X

PAGE = 0x1000
STACK_TOP = 0x7f7ff0000000
STACK_SIZE = 1 << 20
MMAP_BASE = 0x7f0000000000
SYS_EXIT, SYS_WRITE, SYS_MMAP = 1, 4, 197
ENOSYS = 78


def _up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


class Bare:
    def __init__(self, prog: Path, args: list[str], engine_setup=None) -> None:
        with open(prog, "rb") as f:
            elf = ELFFile(f)
            machine = elf["e_machine"]
            self.arch = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}[machine]
            arch, mode = ((UC_ARCH_X86, 8) if self.arch == "x86_64" else (UC_ARCH_ARM64, 0))
            uc = self.uc = Uc(arch, mode)
            if engine_setup is not None:
                engine_setup(uc)
            self.entry = elf["e_entry"]
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD":
                    continue
                va = seg["p_vaddr"] & ~(PAGE - 1)
                end = _up(seg["p_vaddr"] + seg["p_memsz"])
                uc.mem_map(va, end - va, 7)
                uc.mem_write(seg["p_vaddr"], seg.data()[:seg["p_filesz"]])
        self.out = bytearray()
        self.status: int | None = None
        self.brk = MMAP_BASE
        # Stack: argc, argv..., NULL, envp NULL, AT_NULL pair; strings above.
        uc.mem_map(STACK_TOP - STACK_SIZE, STACK_SIZE, 3)
        argv = [str(prog).encode()] + [a.encode() for a in args]
        p = STACK_TOP - 0x1000
        ptrs = []
        for a in argv:
            uc.mem_write(p, a + b"\0")
            ptrs.append(p)
            p += len(a) + 1
        words = [len(argv), *ptrs, 0, 0, 0, 0]
        self.sp = (STACK_TOP - 0x2000) & ~15
        uc.mem_write(self.sp, b"".join(w.to_bytes(8, "little") for w in words))
        if self.arch == "x86_64":
            uc.reg_write(X.UC_X86_REG_RSP, self.sp)
            uc.hook_add(UC_HOOK_INSN, self._x86_syscall, None, 1, 0, X.UC_X86_INS_SYSCALL)
        else:
            uc.reg_write(A64.UC_ARM64_REG_SP, self.sp)
            uc.reg_write(A64.UC_ARM64_REG_CPACR_EL1, 0x300000)     # FP/SIMD on at EL0
            uc.hook_add(UC_HOOK_INTR, self._a64_intr)

    def _serve(self, n: int, a: list[int]) -> tuple[int, bool]:
        """(result, error) of system call n with arguments a."""
        if n == SYS_WRITE:
            self.out += self.uc.mem_read(a[1], a[2])
            return a[2], False
        if n == SYS_MMAP:
            size = _up(a[1])
            addr = self.brk
            self.uc.mem_map(addr, size, 3)
            self.brk += size + PAGE
            return addr, False
        if n == SYS_EXIT:
            self.status = a[0]
            self.uc.emu_stop()
            return 0, False
        return ENOSYS, True

    def _x86_syscall(self, uc, user) -> None:
        r = uc.reg_read
        n = r(X.UC_X86_REG_RAX)
        args = [r(X.UC_X86_REG_RDI), r(X.UC_X86_REG_RSI), r(X.UC_X86_REG_RDX),
                r(X.UC_X86_REG_R10), r(X.UC_X86_REG_R8), r(X.UC_X86_REG_R9)]
        v, err = self._serve(n, args)
        uc.reg_write(X.UC_X86_REG_RAX, v)
        fl = r(X.UC_X86_REG_EFLAGS)
        uc.reg_write(X.UC_X86_REG_EFLAGS, (fl | 1) if err else (fl & ~1))

    def _a64_intr(self, uc, intno, user) -> None:
        r = uc.reg_read
        pc = r(A64.UC_ARM64_REG_PC)
        insn = int.from_bytes(uc.mem_read(pc - 4, 4), "little")
        n = (insn >> 5) & 0xFFFF or r(A64.UC_ARM64_REG_X17)
        args = [r(A64.UC_ARM64_REG_X0 + i) for i in range(8)]
        v, err = self._serve(n, args)
        uc.reg_write(A64.UC_ARM64_REG_X0, v)
        nzcv = r(A64.UC_ARM64_REG_NZCV)
        uc.reg_write(A64.UC_ARM64_REG_NZCV, (nzcv | 1 << 29) if err else (nzcv & ~(1 << 29)))

    def run(self) -> float:
        t0 = time.process_time()
        self.uc.emu_start(self.entry, 0)
        return time.process_time() - t0


def main(argv: list[str]) -> int:
    b = Bare(Path(argv[0]), argv[1:])
    dt = b.run()
    print(f"{dt:.6f} {b.out.decode(errors='replace').strip()}")
    return b.status or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
