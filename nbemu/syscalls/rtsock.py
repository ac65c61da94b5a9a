"""The routing sysctl (NetBSD's sys/net/rtsock.c sysctl_rtable / sysctl_iflist /
sysctl_dumpentry, rtsock_shared.c rt_msg2, compat/common/rtsock_70.c) and the
interfaces it lists.

Read from NetBSD/src rtsock.c 1.249 and rtsock_shared.c 1.21 (2022-06-29, the
revision NetBSD 10 branched with), compat/common/rtsock_70.c and compat/net/if.h
for the pre-8.0 address message; layouts from the NetBSD 10 headers net/if.h,
net/route.h, net/if_dl.h.

Model
-----
- The guest sees one interface, the loopback ``lo0`` (index 1, IFT_LOOP,
  UP|LOOPBACK|RUNNING|MULTICAST, mtu 33624 as if_loop.c's LOMTU on amd64),
  with the addresses /etc/rc.d/network gives it on NetBSD: the link address,
  ``::1/128`` (NODAD) and ``127.0.0.1/8``.  Why not the host's interfaces: guest
  sockets are host sockets, but the host's interface names (eth0, ens3) and
  indexes are Linux's, and a NetBSD program that picks an interface by name or
  expects a NetBSD type would be misled; the loopback is what every NetBSD
  machine has, it is reachable through the host socket layer with the same
  addresses, and the answer does not depend on the host (``--deterministic``,
  record/replay).  Index 1 is also the Linux host's ``lo``, so a scope id the
  guest takes from here (``%lo0`` -> 1) reaches the same loopback on the host.
  NetBSD's ``fe80::1%lo0`` is left out: the host's loopback has no link-local
  address, so a guest that bound it would fail where NetBSD succeeds.  No
  other part of nbemu reports interfaces (no SIOCGIFCONF or if_nameindex
  path), so this list is the one source.
- sysctl_rtable: net.route.rtable = {CTL_NET, PF_ROUTE, 0, af, op, arg}.
  NET_RT_IFLIST (6): an RTM_IFINFO message (struct if_msghdr) per interface,
  each followed by an RTM_NEWADDR message (struct ifa_msghdr) per address of
  family af (0: all, the link address included).  NET_RT_OIFLIST (5, the
  pre-8.0 list that COMPAT_70 serves and Go's syscall.NET_RT_IFLIST asks for):
  the same RTM_IFINFO messages, then RTM_ONEWADDR with struct ifa_msghdr70.
  NET_RT_OOIFLIST / NET_RT_OOOIFLIST (compat_50/compat_14 layouts) are not
  modelled: EINVAL, as a kernel without those rtsock compat hooks answers.
  NET_RT_DUMP / NET_RT_FLAGS: the two local host routes of lo0 (127.0.0.1 and
  ::1, RTF_UP|RTF_HOST|RTF_LOCAL, gateway lo0's link address) as RTM_GET
  messages; no ARP/NDP entries (the lltable is empty).
- arg filters by interface index (0: all); an unknown index gives no messages.
- Sizes as sysctl_rtable computes them: oldp NULL reports 11/10 of the size
  needed; a short buffer gets the whole messages that fit and ENOMEM with
  *oldlenp set to what was copied.  newp is EPERM, a name not of three
  components EINVAL.
- Every message is 8-byte aligned (__align64) and so is each sockaddr in it
  (RT_ROUNDUP), which makes every layout here the same on all ports.
"""
from __future__ import annotations

import struct

from nbemu.plain import ValueRecord

from .errno import Errno

# sys/socket.h
AF_UNSPEC, AF_INET, AF_LINK, AF_INET6, AF_ROUTE = 0, 2, 18, 24, 34
AF_MAX = 45
PF_ROUTE = AF_ROUTE
NET_RT_DUMP, NET_RT_FLAGS, NET_RT_OOOIFLIST, NET_RT_OOIFLIST, NET_RT_OIFLIST, \
    NET_RT_IFLIST = range(1, 7)

