#!/usr/bin/env python3
"""Generate ``nbemu/syscalls/syscalls_master.py`` from NetBSD's generated syscall headers.

NetBSD's ``sys/kern/syscalls.master`` is compiled (by ``makesyscalls.sh``) into,
among others, ``sys/syscall.h`` (numbers and names) and ``sys/syscallargs.h``
(one ``struct <func>_args`` per call plus the kernel prototypes).  The ``ziglang``
PyPI package ships both for NetBSD, so we read them instead of syscalls.master.

What is taken from where
------------------------
``sys/syscall.h``
    * ``/* syscall: "NAME" ret: "T" args: "T1" "T2" ... */`` followed by
      ``#define SYS_NAME N``: a call with number N.  NAME is NetBSD's
      ``syscallnames[]`` entry (what ktrace/kdump print): ``"break"`` for
      ``sys_obreak``, ``"compat_50__lwp_park"`` for the compat slot, ...
    * ``/* N is obsolete|excluded|ignored TEXT */``: a slot without a call.
    * ``#if COND`` / ``#else`` / ``#endif`` around entries: recorded as the
      condition under which the call exists (``!defined(_LP64)`` for the 1.0
      SysV compat calls 169-171, NTP for 176 and 448).
    * numbers below ``SYS_MAXSYSCALL`` that appear nowhere are UNIMPL slots.
``sys/syscallargs.h``
    * ``int sys_read(struct lwp *, const struct sys_read_args *, register_t *);``
      prototypes, one per numbered call and in the same order as syscall.h:
      they give the kernel function name (``sys_obreak``,
      ``compat_43_sys_creat``) and the argument structure (``const void *`` for
      calls without arguments).
    * ``struct X_args { syscallarg(TYPE) NAME; ... };``: argument C types and
      names, in order, padding arguments (``PAD``) included.

The argument types of syscall.h's comment are cross-checked against the
structures (``"..."`` in the comment matches any remaining arguments).

Run ``python3 tools/gen_syscalls_master.py`` (or ``--include DIR`` for another
header tree, ``--output FILE``/``--check``) to regenerate.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: Default output, relative to the repository root.
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "nbemu" / "syscalls" / "syscalls_master.py"

_RE_SYSCALL_COMMENT = re.compile(r'^/\* syscall: "(?P<name>[^"]+)" ret: "(?P<ret>[^"]*)" args:(?P<args>.*) \*/$')
_RE_COMMENT_ARG = re.compile(r'"([^"]*)"')
_RE_DEFINE_SYS = re.compile(r"^#define\tSYS_(?P<name>\w+)\t(?P<num>\d+)$")
_RE_SLOT_COMMENT = re.compile(r"^\s*/\* (?P<num>\d+) is (?P<kind>obsolete|excluded|ignored) (?P<text>.*?) \*/$")
_RE_IF = re.compile(r"^#\s*if\s+(?P<cond>.*)$")
_RE_STRUCT_OPEN = re.compile(r"^struct (?P<name>\w+_args) \{$")
_RE_SYSCALLARG = re.compile(r"^\s*syscallarg\((?P<type>[^;]*)\) (?P<name>\w+)(?P<array>\[\w+\])?;$")
_RE_PROTOTYPE = re.compile(
    r"^(?P<ret>[\w ]+?)\t(?P<func>\w+)\(struct lwp \*, const (?:struct (?P<args>\w+_args) \*|void \*), register_t \*\);$"
)


class HeaderError(Exception):
    """The headers do not look the way this generator expects."""


@dataclass
class SyscallHEntry:
    """One numbered slot as described by sys/syscall.h."""

    number: int
    name: str
    flags: str  # "", "compat", "indir", "obsolete", "excluded", "ignored", "unimpl"
    comment_args: tuple[str, ...] = ()
    condition: str = ""  # preprocessor condition under which this entry exists
    note: str = ""  # the comment of an obsolete/excluded/ignored slot


@dataclass
class SyscallHeader:
    """Everything parsed from sys/syscall.h."""

    revision: str
    source_revision: str
    maxsysargs: int
    maxsyscall: int
    nsysent: int
    calls: list[SyscallHEntry] = field(default_factory=list)  # defined calls, in file order
    slots: list[SyscallHEntry] = field(default_factory=list)  # obsolete/excluded/ignored comments


def _rcs_id(text: str) -> str:
    m = re.search(r"\$NetBSD: (\S+,v [\d.]+ [\d/]+ [\d:]+ \w+) Exp \$", text)
    if not m:
        raise HeaderError("no $NetBSD$ RCS id")
    return m.group(1)


def _created_from(text: str) -> str:
    m = re.search(r"created from\s+NetBSD: (\S+,v [\d.]+ [\d/]+ [\d:]+ \w+) Exp", text)
    if not m:
        raise HeaderError("no 'created from' line")
    return m.group(1)


def _define(text: str, macro: str) -> int:
    m = re.search(rf"^#define\t{macro}\t(\d+)$", text, re.M)
    if not m:
        raise HeaderError(f"no #define {macro}")
    return int(m.group(1))


def _negate(cond: str) -> str:
    return f"!({cond})"


def parse_syscall_h(text: str) -> SyscallHeader:
    """Parse sys/syscall.h."""
    hdr = SyscallHeader(
        revision=_rcs_id(text),
        source_revision=_created_from(text),
        maxsysargs=_define(text, "SYS_MAXSYSARGS"),
        maxsyscall=_define(text, "SYS_MAXSYSCALL"),
        nsysent=_define(text, "SYS_NSYSENT"),
    )
    cond_stack: list[str] = []  # conditions of the #if blocks we are in, innermost last
    pending: tuple[str, tuple[str, ...]] | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if m := _RE_SYSCALL_COMMENT.match(line):
            if pending is not None:
                raise HeaderError(f"syscall.h:{lineno}: two syscall comments in a row")
            pending = (m.group("name"), tuple(_RE_COMMENT_ARG.findall(m.group("args"))))
            continue
        if m := _RE_DEFINE_SYS.match(line):
            name, num = m.group("name"), int(m.group("num"))
            if name in ("MAXSYSARGS", "MAXSYSCALL", "NSYSENT"):
                continue
            if pending is None or pending[0] != name:
                raise HeaderError(f"syscall.h:{lineno}: SYS_{name} without its comment")
            hdr.calls.append(
                SyscallHEntry(
                    number=num,
                    name=name,
                    flags="compat" if name.startswith("compat_") else "",
                    comment_args=pending[1],
                    condition=" && ".join(cond_stack),
                )
            )
            pending = None
            continue
        if pending is not None and line.strip():
            raise HeaderError(f"syscall.h:{lineno}: syscall comment not followed by #define")
        if m := _RE_SLOT_COMMENT.match(line):
            text_ = m.group("text")
            last = text_.split()[-1]
            hdr.slots.append(
                SyscallHEntry(
                    number=int(m.group("num")),
                    name=last.removeprefix("sys_"),
                    flags=m.group("kind"),
                    condition=" && ".join(cond_stack),
                    note=f"{m.group('kind')} {text_}",
                )
            )
            continue
        if line.startswith("#ifndef _SYS_SYSCALL_H_"):
            continue
        if m := _RE_IF.match(line):
            cond_stack.append(m.group("cond").strip())
        elif line.startswith("#else"):
            if not cond_stack:
                raise HeaderError(f"syscall.h:{lineno}: #else outside #if")
            cond_stack[-1] = _negate(cond_stack[-1])
        elif line.startswith("#endif"):
            if cond_stack:
                cond_stack.pop()
            elif "_SYS_SYSCALL_H_" not in line:
                raise HeaderError(f"syscall.h:{lineno}: unbalanced #endif")
        elif line.startswith("#") and not line.startswith("#define"):
            raise HeaderError(f"syscall.h:{lineno}: unexpected directive {line!r}")
    if cond_stack:
        raise HeaderError("syscall.h: unterminated #if")
    return hdr


@dataclass
class SyscallArgsHeader:
    """Everything parsed from sys/syscallargs.h."""

    revision: str
    source_revision: str
    structs: dict[str, tuple[tuple[str, str], ...]]
    prototypes: list[tuple[str, str | None]]  # (kernel function, args struct or None), in file order


def _array_type(ctype: str, array: str) -> str:
    # ``register_t args[SYS_MAXSYSARGS]`` -> C type name ``register_t[SYS_MAXSYSARGS]``
    return f"{ctype}{array}" if array else ctype


def parse_syscallargs_h(text: str) -> SyscallArgsHeader:
    """Parse sys/syscallargs.h: argument structures and kernel prototypes."""
    structs: dict[str, tuple[tuple[str, str], ...]] = {}
    prototypes: list[tuple[str, str | None]] = []
    current: str | None = None
    members: list[tuple[str, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if current is not None:
            if line == "};":
                if current in structs:
                    raise HeaderError(f"syscallargs.h:{lineno}: struct {current} defined twice")
                structs[current] = tuple(members)
                current = None
                continue
            m = _RE_SYSCALLARG.match(line)
            if not m:
                raise HeaderError(f"syscallargs.h:{lineno}: unexpected line in struct {current}: {line!r}")
            members.append((_array_type(m.group("type").strip(), m.group("array") or ""), m.group("name")))
            continue
        if m := _RE_STRUCT_OPEN.match(line):
            current, members = m.group("name"), []
            continue
        if m := _RE_PROTOTYPE.match(line):
            prototypes.append((m.group("func"), m.group("args")))
    if current is not None:
        raise HeaderError(f"syscallargs.h: unterminated struct {current}")
    return SyscallArgsHeader(
        revision=_rcs_id(text),
        source_revision=_created_from(text),
        structs=structs,
        prototypes=prototypes,
    )


@dataclass(frozen=True)
class Syscall:
    """One row of the generated table."""

    number: int
    name: str
    args: tuple[tuple[str, str], ...]
    flags: str
    func: str = ""  # kernel function implementing it (sys_obreak, compat_50_sys__lwp_park)
    condition: str = ""
    note: str = ""


def _check_comment_args(entry: SyscallHEntry, args: tuple[tuple[str, str], ...]) -> None:
    """syscall.h's comment lists argument types; they must agree with the struct."""
    ctypes = [t for t, _ in args]
    for i, ctype in enumerate(entry.comment_args):
        if ctype == "...":
            if i >= len(ctypes):
                raise HeaderError(f"{entry.number} {entry.name}: '...' with no argument behind it")
            return
        if i >= len(ctypes) or ctypes[i] != ctype:
            raise HeaderError(
                f"{entry.number} {entry.name}: syscall.h says {entry.comment_args}, syscallargs.h says {ctypes}"
            )
    if len(entry.comment_args) != len(ctypes):
        raise HeaderError(f"{entry.number} {entry.name}: argument count differs between headers")


