"""Per-architecture ABIs. Every architecture fact lives in one module here.

`for_elf_machine(e_machine)` finds the ABI of an ELF file; handlers never test
the architecture, they call the ABI object.
"""
from __future__ import annotations

import importlib

from .base import Abi

# e_machine -> (module, the port's name): a run imports only the port its
# program needs (each port module costs ~5 ms of start-up to import).
PORTS: dict[int, tuple[str, str]] = {
    62: ("amd64", "amd64"),           # EM_X86_64
    183: ("aarch64", "aarch64"),      # EM_AARCH64
    3: ("i386", "i386"),              # EM_386
    40: ("arm", "earmv7hf"),          # EM_ARM
}

# e_machine values of NetBSD ports we do not emulate, for a precise message.
KNOWN_UNSUPPORTED = {
    8: "mips", 2: "sparc", 43: "sparc64",
    20: "powerpc", 21: "powerpc64", 4: "m68k", 243: "riscv", 9: "s370/s390", 42: "sh",
    36: "v850", 75: "vax", 88: "m32r", 92: "or1k", 18: "sparc32plus", 15: "hppa",
}


def for_elf_machine(e_machine: int) -> Abi | None:
    port = PORTS.get(e_machine)
    if port is None:
        return None
    abi: Abi = importlib.import_module(f"{__name__}.{port[0]}").ABI
    return abi


def all_ports() -> list[Abi]:
    """Every port's ABI (imports them all)."""
    return [a for m in PORTS if (a := for_elf_machine(m)) is not None]


def supported_names() -> list[str]:
    return sorted(name for _mod, name in PORTS.values())


__all__ = ["Abi", "PORTS", "for_elf_machine", "all_ports", "supported_names", "KNOWN_UNSUPPORTED"]
