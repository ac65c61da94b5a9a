"""syscalls: nbemu's Python kernel. Importing it registers every handler in
the table (syscalls/table.py); the modules mirror NetBSD's files."""
from . import (kern_descrip, kern_event, kern_exit, kern_prot, kern_resource,  # noqa: F401
               kern_synch, kern_sysctl, kern_time, sys_generic, sys_lwp, sys_pipe, sys_sig,
               uvm_mmap, vfs_syscalls)
from . import kern_exec, kern_fork  # noqa: F401,E402
from . import sys_ptrace  # noqa: F401,E402
from . import kern_ras, sys_mqueue, sys_sched, sys_select, uipc_sem, uipc_syscalls  # noqa: F401,E402
from . import compat_13, compat_50, compat_90, uvm_mincore, vfs_statvfs  # noqa: F401,E402