def build_table(sh: SyscallHeader, sa: SyscallArgsHeader) -> dict[int, Syscall]:
    """Join the two headers into number -> Syscall, with every slot 0..SYS_MAXSYSCALL-1."""
    if sh.source_revision != sa.source_revision:
        raise HeaderError(f"headers from different syscalls.master: {sh.source_revision} / {sa.source_revision}")
    if len(sh.calls) != len(sa.prototypes):
        raise HeaderError(f"{len(sh.calls)} calls in syscall.h but {len(sa.prototypes)} prototypes")
    table: dict[int, Syscall] = {}
    for entry, (func, struct) in zip(sh.calls, sa.prototypes):
        # The prototype's function is <prefix>sys_<base>; the compat prefix must agree.
        prefix = func[: func.index("sys_")] if "sys_" in func else ""
        if not entry.name.startswith(prefix):
            raise HeaderError(f"{entry.number}: syscall.h {entry.name!r} paired with prototype {func!r}")
        if struct is None:
            args: tuple[tuple[str, str], ...] = ()
        elif struct in sa.structs:
            args = sa.structs[struct]
        else:
            raise HeaderError(f"{entry.number} {entry.name}: struct {struct} not defined")
        _check_comment_args(entry, args)
        flags = entry.flags
        if any(t.endswith("]") for t, _ in args):
            flags = "indir"  # syscall(2), __syscall(2): number and arguments follow in args[]
        if entry.number in table:
            raise HeaderError(f"{entry.number} defined twice")
        table[entry.number] = Syscall(entry.number, entry.name, args, flags, func, entry.condition)
    for slot in sh.slots:
        if slot.number in table:
            other = table[slot.number]
            # #if COND <call> #else <slot> #endif: keep the call, which exists under its condition.
            if not (other.condition and slot.condition == _negate(other.condition)):
                raise HeaderError(f"{slot.number}: slot {slot.note!r} collides with {other.name}")
            table[slot.number] = Syscall(
                other.number, other.name, other.args, other.flags, other.func, other.condition, slot.note
            )
            continue
        table[slot.number] = Syscall(slot.number, slot.name, (), slot.flags, "", slot.condition, slot.note)
    for number in range(sh.maxsyscall):
        if number not in table:
            table[number] = Syscall(number, "", (), "unimpl")
    if max(table) != sh.maxsyscall - 1:
        raise HeaderError(f"numbers beyond SYS_MAXSYSCALL={sh.maxsyscall}")
    return dict(sorted(table.items()))


