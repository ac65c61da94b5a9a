"""nbemu/emu/untar.py: downloaded tarballs unpack safely on Pythons without
tarfile's data filter (Debian's 3.11.2), as they do with it."""
from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from nbemu.emu.untar import UnsafeArchive, checked_members, extract_all


def _tar(path, members) -> str:
    with tarfile.open(path, "w") as t:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = b"data"
                info.size = len(data)
                info.mode = extra or 0o644
                t.addfile(info, io.BytesIO(data))
            else:
                info.type = kind
                info.linkname = extra or ""
                t.addfile(info)
    return str(path)


def test_a_plain_tarball_unpacks(tmp_path) -> None:
    src = _tar(tmp_path / "ok.tar", [("pkg/a.txt", "file", 0o4755),
                                     ("pkg/link", tarfile.SYMTYPE, "a.txt")])
    out = tmp_path / "out"
    out.mkdir()
    with tarfile.open(src) as t:
        extract_all(t, out)
    assert (out / "pkg" / "a.txt").read_bytes() == b"data"
    assert os.readlink(out / "pkg" / "link") == "a.txt"
    assert not (out / "pkg" / "a.txt").stat().st_mode & stat.S_ISUID


@pytest.mark.parametrize("member", [
    ("../evil", "file", None),
    ("/abs/evil", "file", None),
    ("pkg/up", tarfile.SYMTYPE, "../../evil"),
    ("pkg/root", tarfile.SYMTYPE, "/etc/passwd"),
    ("pkg/hard", tarfile.LNKTYPE, "../evil"),
    ("pkg/dev", tarfile.CHRTYPE, None),
])
def test_what_the_data_filter_refuses_is_refused(tmp_path, member) -> None:
    src = _tar(tmp_path / "bad.tar", [member])
    out = tmp_path / "out"
    out.mkdir()
    with tarfile.open(src) as t:
        with pytest.raises(UnsafeArchive):
            checked_members(t, out)
        if hasattr(tarfile, "data_filter"):       # the real filter: refused, or kept inside
            try:
                extract_all(t, out)
            except tarfile.FilterError:
                pass
    assert not (tmp_path / "evil").exists() and not os.path.exists("/abs/evil")
