"""syscalls: nbemu's Python kernel. Importing it registers every handler in
the table (syscalls/table.py); the modules mirror NetBSD's files."""
from . import (kern_exit, kern_synch, kern_time, sys_lwp, sys_sig, uvm_mmap)  # noqa: F401

try:   # modules written in parallel; each registers its own handlers
    from . import kern_descrip, sys_generic, vfs_syscalls, sys_pipe, kern_event  # noqa: F401
except ImportError:  # pragma: no cover
    pass
try:
    from . import kern_sysctl, kern_prot, kern_resource  # noqa: F401
except ImportError:  # pragma: no cover
    pass
