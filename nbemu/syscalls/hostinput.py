"""The seam between the kernel and the world outside the guest, for record/replay.

Most of what the kernel computes is a function of the guest's own actions. The
exceptions are values it takes from the host: data read from host descriptors
(stdin, ttys, pipes, files), whether such a descriptor is ready, directory
listings, host random bytes. Those calls go through `host_input(kind, fn)`:

- normally (`recorder` is None) it just returns fn();
- under `nbemu --record` (emu/record.py) the result is also written to the log;
- under `nbemu --replay` fn is NOT called: the value comes from the log, so a
  replay never waits on the host's stdin or sees a file that changed since.

The clock, the other outside input, is swapped as a whole (emu/record.py
subclasses kern_tc.Clock). One process runs one machine at a time (as the
native hook's globals already assume), so a module global is enough.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol


class InputLog(Protocol):
    """emu/record.py's Recorder (replaying False) and Replayer (True)."""
    replaying: bool

    def input(self, kind: str, fn: Callable[[], Any]) -> Any: ...


recorder: InputLog | None = None

# Host descriptors cannot wake a sleeping LWP: whoever waits for one (a blocking
# read of a tty or pipe, kevent, poll/select) sleeps this long and asks again.
HOSTPOLL_NS = 10_000_000


def host_input(kind: str, fn: Callable[[], Any]) -> Any:
    """fn() -- or, under record/replay, fn() logged / its logged value.
    `kind` names the call ("read", "ready", ...) so a replay can tell when the
    guest asks for something else than the recorded run did."""
    r = recorder
    if r is None:
        return fn()
    return r.input(kind, fn)
