"""Per-architecture ABIs. Every architecture fact lives in one module here.

`for_elf_machine(e_machine)` finds the ABI of an ELF file; handlers never test
the architecture, they call the ABI object.
"""
from __future__ import annotations

from .base import Abi
from . import aarch64, amd64, arm, i386

_BY_MACHINE: dict[int, Abi] = {a.elf_machine: a for a in (amd64.ABI, aarch64.ABI, i386.ABI,
                                                             arm.ABI)}

# e_machine values of NetBSD ports we do not emulate, for a precise message.
KNOWN_UNSUPPORTED = {
    8: "mips", 2: "sparc", 43: "sparc64",
    20: "powerpc", 21: "powerpc64", 4: "m68k", 243: "riscv", 9: "s370/s390", 42: "sh",
    36: "v850", 75: "vax", 88: "m32r", 92: "or1k", 18: "sparc32plus", 15: "hppa",
}


def for_elf_machine(e_machine: int) -> Abi | None:
    return _BY_MACHINE.get(e_machine)


def supported_names() -> list[str]:
    return sorted(a.name for a in _BY_MACHINE.values())


__all__ = ["Abi", "for_elf_machine", "supported_names", "KNOWN_UNSUPPORTED"]
