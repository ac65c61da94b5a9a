"""nbemu's command line, in qemu-user's style:

    nbemu [--ncpu N] [-m SIZE] [--deterministic] [--seed S] [--root DIR]
          [--bind HOST[:GUEST]]... [--strace[=FILE]]
          [-E VAR=VALUE]... [-U VAR]... [-0 ARGV0] PROGRAM [ARGS...]
    nbemu atf|explore|timeline ...        (tools built on the emulator)
"""
from __future__ import annotations

import argparse
import gc
import os
import sys

from . import __doc__ as _pkgdoc  # noqa: F401

VERSION = "0.1.0"
_TAKES_VALUE = {"--ncpu", "-m", "--memory", "--seed", "--root", "--bind", "-E", "-U", "-0", "-g", "--record", "--replay"}

MIN_MEMORY, MAX_MEMORY = 1 << 20, 1 << 40
_SUFFIX = {"": 1 << 20, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}



class _Version(argparse.Action):
    """--version: nbemu's, and which Unicorn library it runs on (engine_lib)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from nbemu.emu.native.engine_lib import in_use
        print(f"nbemu {VERSION}\nengine: {in_use()}")
        parser.exit()

def parse_size(text: str) -> int | None:
    """qemu's -m SIZE: a number of MiB, or with a suffix (B, K, M, G, T; any
    case); None when it is not one."""
    t = text.strip().upper()
    unit = t[-1:] if t[-1:] in _SUFFIX and not t[-1:].isdigit() else ""
    num = t[:len(t) - len(unit)]
    try:
        val = float(num)
    except ValueError:
        return None
    if not num or val != val or val < 0 or val == float("inf"):
        return None
    return int(val * _SUFFIX[unit])


USAGE = """nbemu [options] PROGRAM [ARGS...]
       nbemu atf [options] PATH[:CASE]...          run ATF test programs
       nbemu explore [options] PROGRAM [ARGS...]   run it under many schedules
       nbemu timeline FILE [--png OUT]             summarise / draw a --timeline"""

EPILOG = """\
subcommands (each has its own --help):
  atf        run NetBSD ATF test programs or Kyuafile trees, Kyua-like results,
             JUnit/HTML reports; --kyua-suite writes a suite for the real Kyua
  explore    run PROGRAM under many deterministic schedules (PCT or random) and
             report the first failing one with the command that replays it
  timeline   summarise a --timeline FILE, or draw it as a PNG (--png OUT)

