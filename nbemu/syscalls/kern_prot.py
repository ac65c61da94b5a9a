"""Process identity and protection (NetBSD's kern_prot.c).

Model
-----
- Credentials (kauth_cred_t) are per process: ``p.p_cred``, a :class:`Cred`
  with real, effective and saved user and group ids and the supplementary
  groups.  The guest is an unprivileged user whose ids are the host's
  (os.getuid()/os.getgid(), the same ids exec puts in the aux vector), with
  its gid as only supplementary group.  kauth therefore refuses every
  privileged request: set*id to an id the process does not already hold,
  setgroups and __setlogin fail with EPERM — even when the host runs nbemu as
  root (uid 0 in the guest is then a name, not a privilege).
- Process group and session: the first process is the leader of its own
  process group (pgid = pid, as a job-control shell starts a job) in a session
  led by its parent outside the guest (sid = ppid). Children inherit both
  (fork shares the Session object); setpgid/setsid follow proc_enterpgrp.
- The session's login name (s_login) is the host user's name.
- PK_SUGID (issetugid) is set once credentials change, as proc_crmod_leave does.

:func:`prot_init` sets all of this up; accessors create it on first use, so
the exec path need not call it.  fork copies p_cred, p_pgid, p_session and
p_sugid to the child (kern_fork.py).
"""
from __future__ import annotations

import os
import struct
from typing import Any

from typing import TYPE_CHECKING

from nbemu.plain import FrozenRecord, Record

from .errno import Errno
from . import upcall
from .kern_proc import pfind
from .lwp import SZOMB, Lwp, Proc
from .table import syscall

if TYPE_CHECKING:
    from .kernel import Kernel

PK_EXEC = 0x00004000             # p_flag: the process has exec'd (sys/proc.h)
NOID = 0xFFFFFFFF                 # (uid_t)-1 / (gid_t)-1: "leave unchanged"
NGROUPS_MAX = 16                  # sys/syslimits.h
MAXLOGNAME = 16                   # sys/param.h: LOGIN_NAME_MAX - 1 (s_login size)

# do_setresuid / do_setresgid flags (sys/prot.h): which current ids a new id may equal.
ID_E_EQ_E, ID_E_EQ_R, ID_E_EQ_S = 0x001, 0x002, 0x004
ID_R_EQ_E, ID_R_EQ_R, ID_R_EQ_S = 0x010, 0x020, 0x040
ID_S_EQ_E, ID_S_EQ_R, ID_S_EQ_S = 0x100, 0x200, 0x400



def kauth_suser(p: Proc) -> bool:
    """secmodel_suser's answer to the kauth_authorize_*() requests it decides
    (scheduling classes, affinity, mqueue and semaphore access): is p root?
    The guest's credentials never are (see above); ``k.config["suser"]``
    grants root's paths to exercise them."""
    return bool(p.k.config.get("suser"))


class Cred(FrozenRecord):
    """kauth_cred_t, reduced to the ids (immutable: a change is a replace())."""
    cr_uid: int
    cr_euid: int
    cr_svuid: int
    cr_gid: int
    cr_egid: int
    cr_svgid: int
    cr_groups: tuple[int, ...]
    _fields = ("cr_uid", "cr_euid", "cr_svuid", "cr_gid", "cr_egid", "cr_svgid", "cr_groups")

    def __init__(self, cr_uid: int, cr_euid: int, cr_svuid: int, cr_gid: int, cr_egid: int,
                 cr_svgid: int, cr_groups: tuple[int, ...]) -> None:
        self._set_fields(cr_uid, cr_euid, cr_svuid, cr_gid, cr_egid, cr_svgid, cr_groups)


class Session(Record):
    _fields = ("s_sid", "s_login", "s_ttyp")

    def __init__(self, s_sid: int, s_login: bytes, s_ttyp: Any = None) -> None:
        self.s_sid = s_sid
        self.s_login = s_login        # at most MAXLOGNAME bytes
        self.s_ttyp = s_ttyp          # kern_tty.Tty: the controlling terminal


def _host_login(uid: int) -> bytes:
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name.encode()[:MAXLOGNAME]
    except (ImportError, KeyError):
        return b""


