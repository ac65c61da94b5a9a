"""The layering rule of docs/DESIGN.md ("Layers of the kernel"), checked on the
source: every import of every module of nbemu/, function-local ones included
(they are edges too: a cycle hidden in a function is still a cycle), read with
ast; imports under `if TYPE_CHECKING:` are for type checkers only and do not
count."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "nbemu"

# The rooms: what each may import from the others (emu/ drives the machine,
# guest/ loads programs into the kernel's address spaces, syscalls/ is the kernel).
ROOMS_MAY_IMPORT = {
    "nbemu.emu": {"nbemu.guest", "nbemu.syscalls"},
    "nbemu.guest": {"nbemu.syscalls"},
    "nbemu.syscalls": set(),
}
# The bottom of the kernel: data, constants and the upcall slots. They import
# no other module of the kernel but each other.
LEAVES = {"cstruct", "errno", "host_mem", "hostinput", "kern_tc", "kern_timeout", "signals",
          "syscalls_master", "upcall", "lwp", "table"}


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The modules of nbemu that `name` imports, anywhere in its body. A
    package's __init__ is not a target: importing any module runs it anyway."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[:len(base) - child.level + 1]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                subs = [f"{mod}.{a.name}" for a in child.names if f"{mod}.{a.name}" in mods]
                out.update(subs)
                if len(subs) < len(child.names):
                    out.add(mod)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {m for m in out if m in mods and m != name and mods[m].name != "__init__.py"}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a path a -> ... -> a, or None."""
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state:
                found = dfs(w)
                if found:
                    return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state:
            found = dfs(v)
            if found:
                return found
    return None


def test_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_rooms_import_downwards_only() -> None:
    bad = []
    for a, targets in _graph().items():
        room_a = ".".join(a.split(".")[:2])
        for b in targets:
            room_b = ".".join(b.split(".")[:2])
            if room_a in ROOMS_MAY_IMPORT and room_b in ROOMS_MAY_IMPORT and room_b != room_a \
                    and room_b not in ROOMS_MAY_IMPORT[room_a]:
                bad.append(f"{a} -> {b}")
    assert not bad, bad


def test_leaves_import_only_leaves() -> None:
    graph = _graph()
    leaves = {f"nbemu.syscalls.{m}" for m in LEAVES}
    assert leaves <= set(graph), leaves - set(graph)
    bad = [f"{a} -> {b}" for a in sorted(leaves) for b in sorted(graph[a])
           if b.startswith("nbemu.syscalls.") and b not in leaves]
    assert not bad, bad


def test_kernel_is_on_top() -> None:
    # kernel.py ties the subsystems together; a module below reaches it only
    # through the Kernel object it is handed (l.l_proc.k), never by import.
    users = sorted(a for a, targets in _graph().items()
                   if "nbemu.syscalls.kernel" in targets and a.startswith("nbemu.syscalls."))
    assert not users, users


def test_the_checker_sees_local_imports_and_cycles() -> None:
    # The rule is only as good as its parser: a function-local import is an
    # edge, a TYPE_CHECKING one is not, and a two-module loop is a cycle.
    src = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import X\n"
           "def f():\n    from .c import y\n")
    tmp = PKG / "syscalls" / "errno.py"
    mods = {"nbemu.syscalls.a": tmp, "nbemu.syscalls.b": tmp, "nbemu.syscalls.c": tmp}
    a = Path("/nonexistent/a.py")
    tree_path = _Fake(a, src)
    assert _imports("nbemu.syscalls.a", tree_path, mods) == {"nbemu.syscalls.c"}  # type: ignore[arg-type]
    assert _cycle({"x": {"y"}, "y": {"x"}}) == ["x", "y", "x"]
    assert _cycle({"x": {"y"}, "y": set()}) is None


class _Fake:
    """A path whose text is given (for the checker's own test)."""

    def __init__(self, path: Path, text: str) -> None:
        self.name = path.name
        self._text = text

    def read_text(self) -> str:
        return self._text

    def __str__(self) -> str:
        return self.name


# -- the narrow interfaces: Platform (the kernel's view of the machine) and Abi -----------
def _protocol_members(proto: type) -> set[str]:
    names = {n for n, v in vars(proto).items() if not n.startswith("_") and callable(v)}
    return names | {n for n in getattr(proto, "__annotations__", {}) if not n.startswith("_")}


def _init_attrs(cls: type) -> set[str]:
    """Attributes a class's __init__ assigns (self.x = ...)."""
    import inspect
    import textwrap
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    return {t.attr for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}


def test_platforms_implement_the_protocol() -> None:
    from nbemu.emu.machine import Machine
    from nbemu.syscalls.kernel import Platform
    from tests.khelp import FakePlatform
    want = _protocol_members(Platform)
    for cls in (Machine, FakePlatform):
        have = {n for n in want if hasattr(cls, n)} | _init_attrs(cls)
        assert want <= have, (cls.__name__, sorted(want - have))


def _stubs(cls: type) -> set[str]:
    """Members of the Abi protocol that a port must define: annotations without
    a value, and methods whose body is only `...` or raise NotImplementedError."""
    import inspect
    import textwrap
    names = {n for n in cls.__annotations__ if n not in vars(cls)}
    for n, v in vars(cls).items():
        if inspect.isfunction(v):
            body = ast.parse(textwrap.dedent(inspect.getsource(v))).body[0].body  # type: ignore[attr-defined]
            body = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                            and isinstance(s.value.value, str))]
            if len(body) == 1 and (
                    isinstance(body[0], ast.Raise)
                    or (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                        and body[0].value.value is Ellipsis)):
                names.add(n)
    return names


def test_ports_implement_the_abi() -> None:
    from nbemu.guest.arch import PORTS, all_ports
    from nbemu.guest.arch.base import Abi
    need = _stubs(Abi)
    assert {"fault_siginfo", "machine", "maxcpus", "sendsig_frame"} <= need
    ports = all_ports()
    assert sorted((p.elf_machine, p.name) for p in ports) == sorted(
        (m, name) for m, (_mod, name) in PORTS.items())      # the table names them right
    for port in ports:
        missing = sorted(n for n in need
                         if not any(n in vars(c) for c in type(port).__mro__
                                    if c not in (Abi, object) and c.__module__ != "typing"))
        assert not missing, (port.name, missing)
