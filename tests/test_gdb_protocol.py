"""The GDB stub spoken to directly over a socket: the protocol's corner cases and
bad input (issue 7, items 1 and 7). Needs no gdb. See emu/gdbstub.py."""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import FIXTURE, REPO, Client, Nbemu

@pytest.fixture
def stub():
    started: list[Nbemu] = []

    def start(*args: str, **kw) -> Nbemu:
        n = Nbemu(*args, **kw)
        started.append(n)
        return n
    yield start
    for n in started:
        n.kill()


def _pc(c: Client) -> int:
    return int.from_bytes(bytes.fromhex(c.ask("p10").decode()), "little")


def test_handshake_threads_registers_memory(stub) -> None:
    n = stub()
    c = n.connect()
    # (no multiprocess+: plain thread ids; test_gdb_fork.py covers p<pid>.<lid>)
    sup = c.ask("qSupported:swbreak+;hwbreak+;xmlRegisters=i386").decode()
    for feat in ("PacketSize=", "qXfer:features:read+", "qXfer:threads:read+",
                 "vContSupported+", "swbreak+"):
        assert feat in sup
    assert c.ask("vCont?") == b"vCont;c;C;s;S"
    stop = c.ask("?").decode()
    assert stop.startswith("T05") and "thread:64;" in stop      # lid 100: the pid
    assert c.ask("qC") == b"QC64"
    assert c.ask("qfThreadInfo") == b"m64"
    assert c.ask("qsThreadInfo") == b"l"
    assert c.ask("T64") == b"OK"
    assert c.ask("Hg64") == b"OK" and c.ask("Hc-1") == b"OK" and c.ask("Hg0") == b"OK"
    # target.xml, in pieces
    xml = b""
    while True:
        part = c.ask(f"qXfer:features:read:target.xml:{len(xml):x},100")
        xml += part[1:]
        if part[:1] == b"l":
            break
        assert part[:1] == b"m"
    assert b"<architecture>i386:x86-64</architecture>" in xml
    assert b"org.gnu.gdb.i386.core" in xml and b'name="fs_base"' in xml
    assert c.ask("qXfer:features:read:nosuch.xml:0,100").startswith(b"E")
    exe = c.ask("qXfer:exec-file:read:64:0,fff")
    assert exe == b"l" + str(build_c(FIXTURE)).encode(), exe
    # registers: 'g' holds 16 GPRs + rip (8 bytes), eflags + 6 segments (4),
    # 8 x87 (10), 8 x87 control (4), 16 xmm (16), mxcsr (4), fs_base, gs_base (8)
    g = c.ask("g")
    assert len(g) == 2 * (17 * 8 + 7 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4 + 2 * 8)
    entry = _pc(c)
    assert int.from_bytes(bytes.fromhex(g[16 * 16:17 * 16].decode()), "little") == entry
    # memory through the VM map: the entry point's bytes, and faults as E14
    code = c.ask(f"m{entry:x},8")
    assert len(code) == 16 and code != b"0" * 16
    assert c.ask("m0,8") == b"E14"
    assert c.ask("m7f7fffffffff0000,10") == b"E14"
    assert c.ask("M0,1:00") == b"E14"
    assert c.ask("X0,1:\x00") == b"E14"
    # write, read back, restore a register (rax, 'P0') and a word of memory
    assert c.ask("P0=efbeadde00000000") == b"OK"
    assert c.ask("p0") == b"efbeadde00000000"
    sp = int.from_bytes(bytes.fromhex(c.ask("p7").decode()), "little")
    old = c.ask(f"m{sp - 64:x},4")
    assert c.ask(f"M{sp - 64:x},4:11223344") == b"OK"
    assert c.ask(f"m{sp - 64:x},4") == b"11223344"
    # binary write: '#', '$', '}' and '*' travel escaped as '}' + (byte ^ 0x20)
    esc = b"".join(b"}" + bytes((b ^ 0x20,)) for b in b"#$}*")
    assert c.ask(b"X%x,4:" % (sp - 64) + esc) == b"OK"
    assert c.ask(f"m{sp - 64:x},4") == b"23247d2a"
    assert c.ask(f"X{sp - 64:x},0:") == b"OK"
    assert c.ask(f"M{sp - 64:x},4:" + old.decode()) == b"OK"
    # threads XML and extra info
    tx = c.ask("qXfer:threads:read::0,fff")
    assert tx[:1] == b"l" and b'<thread id="64"' in tx
    assert bytes.fromhex(c.ask("qThreadExtraInfo,64").decode()).startswith(b"runnable")
    # single step: rip moves
    c.send("vCont;s:64")
    assert c.reply().startswith(b"T05")
    assert _pc(c) != entry
    c.send("vCont;c")
    assert c.reply() == b"W07"
    rc, out, err = n.finish()
    assert rc == 7 and "done" in out, (rc, out, err)
    assert "Traceback" not in err