exit status: the guest's; 128+N when a signal N killed it; 125 the guest
deadlocked (every LWP blocked forever); 124 a --replay diverged from its log;
126/127 PROGRAM cannot be run / was not found; 70 nbemu itself failed; 2 usage.
nbemu returns when PROGRAM's process exits; processes it leaves behind (a
background job, a daemon) run on in the background, as on NetBSD (with
--record/--replay/--timeline/--trace/--strace nbemu waits for them; with -g they end).
See README.md (and docs/DESIGN.md) for more."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, its width found as shutil.get_terminal_size() finds the
    columns, without importing shutil (and with it bz2, lzma, fnmatch: ~6M
    instructions of every start, callgrind): argparse makes a formatter at every
    add_argument(), and HelpFormatter imports shutil when it is given no width."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            try:
                width = int(os.environ["COLUMNS"])
            except (KeyError, ValueError):
                width = 0
            if width <= 0:
                try:
                    width = os.get_terminal_size(sys.__stdout__.fileno()).columns
                except (AttributeError, ValueError, OSError):
                    width = 0
            width = (width or 80) - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="nbemu", usage=USAGE, formatter_class=_Formatter,
        description="Run an unmodified NetBSD program on Linux: "
                    "NetBSD/amd64, NetBSD/aarch64,\nNetBSD/i386 or NetBSD/earmv7hf "
                    "(32-bit ARM, hard float); NetBSD 10.1's system calls.",
        epilog=EPILOG)
    ap.add_argument("--ncpu", type=int, default=4, metavar="N",
                    help="number of emulated CPUs (default 4; hw.ncpu)")
    ap.add_argument("-m", "--memory", default=None, metavar="SIZE",
                    help="the guest's RAM, as qemu's -m: MiB, or with a suffix K, M, G, T "
                         "(default 8G; hw.physmem64; half of it is the kernel arena LWPs' "
                         "u-areas come from: _lwp_create's ENOMEM)")
    ap.add_argument("--deterministic", action="store_true",
                    help="seeded scheduling and a virtual clock: the same run every time")
    ap.add_argument("--seed", type=int, default=0, metavar="S",
                    help="seed of --deterministic scheduling (default 0)")
    ap.add_argument("--root", default="/", metavar="DIR",
                    help="the guest's / (default: the host's /, as qemu-user)")
    ap.add_argument("--bind", dest="binds", action="append", default=[],
                    metavar="HOST[:GUEST]",
                    help="the host directory HOST seen at GUEST (default: HOST) inside "
                         "the guest root, as a mount; repeatable")
    ap.add_argument("--strace", nargs="?", const="-", default=None, metavar="FILE",
                    help="print one line per system call (to stderr, or to FILE)")
    ap.add_argument("-E", dest="setenv", action="append", default=[], metavar="VAR=VALUE",
                    help="set a variable in the guest's environment")
    ap.add_argument("-U", dest="unsetenv", action="append", default=[], metavar="VAR",
                    help="remove a variable from the guest's environment")
    ap.add_argument("-0", dest="argv0", default=None, metavar="ARGV0",
                    help="argv[0] of the guest (default: PROGRAM)")
    ap.add_argument("--sched-hash", action="store_true",
                    help="print a hash of the scheduling decisions at exit (stderr)")
    ap.add_argument("--stats", action="store_true",
                    help="print LWP, system-call and vCPU counts at exit (stderr; "
                         "--deterministic: also the blocks executed)")
    ap.add_argument("--trace", default=None, metavar="CLASSES",
                    help="kdump-like event lines on stderr: a comma list of "
                         "syscall,lwp,sched,signal (or all)")
    ap.add_argument("--timeline", default=None, metavar="FILE",
                    help="write a Perfetto / Chrome trace of vCPUs and LWPs to FILE")
    ap.add_argument("-g", dest="gdb", default=None, metavar="PORT",
                    help="wait for gdb before the first instruction: TCP PORT on 127.0.0.1 "
                         "(0: any free port, printed), HOST:PORT, or unix:PATH")
    rr = ap.add_mutually_exclusive_group()
    rr.add_argument("--record", default=None, metavar="LOG",
                    help="record the run to LOG: every scheduling decision and every input "
                         "from outside the guest (clock, data read from the host, random bytes)")
    rr.add_argument("--replay", default=None, metavar="LOG",
                    help="replay a --record LOG exactly (output, exit status, schedule), "
                         "whatever the host's timing; --ncpu, --deterministic, --seed, --root "
                         "and the environment come from LOG. Exit 124: the run diverged "
                         "from LOG; exit 2: LOG refused")
    ap.add_argument("--version", action=_Version, nargs=0,
                    help="show nbemu's version and the CPU engine it runs on, and exit")
    ap.add_argument("program", metavar="PROGRAM", nargs="?",
                    help="a NetBSD ELF program (static, or dynamic with its interpreter "
                         "under --root)")
    ap.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                    help="its arguments (optional)")
    return ap


def check_program(path: str, who: str = "nbemu") -> int | None:
    """None if nbemu can run PATH; else print one line as plain nbemu does and
    return its exit status (127 not found, 126 not a runnable NetBSD program).
    Subcommands call this before they start any run."""
    from nbemu.guest.elf import ElfError
    from nbemu.guest.exec_elf import read_program
    try:
        read_program(path)
    except ElfError as e:
        print(f"{who}: {e}", file=sys.stderr)
        return e.code
    return None