# net/route.h
RTM_VERSION = 4
RTM_GET = 0x4
RTM_ONEWADDR = 0xc
RTM_IFINFO = 0x14
RTM_NEWADDR = 0x16
RTAX_DST, RTAX_GATEWAY, RTAX_NETMASK, RTAX_GENMASK, RTAX_IFP, RTAX_IFA, RTAX_AUTHOR, \
    RTAX_BRD, RTAX_TAG, RTAX_MAX = range(10)
RTF_UP, RTF_HOST, RTF_LLDATA, RTF_LOCAL = 0x1, 0x4, 0x400, 0x40000

# net/if.h, net/if_types.h, netinet6/in6_var.h
IFF_UP, IFF_LOOPBACK, IFF_RUNNING, IFF_MULTICAST = 0x1, 0x8, 0x40, 0x8000
IFT_LOOP = 0x18
LINK_STATE_UNKNOWN = 0
IFA_ROUTE = 0x1
IN6_IFF_NODAD = 0x20
LOMTU = 33624                   # 32768 + MHLEN + MLEN on amd64 (if_loop.c)

SIZEOF_IF_MSGHDR = 152          # u_short..u_short, then struct if_data __align64
SIZEOF_IFA_MSGHDR = 32          # CTASSERT(sizeof(struct ifa_msghdr) == 32)
SIZEOF_IFA_MSGHDR70 = 24        # compat/net/if.h, __align64
SIZEOF_RT_MSGHDR = 120          # rt_msghdr with struct rt_metrics __align64
_IF_MSGHDR = struct.Struct("<HBBiiH2x")                         # to ifm_data (16)
_IF_DATA_HEAD = struct.Struct("<BBBxiQQQ")                      # type .. baudrate
_IFA_MSGHDR = struct.Struct("<HBBH2xiiiii4x")
_IFA_MSGHDR70 = struct.Struct("<HBBiiiH6x")
_RT_MSGHDR = struct.Struct("<HBBH2xiiiiiii4x")                  # to rtm_rmx (40)
assert _IFA_MSGHDR.size == SIZEOF_IFA_MSGHDR and _IFA_MSGHDR70.size == SIZEOF_IFA_MSGHDR70


def rt_roundup(n: int) -> int:
    """RT_ROUNDUP: a sockaddr's room in a message (8-byte units, 8 for an empty one)."""
    return 8 if n <= 0 else (n + 7) & ~7


def sockaddr_dl(index: int, iftype: int, name: bytes, lladdr: bytes = b"") -> bytes:
    """sockaddr_dl_init: sdl_len is sockaddr_dl_measure(namelen, addrlen), no padding."""
    body = name + lladdr
    return struct.pack("<BBHBBBB", 8 + len(body), AF_LINK, index, iftype, len(name),
                       len(lladdr), 0) + body


def sockaddr_in(addr: bytes, length: int = 16) -> bytes:
    """struct sockaddr_in; a netmask the kernel made itself is trimmed to sin_len 8."""
    return struct.pack("<BBH4s8x", length, AF_INET, 0, addr)[:length]


def sockaddr_in6(addr: bytes) -> bytes:
    return struct.pack("<BBHI16sI", 28, AF_INET6, 0, 0, addr, 0)


EMPTY_SA = b""                  # a non-NULL sockaddr with sa_len 0 (ia_dstaddr unset)


class Ifaddr(ValueRecord):
    _fields = ("family", "addr", "netmask", "dstaddr", "flags", "addrflags")

    def __init__(self, family: int, addr: bytes, netmask: bytes | None, dstaddr: bytes | None,
                 flags: int = 0, addrflags: int = 0) -> None:
        self.family = family
        self.addr = addr                # ifa_addr
        self.netmask = netmask          # ifa_netmask
        self.dstaddr = dstaddr          # ifa_dstaddr (EMPTY_SA: present but zeroed)
        self.flags = flags              # ifa_flags
        self.addrflags = addrflags      # if_addrflags(): ia4_flags / ia6_flags


