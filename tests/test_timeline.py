"""--timeline FILE (Chrome / Perfetto trace JSON) and `nbemu timeline FILE --png OUT`."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from emu.timeline_cli import Canvas, png_bytes, read_png
from fixtures.build import build_c, build_go
from tests.guest import run_nbemu

EPS = 1e-6
STATES = ("running", "runnable", "parked", "sleep", "suspended")


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


def test_c_park_fixture(tmp_path: Path) -> None:
    doc = _record(tmp_path, build_c("lwp_park"), "--deterministic", "--seed", "4",
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


def test_go_tokenring(tmp_path: Path) -> None:
    doc = _record(tmp_path, build_go("tokenring"))
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
    r = subprocess.run([sys.executable, "-m", "emu.cli", "timeline", str(trace_file),
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
    r = subprocess.run([sys.executable, "-m", "emu.cli", "timeline", str(trace_file)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "lid 100" in r.stdout and "cpu0" in r.stdout and "busy" in r.stdout


def test_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = subprocess.run([sys.executable, "-m", "emu.cli", "timeline", str(bad)],
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
