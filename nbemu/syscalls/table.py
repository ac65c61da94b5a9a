"""The declarative system-call table: numbers, names and typed arguments from
NetBSD's syscalls.master (syscalls_master.py), and the handlers registered
against it with @syscall.

One table drives argument decoding (width and sign per C type and per ABI), the
trace printer and the ENOSYS answer for calls nbemu does not implement.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

from nbemu.plain import FrozenRecord

from .syscalls_master import SYSCALLS

# C types whose values are 32-bit signed in the kernel's view (int-sized).
_INT32 = {"int", "lwpid_t", "clockid_t", "pid_t", "id_t", "idtype_t", "key_t",
          "socklen_t", "timer_t", "cpuid_t", "psetid_t", "cpuwhich_t", "int32_t", "mqd_t",
          "acl_type_t"}
_UINT32 = {"u_int", "unsigned int", "unsigned", "mode_t", "uid_t", "gid_t", "u_int32_t",
           "uint32_t", "fixpt_t", "sigset_t"}
# C types that stay 64-bit on ILP32 ports (i386, earm): passed in two argument
# words, low word first (i386 and earm are both little-endian). syscalls.master puts a
# `long PAD` before them where ARM's even-register rule needs it, so decoding is
# a plain walk over words.
_WIDE = {"off_t", "dev_t", "quad_t", "u_quad_t", "int64_t", "uint64_t", "time_t"}


class ArgSpec(FrozenRecord):
    ctype: str
    name: str
    bits: int          # 32 or 64 (on a 64-bit ABI)
    signed: bool
    pointer: bool
    wide: bool         # 64-bit on ILP32 ABIs too (two argument words)
    _fields = ("ctype", "name", "bits", "signed", "pointer", "wide")

    def __init__(self, ctype: str, name: str, bits: int, signed: bool, pointer: bool,
                 wide: bool = False) -> None:
        self._set_fields(ctype, name, bits, signed, pointer, wide)


def arg_spec(ctype: str, name: str) -> ArgSpec:
    t = ctype.strip()
    ptr = t.endswith("*") or t.endswith("]")
    base = t.replace("const ", "").strip()
    if ptr:
        return ArgSpec(ctype, name, 64, False, True)
    if base in _UINT32:
        return ArgSpec(ctype, name, 32, False, False)
    if base in _INT32:
        return ArgSpec(ctype, name, 32, True, False)
    signed = base in ("long", "off_t", "ssize_t", "intptr_t", "register_t", "int64_t",
                      "quad_t", "time_t")
    return ArgSpec(ctype, name, 64, signed, False, base in _WIDE)


Handler = Callable[..., Any]


class SysEnt:
    """One row of the table (NetBSD's struct sysent plus its syscallargs).

    args / nargs / nwords32 and decode / decode32 / argcls are built on first
    use (__getattr__ runs only while the slot is empty): generating ~1,500
    decoders and argument classes at import cost ~40 ms of every nbemu start,
    and the 507 rows' argument specs ~2 ms; a program calls a few dozen.
    handler / restartable too: a call of a module the package imports only on
    demand (nbemu.syscalls.LAZY_MODULES) imports it, whose @syscall fills them."""

    __slots__ = ("code", "name", "args", "flags", "handler", "restartable", "nargs",
                 "nwords32", "decode", "decode32", "argcls", "_cargs")

    def __init__(self, code: int, name: str, cargs: Sequence[tuple[str, str]], flags: str) -> None:
        self.code = code
        self.name = name
        self._cargs = cargs          # syscalls.master's (C type, name) pairs
        self.flags = flags

    def __getattr__(self, attr: str) -> Any:
        if attr in ("handler", "restartable"):
            module = _LAZY.pop(self.code, None)
            if module is not None:
                import importlib
                importlib.import_module(module)      # its @syscall rows fill both
            if not _registered(self):
                self.handler = None
                self.restartable = True
            return getattr(self, attr)
        if attr in ("args", "nargs", "nwords32"):
            args = _specs(self._cargs)
            self.args = args
            self.nargs = len(args)
            # ILP32 ABIs: how many 32-bit argument words the call takes
            self.nwords32 = sum(2 if sp.wide else 1 for sp in args)
            return getattr(self, attr)
        if attr == "decode":
            fn: Any = _make_decoder(self.args)
        elif attr == "decode32":
            fn = _make_decoder32(self.args)[0]
        elif attr == "argcls":
            fn = _make_argcls(self.name or f"sys{self.code}", self.args)
        else:
            raise AttributeError(attr)
        setattr(self, attr, fn)
        return fn


def _make_argcls(name: str, specs: tuple[ArgSpec, ...]) -> type:
    """A tuple subclass with one property per argument, named as in the C struct."""
    ns: dict[str, Any] = {"__slots__": ()}
    for i, s in enumerate(specs):
        if s.name != "PAD":
            ns[s.name] = property(operator.itemgetter(i))
    return type(f"{name}_args", (tuple,), ns)


def _make_decoder(specs: tuple[ArgSpec, ...]) -> Callable[[list[int]], list[int]]:
    """Truncate and sign-extend raw 64-bit words as the C argument types say.

    Generated as straight-line code per signature: the trap decodes every call,
    and a loop over per-argument kinds costs several times more.
    """
    parts = []
    for i, sp in enumerate(specs):
        r = f"raw[{i}]"
        if sp.bits == 32 and sp.signed:
            parts.append(f"(({r} & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000")
        elif sp.bits == 32:
            parts.append(f"{r} & 0xFFFFFFFF")
        elif sp.signed:
            parts.append(f"(({r} & 0xFFFFFFFFFFFFFFFF) ^ (1 << 63)) - (1 << 63)")
        else:
            parts.append(r)
    src = "def decode(raw):\n    return (" + "".join(p + ", " for p in parts) + ")\n"
    ns: dict[str, Any] = {}
    exec(src, ns)  # noqa: S102 (generated from the table's own C types)
    return ns["decode"]


def _make_decoder32(specs: tuple[ArgSpec, ...]) -> tuple[Callable[[list[int]], tuple], int]:
    """The ILP32 decoder: every argument is one 32-bit word (pointers, long and
    size_t included) except the wide types, two words low first. Returns the
    decoder and the number of words it consumes."""
    parts = []
    i = 0
    for sp in specs:
        if sp.wide:
            w = f"((raw[{i}] & 0xFFFFFFFF) | (raw[{i + 1}] & 0xFFFFFFFF) << 32)"
            parts.append(f"({w} ^ (1 << 63)) - (1 << 63)" if sp.signed else w)
            i += 2
        else:
            r = f"raw[{i}]"
            parts.append(f"(({r} & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000" if sp.signed
                         else f"{r} & 0xFFFFFFFF")
            i += 1
    src = "def decode(raw):\n    return (" + "".join(p + ", " for p in parts) + ")\n"
    ns: dict[str, Any] = {}
    exec(src, ns)  # noqa: S102 (generated from the table's own C types)
    return ns["decode"], i


_SPECS: dict[tuple[str, str], ArgSpec] = {}     # (C type, name) -> its spec, shared


def _specs(cargs: Sequence[tuple[str, str]]) -> tuple[ArgSpec, ...]:
    return tuple(_SPECS.get((t, n)) or _SPECS.setdefault((t, n), arg_spec(t, n))
                 for t, n in cargs if not t.startswith("register_t["))


SYSENT: dict[int, SysEnt] = {_code: SysEnt(_code, _name, _args, _flags)
                             for _code, (_name, _args, _flags) in SYSCALLS.items()}

SYS_syscall = 0
SYS___syscall = 198

_LAZY: dict[int, str] = {}      # call number -> the module to import at its first use
_BY_NAME: dict[str, int] = {}   # call name -> number (code_of; filled at its first use)


def register_lazy(modules: dict[str, Sequence[str]]) -> None:
    """Calls whose module is imported at their first use: {module: call names}."""
    for module, names in modules.items():
        for name in names:
            _LAZY[code_of(name)] = module


def _registered(ent: SysEnt) -> bool:
    """Whether ent's handler slot holds a handler (without importing anything)."""
    try:
        return object.__getattribute__(ent, "handler") is not None
    except AttributeError:
        return False


def syscall(code: int, name: str, restartable: bool = True) -> Callable[[Handler], Handler]:
    """Register `handler(l, a, retval) -> errno` for system call `code`.

    The name must be the table's: a mismatch is a programming error caught at import.
    """
    def register(fn: Handler) -> Handler:
        ent = SYSENT.get(code)
        if ent is None or ent.name != name:
            raise AssertionError(f"syscall {code}: table says {ent and ent.name!r}, handler says {name!r}")
        if _registered(ent):
            raise AssertionError(f"syscall {code} ({name}) registered twice")
        ent.handler = fn
        ent.restartable = restartable
        return fn
    return register


def code_of(name: str) -> int:
    """The number of the call the table names `name` (KeyError: none)."""
    if not _BY_NAME:
        _BY_NAME.update((ent.name, code) for code, ent in SYSENT.items() if ent.name)
    return _BY_NAME[name]


def name_of(code: int) -> str:
    ent = SYSENT.get(code)
    return ent.name if ent and ent.name else f"#{code}"