class Ifnet(ValueRecord):
    _fields = ("index", "name", "type", "flags", "mtu", "addrs")

    def __init__(self, index: int, name: str, type: int, flags: int, mtu: int,
                 addrs: list[Ifaddr] | None = None) -> None:
        self.index = index
        self.name = name
        self.type = type
        self.flags = flags
        self.mtu = mtu
        self.addrs = [] if addrs is None else addrs

    def sdl(self) -> bytes:
        """ifp->if_dl->ifa_addr."""
        return sockaddr_dl(self.index, self.type, self.name.encode())


def _lo0() -> Ifnet:
    lo = Ifnet(1, "lo0", IFT_LOOP, IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_MULTICAST, LOMTU)
    name = lo.name.encode()
    # if_alloc_sadl: the link address and its mask (sdl_len for the name only, family 0)
    mask = struct.pack("<B7x", 8 + len(name)) + b"\xff" * len(name)
    lo.addrs = [
        Ifaddr(AF_LINK, lo.sdl(), mask, None),
        # in6_update_ifa1: a loopback's ifa_dstaddr points at a zeroed ia_dstaddr
        Ifaddr(AF_INET6, sockaddr_in6(bytes(15) + b"\1"), sockaddr_in6(b"\xff" * 16), EMPTY_SA,
               IFA_ROUTE, IN6_IFF_NODAD),
        # in_control: ia_sockmask.sin_len 8 (ifconfig lo0 127.0.0.1 gives no mask); not
        # IFF_BROADCAST, so ia_broadaddr stays zero
        Ifaddr(AF_INET, sockaddr_in(bytes((127, 0, 0, 1))),
               sockaddr_in(bytes((255, 0, 0, 0)), 8), EMPTY_SA, IFA_ROUTE),
    ]
    return lo


def ifnet_list(k) -> list[Ifnet]:
    """The kernel's interfaces (IFNET_READER_FOREACH order), built on first use."""
    ifs = k.config.get("ifnet")
    if ifs is None:
        ifs = k.config["ifnet"] = [_lo0()]
    return ifs


def rt_msg2(header: bytes, hdrlen: int, info: dict[int, bytes]) -> tuple[bytes, int]:
    """A message: the header (msglen, version and type filled in by the caller's
    pack), then the sockaddrs of info in RTAX order; (bytes, rti_addrs)."""
    body = bytearray(header.ljust(hdrlen, b"\0"))
    addrs = 0
    for i in range(RTAX_MAX):
        sa = info.get(i)
        if sa is None:
            continue
        addrs |= 1 << i
        body += sa.ljust(rt_roundup(len(sa)), b"\0")
    return bytes(body), addrs


class _Walk:
    """struct rt_walkarg: the bytes produced and how many fit the caller's buffer."""

    def __init__(self, given: int, where: bool) -> None:
        self.given, self.where = given, where
        self.needed = 0
        self.out = bytearray()          # whole messages that fit (copied out at the end)

    def add(self, msg: bytes) -> None:
        self.needed += len(msg)
        if self.where and self.needed <= self.given:
            self.out += msg


def _set_len(msg: bytes) -> bytes:
    return struct.pack("<H", len(msg)) + msg[2:]


def _if_msg(ifp: Ifnet) -> bytes:
    """sysctl_iflist_if: struct if_msghdr with if_data, then RTAX_IFP."""
    msg, addrs = rt_msg2(b"", SIZEOF_IF_MSGHDR, {RTAX_IFP: ifp.sdl()})
    head = _IF_MSGHDR.pack(0, RTM_VERSION, RTM_IFINFO, addrs, ifp.flags, ifp.index)
    data = _IF_DATA_HEAD.pack(ifp.type, 0, 0, LINK_STATE_UNKNOWN, ifp.mtu, 0, 0)
    return _set_len(head + data + msg[len(head) + len(data):])


