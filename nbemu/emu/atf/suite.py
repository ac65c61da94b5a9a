"""Finding the test programs of a suite.

A PATH given to ``nbemu atf`` is a test program, or a directory holding a
``Kyuafile`` (preferred, as Kyua does) or an ``Atffile``:

- Kyuafile (Lua; the subset NetBSD and FreeBSD generate):
  ``syntax(2)``, ``test_suite("NAME")``, ``atf_test_program{name="t_x", ...}``,
  ``plain_test_program{...}`` / ``tap_test_program{...}`` (other interfaces: listed
  as unsupported), ``include("sub/Kyuafile")``, ``--`` comments.  Anything else is
  reported with its line number, never silently ignored.
- Atffile: ``Content-Type: application/X-atf-atffile; version="1"``, a blank line,
  ``prop: name = value``, ``tp: NAME`` (a program or a subdirectory with its own
  Atffile), ``tp-glob: PATTERN``.

Each program gets a display name relative to the top directory (``sub/t_foo``), as
in Kyua's reports.  Problems become :class:`Entry` objects with an ``error`` so
that one bad file never hides the rest of the suite.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass


@dataclass
class Entry:
    path: str                        # host path of the test program (or the bad file)
    name: str                        # display name, relative to the suite's top
    suite: str = ""                  # test_suite name (for config variables)
    interface: str = "atf"           # atf | plain | tap
    error: str | None = None         # the suite file itself is broken here


_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*([({])")


def _lua_string(s: str) -> str | None:
    m = re.fullmatch(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\')\s*', s)
    if not m:
        return None
    return m.group(1) if m.group(1) is not None else m.group(2)


def _table_fields(body: str) -> dict[str, str] | None:
    fields: dict[str, str] = {}
    for part in re.findall(r'(?:[^,"\']|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')+', body):
        if not part.strip():
            continue
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*", part, re.S)
        if not m:
            return None
        v = _lua_string(m.group(2))
        fields[m.group(1)] = v if v is not None else m.group(2)
    return fields


def _strip_comments(text: str) -> str:
    out = []
    for line in text.split("\n"):
        # `--` starts a comment unless inside a string (good enough for Kyuafiles).
        q = None
        for i, c in enumerate(line):
            if q:
                if c == q:
                    q = None
            elif c in "\"'":
                q = c
            elif line.startswith("--", i):
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def _statements(text: str) -> tuple[list[tuple[int, str, str]], str | None]:
    """(line, function, argument text) of each top-level call ``f(...)`` / ``f{...}``,
    up to the first construct that is not one; and the error there, if any."""
    text = _strip_comments(text)
    out: list[tuple[int, str, str]] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i].isspace() or text[i] == ";":
            i += 1
            continue
        m = _CALL.match(text, i)
        line = text.count("\n", 0, i) + 1
        if not m:
            return out, (f"line {line}: unsupported Kyuafile construct: "
                         f"{text[i:].splitlines()[0][:60]!r}")
        opener = m.group(2)
        closer = ")" if opener == "(" else "}"
        j = m.end()
        depth = 1
        q = None
        while j < n and depth:
            c = text[j]
            if q:
                if c == "\\":
                    j += 1
                elif c == q:
                    q = None
            elif c in "\"'":
                q = c
            elif c == opener:
                depth += 1
            elif c == closer:
                depth -= 1
            j += 1
        if depth:
            return out, f"line {line}: unbalanced {opener!r}"
        out.append((line, m.group(1), text[m.end():j - 1]))
        i = j
    return out, None


def read_kyuafile(path: str, top: str, suite: str = "", _depth: int = 0) -> list[Entry]:
    d = os.path.dirname(path)
    rel = os.path.relpath(path, top)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            stmts, problem = _statements(f.read())
    except OSError as e:
        return [Entry(path, rel, suite, error=f"{rel}: {e.strerror}")]
    out: list[Entry] = []
    for line, fn, arg in stmts:
        where = f"{rel}:{line}"
        if fn == "syntax":
            continue
        if fn == "test_suite":
            name = _lua_string(arg)
            if name is None:
                out.append(Entry(path, rel, suite, error=f"{where}: test_suite expects a string"))
            else:
                suite = name
            continue
        if fn == "include":
            sub = _lua_string(arg)
            if sub is None:
                out.append(Entry(path, rel, suite, error=f"{where}: include expects a string"))
            elif _depth > 32:
                out.append(Entry(path, rel, suite, error=f"{where}: includes nested too deep"))
            else:
                out.extend(read_kyuafile(os.path.join(d, sub), top, suite, _depth + 1))
            continue
        if fn in ("atf_test_program", "plain_test_program", "tap_test_program",
                  "test_program"):
            fields = _table_fields(arg)
            if fields is None or "name" not in fields:
                out.append(Entry(path, rel, suite,
                                 error=f"{where}: {fn} needs name=\"...\""))
                continue
            prog = os.path.join(d, fields["name"])
            iface = fn.split("_")[0] if fn != "test_program" else "atf"
            out.append(Entry(prog, os.path.relpath(prog, top),
                             fields.get("test_suite", suite), iface))
            continue
        out.append(Entry(path, rel, suite, error=f"{where}: unsupported Kyuafile "
                                                 f"function {fn}()"))
    if problem:
        out.append(Entry(path, rel, suite, error=f"{rel}: {problem}"))
    return out


ATFFILE_HEADER = 'Content-Type: application/X-atf-atffile; version="1"'


def read_atffile(path: str, top: str, suite: str = "", _depth: int = 0) -> list[Entry]:
    d = os.path.dirname(path)
    rel = os.path.relpath(path, top)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except OSError as e:
        return [Entry(path, rel, suite, error=f"{rel}: {e.strerror}")]
    if not lines or lines[0].strip() != ATFFILE_HEADER:
        return [Entry(path, rel, suite, error=f"{rel}: invalid Atffile header "
                                              f"(expecting {ATFFILE_HEADER!r})")]
    out: list[Entry] = []
    for n, raw in enumerate(lines[1:], 2):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        value = value.strip()
        if not sep:
            out.append(Entry(path, rel, suite, error=f"{rel}:{n}: invalid line {raw!r}"))
            continue
        if key == "prop":
            k, _, v = value.partition("=")
            if k.strip() == "test-suite":
                suite = v.strip()
            continue
        if key in ("tp", "tp-glob"):
            names = (sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, value)))
                     if key == "tp-glob" else [value])
            for name in names:
                p = os.path.join(d, name)
                if os.path.isdir(p):
                    if _depth > 32:
                        out.append(Entry(p, rel, suite, error=f"{rel}:{n}: nested too deep"))
                    else:
                        out.extend(_read_dir(p, top, suite, _depth + 1, atffile_only=True))
                else:
                    out.append(Entry(p, os.path.relpath(p, top), suite))
            continue
        out.append(Entry(path, rel, suite, error=f"{rel}:{n}: unknown Atffile key {key!r}"))
    return out


def _read_dir(d: str, top: str, suite: str, depth: int, atffile_only: bool = False
              ) -> list[Entry]:
    k = os.path.join(d, "Kyuafile")
    a = os.path.join(d, "Atffile")
    if not atffile_only and os.path.isfile(k):
        return read_kyuafile(k, top, suite, depth)
    if os.path.isfile(a):
        return read_atffile(a, top, suite, depth)
    if atffile_only and os.path.isfile(k):
        return read_kyuafile(k, top, suite, depth)
    return [Entry(d, os.path.relpath(d, top) if d != top else os.path.basename(d), suite,
                  error=f"{d}: no Kyuafile or Atffile in this directory")]


def discover(path: str) -> list[Entry]:
    """The test programs named by ``path`` (a program, or a suite directory)."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return _read_dir(path, path, "", 0)
    return [Entry(path, os.path.basename(path))]