def test_bad_input_gets_protocol_errors(stub) -> None:
    n = stub()
    c = n.connect()
    # a bad checksum is refused with '-' and ignored; the next packet works
    c.raw(b"$qC#00")
    assert c.read_ack() == b"-"
    assert c.ask("qC") == b"QC64"
    # non-hex checksum, junk between packets, a '$' restarting a packet
    c.raw(b"$qC#zz")
    assert c.read_ack() == b"-"
    c.raw(b"garbage\x00\xff")
    c.raw(b"$junk$qC#" + b"%02x" % (sum(b"qC") & 0xFF))
    assert c.reply() == b"QC64"
    # too long: dropped, answered E01
    big = b"M0,1:" + b"00" * 0x5000
    c.send(big)
    assert c.reply() == b"E01"
    # malformed
    for bad in ("mzz,4", "m10", "M10,2:0", "M10,1:zz", "pzz", "p9999", "P0", "P0=12",
                "Hx64", "Hgzz", "Z0,1", "Z9,0,1", "z2,10,0", "vCont;q", "vCont;c5",
                "Cxx", "G00", "g1", "qXfer:features:read:target.xml:zz,10", "Tzz"):
        r = c.ask(bad)
        assert r.startswith(b"E") or r == b"", (bad, r)
    assert c.ask("Z9,0,1") == b""        # unsupported breakpoint type: empty
    # unknown threads
    for bad in ("Hg3e7", "Hc3e7", "T3e7", "qThreadExtraInfo,3e7", "vCont;c:3e7",
                "Hgp1.3e7"):
        assert c.ask(bad) == b"E02", bad
    # unsupported packets: the empty reply
    for unsup in ("qFooBar", "vFooBar", "!", "jUnknown", "QNonStop:1", "vFile:open:6a", "b"):
        assert c.ask(unsup) == b"", unsup
    # a random byte storm, then the stub still answers
    marker = c.ask("qThreadExtraInfo,64")
    rnd = random.Random(7)
    for _ in range(200):
        n_bytes = rnd.randint(1, 40)
        c.raw(bytes(rnd.choice(b"$#}*+-0123456789abcdefgmMpPqQvZz:,;\x03\xff")
                    for _ in range(n_bytes)))
    c.raw(b"#00")              # close any packet the storm left open
    # The storm's replies come first: read up to the reply of a marker packet
    # (no storm packet can be it, nor get its answer), then the stub answers in step.
    c.send("qThreadExtraInfo,64")
    while c.reply() != marker:
        pass
    c.send("qC")
    while (r := c.reply()) == marker:      # (the marker's answer may come twice)
        pass
    assert r == b"QC64"
    assert c.ask("qC") == b"QC64"
    c.send("vCont;c")
    assert c.reply() == b"W07"
    rc, out, err = n.finish()
    assert rc == 7 and "Traceback" not in err, err


def test_fuzzed_packets_get_replies_not_exceptions(stub) -> None:
    """Well-framed packets with random arguments: each gets a reply; none
    reaches the stub's last-resort exception handler."""
    n = stub()
    c = n.connect()
    rnd = random.Random(11)
    heads = ["m", "M", "X", "p", "P", "g", "G", "H", "Hg", "Hc", "T", "Z0,", "z0,", "Z2,",
             "z2,", "Z3,", "Z4,", "Z1,", "qXfer:threads:read::", "qXfer:features:read:",
             "qThreadExtraInfo,", "qSupported:", "qfThreadInfo", "qsThreadInfo", "qC",
             "vCont?", "qAttached", "qOffsets", "QStartNoAckMod", "v", "q", "Q", "?"]
    alphabet = "0123456789abcdefABCDEF,;:=-px.xX "
    for _ in range(400):
        body = rnd.choice(heads) + "".join(rnd.choice(alphabet)
                                           for _ in range(rnd.randint(0, 30)))
        r = c.ask(body.encode())
        assert isinstance(r, bytes)
    assert c.ask("qC") == b"QC64"
    c.send("k")
    rc, _, err = n.finish()
    assert "error serving" not in err and "Traceback" not in err, err