# Subcommands: `nbemu NAME ...` runs emu/<module>.main(args) (tools built on the emulator).
SUBCOMMANDS = {"atf": "nbemu.emu.atf.cli", "timeline": "nbemu.emu.timeline_cli", "explore": "nbemu.emu.explore"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    # Start-up: no collections while nbemu's modules load (they make only
    # long-lived objects), and those are frozen out of every later collection.
    gc.disable()
    try:
        return _main(argv)
    finally:
        gc.enable()


def _main(argv: list[str]) -> int:
    ap = _parser()
    # `--strace` takes its FILE only as `--strace=FILE`, so that a bare
    # `--strace PROGRAM` never swallows the program.
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            break
        if a == "--strace":
            argv[i] = "--strace=-"
        elif a in _TAKES_VALUE:
            i += 1
        i += 1
    ns = ap.parse_args(argv)
    if ns.program is None:
        ap.print_usage(sys.stderr)
        print("nbemu: PROGRAM is missing (nbemu --help for more)", file=sys.stderr)
        return 2
    if ns.gdb is not None:
        from .gdb_conn import check_spec
        why = check_spec(ns.gdb)
        if why is not None:
            print(f"nbemu: -g {ns.gdb}: {why}", file=sys.stderr)
            return 2
    if ns.ncpu < 1 or ns.ncpu > 256:
        print("nbemu: --ncpu must be between 1 and 256", file=sys.stderr)
        return 2
    if not os.path.isdir(ns.root):
        print(f"nbemu: --root {ns.root}: not a directory", file=sys.stderr)
        return 2
    memory = None
    if ns.memory is not None:
        memory = parse_size(ns.memory)
        if memory is None or not MIN_MEMORY <= memory <= MAX_MEMORY:
            print(f"nbemu: -m {ns.memory}: a size of 1M to 1T is wanted (MiB, or a number "
                  f"with K, M, G or T)", file=sys.stderr)
            return 2
    from nbemu.syscalls.vfs_mount import MountError, parse_bind
    try:
        binds = [parse_bind(b) for b in ns.binds]
    except MountError as e:
        print(f"nbemu: {e}", file=sys.stderr)
        return 2
    from .guest_env import EnvError, guest_env
    try:
        env, _ = guest_env(ns.setenv, ns.unsetenv, ns.root)
    except EnvError as e:
        print(f"nbemu: {e}", file=sys.stderr)
        return 2
    from .boot import Options, run_program
    gc.freeze()
    gc.enable()
    replay = None
    if ns.replay is not None or ns.record is not None:
        if ns.gdb is not None:
            print("nbemu: -g cannot be combined with --record/--replay", file=sys.stderr)
            return 2
    if ns.replay is not None:
        from .record import LogError, Replayer, check_replay, stdio_kinds
        try:
            replay = Replayer(ns.replay)
        except LogError as e:
            print(f"nbemu: --replay: {e}", file=sys.stderr)
            return 2
        given = {}
        opts_part = argv[:len(argv) - len(ns.args) - 1]
        flags = {a.split("=", 1)[0] for a in opts_part}
        if "--ncpu" in flags:
            given["ncpu"] = ns.ncpu
        if "--deterministic" in flags:
            given["deterministic"] = True
        if "--seed" in flags:
            given["seed"] = ns.seed
        if "--root" in flags:
            given["root"] = os.path.abspath(ns.root)
        if memory is not None:
            given["memory"] = memory
        if "--bind" in flags:
            given["binds"] = [[os.path.abspath(h), g] for h, g in binds]
        if ns.setenv or ns.unsetenv or ns.argv0 is not None:
            print("nbemu: --replay: the environment and argv0 come from the log "
                  "(no -E, -U or -0)", file=sys.stderr)
            return 2
        why = check_replay(replay, ns.program, ns.args, given)
        if why is not None:
            print(f"nbemu: --replay: {why}: refusing to replay", file=sys.stderr)
            return 2
        h = replay.header
        ns.ncpu, ns.deterministic, ns.seed = h["ncpu"], h["deterministic"], h["seed"]
        ns.root, ns.argv0, env = h["root"], h["argv0"], dict(h["env"])
        memory = h.get("memory")            # (logs older than -m: the default)
        binds = [(b[0], b[1]) for b in h.get("binds", [])]
        now = stdio_kinds()
        for fd, (was, is_) in enumerate(zip(h.get("stdio", now), now)):
            # stdin's kind chooses the read path; a tty on 1/2 may change buffering
            if was != is_ and (fd == 0 or "tty" in (was, is_)):
                print(f"nbemu: warning: fd {fd} was a {was} when recorded and is a {is_} "
                      f"now; the replay may diverge", file=sys.stderr)
    strace_out = None
    if ns.strace is not None:
        strace_out = sys.stderr if ns.strace == "-" else open(ns.strace, "w")
    opts = Options(ncpu=ns.ncpu, deterministic=ns.deterministic, seed=ns.seed,
                   root=os.path.abspath(ns.root), strace=strace_out, env=env,
                   argv0=ns.argv0, sched_log=ns.sched_hash, stats=ns.stats, trace=ns.trace,
                   timeline=ns.timeline, binds=[(os.path.abspath(h), g) for h, g in binds])
    if memory is not None:
        opts.memory = memory
    opts.gdb = ns.gdb
    opts.record, opts.replay = ns.record, replay
    # processes that outlive the first (emu/survivors.py): in the background, as
    # on NetBSD; or run to their end first when a log, trace or timeline must
    # cover them; the gdb stub's session ends with the first process
    opts.survivors = ("kill" if ns.gdb is not None else
                      "wait" if (ns.record or replay is not None or ns.timeline or ns.trace
                                or ns.strace is not None)
                      else "detach")
    sys.stdout.flush()
    status = run_program(ns.program, ns.args, opts)
    if strace_out is not None and strace_out is not sys.stderr:
        strace_out.close()
    return status


def entry() -> None:
    """The program's entry (the `nbemu` script, `python -m nbemu.emu.cli`):
    main(), then the process ends as Python's own exit would end it -- other
    threads joined, exit handlers run, standard streams flushed -- but without
    tearing down every module and the engines (~3 ms, ~9M instructions of each
    run: the interpreter's finalization and uc_close)."""
    code = main()
    import threading
    me = threading.current_thread()
    for t in threading.enumerate():
        if t is not me and not t.daemon:
            t.join()
    import atexit
    atexit._run_exitfuncs()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):        # a closed pipe: Python's exit says nothing
            pass
    if code is None or isinstance(code, int):
        os._exit((code or 0) & 0xFF)
    sys.exit(code)                          # (a message: as sys.exit prints it)


if __name__ == "__main__":
    entry()
