"""The controlling terminal and job control (NetBSD's tty.c ttioctl/ttread/ttwrite
checks, tty_tty.c's TIOCNOTTY, kern_proc.c's fixjobc/orphanpg, kern_exit.c's
session-leader exit).

A guest tty is a host tty or pty (a HostFile of type VCHR that the host calls a
tty). The host's own job control is not used: nbemu opens ttys O_NOCTTY and
never asks the host for TIOCSCTTY. Instead the kernel keeps NetBSD's struct tty
fields for each host tty it has seen (keyed by the host's st_rdev): t_session,
the session it controls, and t_pgrp, the foreground process group. The session
(kern_prot.Session) points back with s_ttyp.

- TIOCSCTTY, TIOCGPGRP, TIOCSPGRP, TIOCGSID, TIOCNOTTY as ttioctl answers them
  (ENOTTY when the tty is not the caller's controlling terminal, EPERM for a
  process group of another session or a non-leader taking a tty).
- A background process (its session's tty, another process group) that reads
  gets SIGTTIN on its group and restarts after it; EIO when SIGTTIN is ignored
  or blocked or its group is orphaned. Writes do the same with SIGTTOU when
  the tty has TOSTOP, and so do the ioctls that change the tty (TIOCSETA/W/F,
  TIOCSWINSZ) whatever TOSTOP says.
- Orphaned process groups (no member has a parent in another group of the same
  session): a group that becomes orphaned by an exit or a setpgid, with a
  stopped member, gets SIGHUP then SIGCONT (orphanpg); SIGTSTP/SIGTTIN/SIGTTOU
  of default action to an orphaned group are discarded.
- A session leader's exit sends SIGHUP to the terminal's foreground group and
  frees the terminal.

Not modelled: PL_CONTROLT (every process of the session counts as having the
terminal), revoking the leader's terminal from the rest of the session,
checks repeated while a read already sleeps.
"""
from __future__ import annotations

import os
import struct
import termios
from typing import TYPE_CHECKING, Any

from nbemu.plain import Record

from . import upcall
from .errno import Errno
from .kern_prot import (orphan_candidates, orphaned_now, pg_members, pg_orphaned,  # noqa: F401
                        proc_pgid, proc_session)

if TYPE_CHECKING:
    from .lwp import Lwp, Proc

TIOCSCTTY, TIOCNOTTY = 0x20007461, 0x20007471
TIOCGPGRP, TIOCSPGRP, TIOCGSID = 0x40047477, 0x80047476, 0x40047463
TIOCSETA, TIOCSETAW, TIOCSETAF, TIOCSWINSZ = 0x802C7414, 0x802C7415, 0x802C7416, 0x80087467
NO_PGID = -1
SIGHUP, SIGCONT, SIGTTIN, SIGTTOU = 1, 19, 21, 22
# ttioctl: "if the ioctl involves modification, signal if in the background"
_MODIFY = frozenset({TIOCSETA, TIOCSETAW, TIOCSETAF, TIOCSWINSZ})
JOB_IOCTLS = frozenset({TIOCSCTTY, TIOCNOTTY, TIOCGPGRP, TIOCSPGRP, TIOCGSID})


class Tty(Record):
    """struct tty, reduced to its job-control fields."""
    _fields = ("t_rdev", "t_session", "t_pgrp")

    def __init__(self, t_rdev: int, t_session: Any = None, t_pgrp: int | None = None) -> None:
        self.t_rdev = t_rdev
        self.t_session = t_session    # kern_prot.Session it controls, or None
        self.t_pgrp = t_pgrp          # foreground process group id


def tty_of(k: Any, fp: Any) -> Tty | None:
    """The kernel's struct tty of a descriptor open on a host tty, else None."""
    hostfd = getattr(fp, "hostfd", -1)
    if hostfd < 0 or getattr(fp, "v_type", None) is None:
        return None
    try:
        if not os.isatty(hostfd):
            return None
        rdev = os.fstat(hostfd).st_rdev
    except OSError:
        return None
    if k.tty_state is None:
        k.tty_state = {}
    tp = k.tty_state.get(rdev)
    if tp is None:
        tp = k.tty_state[rdev] = Tty(rdev)
    return tp


# -- process groups (signals to them: kern_sig.c's pgsignal, kern_proc.c's orphanpg) --
def pgsignal(k: Any, pgid: int | None, sig: int) -> None:
    from .kern_sig import psignal
    if pgid is None:
        return
    for q in pg_members(k, pgid):
        psignal(q, sig)


def orphanpg_check(k: Any, pgids: set[int], before: set[int]) -> None:
    """orphanpg: each group that became orphaned and has a stopped member gets
    SIGHUP, then SIGCONT."""
    from .lwp import SSTOP
    for g in sorted(pgids - before):
        if not pg_orphaned(k, g):
            continue
        members = pg_members(k, g)
        if any(q.p_stat == SSTOP for q in members):
            pgsignal(k, g, SIGHUP)
            pgsignal(k, g, SIGCONT)