def test_no_ack_mode_and_nak_resend(stub) -> None:
    n = stub()
    c = n.connect()
    assert c.ask("qC") == b"QC64"
    c.raw(b"-")                          # gdb asks for the last reply again
    assert c.reply() == b"QC64"
    assert c.ask("QStartNoAckMode") == b"OK"
    c.send("qC")
    assert c.reply() == b"QC64"          # no '+' before it any more
    c.raw(b"$qC#00")                      # bad checksum: no '-' in no-ack mode
    c.send("vCont;c")
    assert c.reply() == b"W07"
    rc, _, err = n.finish()
    assert rc == 7, err


def test_ctrl_c_interrupts_a_spinning_guest_then_kill(stub) -> None:
    n = stub("spin")
    c = n.connect()
    assert c.ask("?").startswith(b"T05")
    # Interrupt and look until the guest has spun (no sleep: on a loaded host
    # Ctrl-C may come before its first round).
    spun = 0
    while not spun:
        c.send("vCont;c")
        c.raw(b"\x03")
        stop = c.reply().decode()
        assert stop.startswith("T02") and "thread:64;" in stop
        count = c.ask("m" + _sym(n, "spin_count") + ",8")
        spun = int.from_bytes(bytes.fromhex(count.decode()), "little")
    # 0x03 right behind the resume packet (before the stub has taken it)
    c.raw(b"$vCont;c#%02x\x03" % (sum(b"vCont;c") & 0xFF))
    assert c.reply().startswith(b"T02")
    # a stray 0x03 while stopped interrupts nothing later
    c.raw(b"\x03")
    assert c.ask("qC") == b"QC64"
    c.send("vCont;s:64")
    assert c.reply().startswith(b"T05")
    c.send("k")
    rc, _, err = n.finish()
    assert rc == 128 + 9, err
    assert "Traceback" not in err


def test_signal_stop_then_death(stub) -> None:
    n = stub("segv")
    c = n.connect()
    c.send("vCont;c")
    stop = c.reply().decode()
    assert stop.startswith("T0b") and "thread:64;" in stop
    c.send("vCont;C0b:64")
    assert c.reply() == b"X0b"
    rc, _, err = n.finish()
    assert rc == 128 + 11 and "SIGSEGV" in err, err


def test_signal_discarded_refaults(stub) -> None:
    n = stub("segv")
    c = n.connect()
    c.send("vCont;c")
    assert c.reply().startswith(b"T0b")
    c.send("vCont;c")                    # without the signal: the store runs again
    assert c.reply().startswith(b"T0b")
    c.send("vCont;C0b")
    assert c.reply() == b"X0b"
    assert n.finish()[0] == 139


@pytest.mark.parametrize("opts", [(), ("--deterministic", "--seed", "3"), ("--ncpu", "1")],
                         ids=["fast", "deterministic", "ncpu1"])
def test_breakpoint_and_watchpoint_packets(stub, opts) -> None:
    n = stub(opts=opts)
    c = n.connect()
    c.ask("qSupported:swbreak+")
    wb = int(_sym(n, "worker_body"), 16)
    assert c.ask(f"Z0,{wb:x},1") == b"OK"
    assert c.ask(f"Z0,{wb:x},1") == b"OK"            # idempotent
    c.send("vCont;c")
    stop = c.reply().decode()
    assert stop.startswith("T05") and "swbreak:;" in stop
    lid = int(re.search(r"thread:([0-9a-f]+);", stop).group(1), 16)
    c.ask(f"Hg{lid:x}")
    assert _pc(c) == wb
    names = c.ask("qXfer:threads:read::0,fff").decode()
    for name in ("gdb-main", "worker-1", "worker-2", "worker-3"):
        assert f'name="{name}"' in names, names
    assert c.ask(f"z0,{wb:x},1") == b"OK"
    shared = int(_sym(n, "shared_value"), 16)
    assert c.ask(f"Z2,{shared:x},8") == b"OK"
    c.send("vCont;c")
    stop = c.reply().decode()
    assert stop.startswith("T05") and f"watch:{shared:x};" in stop, stop
    lid = int(re.search(r"thread:([0-9a-f]+);", stop).group(1), 16)
    info = c.ask("qXfer:threads:read::0,fff").decode()
    assert re.search(rf'id="{lid:x}"[^>]*name="worker-2"', info), info
    assert c.ask(f"m{shared:x},8") == b"2a00000000000000"
    assert c.ask(f"z2,{shared:x},8") == b"OK"
    c.send("c")
    assert c.reply() == b"W07"
    assert n.finish()[0] == 7


