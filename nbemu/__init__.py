"""nbemu: run unmodified NetBSD userland binaries, and their LWPs, on Linux.

One import namespace for the three rooms of the design (docs/DESIGN.md):
``nbemu.emu`` (the host-side tools: CLI, engine, gdb stub, ATF), ``nbemu.guest``
(ELF loading and per-architecture facts) and ``nbemu.syscalls`` (the kernel).
"""

# Before anything imports unicorn: the patched engine when it is built
# (nbemu/emu/native/engine_lib.py).
from nbemu.emu.native.engine_lib import select as _select_engine  # noqa: E402

_select_engine()
