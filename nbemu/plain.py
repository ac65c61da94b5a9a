"""Plain record classes for the classes that every nbemu run imports: what
@dataclass gave them (__repr__, __eq__, frozen instances, replace()) without
its start-up cost.

@dataclass writes each class's __init__, __repr__ and __eq__ as source text and
compiles it while the module is imported, and importing dataclasses imports
inspect (ast, dis, tokenize, linecache): ~63M instructions of the ~380M of a
whole nbemu run of a C hello (callgrind), for 14 classes. These classes write
their own __init__ and list their fields in _fields; the behaviour is
@dataclass's:

    Record        __repr__ as @dataclass(eq=False): Cls(a=1, b=2), identity __eq__/hash
    ValueRecord   + __eq__ as @dataclass(): equal when the same class with equal
                  fields, in order; unhashable (__hash__ = None)
    FrozenRecord  + frozen=True: fields are set once (in __init__, through
                  object.__setattr__), hash of the fields, and replace(**changes)
                  for dataclasses.replace()

Modules that nbemu imports only on request (atf, explore, gdb) keep @dataclass.
"""
from __future__ import annotations

from typing import Any


class Record:
    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _astuple(self) -> tuple:
        return tuple(getattr(self, n) for n in self._fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__qualname__}({inner})"


class ValueRecord(Record):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._astuple() == other._astuple()      # type: ignore[attr-defined]
        return NotImplemented

    __hash__ = None     # type: ignore[assignment]  (as @dataclass with eq and not frozen)


class FrozenError(AttributeError):
    """Assignment to a field of a frozen record (dataclasses.FrozenInstanceError)."""


class FrozenRecord(ValueRecord):
    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(self._astuple())

    def _set_fields(self, *values: Any) -> None:
        """Set every field once, in _fields order (a subclass's __init__)."""
        for n, v in zip(self._fields, values, strict=True):
            object.__setattr__(self, n, v)

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed (dataclasses.replace)."""
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__qualname__} has no field {sorted(unknown)[0]!r}")
        new = object.__new__(type(self))
        new._set_fields(*(changes[n] if n in changes else getattr(self, n) for n in self._fields))
        return new