def test_read_and_access_watchpoints(stub) -> None:
    n = stub()
    c = n.connect()
    total = int(_sym(n, "worker_sum"), 16)
    shared = int(_sym(n, "shared_value"), 16)
    # access: the first worker's atomic add (a read-modify-write) of worker_sum
    assert c.ask(f"Z4,{total:x},8") == b"OK"
    c.send("vCont;c")
    stop = c.reply().decode()
    assert stop.startswith("T05") and f"awatch:{total:x};" in stop, stop
    lid = int(re.search(r"thread:([0-9a-f]+);", stop).group(1), 16)
    assert lid != 100
    assert c.ask(f"m{total:x},8") != b"0" * 16         # stopped after the access
    assert c.ask(f"z4,{total:x},8") == b"OK"
    # read: only main reads shared_value, after joining the workers
    assert c.ask(f"Z3,{shared:x},8") == b"OK"
    c.send("vCont;c")
    stop = c.reply().decode()
    assert stop.startswith("T05") and f"rwatch:{shared:x};" in stop and "thread:64;" in stop
    assert c.ask(f"z3,{shared:x},8") == b"OK"
    c.send("vCont;c")
    assert c.reply() == b"W07"
    assert n.finish()[0] == 7


def test_detach_lets_the_guest_finish(stub) -> None:
    n = stub()
    c = n.connect()
    wb = int(_sym(n, "worker_body"), 16)
    assert c.ask(f"Z0,{wb:x},1") == b"OK"
    assert c.ask("D") == b"OK"
    rc, out, err = n.finish()
    assert rc == 7 and "done" in out and "detached" in err, (rc, out, err)


@pytest.mark.parametrize("when", ["stopped", "running"])
def test_disconnect_lets_the_guest_finish(stub, when: str) -> None:
    n = stub()
    c = n.connect()
    c.ask("?")
    if when == "running":
        wb = int(_sym(n, "worker_body"), 16)
        c.ask(f"Z0,{wb:x},1")            # would stop the guest, had gdb stayed
        c.send("vCont;c")
        c.reply()                        # (hit) continue again and leave at once
        c.send("vCont;c")
    c.close()
    rc, out, err = n.finish()
    assert rc == 7 and "done" in out and "disconnected" in err, (rc, out, err)
    assert "Traceback" not in err


def test_unix_socket(stub, tmp_path: Path) -> None:
    path = tmp_path / "gdb.sock"
    n = stub(spec=f"unix:{path}")
    assert n.path == str(path)
    c = n.connect()
    assert c.ask("?").startswith(b"T05")
    c.send("c")
    assert c.reply() == b"W07"
    assert n.finish()[0] == 7
    assert not path.exists()


def _regs_of(c: Client, lid: int) -> bytes:
    assert c.ask(f"Hg{lid:x}") == b"OK"
    return c.ask("g")


def test_step_holds_the_other_lwps(stub) -> None:
    """vCont;s:L runs one instruction of L only: every other LWP keeps its registers."""
    n = stub()
    c = n.connect()
    wb = int(_sym(n, "worker_body"), 16)
    c.ask(f"Z0,{wb:x},1")
    c.send("vCont;c")
    stop = c.reply().decode()
    lid = int(re.search(r"thread:([0-9a-f]+);", stop).group(1), 16)
    c.ask(f"z0,{wb:x},1")
    c.send("qfThreadInfo")
    lids = [int(x, 16) for x in c.reply()[1:].split(b",")]
    assert c.ask("qsThreadInfo") == b"l" and len(lids) == 4
    before = {x: _regs_of(c, x) for x in lids}
    for _ in range(3):
        c.send(f"vCont;s:{lid:x}")
        assert re.search(rf"^T05.*thread:{lid:x};", c.reply().decode())
    after = {x: _regs_of(c, x) for x in lids}
    assert after[lid] != before[lid]
    for x in lids:
        if x != lid:
            assert after[x] == before[x], f"LWP {x} ran while {lid} was stepped"
    c.ask(f"Hg{lid:x}")
    assert _pc(c) != wb
    # legacy 's' on the Hc thread, then continue everything
    assert c.ask(f"Hc{lid:x}") == b"OK"
    c.send("s")
    assert re.search(rf"thread:{lid:x};", c.reply().decode())
    c.send("vCont;c")
    assert c.reply() == b"W07"
    assert n.finish()[0] == 7