upcall.orphanpg_check = orphanpg_check


# -- the terminal ------------------------------------------------------------------------------
def isctty(p: Proc, tp: Tty) -> bool:
    return tp.t_session is not None and tp.t_session is proc_session(p)


def isbackground(p: Proc, tp: Tty) -> bool:
    return isctty(p, tp) and tp.t_pgrp != proc_pgid(p)


def _sigismasked(l: Lwp, sig: int) -> bool:
    from .kern_sig import masked, sig_ignored
    return sig_ignored(l.l_proc, sig) or masked(l, sig)


def _bg_signal(l: Lwp, sig: int) -> int:
    """pgsignal(p_pgrp, sig) and ttypause: the call restarts once the group has
    stopped and continued (or the handler ran: EINTR without SA_RESTART)."""
    from .kern_sig import sleepq_sigtoerror
    p = l.l_proc
    pgsignal(p.k, proc_pgid(p), sig)
    return sleepq_sigtoerror(l, sig)


def tty_rw_check(l: Lwp, fp: Any, write: bool) -> int:
    """ttread / ttwrite's background checks: 0 to go on, else the error."""
    p = l.l_proc
    k = p.k
    if k.tty_state is None:
        return 0                  # no terminal has a session: nothing to check
    tp = tty_of(k, fp)
    if tp is None or not isbackground(p, tp) or p.p_vforkwaiting:
        return 0
    if not write:
        if _sigismasked(l, SIGTTIN) or pg_orphaned(k, proc_pgid(p)):
            return Errno.EIO
        return _bg_signal(l, SIGTTIN)
    try:
        tostop = bool(termios.tcgetattr(fp.hostfd)[3] & termios.TOSTOP)
    except (termios.error, OSError):
        tostop = False
    if not tostop or _sigismasked(l, SIGTTOU):
        return 0
    if pg_orphaned(k, proc_pgid(p)):
        return Errno.EIO
    return _bg_signal(l, SIGTTOU)


def tty_ioctl(l: Lwp, fp: Any, com: int, data: bytearray) -> int | None:
    """ttioctl's job-control commands and background checks; None: not handled
    here (the caller goes on with the host's tty ioctls)."""
    if com not in JOB_IOCTLS and com not in _MODIFY:
        return None
    p = l.l_proc
    k = p.k
    tp = tty_of(k, fp)
    if tp is None:
        return Errno.ENOTTY if com in JOB_IOCTLS else None
    sess = proc_session(p)
    if com in _MODIFY:
        if (isbackground(p, tp) and not pg_orphaned(k, proc_pgid(p))
                and not p.p_vforkwaiting and not _sigismasked(l, SIGTTOU)):
            return _bg_signal(l, SIGTTOU)
        return None
    if com == TIOCSCTTY:
        leader = sess.s_sid == p.p_pid
        if not leader or ((sess.s_ttyp is not None or tp.t_session is not None)
                          and tp.t_session is not sess):
            return Errno.EPERM
        tp.t_session = sess
        tp.t_pgrp = proc_pgid(p)
        sess.s_ttyp = tp
        return 0
    if com == TIOCNOTTY:
        # tty_tty.c: a session leader cannot give up its terminal this way
        if not isctty(p, tp):
            return Errno.ENOTTY
        return Errno.EINVAL if sess.s_sid == p.p_pid else 0
    if not isctty(p, tp):
        return Errno.ENOTTY
    if com == TIOCGPGRP:
        data[:4] = struct.pack("<i", tp.t_pgrp if tp.t_pgrp is not None else NO_PGID)
        return 0
    if com == TIOCGSID:
        data[:4] = struct.pack("<i", tp.t_session.s_sid)
        return 0
    # TIOCSPGRP
    (pgid,) = struct.unpack_from("<i", bytes(data[:4]))
    if pgid == NO_PGID:
        return Errno.EINVAL
    members = pg_members(k, pgid)
    if not members or proc_session(members[0]) is not sess:
        return Errno.EPERM
    tp.t_pgrp = pgid
    return 0


def sess_leader_exit(p: Proc) -> None:
    """exit1 of a session leader: the foreground group of its terminal gets
    SIGHUP and the terminal is no one's any more."""
    sess = proc_session(p)
    if sess.s_sid != p.p_pid or sess.s_ttyp is None:
        return
    tp = sess.s_ttyp
    sess.s_ttyp = None
    if tp.t_session is sess:
        pgid = tp.t_pgrp
        tp.t_session = None
        tp.t_pgrp = None
        pgsignal(p.k, pgid, SIGHUP)