def default_include_dir() -> Path:
    """The NetBSD header tree shipped in the ziglang package."""
    import ziglang  # type: ignore[import-not-found]

    return Path(os.path.dirname(ziglang.__file__)) / "lib" / "libc" / "include" / "generic-netbsd"


def _describe_include(include: Path) -> str:
    """A stable description of the header tree (no absolute host paths)."""
    parts = include.resolve().parts
    if "ziglang" in parts:
        rel = "/".join(parts[parts.index("ziglang") :])
        try:
            from importlib.metadata import version

            return f"{rel} (ziglang {version('ziglang')})"
        except Exception:  # pragma: no cover - metadata missing
            return rel
    return include.name


def _q(s: str) -> str:
    """A double-quoted Python string literal (header text never needs escapes)."""
    if not re.fullmatch(r"[\w .*()|!&\[\]-]*", s):
        raise HeaderError(f"unexpected characters in {s!r}")
    return f'"{s}"'


def _tuple(items: Iterable[str]) -> str:
    """A Python tuple display of already-rendered items."""
    parts = list(items)
    if len(parts) == 1:
        return f"({parts[0]},)"
    return f"({', '.join(parts)})"


def render(table: dict[int, Syscall], sh: SyscallHeader, sa: SyscallArgsHeader, origin: str) -> str:
    """The text of nbemu/syscalls/syscalls_master.py."""
    out: list[str] = []
    w = out.append
    w("# GENERATED FILE -- DO NOT EDIT.")
    w("# ruff: noqa: E501")
    w('"""NetBSD system call table: numbers, names and argument lists.')
    w("")
    w(f"Generated by tools/gen_syscalls_master.py from {origin}:")
    w(f"    sys/syscall.h     {sh.revision}")
    w(f"    sys/syscallargs.h {sa.revision}")
    w(f"    both created from {sh.source_revision}")
    w("Regenerate with:  python3 tools/gen_syscalls_master.py [--include DIR]")
    w("")
    w("SYSCALLS maps number -> (name, ((ctype, argname), ...), flags) for every slot")
    w("0 .. SYS_MAXSYSCALL-1:")
    w("  name   NetBSD's syscallnames[] name (sys/syscall.h), i.e. the kernel name without")
    w("         'sys_' and with any compat prefix kept: '_lwp_create', '___lwp_park60',")
    w("         'compat_60__lwp_park', 'break' (kernel function sys_obreak).  For an")
    w("         obsolete/excluded/ignored slot, the last word of its comment; '' when unimpl.")
    w("  args   the members of the kernel's struct <func>_args in order, C type as written;")
    w("         padding arguments are named 'PAD'; the indirect calls 0 and 198 end with")
    w("         ('register_t[SYS_MAXSYSARGS]', 'args').")
    w("  flags  '' (a current call), 'compat' (compat_NN_ entry point for old binaries),")
    w("         'indir' (syscall / __syscall), 'obsolete', 'excluded', 'ignored' (a no-op")
    w("         that succeeds), 'unimpl' (no call: ENOSYS/SIGSYS).")
    w("KERNEL_FUNCS maps number -> NetBSD kernel function (sys_obreak, compat_43_sys_creat).")
    w("CONDITIONS maps number -> the preprocessor condition under which that row exists;")
    w("otherwise the slot is 'excluded' (169-171 exist only on ILP32 ABIs).")
    w("SLOT_NOTES maps number -> the header's comment for obsolete/excluded/ignored slots; for")
    w("a row in CONDITIONS, what the slot is when the condition is false ('excluded 1.0 semsys').")
    w('"""')
    w("")
    w("from __future__ import annotations")
    w("")
    w(f"SYS_MAXSYSARGS = {sh.maxsysargs}")
    w(f"SYS_MAXSYSCALL = {sh.maxsyscall}")
    w(f"SYS_NSYSENT = {sh.nsysent}")
    w("")
    w("# number -> (name, ((ctype, argname), ...), flags)")
    w("SYSCALLS: dict[int, tuple[str, tuple[tuple[str, str], ...], str]] = {")
    for sc in table.values():
        w(f"    {sc.number}: ({_q(sc.name)}, {_tuple(f'({_q(t)}, {_q(n)})' for t, n in sc.args)}, {_q(sc.flags)}),")
    w("}")
    w("")
    w("# number -> kernel function implementing it")
    w("KERNEL_FUNCS: dict[int, str] = {")
    for sc in table.values():
        if sc.func:
            w(f"    {sc.number}: {_q(sc.func)},")
    w("}")
    w("")
    w("# number -> preprocessor condition under which SYSCALLS[number] exists")
    w("CONDITIONS: dict[int, str] = {")
    for sc in table.values():
        if sc.condition:
            w(f"    {sc.number}: {_q(sc.condition)},")
    w("}")
    w("")
    w("# number -> header comment of an obsolete / excluded / ignored slot")
    w("SLOT_NOTES: dict[int, str] = {")
    for sc in table.values():
        if sc.note:
            w(f"    {sc.number}: {_q(sc.note)},")
    w("}")
    return "\n".join(out) + "\n"


def generate(include: Path) -> tuple[dict[int, Syscall], str]:
    """Parse the headers under *include* and return the table and the module text."""
    sysdir = include / "sys"
    sh = parse_syscall_h((sysdir / "syscall.h").read_text())
    sa = parse_syscallargs_h((sysdir / "syscallargs.h").read_text())
    table = build_table(sh, sa)
    return table, render(table, sh, sa, _describe_include(include))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--include", type=Path, help="NetBSD include dir holding sys/syscall.h (default: ziglang's)")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file to write ('-' for stdout)")
    ap.add_argument("--check", action="store_true", help="exit 1 if --output differs from what would be written")
    ns = ap.parse_args(argv)
    include = ns.include or default_include_dir()
    try:
        _, text = generate(include)
    except (HeaderError, OSError) as e:
        print(f"gen_syscalls_master: {e}", file=sys.stderr)
        return 2
    if str(ns.output) == "-":
        sys.stdout.write(text)
        return 0
    if ns.check:
        current = ns.output.read_text() if ns.output.exists() else None
        if current != text:
            print(f"gen_syscalls_master: {ns.output} is out of date", file=sys.stderr)
            return 1
        return 0
    ns.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
