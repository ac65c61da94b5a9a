"""The guest's environment: nbemu's own (as qemu-user passes it), changed by
-E/-U, minus the locale variables the guest could not use.

NetBSD's libc takes a locale named by LC_ALL, LC_<category> or LANG from
$PATH_LOCALE or /usr/share/locale/<name>/ (LC_CTYPE there is a "RuneCT10" file).
With the host's / as the guest's root, the host's LANG=C.UTF-8 (Debian's
default) names a locale that directory does not hold in NetBSD's format, so
`setlocale(LC_ALL, "")` fails and programs stop ("bsdtar: Failed to set default
locale", "tmux: invalid LC_ALL, LC_CTYPE or LANG"). A user expects the program
to run as NetBSD would for them; NetBSD with no usable locale setting runs in
the C locale. So such inherited variables are left out of the guest's
environment; a variable given with -E is passed as given, and a root that has
the locale (a NetBSD root under --root) keeps it.
"""
from __future__ import annotations

import os

LOCALE_VARS = ("LC_ALL", "LC_COLLATE", "LC_CTYPE", "LC_MONETARY", "LC_NUMERIC", "LC_TIME",
               "LC_MESSAGES", "LANG")
BUILTIN_LOCALES = ("", "C", "POSIX")
RUNE_MAGIC = b"RuneCT10"          # NetBSD's LC_CTYPE file (lib/libc/locale/runetype_file.h)
_PATH_LOCALE = "/usr/share/locale"


class EnvError(ValueError):
    """A malformed -E argument (the message is one line for the user)."""


def guest_path(root: str, path: str) -> str:
    """Host path of a guest absolute path (lexically: for a probe, not for the guest)."""
    return os.path.join(os.path.abspath(root), path.lstrip("/"))


def netbsd_has_locale(root: str, name: str, path_locale: str | None = None) -> bool:
    """Whether NetBSD's libc in this root would load locale NAME (its LC_CTYPE data)."""
    if name in BUILTIN_LOCALES:
        return True
    if "/" in name:                 # libc ignores such names (and uses "C"): harmless
        return True
    base = path_locale or _PATH_LOCALE
    try:
        with open(guest_path(root, f"{base}/{name}/LC_CTYPE"), "rb") as f:
            return f.read(len(RUNE_MAGIC)) == RUNE_MAGIC
    except OSError:
        return False


def guest_env(setenv: list[str], unsetenv: list[str], root: str,
              base: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """(the guest's environment, the inherited locale variables left out)."""
    env = dict(os.environ if base is None else base)
    given: set[str] = set()
    for kv in setenv:
        if "=" not in kv:
            raise EnvError(f"-E {kv}: expected VAR=VALUE")
        k, v = kv.split("=", 1)
        env[k] = v
        given.add(k)
    for k in unsetenv:
        env.pop(k, None)
        given.discard(k)
    dropped = []
    path_locale = env.get("PATH_LOCALE") or None
    for k in LOCALE_VARS:
        if k in env and k not in given and not netbsd_has_locale(root, env[k], path_locale):
            dropped.append(f"{k}={env.pop(k)}")
    return env, dropped
