"""nbemu: run unmodified NetBSD userland binaries, and their LWPs, on Linux.

One import namespace for the three rooms of the design (docs/DESIGN.md):
``nbemu.emu`` (the host-side tools: CLI, engine, gdb stub, ATF), ``nbemu.guest``
(ELF loading and per-architecture facts) and ``nbemu.syscalls`` (the kernel).
"""
