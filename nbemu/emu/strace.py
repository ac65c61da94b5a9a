"""--strace: one line per system call, in the spirit of kdump:
`pid/lid name(args) = result` or `= -1 ERRNO (n)`."""
from __future__ import annotations

from typing import TextIO

from nbemu.syscalls.errno import KernErrno, errno_name
from nbemu.syscalls.lwp import Lwp
from nbemu.syscalls.table import SYSENT, name_of

_STR_ARGS = {"path", "name", "link", "from", "to", "fname"}


def format_result(error: int, retval: list[int]) -> str:
    """A system call's result: its value, `-1 ERRNO (n)`, or the kernel's
    pseudo-errors by name (the call returns to user mode without a value)."""
    if error == KernErrno.EJUSTRETURN:
        return "JUSTRETURN"
    if error == KernErrno.ERESTART:
        return "RESTART"
    if error:
        return f"-1 {errno_name(error)} ({int(error)})"
    r = retval[0]
    return f"{r:#x}" if r > 0xFFFF else str(r)


class Strace:
    def __init__(self, k, out: TextIO) -> None:
        self.k = k
        self.out = out

    def _arg(self, l: Lwp, spec, v: int) -> str:
        if spec.pointer:
            if v and "char" in spec.ctype and spec.ctype.startswith("const") and \
                    spec.name in _STR_ARGS:
                s = l.l_proc.p_vmspace.copyinstr(v, 256)
                if isinstance(s, bytes):
                    t = s[:64].decode("latin-1")
                    return '"' + t.replace("\n", "\\n") + ('"...' if len(s) > 64 else '"')
            return f"{v:#x}" if v else "NULL"
        if spec.bits == 64 and not spec.signed and v > 0xFFFF:
            return f"{v:#x}"
        return str(v)

    def format(self, l: Lwp, code: int, args: tuple, error: int,
               retval: list[int]) -> tuple[str, str]:
        """The call as `name(args)` and its result, as --strace and --trace
        syscall both print them."""
        ent = SYSENT.get(code)
        if ent is not None and args:
            a = ", ".join(self._arg(l, s, v) for s, v in zip(ent.args, args) if s.name != "PAD")
        else:
            a = ""
        return f"{name_of(code)}({a})", format_result(error, retval)

    def __call__(self, l: Lwp, code: int, args: tuple, error: int, retval: list[int]) -> None:
        call, res = self.format(l, code, args, error, retval)
        line = f"{l.l_proc.p_pid}/{l.l_lid} {call} = {res}"
        l.l_recent.append(f"{name_of(code)}={res}")
        if len(l.l_recent) > 8:
            del l.l_recent[:-8]
        self.out.write(line + "\n")
        self.out.flush()
