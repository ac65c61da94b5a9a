"""The ATF test-program interface, as Kyua implements it.

- :func:`parse_list` reads the output of ``PROG -l`` (Kyua's engine/atf_list.cpp):
  ``Content-Type: application/X-atf-tp; version="1"``, a blank line, then stanzas
  separated by blank lines, each starting with ``ident: NAME``.  Metadata names
  other than the known ones and ``X-*`` are format errors, as are duplicate
  properties, duplicate test cases and invalid values.
- :func:`parse_result` reads a result file (engine/atf_result.cpp): one line,
  ``passed`` or ``STATUS: reason`` or ``expected_exit|expected_signal[(N)]: reason``.
- :func:`calculate_result` cross-checks the result with the way the body and the
  cleanup processes ended (``apply`` and ``calculate_atf_result`` in Kyua): e.g.
  ``passed`` with a non-zero exit is broken, ``failed`` must exit 1, a timed-out
  body is broken unless ``expected_timeout``.

Results keep ATF's nine statuses; :attr:`Result.kyua` is the one Kyua shows
(every ``expected_*`` is Kyua's ``expected_failure``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

HEADER = 'Content-Type: application/X-atf-tp; version="1"'
DEFAULT_TIMEOUT = 300

STATUSES = ("passed", "failed", "skipped", "broken", "expected_failure", "expected_death",
            "expected_exit", "expected_signal", "expected_timeout")
GOOD = frozenset(("passed", "skipped", "expected_failure", "expected_death", "expected_exit",
                  "expected_signal", "expected_timeout"))

# Metadata properties a test program may print (Kyua 0.14 accepts these; `X-*` too).
_WORDS = ("require.arch", "require.config", "require.machine")
_PATHS = ("require.files", "require.progs")
_BOOLS = ("has.cleanup", "is.exclusive")
_BYTES = ("require.memory", "require.diskspace")
KNOWN_PROPERTIES = frozenset(("descr", "timeout", "require.user", "execenv",
                              "execenv.jail.params", "require.kmods",
                              *_WORDS, *_PATHS, *_BOOLS, *_BYTES))


class FormatError(ValueError):
    """The output of a test program breaks the ATF interface."""


# ---------------------------------------------------------------- test cases


@dataclass
class TestCase:
    __test__ = False                  # not a pytest class
    name: str
    metadata: dict[str, str] = field(default_factory=dict)

    def _words(self, key: str) -> list[str]:
        return self.metadata.get(key, "").split()

    @property
    def description(self) -> str:
        return self.metadata.get("descr", "")

    @property
    def has_cleanup(self) -> bool:
        return self.metadata.get("has.cleanup", "false") == "true"

    @property
    def is_exclusive(self) -> bool:
        return self.metadata.get("is.exclusive", "false") == "true"

    @property
    def timeout(self) -> float | None:
        """Seconds; None means no limit (``timeout: 0``)."""
        t = int(self.metadata.get("timeout", DEFAULT_TIMEOUT))
        return None if t == 0 else float(t)

    @property
    def required_arch(self) -> list[str]:
        return self._words("require.arch")

    @property
    def required_machine(self) -> list[str]:
        return self._words("require.machine")

    @property
    def required_config(self) -> list[str]:
        return self._words("require.config")

    @property
    def required_files(self) -> list[str]:
        return self._words("require.files")

    @property
    def required_progs(self) -> list[str]:
        return self._words("require.progs")

    @property
    def required_kmods(self) -> list[str]:
        return self._words("require.kmods")

    @property
    def required_user(self) -> str:
        return self.metadata.get("require.user", "")

    @property
    def required_memory(self) -> int:
        return parse_bytes(self.metadata.get("require.memory", "0"))

    @property
    def required_diskspace(self) -> int:
        return parse_bytes(self.metadata.get("require.diskspace", "0"))

    @property
    def execenv(self) -> str:
        return self.metadata.get("execenv", "")


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str) -> int:
    """``1024``, ``512k``, ``1.5G`` (units k/m/g/t, any case) as Kyua's units::bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)\s*", text)
    if not m:
        raise FormatError(f"Invalid bytes quantity '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _check_property(name: str, value: str) -> None:
    if name.startswith("X-") and len(name) > 2:
        return
    if name not in KNOWN_PROPERTIES:
        raise FormatError(f"Unknown test case metadata property '{name}'")
    if name in _BOOLS and value not in ("true", "false"):
        raise FormatError(f"Invalid value for property '{name}': "
                          f"'{value}' is not a boolean (true or false)")
    if name == "timeout" and not re.fullmatch(r"\d+", value):
        raise FormatError(f"Invalid value for property 'timeout': "
                          f"'{value}' is not a number of seconds")
    if name in _BYTES:
        parse_bytes(value)
    if name == "require.user" and value not in ("", "root", "unprivileged"):
        raise FormatError(f"Invalid value for property 'require.user': '{value}' "
                          f"(root or unprivileged)")
    if name == "require.files":
        for p in value.split():
            if not p.startswith("/"):
                raise FormatError(f"Invalid value for property 'require.files': "
                                  f"relative path '{p}' not allowed")
    if name == "require.progs":
        for p in value.split():
            if "/" in p and not p.startswith("/"):
                raise FormatError(f"Invalid value for property 'require.progs': "
                                  f"relative path '{p}' not allowed")


def _split_prop(line: str, lineno: int) -> tuple[str, str]:
    pos = line.find(": ")
    if pos < 0:
        raise FormatError(f"line {lineno}: invalid property line '{line}'; expecting a "
                          f"line of the form 'name: value'")
    return line[:pos], line[pos + 2:]


def parse_list(text: str) -> list[TestCase]:
    """The test cases of ``PROG -l`` output, in the program's order."""
    lines = text.split("\n")
    # A final newline ends the last line; it does not start an empty one.
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != HEADER:
        got = lines[0] if lines else ""
        raise FormatError(f"Invalid header for test case list; expecting Content-Type for "
                          f"application/X-atf-tp version 1, got '{got}'")
    if len(lines) < 2 or lines[1] != "":
        got = lines[1] if len(lines) > 1 else "<end of output>"
        raise FormatError(f"Invalid header for test case list; expecting a blank line, "
                          f"got '{got}'")
    cases: list[TestCase] = []
    seen: set[str] = set()
    i = 2
    while i < len(lines):
        key, value = _split_prop(lines[i], i + 1)
        if key != "ident" or not value:
            raise FormatError(f"line {i + 1}: invalid test case definition; must be "
                              f"preceded by the identifier (got '{lines[i]}')")
        if value in seen:
            raise FormatError(f"line {i + 1}: duplicate test case '{value}'")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
            raise FormatError(f"line {i + 1}: invalid test case name '{value}'")
        seen.add(value)
        tc = TestCase(value)
        i += 1
        while i < len(lines) and lines[i] != "":
            k, v = _split_prop(lines[i], i + 1)
            if k in tc.metadata or k == "ident":
                raise FormatError(f"line {i + 1}: duplicate value for property {k} "
                                  f"in test case '{value}'")
            try:
                _check_property(k, v)
            except FormatError as e:
                raise FormatError(f"line {i + 1}: {e} (test case '{value}')") from None
            tc.metadata[k] = v
            i += 1
        cases.append(tc)
        i += 1                                    # the blank separator
    if not cases:
        raise FormatError("No test cases")
    return cases


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class RawResult:
    status: str
    reason: str | None = None
    arg: int | None = None

    def __str__(self) -> str:
        s = self.status
        if self.arg is not None:
            s += f"({self.arg})"
        return s if self.reason is None else f"{s}: {self.reason}"


def parse_result(text: str) -> RawResult:
    """One result line; FormatError (with Kyua's message) when it is not one."""
    # Kyua's read_lines: a last line without a newline counts only after another line.
    if "\n" not in text:
        raise FormatError("Empty test result or no new line")
    body = text.split("\n")
    if body[-1] == "":
        body.pop()
    if len(body) > 1:
        raise FormatError("Test result contains multiple lines: " + "<<NEWLINE>>".join(body))
    line = body[0]
    m = re.match(r"[a-z_]*", line)
    status = m.group(0) if m else ""
    rest = line[len(status):]
    if status == "passed":
        if rest:
            raise FormatError("passed cannot have a reason")
        return RawResult("passed")
    if status in ("broken", "expected_death", "expected_failure", "expected_timeout",
                  "failed", "skipped"):
        if len(rest) < 3 or not rest.startswith(": "):
            raise FormatError(f"{status} must be followed by ': <reason>'")
        return RawResult(status, rest[2:])
    if status in ("expected_exit", "expected_signal"):
        arg = None
        if rest.startswith("("):
            close = rest.find("):")
            if close < 0:
                raise FormatError(f"Mismatched '(' in {rest}")
            argstr = rest[1:close]
            if not re.fullmatch(r"-?\d+", argstr.strip()):
                raise FormatError(f"Invalid integer argument '{argstr}' to '{status}' "
                                  f"test case result")
            arg = int(argstr)
            rest = rest[close + 1:]
        if not rest.startswith(": ") or len(rest) < 3:
            raise FormatError(f"Invalid format for '{status}' test case result; must be "
                              f"followed by '[(num)]: <reason>' but found '{rest}'")
        return RawResult(status, rest[2:], arg)
    word = status or re.split(r"[:(\s]", line, maxsplit=1)[0]
    raise FormatError(f"Unknown test result '{word}'")


@dataclass(frozen=True)
class ProcStatus:
    """How a process ended: ``exitcode`` or ``signal`` (one of them is None)."""
    exitcode: int | None = None
    signal: int | None = None

    @classmethod
    def from_returncode(cls, rc: int) -> ProcStatus:
        return cls(signal=-rc) if rc < 0 else cls(exitcode=rc)

    @property
    def exited(self) -> bool:
        return self.exitcode is not None

    def __str__(self) -> str:
        if self.exitcode is not None:
            return f"exited with code {self.exitcode}"
        return f"received signal {self.signal}"


@dataclass(frozen=True)
class Result:
    """A test case's final result: one of STATUSES, its reason, and its argument."""
    status: str
    reason: str = ""
    arg: int | None = None

    @property
    def good(self) -> bool:
        return self.status in GOOD

    @property
    def kyua(self) -> str:
        """Kyua's view: passed, failed, skipped, broken or expected_failure."""
        return "expected_failure" if self.status.startswith("expected_") else self.status

    def __str__(self) -> str:
        s = self.status + (f"({self.arg})" if self.arg is not None else "")
        return f"{s}: {self.reason}" if self.reason else s


def apply_status(raw: RawResult, status: ProcStatus | None) -> Result:
    """Kyua's atf_result::apply: does the way the body ended fit its result?"""
    reason = raw.reason or ""
    if status is None:
        if raw.status == "expected_timeout":
            return Result("expected_timeout", reason)
        return Result("broken", "Test case body timed out")
    s = raw.status
    if s in ("broken", "expected_death"):
        return Result(s, reason)
    if s == "expected_exit":
        if not status.exited:
            return Result("broken", f"Expected clean exit but {status}")
        if raw.arg is not None and raw.arg != status.exitcode:
            return Result("failed", f"Test case expected to exit with code {raw.arg} but got "
                                    f"code {status.exitcode}")
        return Result(s, reason, raw.arg)
    if s == "expected_signal":
        if status.exited:
            return Result("broken", f"Expected signal but {status}")
        if raw.arg is not None and raw.arg != status.signal:
            return Result("failed", f"Test case expected to receive signal {raw.arg} but got "
                                    f"{status.signal}")
        return Result(s, reason, raw.arg)
    if s == "expected_timeout":
        return Result("broken", f"Expected timeout but {status}")
    if s == "expected_failure":
        if status.exitcode == 0:
            return Result(s, reason)
        return Result("broken", f"Expected failure should have reported success but {status}")
    if s == "failed":
        if status.exitcode == 1:
            return Result(s, reason)
        return Result("broken", f"Failed test case should have reported failure but {status}")
    if s == "passed":
        if status.exitcode == 0:
            return Result(s)
        return Result("broken", f"Passed test case should have reported success but {status}")
    if s == "skipped":
        if status.exitcode == 0:
            return Result(s, reason)
        return Result("broken", f"Skipped test case should have reported success but {status}")
    raise AssertionError(s)


def calculate_result(body: ProcStatus | None, cleanup: ProcStatus | None | bool,
                     result_text: str | None) -> Result:
    """Kyua's calculate_atf_result.

    body: how the body ended (None: it timed out).  cleanup: how the cleanup part
    ended, None if it timed out, True if there was none to run.  result_text: the
    result file's contents, None if the body did not create it.
    """
    raw: RawResult
    if result_text is None:
        if body is None:
            raw = RawResult("broken", "Unknown result")        # apply() reports the timeout
        else:
            raw = RawResult("broken", f"Premature exit; test case {body}")
    else:
        try:
            raw = parse_result(result_text)
        except FormatError as e:
            raw = RawResult("broken", str(e))
    res = apply_status(raw, body)
    if res.good and cleanup is not True:
        if cleanup is None:
            res = Result("broken", "Test case cleanup timed out")
        elif not (cleanup.exited and cleanup.exitcode == 0):
            res = Result("broken", f"Test case cleanup did not terminate successfully "
                                   f"({cleanup})")
    return res
