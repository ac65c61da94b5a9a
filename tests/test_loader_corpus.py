"""The malformed-ELF corpus (fixtures/elf_corpus.py): every field of the ELF header
and of the program headers of a real program pushed to its limits, on a 64-bit
and a 32-bit port. Each variant gets its expected exit status; a refusal is one
line on stderr, never a traceback (issue 16, item 5)."""
from __future__ import annotations

import pytest

from fixtures.build import build_c
from fixtures.elf_corpus import ANY, Variant, variants
from tests.guest import run_nbemu

CORPUS_ARCHES = ["x86_64", "x86"]


def _corpus() -> list[tuple[str, Variant]]:
    out = []
    for arch in CORPUS_ARCHES:
        for v in variants(build_c("exit42", arch).read_bytes(), arch):
            out.append((arch, v))
    return out


CORPUS = _corpus()


@pytest.mark.parametrize("arch,v", CORPUS, ids=[f"{a}-{v.name}" for a, v in CORPUS])
def test_malformed_elf(arch: str, v: Variant, tmp_path) -> None:
    prog = tmp_path / v.name
    prog.write_bytes(v.data)
    prog.chmod(0o755)
    if v.expect in (126, 127):
        # Refused before the guest runs: in-process (run_program, as the CLI), fast.
        import io
        from contextlib import redirect_stderr

        from nbemu.emu.boot import Options, run_program
        err = io.StringIO()
        with redirect_stderr(err):
            rc = run_program(str(prog), [], Options())
        lines = err.getvalue().splitlines()
        assert rc == v.expect, err.getvalue()
        assert len(lines) == 1 and lines[0].startswith("nbemu: "), err.getvalue()
        return
    r = run_nbemu(prog, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    if v.expect == ANY:
        assert r.returncode not in (1, 70), r.stderr
        return
    assert r.returncode == v.expect, r.stderr
