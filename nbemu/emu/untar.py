"""Unpack a downloaded tarball (the engine's source from PyPI, a fixture's source)
safely on every Python nbemu runs on.

tarfile's "data" filter (refuse absolute names, names and links that leave the
target, device files; drop set-id bits and group/other write permission) exists
from Python 3.12 and in the 3.8-3.11 security releases of June 2023 (3.11.4);
Debian's 3.11.2 has it not, and a plain extractall() trusts the archive. Where
the filter is missing, the same checks are made here first.
"""
from __future__ import annotations

import os
import tarfile


class UnsafeArchive(ValueError):
    pass


def extract_all(tar: tarfile.TarFile, dest: str | os.PathLike) -> None:
    """tar.extractall(dest), with the data filter's checks."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:
        tar.extractall(dest, members=checked_members(tar, dest))


def checked_members(tar: tarfile.TarFile, dest: str | os.PathLike) -> list[tarfile.TarInfo]:
    """tar's members, made safe to extract into dest as the data filter makes
    them (UnsafeArchive for one that it refuses)."""
    root = os.path.realpath(dest)

    def inside(path: str) -> bool:
        return os.path.commonpath([root, os.path.realpath(path)]) == root

    members = []
    for m in tar.getmembers():
        target = os.path.join(root, m.name)
        if os.path.isabs(m.name) or not inside(target):
            raise UnsafeArchive(f"{m.name!r} would be outside {dest}")
        if m.isdev():
            raise UnsafeArchive(f"{m.name!r} is a device file")
        if m.issym() or m.islnk():
            base = os.path.dirname(target) if m.issym() else root
            if os.path.isabs(m.linkname) or not inside(os.path.join(base, m.linkname)):
                raise UnsafeArchive(f"{m.name!r} links outside {dest}")
        m.mode &= 0o755                     # no set-id bits, no group/other write
        members.append(m)
    return members
