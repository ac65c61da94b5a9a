"""Reports of an ATF run: Kyua-like text, JUnit XML, HTML.

- :func:`case_line` is ``kyua test``'s line: ``prog:case  ->  passed  [0.251s]``.
- :func:`summary` is ``kyua report``'s tail: the non-passed cases grouped by
  result, then ``Test cases: N total, ...`` and the total time.
- :func:`junit_xml` follows Kyua's ``report-junit`` so CI systems read it the same
  way: classname = program path with ``/`` as ``.``; failed -> ``<failure>``,
  broken -> ``<error>``, skipped -> ``<skipped>``; ``expected_*`` outcomes pass, with
  their ATF status and reason at the top of ``system-err`` (and as testcase
  properties); stdout/stderr of the case in ``system-out`` / ``system-err``.
  One ``<testsuite>`` per test program inside ``<testsuites>``.
- :func:`write_html` writes ``DIR/index.html``: totals and one row per case, with
  the reason, metadata and output; self-contained (no scripts).
"""
from __future__ import annotations

import html
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from .runner import CaseResult

ORDER = ("passed", "skipped", "expected_failure", "broken", "failed")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def case_line(r: CaseResult) -> str:
    return f"{r.ident}  ->  {r.result}  [{r.duration:.3f}s]"


def counts(results: Sequence[CaseResult]) -> Counter:
    return Counter(r.result.kyua for r in results)


def failed(results: Sequence[CaseResult]) -> bool:
    return any(not r.result.good for r in results)


def totals_line(results: Sequence[CaseResult]) -> str:
    c = counts(results)
    parts = [f"{len(results)} total"]
    for key, label in (("skipped", "skipped"), ("expected_failure", "expected failures"),
                       ("broken", "broken"), ("failed", "failed")):
        if c[key]:
            parts.append(f"{c[key]} {label}")
    return "Test cases: " + ", ".join(parts)


def summary(results: Sequence[CaseResult], wall: float | None = None) -> str:
    out: list[str] = []
    for key, title in (("skipped", "Skipped tests"), ("expected_failure", "Expected failures"),
                       ("broken", "Broken tests"), ("failed", "Failed tests")):
        group = [r for r in results if r.result.kyua == key]
        if group:
            out.append(f"===> {title}")
            out.extend(case_line(r) for r in group)
    out.append("===> Summary")
    out.append(totals_line(results))
    busy = sum(r.duration for r in results)
    t = f"Total time: {busy:.3f}s"
    if wall is not None:
        t += f" (wall clock {wall:.3f}s)"
    out.append(t)
    return "\n".join(out)


# ---------------------------------------------------------------- JUnit


def _x(text: str) -> str:
    return escape(_XML_BAD.sub("?", text))


def _a(text: str) -> str:
    return quoteattr(_XML_BAD.sub("?", text))


def classname(program: str) -> str:
    return program.replace("/", ".")


