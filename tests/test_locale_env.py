"""The host's locale and NetBSD programs (issue 15, item 9).

With the host's / as the guest root, the host's LANG=C.UTF-8 made NetBSD's
setlocale(LC_ALL, "") fail (the root has no NetBSD locale data), and real
programs stopped. fixtures/c/locale_probe.c decides setlocale as NetBSD's libc
does (nbrt has no locale support to call)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbemu.emu.guest_env import RUNE_MAGIC, EnvError, guest_env
from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu


def _host_env(**locale: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k != "LANG"}
    env.update(locale)
    return env


@pytest.mark.parametrize("arch", ARCHES)
def test_hosts_utf8_locale_does_not_stop_a_netbsd_program(arch: str) -> None:
    prog = build_c("locale_probe", arch)
    r = run_nbemu(prog, env=_host_env(LANG="C.UTF-8", LC_CTYPE="en_US.UTF-8"))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout == "setlocale: ok\nLC_CTYPE=C\n"       # NetBSD with no usable locale
    assert r.stderr == ""


def test_a_root_with_the_locale_keeps_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ctype = root / "usr/share/locale/C.UTF-8/LC_CTYPE"
    ctype.parent.mkdir(parents=True)
    ctype.write_bytes(RUNE_MAGIC + bytes(64))
    r = run_nbemu(build_c("locale_probe"), opts=("--root", str(root)),
                  env=_host_env(LANG="C.UTF-8"))
    assert r.returncode == 0 and r.stdout.endswith("LC_CTYPE=C.UTF-8\n"), (r.stdout, r.stderr)


def test_a_locale_given_with_E_is_passed_as_given() -> None:
    r = run_nbemu(build_c("locale_probe"), opts=("-E", "LC_ALL=C.UTF-8"),
                  env=_host_env(LANG="C.UTF-8"))
    assert r.returncode == 1 and r.stdout == "setlocale: failed (LC_CTYPE=C.UTF-8)\n"


def test_guest_env_unit(tmp_path: Path) -> None:
    base = {"LANG": "C.UTF-8", "LC_ALL": "", "LC_TIME": "POSIX", "LC_NUMERIC": "de/../x",
            "HOME": "/home/u"}
    env, dropped = guest_env([], [], str(tmp_path), base)
    assert env == {"LC_ALL": "", "LC_TIME": "POSIX", "LC_NUMERIC": "de/../x", "HOME": "/home/u"}
    assert dropped == ["LANG=C.UTF-8"]
    env, dropped = guest_env(["LANG=C.UTF-8", "X=1"], ["HOME"], str(tmp_path), base)
    assert env["LANG"] == "C.UTF-8" and env["X"] == "1" and "HOME" not in env and not dropped
    with pytest.raises(EnvError, match="expected VAR=VALUE"):
        guest_env(["NOEQUALS"], [], "/", base)
    # PATH_LOCALE (honoured by NetBSD's libc) is where the probe looks
    d = tmp_path / "loc" / "xx_YY.UTF-8"
    d.mkdir(parents=True)
    (d / "LC_CTYPE").write_bytes(RUNE_MAGIC)
    env, dropped = guest_env([], [], str(tmp_path), {"LANG": "xx_YY.UTF-8",
                                                     "PATH_LOCALE": "/loc"})
    assert env["LANG"] == "xx_YY.UTF-8" and not dropped
