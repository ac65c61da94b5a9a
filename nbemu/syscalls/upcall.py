"""Calls that go up the layers (docs/DESIGN.md, "Layers of the kernel").

A module of the kernel imports only modules below it. Where a NetBSD file
calls one above it -- kern_sig.c's sigexit() and kern_lwp.c's lwp_exit() call
exit1(), kern_descrip.c's fd_close() calls knote_fdclose() -- the lower module
calls through a slot here, and the higher module fills the slot when it is
imported. Importing any module of nbemu.syscalls runs the package's
__init__, which imports every module that fills a slot (its LAZY_MODULES,
imported at their first call, fill none), so every slot is filled before the
first system call; an empty slot is a bug of nbemu and says which.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .lwp import Lwp, Proc


def _unset(name: str) -> Callable[..., Any]:
    def unset(*args: Any) -> Any:
        raise AssertionError(f"upcall.{name} was not registered (its module was not imported)")
    return unset


# kern_exit.exit1(l, status, signo): end l's process.
exit1: Callable[["Lwp", int, int], None] = _unset("exit1")
# kern_event.knote_fdclose(p, fd): detach the knotes of a descriptor being closed.
knote_fdclose: Callable[["Proc", int], None] = _unset("knote_fdclose")
# kern_tty.orphanpg_check(k, pgids, before): SIGHUP+SIGCONT to groups that became
# orphaned with a stopped member (setsid/setpgid in kern_prot are below kern_sig).
orphanpg_check: Callable[[Any, set, set], None] = _unset("orphanpg_check")