def test_stepping_an_lwp_through_its_exit_releases_the_others(stub) -> None:
    n = stub()
    c = n.connect()
    ex = int(_sym(n, "_lwp_exit"), 16)
    c.ask(f"Z0,{ex:x},1")
    c.send("vCont;c")
    stop = c.reply().decode()
    lid = int(re.search(r"thread:([0-9a-f]+);", stop).group(1), 16)
    c.ask(f"z0,{ex:x},1")
    for _ in range(100):
        c.send(f"vCont;s:{lid:x}")      # the others stay stopped ...
        r = c.reply()
        if r == b"W07":                  # ... until the stepped LWP is gone
            break
        assert re.search(rf"^T05.*thread:{lid:x};", r.decode()), r
    else:
        raise AssertionError("the stepped LWP never exited")
    assert n.finish()[0] == 7


def test_deadlock_is_a_stop_then_exit_125(stub) -> None:
    n = stub(fixture="deadlock_park")
    c = n.connect()
    c.send("vCont;c")
    stop = c.reply().decode()
    assert stop.startswith("T11"), stop               # SIGSTOP
    info = c.ask("qXfer:threads:read::0,fff").decode()
    assert info.count("parked on hint 0x") == 2, info
    assert "sleeping on lwpwait" in info, info
    c.send("vCont;c")
    assert c.reply() == b"W7d"                        # 125: nbemu's deadlock status
    rc, _, err = n.finish()
    assert rc == 125 and "deadlock" in err, err


def test_bad_g_spec_is_an_error() -> None:
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "-g", "nonsense",
                        str(build_c(FIXTURE))], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "-g nonsense" in r.stderr and "Traceback" not in r.stderr


_syms: dict[str, str] = {}


def _sym(n: Nbemu, name: str) -> str:
    """A symbol's address (hex) from the fixture's ELF symbol table."""
    if not _syms:
        from elftools.elf.elffile import ELFFile
        with open(build_c(FIXTURE), "rb") as f:
            for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
                _syms[s.name] = f"{s['st_value']:x}"
    return _syms[name]


if os.environ.get("NBEMU_GDB_DEBUG"):      # pragma: no cover - a debugging aid
    print(REPO)


def test_lwp_state_words_and_signal_numbers() -> None:
    from nbemu.emu.gdb_conn import checksum, escape, frame, unescape
    from nbemu.emu.gdbstub import lwp_state, sig_from_gdb, sig_to_gdb
    from nbemu.syscalls.kern_runq import CpuInfo
    from nbemu.syscalls.lwp import (LSIDL, LSONPROC, LSRUN, LSSLEEP, LSSTOP, LSSUSPENDED, LSZOMB,
                              Lwp, Proc)
    l = Lwp(Proc(100, 1), 101)
    l.l_cpu = CpuInfo(2)
    want = {LSONPROC: "running on vCPU 2", LSRUN: "runnable on vCPU 2",
            LSSUSPENDED: "suspended", LSZOMB: "zombie", LSSTOP: "stopped",
            LSIDL: "being created"}
    for st, words in want.items():
        l.l_stat = st
        assert lwp_state(l) == words
    l.l_stat, l.l_wmesg, l.l_park_hint = LSSLEEP, "parked", 0x7f00
    assert lwp_state(l) == "parked on hint 0x7f00"
    l.l_wmesg = "piperd"
    assert lwp_state(l) == "sleeping on piperd"
    for s in range(1, 64):          # NetBSD <-> gdb signal numbers round-trip
        assert sig_from_gdb(sig_to_gdb(s)) == s
    assert sig_to_gdb(11) == 11 and sig_to_gdb(29) == 142 and sig_to_gdb(33) == 45
    data = bytes(range(256))
    assert unescape(escape(data)) == data
    assert not any(c in escape(data) for c in b"#$*")
    assert frame(b"OK") == b"$OK#9a" and checksum(b"OK") == 0x9A