def junit_xml(results: Sequence[CaseResult], name: str = "nbemu atf") -> str:
    by_prog: dict[str, list[CaseResult]] = {}
    for r in results:
        by_prog.setdefault(r.program, []).append(r)
    c = counts(results)
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f'<testsuites name={_a(name)} tests="{len(results)}" failures="{c["failed"]}" '
           f'errors="{c["broken"]}" skipped="{c["skipped"]}" '
           f'time="{sum(r.duration for r in results):.3f}">']
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for prog, rs in by_prog.items():
        pc = counts(rs)
        out.append(f'  <testsuite name={_a(classname(prog))} tests="{len(rs)}" '
                   f'failures="{pc["failed"]}" errors="{pc["broken"]}" '
                   f'skipped="{pc["skipped"]}" time="{sum(r.duration for r in rs):.3f}" '
                   f'timestamp="{stamp}">')
        out.append("    <properties>")
        out.append(f'      <property name="path" value={_a(rs[0].path)}/>')
        out.append("    </properties>")
        for r in rs:
            out.append(f'    <testcase classname={_a(classname(prog))} name={_a(r.case)} '
                       f'time="{r.duration:.3f}">')
            res = r.result
            out.append("      <properties>")
            out.append(f'        <property name="atf.result" value={_a(res.status)}/>')
            if res.reason:
                out.append(f'        <property name="atf.reason" value={_a(res.reason)}/>')
            out.append("      </properties>")
            err = ""
            k = res.kyua
            if k == "failed":
                out.append(f'      <failure message={_a(res.reason)} type="failed"/>')
            elif k == "broken":
                out.append(f'      <error message={_a(res.reason)} type="broken"/>')
            elif k == "skipped":
                out.append(f'      <skipped message={_a(res.reason)}/>')
                err += f"Skipped result details\n----------------------\n\n{res.reason}\n\n"
            elif k == "expected_failure":
                err += ("Expected failure result details\n"
                        "-------------------------------\n\n"
                        f"{res}\n\n")
            if r.stdout:
                out.append(f"      <system-out>{_x(r.stdout)}</system-out>")
            if r.metadata:
                err += "Test case metadata\n------------------\n\n"
                err += "".join(f"{mk} = {mv}\n" for mk, mv in sorted(r.metadata.items()))
                err += "\nOriginal stderr\n---------------\n\n"
            err += r.stderr if r.stderr else "<EMPTY>\n"
            out.append(f"      <system-err>{_x(err)}</system-err>")
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


def write_junit(results: Sequence[CaseResult], path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(junit_xml(results))


# ---------------------------------------------------------------- HTML

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #ddd;
  vertical-align: top; }
th { background: #f4f4f4; } td.t { text-align: right; white-space: nowrap; }
.passed { color: #1a7f37; } .failed { color: #cf222e; font-weight: bold; }
.broken { color: #bc4c00; font-weight: bold; } .skipped { color: #777; }
.expected_failure { color: #8250df; }
tr.failed td, tr.broken td { background: #fff5f5; }
pre { background: #f6f8fa; padding: .5em; overflow-x: auto; max-height: 30em;
  white-space: pre-wrap; }
.totals span { margin-right: 1.5em; } details summary { cursor: pointer; color: #555; }
"""


def html_report(results: Sequence[CaseResult], title: str = "nbemu atf",
                wall: float | None = None) -> str:
    e = html.escape
    c = counts(results)
    rows = []
    for r in results:
        k = r.result.kyua
        details = []
        if r.metadata:
            md = "\n".join(f"{mk}: {mv}" for mk, mv in sorted(r.metadata.items()))
            details.append(f"<details><summary>metadata</summary><pre>{e(md)}</pre></details>")
        if r.stdout:
            details.append(f"<details><summary>stdout</summary><pre>{e(r.stdout)}</pre>"
                           f"</details>")
        if r.stderr:
            details.append(f"<details><summary>stderr</summary><pre>{e(r.stderr)}</pre>"
                           f"</details>")
        status = r.result.status + (f"({r.result.arg})" if r.result.arg is not None else "")
        rows.append(f'<tr class="{k}"><td>{e(r.program)}</td><td>{e(r.case)}</td>'
                    f'<td class="{k}">{e(status)}</td>'
                    f'<td>{e(r.result.reason)}{"".join(details)}</td>'
                    f'<td class="t">{r.duration:.3f}s</td></tr>')
    totals = "".join(f'<span class="{k}">{k.replace("_", " ")}: {c[k]}</span>'
                     for k in ORDER)
    wall_s = f" &middot; wall clock {wall:.3f}s" if wall is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{e(title)}</h1>
<p class="totals"><span>total: {len(results)}</span>{totals}</p>
<p>{e(time.strftime("%Y-%m-%d %H:%M:%S"))} &middot; busy time
{sum(r.duration for r in results):.3f}s{wall_s}</p>
<table><thead><tr><th>program</th><th>case</th><th>result</th><th>reason</th>
<th>time</th></tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


def write_html(results: Sequence[CaseResult], directory: str,
               wall: float | None = None) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(html_report(results, wall=wall))
    return path
