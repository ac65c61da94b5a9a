"""syscalls: nbemu's Python kernel; the modules mirror NetBSD's files.

Importing the package registers the handlers (syscalls/table.py) of the modules
most programs call, and those the kernel's own modules import. The modules in
LAZY_MODULES serve calls few programs make: each is imported at the first call
of one of its calls (table.SysEnt's handler), which keeps their loading (~12M
instructions, ~3 ms) off every nbemu start. tests/test_syscall_lazy.py checks
that these lists are what the modules register.
"""
from . import (kern_descrip, kern_event, kern_exit, kern_prot, kern_resource,  # noqa: F401
               kern_synch, kern_sysctl, kern_time, sys_generic, sys_lwp, sys_sig,
               uvm_mmap, vfs_syscalls)
from . import kern_fork  # noqa: F401,E402
from . import sys_ptrace  # noqa: F401,E402
from . import kern_ras  # noqa: F401,E402
from .table import register_lazy

LAZY_MODULES: dict[str, tuple[str, ...]] = {
    "kern_exec": ("execve", "fexecve", "posix_spawn"),
    "sys_pipe": ("pipe", "pipe2"),
    "sys_select": ("__select50", "__pselect50", "poll", "__pollts50"),
    "sys_sched": ("_sched_setparam", "_sched_getparam", "_sched_setaffinity",
                  "_sched_getaffinity", "sched_yield", "_sched_protect"),
    "sys_mqueue": ("mq_open", "mq_close", "mq_unlink", "mq_getattr", "mq_setattr",
                   "mq_notify", "mq_send", "mq_receive", "__mq_timedsend50",
                   "__mq_timedreceive50"),
    "uipc_sem": ("_ksem_init", "_ksem_open", "_ksem_unlink", "_ksem_close", "_ksem_destroy",
                 "_ksem_post", "_ksem_wait", "_ksem_trywait", "_ksem_timedwait",
                 "_ksem_getvalue"),
    "uipc_syscalls": ("__socket30", "socketpair", "bind", "listen", "connect", "accept",
                      "paccept", "getsockname", "getpeername", "setsockopt", "getsockopt",
                      "shutdown", "sendto", "recvfrom", "sendmsg", "recvmsg"),
    "uvm_mincore": ("mincore",),
    "vfs_statvfs": ("__statvfs190", "__fstatvfs190", "__getvfsstat90", "__fhstatvfs190"),
    "compat_13": ("compat_13_sigprocmask13", "compat_13_sigpending13",
                  "compat_13_sigsuspend13"),
    "compat_50": ("compat_50_gettimeofday", "compat_50_clock_gettime",
                  "compat_50_clock_getres", "compat_50_nanosleep", "compat_50_getitimer",
                  "compat_50_setitimer", "compat_50_getrusage", "compat_50_select",
                  "compat_50_pselect", "compat_50_pollts", "compat_50_utimes",
                  "compat_50_lutimes", "compat_50_futimes", "compat_50_mq_timedsend",
                  "compat_50_mq_timedreceive", "compat_50___stat30", "compat_50___lstat30",
                  "compat_50___fstat30"),
    "compat_90": ("compat_90_getvfsstat", "compat_90_statvfs1", "compat_90_fstatvfs1",
                  "compat_90_fhstatvfs1"),
}

register_lazy({f"{__name__}.{m}": names for m, names in LAZY_MODULES.items()})