def _ifa_msg(ifp: Ifnet, ifa: Ifaddr, old: bool) -> bytes:
    """sysctl_iflist_addr / compat_70_iflist_addr: RTAX_NETMASK, RTAX_IFA, RTAX_BRD."""
    info = {RTAX_IFA: ifa.addr}
    if ifa.netmask is not None:
        info[RTAX_NETMASK] = ifa.netmask
    if ifa.dstaddr is not None:
        info[RTAX_BRD] = ifa.dstaddr
    hdrlen = SIZEOF_IFA_MSGHDR70 if old else SIZEOF_IFA_MSGHDR
    msg, addrs = rt_msg2(b"", hdrlen, info)
    if old:
        head = _IFA_MSGHDR70.pack(0, RTM_VERSION, RTM_ONEWADDR, addrs, ifa.flags, 0, ifp.index)
    else:
        head = _IFA_MSGHDR.pack(0, RTM_VERSION, RTM_NEWADDR, ifp.index, ifa.flags, addrs, 0,
                                ifa.addrflags, 0)
    return _set_len(head + msg[hdrlen:])


def sysctl_iflist(ifs: list[Ifnet], af: int, w: _Walk, op: int, ifindex: int) -> int:
    if op not in (NET_RT_IFLIST, NET_RT_OIFLIST):
        # RTM_OOIFINFO / RTM_OIFINFO: rt_getlen finds no compat_14/compat_50 hook
        return Errno.EINVAL if any(not ifindex or ifp.index == ifindex for ifp in ifs) else 0
    for ifp in ifs:
        if ifindex and ifindex != ifp.index:
            continue
        if not ifp.addrs:
            continue
        w.add(_if_msg(ifp))
        for ifa in ifp.addrs:
            if af and af != ifa.family:
                continue
            w.add(_ifa_msg(ifp, ifa, op == NET_RT_OIFLIST))
    return 0


def _routes(ifs: list[Ifnet]) -> list[tuple[int, int, bytes, Ifnet, Ifaddr]]:
    """The routing table: (family, rt_flags, key, ifp, ifa) - each address's local route."""
    out = []
    for ifp in ifs:
        for ifa in ifp.addrs:
            if ifa.family in (AF_INET, AF_INET6):
                out.append((ifa.family, RTF_UP | RTF_HOST | RTF_LOCAL, ifa.addr, ifp, ifa))
    return out


def sysctl_dumpentry(ifs: list[Ifnet], af: int, w: _Walk, op: int, arg: int) -> int:
    if op == NET_RT_FLAGS and (arg == 0 or arg & RTF_LLDATA):
        return 0 if af else Errno.EINVAL        # lltable_sysctl_dump: no entries
    for fam, flags, key, ifp, ifa in sorted(_routes(ifs), key=lambda r: r[0]):
        if af and af != fam:
            continue
        if op == NET_RT_FLAGS and not flags & arg:
            continue
        msg, addrs = rt_msg2(b"", SIZEOF_RT_MSGHDR, {
            RTAX_DST: key, RTAX_GATEWAY: ifp.sdl(), RTAX_IFP: ifp.sdl(), RTAX_IFA: ifa.addr})
        head = _RT_MSGHDR.pack(0, RTM_VERSION, RTM_GET, ifp.index, flags, addrs, 0, 0, 0, 0, 0)
        w.add(_set_len(head + msg[len(head):]))
    return 0


def sysctl_rtable(k, name: list[int], has_old: bool, given: int,
                  has_new: bool) -> tuple[int, bytes, int]:
    """net.route.rtable.<af>.<op>.<arg>: (error, bytes to copy out, new *oldlenp).
    CTL_QUERY is answered by the caller (kern_sysctl), as sysctl_rtable hands it on."""
    if has_new:
        return Errno.EPERM, b"", given
    if len(name) != 3:
        return Errno.EINVAL, b"", given
    af, op, arg = name[0] & 0xFF, name[1], name[2]
    w = _Walk(given, has_old)
    ifs = ifnet_list(k)
    if op in (NET_RT_DUMP, NET_RT_FLAGS):
        error = sysctl_dumpentry(ifs, af, w, op, arg)
    elif op in (NET_RT_OOOIFLIST, NET_RT_OOIFLIST, NET_RT_OIFLIST, NET_RT_IFLIST):
        error = sysctl_iflist(ifs, af, w, op, arg)
    else:
        error = Errno.EINVAL
    if has_old:
        out = bytes(w.out)
        if len(out) < w.needed:
            error = Errno.ENOMEM
        return error, out, len(out)
    return error, b"", 11 * w.needed // 10
