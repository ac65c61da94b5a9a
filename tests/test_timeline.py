"""--timeline FILE (Chrome / Perfetto trace JSON) and `nbemu timeline FILE --png OUT`."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from nbemu.emu.timeline_cli import Canvas, png_bytes, read_png
from fixtures.build import build_c, build_go
from tests.guest import ARCHES, GOARCHES, run_nbemu

EPS = 1e-6
STATES = ("running", "runnable", "parked", "sleep", "suspended", "stopped")


def _record(tmp_path: Path, prog: Path, *opts: str) -> dict:
    out = tmp_path / "trace.json"
    r = run_nbemu(prog, opts=(*opts, "--timeline", str(out)))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(out.read_text())


def check_structure(doc: dict, ncpu: int) -> dict:
    """The invariants every --timeline file keeps; returns facts for further checks."""
    evs = doc["traceEvents"]
    other = doc["otherData"]
    cpu_pid, pid = other["vcpu_pid"], other["guest_pid"]
    assert cpu_pid != pid
    meta = [e for e in evs if e["ph"] == "M"]
    pnames = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    assert pnames[cpu_pid] == "vCPUs" and f"(pid {pid})" in pnames[pid]
    tnames = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    # one track per vCPU and per LWP
    assert {t for p, t in tnames if p == cpu_pid} == set(range(ncpu))
    lids = {t for p, t in tnames if p == pid}
    assert pid in lids and all(tnames[(pid, l)].startswith(f"lid {l}") for l in lids)
    # complete slices: on known tracks, non-negative, never overlapping on a track
    tracks: dict[tuple, list] = defaultdict(list)
    for e in evs:
        if e["ph"] == "X":
            assert (e["pid"], e["tid"]) in tnames, e
            assert e["dur"] >= 0
            tracks[(e["pid"], e["tid"])].append(e)
    for key, sl in tracks.items():
        sl.sort(key=lambda e: e["ts"])
        for a, b in zip(sl, sl[1:]):
            assert a["ts"] + a["dur"] <= b["ts"] + EPS, (key, a, b)
        if key[0] == pid:
            assert all(e["name"].split(" ")[0] in STATES for e in sl), sl
    # every vCPU slice is the running slice of the LWP it names, on that vCPU
    running = {(e["tid"], e["ts"], e["dur"], e["args"]["cpu"])
               for (p, _), sl in tracks.items() if p == pid for e in sl if e["name"] == "running"}
    cpu_slices = [e for (p, _), sl in tracks.items() if p == cpu_pid for e in sl]
    assert cpu_slices
    for e in cpu_slices:
        assert (e["args"]["lid"], e["ts"], e["dur"], e["tid"]) in running, e
    assert len(cpu_slices) == len(running)
    # flows pair up: one "s" on the waker's track inside its running slice, one "f"
    # on the wakee's track where its sleep ends
    flows: dict[int, dict] = defaultdict(dict)
    for e in evs:
        if e["ph"] in ("s", "f"):
            assert e["id"] not in flows or e["ph"] not in flows[e["id"]]
            flows[e["id"]][e["ph"]] = e
    for fid, fl in flows.items():
        assert set(fl) == {"s", "f"}, fl
        s, f = fl["s"], fl["f"]
        assert s["ts"] == f["ts"] and s["tid"] != f["tid"] and s["pid"] == f["pid"] == pid
        assert any(x["name"] == "running" and x["ts"] - EPS <= s["ts"] <= x["ts"] + x["dur"] + EPS
                   for x in tracks[(pid, s["tid"])]), s
        assert any(x["name"].split(" ")[0] in ("parked", "sleep")
                   and abs(x["ts"] + x["dur"] - f["ts"]) < EPS
                   for x in tracks[(pid, f["tid"])]), f
    inst = [e for e in evs if e["ph"] == "i"]
    assert all((e["pid"], e["tid"]) in tnames for e in inst)
    return {"tracks": tracks, "flows": flows, "instants": inst, "lids": lids, "pid": pid,
            "names": tnames}


@pytest.mark.parametrize("arch", ARCHES)
def test_c_park_fixture(tmp_path: Path, arch: str) -> None:
    doc = _record(tmp_path, build_c("lwp_park", arch), "--deterministic", "--seed", "4",
                  "--ncpu", "2")
    assert doc["otherData"]["clock"] == "virtual" and doc["otherData"]["exit_status"] == 0
    f = check_structure(doc, 2)
    pid = f["pid"]
    assert len(f["lids"]) == 4                        # main and three workers
    assert len(f["flows"]) >= 2                       # unparks by main
    names = [e["name"] for (p, _), sl in f["tracks"].items() if p == pid for e in sl]
    assert any(n.startswith("parked 0x") and "<main.p1+0x4>" in n for n in names), names
    assert any(n == "sleep lwpwait lid 2" or n.startswith("sleep lwpwait") for n in names)
    inames = {e["name"] for e in f["instants"]}
    assert {"create", "exit", "reaped", "timeout", "process exit"} <= inames, inames


@pytest.mark.parametrize("goarch", GOARCHES)
def test_go_tokenring(tmp_path: Path, goarch: str) -> None:
    # --deterministic: how often Go's threads park and wake each other (the flows)
    # depends on the schedule; in fast mode a loaded host gave 4 of the >= 5
    # (the virtual clock's schedule gives 28-50 on the four ports, every run)
    doc = _record(tmp_path, build_go("tokenring", "netbsd", goarch), "--deterministic")
    f = check_structure(doc, 4)
    assert len(f["lids"]) >= 3 and len(f["flows"]) >= 5


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tl")
    doc = _record(d, build_c("lwp_park"), "--deterministic", "--ncpu", "2")
    p = d / "t.json"
    p.write_text(json.dumps(doc))
    return p


def test_png(trace_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "timeline", str(trace_file),
                        "--png", str(out), "--width", "900"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    w, h, px = read_png(str(out))
    assert w == 900 and 100 < h < 1000
    colours = {px[i:i + 3] for i in range(0, len(px), 3)}
    assert len(colours) >= 6, colours
    ink = sum(1 for i in range(0, len(px), 3) if px[i:i + 3] != b"\xff\xff\xff")
    assert ink > 0.03 * w * h, ink
    assert bytes((44, 160, 44)) in colours and bytes((31, 119, 180)) in colours  # running, parked


def test_summary(trace_file: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "timeline", str(trace_file)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "lid 100" in r.stdout and "cpu0" in r.stdout and "busy" in r.stdout


def test_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "timeline", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_png_round_trip() -> None:
    c = Canvas(7, 5)
    c.rect(1, 1, 4, 3, (10, 20, 30))
    c.line(0, 4, 6, 0, (200, 0, 0))
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(png_bytes(c))
        f.flush()
        w, h, px = read_png(f.name)
    assert (w, h) == (7, 5) and px == bytes(c.px)


def test_state_machine_on_synthetic_events() -> None:
    """Stop / continue back into a sleep, suspension, a timeout and a waker's flow,
    fed straight into the recorder (no guest)."""
    from types import SimpleNamespace

    from nbemu.emu.timeline import Timeline
    from nbemu.syscalls.lwp import LSRUN, LSSLEEP, LSSTOP, Lwp, Proc
    p = Proc(100, 1)
    p.p_comm = b"synthetic"
    a, b = Lwp(p, 100), Lwp(p, 2)
    p.p_lwps = {100: a, 2: b}
    clock = SimpleNamespace(monotonic_ns=lambda: 10_000, stamp_ns=lambda: 10_000)
    k = SimpleNamespace(proc=p, clock=clock, ncpu=2, deterministic=True)
    m = SimpleNamespace(curlwp=None, in_hook=False)
    tl = Timeline(SimpleNamespace(kernel=k, machine=m, image=None, path="synthetic"), None)
    ev = [(0, "run", a, {"cpu": 0}), (100, "create", b, {"parent": 100}),
          (100, "enqueue", b, {"cpu": 1}), (200, "run", b, {"cpu": 1}),
          (300, "sleep", b, {"wchan": ("kpause", 1), "wmesg": "nanoslp"}),
          (400, "stop", b, {"sig": 17}), (500, "continue", b, {}),
          (600, "wakeup", b, {"error": 35}), (600, "enqueue", b, {"cpu": 1}),
          (700, "run", b, {"cpu": 1}),
          (800, "sleep", b, {"wchan": ("parked", 100, 2), "wmesg": "parked"}),
          (900, "unpark", b, {"by": 100, "hint": 0}), (900, "wakeup", b, {"error": 0}),
          (900, "enqueue", b, {"cpu": 1}), (950, "suspend", b, {}),
          (990, "enqueue", b, {"cpu": 1}), (990, "continue", b, {}),
          (1000, "run", b, {"cpu": 1}), (1100, "exit", b, {})]
    for t, kind, l, data in ev:
        if kind == "stop":
            l.l_stat = LSSTOP
        elif kind == "enqueue":
            l.l_stat = LSRUN
        elif kind == "continue" and t == 500:
            l.l_stat, l.l_wmesg, l.l_wchan = LSSLEEP, "nanoslp", ("kpause", 1)
        tl(kind, l, dict(data, t=t * 1000))
    doc = tl.trace(0)
    f = check_structure(doc, 2)
    states = [(e["name"], e["ts"], e["ts"] + e["dur"]) for e in f["tracks"][(100, 2)]]
    assert states == [("runnable", 100, 200), ("running", 200, 300),
                      ("sleep nanoslp", 300, 400), ("stopped", 400, 500),
                      ("sleep nanoslp", 500, 600), ("runnable", 600, 700),
                      ("running", 700, 800), ("parked NULL", 800, 900), ("runnable", 900, 950),
                      ("suspended", 950, 990), ("runnable", 990, 1000),
                      ("running", 1000, 1100)], states
    assert len(f["flows"]) == 1
    assert {"timeout", "continue", "exit", "create"} <= {e["name"] for e in f["instants"]}


@pytest.mark.parametrize("arch", ARCHES)
def test_deadlocked_run_is_written(tmp_path: Path, arch: str) -> None:
    out = tmp_path / "dl.json"
    r = run_nbemu(build_c("deadlock_park", arch), opts=("--deterministic", "--timeline", str(out)))
    assert r.returncode == 125
    doc = json.loads(out.read_text())
    assert doc["otherData"]["exit_status"] == 125
    f = check_structure(doc, 4)
    end = max(e["ts"] + e["dur"] for sl in f["tracks"].values() for e in sl)
    last = {key[1]: sl[-1]["name"] for key, sl in f["tracks"].items() if key[0] == f["pid"]}
    assert last[100].startswith("sleep lwpwait")
    assert sorted(n for lid, n in last.items() if lid != 100) == [
        n for n in sorted(last.values()) if n.startswith("parked")]
    assert any("<lock_a>" in n for n in last.values()) and any("<lock_b>" in n for n in last.values())
    assert all(sl[-1]["ts"] + sl[-1]["dur"] == end for key, sl in f["tracks"].items()
               if key[0] == f["pid"])


def _row_colours(c: Canvas, top: int, bottom: int, x0: int, x1: int) -> set:
    return {bytes(c.px[(y * c.w + x) * 3:(y * c.w + x) * 3 + 3])
            for y in range(top, bottom) for x in range(x0, x1)}


@pytest.mark.parametrize("prog", ["go:tokenring", "c:lwp_park"])
def test_png_vcpu_rows_by_lwp_with_a_key_states_on_lwp_rows(tmp_path: Path, prog: str) -> None:
    """Issue 15, item 6: vCPU rows took PALETTE[lid % 10], which reused the state
    colours (a running LWP's bar read as STOPPED) and had no key."""
    from nbemu.emu.timeline_cli import (BLACK, FLOW, GRID, LWP_PALETTE, SIGNAL, STATE_COLOURS,
                                  WHITE, Trace, lwp_colours, render)
    kind, name = prog.split(":")
    path = build_go(name) if kind == "go" else build_c(name)
    doc = _record(tmp_path, path, "--deterministic", "--ncpu", "2")
    tr = Trace(doc)
    c = render(tr, 1000)
    states = {bytes(v) for v in STATE_COLOURS.values()}
    lwp_col = {lid: bytes(v) for lid, v in lwp_colours(tr).items()}
    assert len(set(lwp_col.values())) == len(lwp_col)          # few LWPs: one colour each
    assert not states & {bytes(v) for v in LWP_PALETTE}
    plain = {bytes(v) for v in (WHITE, BLACK, GRID, FLOW, SIGNAL)}
    vcpu_pid = doc["otherData"]["vcpu_pid"]
    ran: set = set()
    for k, (top, bottom) in c.rows.items():
        cols = _row_colours(c, top, bottom, c.plot_left, c.w)
        if k[0] == vcpu_pid:
            assert not cols & states, (k, cols & states)
            assert cols <= plain | set(lwp_col.values()), k
            ran |= cols & set(lwp_col.values())
        else:
            assert cols <= plain | states, (k, cols - plain - states)
            # the key: the LWP's colour beside its name
            assert bytes(c.px[((top + 8) * c.w + 10) * 3:((top + 8) * c.w + 10) * 3 + 3]) \
                == lwp_col[k[1]], k
    assert len(ran) >= 2                   # the vCPU rows show several LWPs, told apart


def test_png_text_is_lowercase() -> None:
    a, b = Canvas(12, 8), Canvas(12, 8)
    a.text(0, 0, "ms")
    b.text(0, 0, "MS")
    assert a.px != b.px


def test_unnamed_lwps_are_labelled_by_their_start_function(tmp_path: Path) -> None:
    """Go names none of its Ms: their tracks say where they started (Go's
    lwp_tramp seen through to the function it calls)."""
    doc = _record(tmp_path, build_go("tokenring"), "--deterministic")
    pid = doc["otherData"]["guest_pid"]
    names = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == pid}
    others = [n for lid, n in names.items() if lid != pid]
    assert others and all(n.endswith("(runtime.netbsdMstart)") for n in others), names