def test_i386_registers_breakpoint_step_int3(stub) -> None:
    """NetBSD/i386: target.xml, the 'g' packet's layout, NetBSD's user
    selectors, the %gs base written and read, a Z0 breakpoint, single steps,
    and an int3 (0xCC) patched into the text stopping with SIGTRAP."""
    from elftools.elf.elffile import ELFFile
    prog = build_c(FIXTURE, arch="x86")
    with open(prog, "rb") as f:
        elf = ELFFile(f)
        entry = elf.header.e_entry
        syms = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
    n = stub(arch="x86")
    c = n.connect()
    assert "swbreak+" in c.ask("qSupported:swbreak+;xmlRegisters=i386").decode()
    xml = b""
    while True:
        part = c.ask(f"qXfer:features:read:target.xml:{len(xml):x},400")
        xml += part[1:]
        if part[:1] == b"l":
            break
    assert b"<architecture>i386</architecture>" in xml
    for feat in (b"org.gnu.gdb.i386.core", b"org.gnu.gdb.i386.sse",
                 b"org.gnu.gdb.i386.segments"):
        assert feat in xml
    assert b"i386.linux" not in xml and b'name="xmm8"' not in xml
    # 'g': eax..edi, eip, eflags, 6 selectors (4 bytes each), 8 x87 (10),
    # 8 x87 control (4), 8 xmm (16), mxcsr, fs_base, gs_base (4)
    g = c.ask("g")
    assert len(g) == 2 * (16 * 4 + 8 * 10 + 8 * 4 + 8 * 16 + 3 * 4), len(g)
    word = lambda i: int.from_bytes(bytes.fromhex(g[8 * i:8 * i + 8].decode()), "little")  # noqa: E731
    assert word(8) == entry                         # eip is register 8
    assert [word(i) for i in range(10, 16)] == [0x17, 0x1f, 0x1f, 0x1f, 0xab, 0xb3]
    assert c.ask("pf") == b"b3000000"               # gs: GSEL(GUGS_SEL, SEL_UPL)
    fctrl = 16 * 4 + 8 * 10
    assert g[2 * fctrl:2 * fctrl + 8] == b"7f030000"        # __INITIAL_NPXCW__
    mxcsr = fctrl + 8 * 4 + 8 * 16
    assert g[2 * mxcsr:2 * mxcsr + 8] == b"801f0000"        # __INITIAL_MXCSR__
    # writes: eax, the %gs base (through the MSR), a selector (ignored), xmm0
    assert c.ask("P0=efbeadde") == b"OK" and c.ask("p0") == b"efbeadde"
    assert c.ask("P2a=78563412") == b"OK" and c.ask("p2a") == b"78563412"
    assert c.ask("P2a=00000000") == b"OK"
    assert c.ask("Pf=00000000") == b"OK" and c.ask("pf") == b"b3000000"
    x = "00112233445566778899aabbccddeeff"
    assert c.ask(f"P20={x}") == b"OK" and c.ask("p20") == x.encode()
    assert c.ask("P20=" + "0" * 32) == b"OK"
    # a software breakpoint: the stop names the LWP, the PC is the breakpoint's
    wb = syms["worker_body"]
    assert c.ask(f"Z0,{wb:x},1") == b"OK"
    c.send("vCont;c")
    stop = c.reply().decode()
    assert stop.startswith("T05") and "swbreak:;" in stop, stop
    lid = int(re.search(r"thread:([0-9a-f]+);", stop).group(1), 16)
    assert c.ask(f"Hg{lid:x}") == b"OK"
    assert int.from_bytes(bytes.fromhex(c.ask("p8").decode()), "little") == wb
    assert c.ask(f"z0,{wb:x},1") == b"OK"
    pcs = []
    for _ in range(3):
        c.send(f"vCont;s:{lid:x}")
        assert re.search(rf"^T05.*thread:{lid:x};", c.reply().decode())
        pcs.append(int.from_bytes(bytes.fromhex(c.ask("p8").decode()), "little"))
    assert pcs[0] != wb and len(set(pcs)) == 3, (hex(wb), pcs)
    # int3 written into the text (as a debugger without Z0 would): SIGTRAP with
    # eip past the 0xCC; put the byte back, back eip up, and run on
    ss = syms["store_shared"]
    orig = c.ask(f"m{ss:x},1").decode()
    assert c.ask(f"M{ss:x},1:cc") == b"OK"
    c.send("vCont;c")
    stop = c.reply().decode()
    assert stop.startswith("T05"), stop
    lid = int(re.search(r"thread:([0-9a-f]+);", stop).group(1), 16)
    assert c.ask(f"Hg{lid:x}") == b"OK"
    assert int.from_bytes(bytes.fromhex(c.ask("p8").decode()), "little") == ss + 1
    assert c.ask(f"M{ss:x},1:{orig}") == b"OK"
    assert c.ask("P8=" + ss.to_bytes(4, "little").hex()) == b"OK"
    c.send("vCont;c")
    assert c.reply() == b"W07"
    rc, out, err = n.finish()
    assert rc == 7 and "done" in out and "Traceback" not in err, (rc, out, err)
