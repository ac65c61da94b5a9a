"""<sys/poll.h>: the poll events, the one table every fo_poll answers with."""
from __future__ import annotations

POLLIN = 0x0001
POLLPRI = 0x0002
POLLOUT = 0x0004
POLLRDNORM = 0x0040
POLLWRNORM = POLLOUT
POLLRDBAND = 0x0080
POLLWRBAND = 0x0100
POLLERR = 0x0008        # revents only
POLLHUP = 0x0010        # revents only
POLLNVAL = 0x0020       # revents only
INFTIM = -1