def prot_init(p: Proc, uid: int | None = None, gid: int | None = None) -> None:
    """Credentials, process group and session of a freshly exec'd process."""
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    p.p_cred = Cred(uid, uid, uid, gid, gid, gid, (gid,))
    p.p_pgid = p.p_pid
    p.p_session = Session(p.p_ppid, _host_login(uid))
    p.p_sugid = False


def proc_cred(p: Proc) -> Cred:
    if p.p_cred is None:
        prot_init(p)
    return p.p_cred


def nprocs_of_uid(k: "Kernel", uid: int) -> int:
    """The processes of real user uid (chgproccnt's count, for RLIMIT_NPROC)."""
    return sum(1 for p in k.allproc.values() if proc_cred(p).cr_uid == uid)


def proc_pgid(p: Proc) -> int:
    if p.p_pgid is None:
        prot_init(p)
    return p.p_pgid


def proc_session(p: Proc) -> Session:
    if p.p_session is None:
        prot_init(p)
    return p.p_session


# -- ids ------------------------------------------------------------------------

@syscall(20, "getpid")
def sys_getpid_with_ppid(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = l.l_proc.p_pid
    retval[1] = l.l_proc.p_ppid
    return 0


@syscall(39, "getppid")
def sys_getppid(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = l.l_proc.p_ppid
    return 0


@syscall(24, "getuid")
def sys_getuid_with_euid(l: Lwp, a, retval: list[int]) -> int:
    c = proc_cred(l.l_proc)
    retval[0], retval[1] = c.cr_uid, c.cr_euid
    return 0


@syscall(25, "geteuid")
def sys_geteuid(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = proc_cred(l.l_proc).cr_euid
    return 0


@syscall(47, "getgid")
def sys_getgid_with_egid(l: Lwp, a, retval: list[int]) -> int:
    c = proc_cred(l.l_proc)
    retval[0], retval[1] = c.cr_gid, c.cr_egid
    return 0


@syscall(43, "getegid")
def sys_getegid(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = proc_cred(l.l_proc).cr_egid
    return 0


@syscall(79, "getgroups")
def sys_getgroups(l: Lwp, a, retval: list[int]) -> int:
    groups = proc_cred(l.l_proc).cr_groups
    retval[0] = len(groups)
    if a.gidsetsize == 0:
        return 0
    if a.gidsetsize < len(groups):
        return Errno.EINVAL
    return l.l_proc.p_vmspace.copyout(struct.pack(f"<{len(groups)}I", *groups), a.gidset)


@syscall(80, "setgroups")
def sys_setgroups(l: Lwp, a, retval: list[int]) -> int:
    n = a.gidsetsize
    if n < 0 or n > NGROUPS_MAX:
        return Errno.EINVAL
    data = l.l_proc.p_vmspace.copyin(a.gidset, 4 * n)
    if isinstance(data, int):
        return data
    return Errno.EPERM                # kauth_proc_setgroups: root only


@syscall(305, "issetugid")
def sys_issetugid(l: Lwp, a, retval: list[int]) -> int:
    proc_cred(l.l_proc)
    retval[0] = int(l.l_proc.p_sugid)
    return 0


def _allowed(new: int, flags: int, shift: int, r: int, e: int, s: int) -> bool:
    """May an unprivileged process set one id to `new`?  `shift` selects the
    ID_R_*, ID_E_* or ID_S_* group of flags (4, 0 or 8)."""
    if new == NOID:
        return True
    f = flags >> shift
    return bool((f & ID_E_EQ_R and new == r) or (f & ID_E_EQ_E and new == e)
                or (f & ID_E_EQ_S and new == s))


def _setres(l: Lwp, r: int, e: int, sv: int, flags: int, group: bool) -> int:
    """do_setresuid / do_setresgid for an unprivileged caller."""
    p = l.l_proc
    c = proc_cred(p)
    cur = (c.cr_gid, c.cr_egid, c.cr_svgid) if group else (c.cr_uid, c.cr_euid, c.cr_svuid)
    if not (_allowed(r, flags, 4, *cur) and _allowed(e, flags, 0, *cur)
            and _allowed(sv, flags, 8, *cur)):
        return Errno.EPERM            # kauth KAUTH_PROCESS_SETID
    new = tuple(old if v == NOID else v for v, old in zip((r, e, sv), cur))
    if new == cur:
        return 0
    if group:
        p.p_cred = c.replace(cr_gid=new[0], cr_egid=new[1], cr_svgid=new[2])
    else:
        p.p_cred = c.replace(cr_uid=new[0], cr_euid=new[1], cr_svuid=new[2])
    p.p_sugid = True
    return 0


@syscall(23, "setuid")
def sys_setuid(l: Lwp, a, retval: list[int]) -> int:
    return _setres(l, a.uid, a.uid, a.uid, ID_R_EQ_R | ID_E_EQ_R | ID_S_EQ_R, False)


@syscall(183, "seteuid")
def sys_seteuid(l: Lwp, a, retval: list[int]) -> int:
    return _setres(l, NOID, a.euid, NOID, ID_E_EQ_R | ID_E_EQ_S, False)


_REFLAGS = (ID_R_EQ_R | ID_R_EQ_E | ID_E_EQ_R | ID_E_EQ_E | ID_E_EQ_S
            | ID_S_EQ_R | ID_S_EQ_E | ID_S_EQ_S)


@syscall(126, "setreuid")
def sys_setreuid(l: Lwp, a, retval: list[int]) -> int:
    c = proc_cred(l.l_proc)
    ruid = c.cr_uid if a.ruid == NOID else a.ruid
    euid = c.cr_euid if a.euid == NOID else a.euid
    svuid = NOID if ruid == c.cr_uid else euid       # saved id follows a new real id
    return _setres(l, ruid, euid, svuid, _REFLAGS, False)


@syscall(181, "setgid")
def sys_setgid(l: Lwp, a, retval: list[int]) -> int:
    return _setres(l, a.gid, a.gid, a.gid, ID_R_EQ_R | ID_E_EQ_R | ID_S_EQ_R, True)


@syscall(182, "setegid")
def sys_setegid(l: Lwp, a, retval: list[int]) -> int:
    return _setres(l, NOID, a.egid, NOID, ID_E_EQ_R | ID_E_EQ_S, True)


@syscall(127, "setregid")
def sys_setregid(l: Lwp, a, retval: list[int]) -> int:
    c = proc_cred(l.l_proc)
    rgid = c.cr_gid if a.rgid == NOID else a.rgid
    egid = c.cr_egid if a.egid == NOID else a.egid
    svgid = NOID if rgid == c.cr_gid else egid
    return _setres(l, rgid, egid, svgid, _REFLAGS, True)


# -- process groups and sessions ------------------------------------------------------

@syscall(81, "getpgrp")
def sys_getpgrp(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = proc_pgid(l.l_proc)
    return 0


def _target(l: Lwp, pid: int) -> Proc | int:
    """pid 0: the caller; else a live process of the guest (ESRCH)."""
    if pid == 0:
        return l.l_proc
    t = pfind(l.l_proc.k, pid)
    return Errno.ESRCH if t is None else t


@syscall(207, "getpgid")
def sys_getpgid(l: Lwp, a, retval: list[int]) -> int:
    t = _target(l, a.pid)
    if isinstance(t, int):
        return t
    retval[0] = proc_pgid(t)
    return 0


@syscall(286, "getsid")
def sys_getsid(l: Lwp, a, retval: list[int]) -> int:
    t = _target(l, a.pid)
    if isinstance(t, int):
        return t
    retval[0] = proc_session(t).s_sid
    return 0


# -- process groups and orphans (kern_proc.c's pg_jobc/fixjobc as queries) ----------
# The orphan state is computed, not counted: a group is orphaned when no live member
# has a parent in another group of the same session.
def _live(q: Proc) -> bool:
    return q.p_stat != SZOMB and not q.p_exiting


def pg_members(k: Any, pgid: int) -> list[Proc]:
    return [q for q in k.allproc.values() if _live(q) and proc_pgid(q) == pgid]


def pg_orphaned(k: Any, pgid: int, also: Proc | None = None) -> bool:
    """pg_jobc == 0: no member whose parent is in another group of the same
    session (also: a process that still counts although it is exiting)."""
    for q in k.allproc.values():
        if not (_live(q) or q is also) or proc_pgid(q) != pgid:
            continue
        par = q.p_pptr
        if par is None and proc_session(q).s_sid != q.p_pid:
            return False          # the first process: its parent is the host's shell
        if (par is not None and (_live(par) or par is also) and proc_pgid(par) != pgid
                and proc_session(par) is proc_session(q)):
            return False
    return True


def orphan_candidates(p: Proc) -> set[int]:
    """Groups whose orphan state p's exit or move can change: its own and its
    children's (fixjobc)."""
    return {proc_pgid(p)} | {proc_pgid(c) for c in p.p_children}


def orphaned_now(k: Any, pgids: set[int], also: Proc | None = None) -> set[int]:
    return {g for g in pgids if pg_orphaned(k, g, also)}


def ttystop_discarded(p: Proc, prop_ttystop: bool) -> bool:
    """kpsignal2: a tty stop signal of default action to an orphaned group goes."""
    if not prop_ttystop:
        return False
    return pg_orphaned(p.k, proc_pgid(p))


def proc_enterpgrp(p: Proc, pgid: int, sess: Session | None = None) -> None:
    """proc_enterpgrp()'s move, checked by the caller: p joins group pgid (of
    the new session sess when given, setsid); fixjobc: groups it leaves
    orphaned get SIGHUP + SIGCONT (kern_tty.orphanpg_check)."""
    cands = orphan_candidates(p) | {pgid}
    before = orphaned_now(p.k, cands)
    if sess is not None:
        p.p_session = sess
    p.p_pgid = pgid
    upcall.orphanpg_check(p.k, cands, before)


@syscall(147, "setsid")
def sys_setsid(l: Lwp, a, retval: list[int]) -> int:
    """proc_enterpgrp(p, pid, pid, mksess): a process-group leader -- or a
    process whose pid names an existing group -- cannot start a session."""
    p = l.l_proc
    retval[0] = p.p_pid
    if proc_pgid(p) == p.p_pid or any(proc_pgid(q) == p.p_pid for q in p.k.allproc.values()):
        return Errno.EPERM
    proc_enterpgrp(p, p.p_pid, Session(p.p_pid, proc_session(p).s_login))
    return 0


@syscall(82, "setpgid")
def sys_setpgid(l: Lwp, a, retval: list[int]) -> int:
    """proc_enterpgrp(curp, pid, pgid, false) (sys_setpgid's rules): the
    target is the caller or one of its children that has not exec'd (EACCES)
    and is in its session (EPERM); a session leader cannot move (EPERM); the
    group joined must be the target's own or exist in the session (EPERM)."""
    p = l.l_proc
    pgid = a.pgid - (1 << 32) if a.pgid >= 1 << 31 else a.pgid
    if pgid < 0:
        return Errno.EINVAL
    if a.pid == 0 or a.pid == p.p_pid:
        targ = p
    else:
        targ = pfind(p.k, a.pid)
        if targ is None or targ.p_pptr is not p:
            return Errno.ESRCH
        if proc_session(targ) is not proc_session(p):
            return Errno.EPERM
        if targ.p_flag & PK_EXEC:
            return Errno.EACCES
    pgid = pgid or targ.p_pid
    sess = proc_session(targ)
    if sess.s_sid == targ.p_pid:          # a session leader stays where it is
        return 0 if pgid == proc_pgid(targ) else Errno.EPERM
    if pgid != targ.p_pid and not any(
            proc_pgid(q) == pgid and proc_session(q) is sess for q in p.k.allproc.values()):
        return Errno.EPERM
    proc_enterpgrp(targ, pgid)
    return 0


# -- login name -------------------------------------------------------------------------

@syscall(49, "__getlogin")
def sys___getlogin(l: Lwp, a, retval: list[int]) -> int:
    login = proc_session(l.l_proc).s_login.ljust(MAXLOGNAME, b"\0")
    n = min(a.namelen, MAXLOGNAME)
    return l.l_proc.p_vmspace.copyout(login[:n], a.namebuf)


@syscall(50, "__setlogin")
def sys___setlogin(l: Lwp, a, retval: list[int]) -> int:
    return Errno.EPERM                # kauth KAUTH_PROCESS_SETID: root only
