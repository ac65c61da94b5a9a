"""The routing sysctl net.route.rtable (rtsock.py): NET_RT_IFLIST / NET_RT_OIFLIST
messages, NET_RT_DUMP, sizes, ENOMEM, filters and bad names, through __sysctl."""
from __future__ import annotations

import struct

import pytest

from nbemu.syscalls.errno import Errno
from nbemu.syscalls.rtsock import (AF_INET, AF_INET6, AF_LINK, NET_RT_DUMP, NET_RT_FLAGS,
                                   NET_RT_IFLIST, NET_RT_OIFLIST, NET_RT_OOIFLIST, RTF_LOCAL,
                                   RTM_GET, RTM_IFINFO, RTM_NEWADDR, RTM_ONEWADDR, RTM_VERSION,
                                   ifnet_list, rt_roundup)
from tests.test_sysctl import Guest, g  # noqa: F401  (fixture)

CTL_NET, PF_ROUTE, CTL_QUERY = 4, 34, -2


def rib(op: int, af: int = 0, arg: int = 0) -> list[int]:
    return [CTL_NET, PF_ROUTE, 0, af, op, arg]


def messages(data: bytes) -> list[tuple[int, int, bytes]]:
    """(version, type, whole message) for each message."""
    out, off = [], 0
    while off < len(data):
        n, ver, typ = struct.unpack_from("<HBB", data, off)
        assert n and off + n <= len(data) and n % 8 == 0
        out.append((ver, typ, data[off:off + n]))
        off += n
    return out


def sockaddrs(addrs: int, body: bytes) -> dict[int, bytes]:
    out, off = {}, 0
    for i in range(9):
        if addrs & (1 << i):
            sl = body[off]
            out[i] = body[off:off + sl]
            off += rt_roundup(sl)
    assert off == len(body)
    return out


def test_iflist_lo0(g: Guest) -> None:  # noqa: F811
    err, size, _ = g.sysctl(rib(NET_RT_IFLIST), want_old=False)
    assert err == 0
    err, n, data = g.sysctl(rib(NET_RT_IFLIST), oldlen=size)
    assert err == 0 and n * 11 // 10 == size
    ms = messages(data)
    assert [m[:2] for m in ms] == [(RTM_VERSION, RTM_IFINFO)] + [(RTM_VERSION, RTM_NEWADDR)] * 3
    ifm = ms[0][2]
    _, _, _, addrs, flags, index = struct.unpack_from("<HBBiiH", ifm)
    assert (addrs, flags, index) == (0x10, 0x8049, 1)
    assert struct.unpack_from("<Q", ifm, 24)[0] == 33624          # ifi_mtu
    sdl = sockaddrs(addrs, ifm[152:])[4]
    assert sdl[1] == AF_LINK and sdl[8:8 + sdl[5]] == b"lo0"
    fams = []
    for _, _, m in ms[1:]:
        _, _, _, index, _, addrs, pid, _, _ = struct.unpack_from("<HBBH2xiiiii", m)
        assert index == 1 and pid == 0
        sas = sockaddrs(addrs, m[32:])
        fams.append(sas[5][1])
    assert fams == [AF_LINK, AF_INET6, AF_INET]
    inet = sockaddrs(struct.unpack_from("<i", ms[3][2], 12)[0], ms[3][2][32:])
    assert inet[5][4:8] == bytes((127, 0, 0, 1)) and inet[2][4:8] == bytes((255, 0, 0, 0))


def test_oiflist_is_the_pre_8_layout(g: Guest) -> None:  # noqa: F811
    """NET_RT_OIFLIST (Go's NET_RT_IFLIST): struct ifa_msghdr70, RTM_ONEWADDR."""
    err, n, data = g.sysctl(rib(NET_RT_OIFLIST, AF_INET))
    assert err == 0
    ms = messages(data)
    assert [m[1] for m in ms] == [RTM_IFINFO, RTM_ONEWADDR]
    m = ms[1][2]
    _, _, _, addrs, flags, metric, index = struct.unpack_from("<HBBiiiH", m)
    assert index == 1 and addrs == 0x4 | 0x20 | 0x80
    assert sockaddrs(addrs, m[24:])[5][4:8] == bytes((127, 0, 0, 1))


def test_af_and_ifindex_filters(g: Guest) -> None:  # noqa: F811
    _, _, data = g.sysctl(rib(NET_RT_IFLIST, AF_INET6))
    assert [m[1] for m in messages(data)] == [RTM_IFINFO, RTM_NEWADDR]
    _, _, data = g.sysctl(rib(NET_RT_IFLIST, 0, 1))
    assert len(messages(data)) == 4
    err, n, data = g.sysctl(rib(NET_RT_IFLIST, 0, 7))      # no such interface: nothing
    assert (err, n) == (0, 0)
    err, size, _ = g.sysctl(rib(NET_RT_IFLIST, 0, 7), want_old=False)
    assert (err, size) == (0, 0)


def test_short_buffer_whole_messages_and_enomem(g: Guest) -> None:  # noqa: F811
    _, full, data = g.sysctl(rib(NET_RT_IFLIST))
    first = struct.unpack_from("<H", data)[0]
    err, n, part = g.sysctl(rib(NET_RT_IFLIST), oldlen=full - 1)
    assert err == Errno.ENOMEM
    assert n < full and part == data[:n] and len(messages(part)) == 3
    err, n, _ = g.sysctl(rib(NET_RT_IFLIST), oldlen=first - 1)
    assert (err, n) == (Errno.ENOMEM, 0)


def test_dump_local_routes(g: Guest) -> None:  # noqa: F811
    err, _, data = g.sysctl(rib(NET_RT_DUMP))
    assert err == 0
    ms = messages(data)
    assert [m[1] for m in ms] == [RTM_GET, RTM_GET]
    fams = []
    for _, _, m in ms:
        _, _, _, index, flags, addrs = struct.unpack_from("<HBBH2xii", m)
        assert index == 1 and flags & RTF_LOCAL
        fams.append(sockaddrs(addrs, m[120:])[0][1])
    assert fams == [AF_INET, AF_INET6]
    _, _, data = g.sysctl(rib(NET_RT_DUMP, AF_INET6))
    assert len(messages(data)) == 1
    assert g.sysctl(rib(NET_RT_FLAGS, 0, 0))[0] == Errno.EINVAL   # lltable needs an af
    assert g.sysctl(rib(NET_RT_FLAGS, AF_INET, 0))[:2] == (0, 0)


@pytest.mark.parametrize("mib,error", [
    ([CTL_NET, PF_ROUTE, 0, 0, NET_RT_IFLIST], Errno.EINVAL),     # two components
    (rib(99), Errno.EINVAL),
    (rib(NET_RT_OOIFLIST), Errno.EINVAL),                         # no compat_50 hook
    ([CTL_NET, PF_ROUTE, 1], Errno.ENOENT),
])
def test_bad_names(g: Guest, mib, error) -> None:  # noqa: F811
    assert g.sysctl(mib)[0] == error


def test_write_is_eperm(g: Guest) -> None:  # noqa: F811
    assert g.sysctl(rib(NET_RT_IFLIST), new=b"\0" * 4)[0] == Errno.EPERM


def test_bad_buffer_is_efault(g: Guest) -> None:  # noqa: F811
    name = g.write(0, struct.pack("<6i", *rib(NET_RT_IFLIST)))
    oldlenp = g.write(0x100, struct.pack("<Q", 4096))
    from tests.khelp import call
    err, _ = call(g.l, "__sysctl", name, 6, 0x10, oldlenp, 0, 0)
    assert err == Errno.EFAULT


def test_query_lists_rtable_and_stats(g: Guest) -> None:  # noqa: F811
    from tests.test_sysctl import parse_nodes, qnode
    err, n, data = g.sysctl([CTL_NET, PF_ROUTE, CTL_QUERY], new=qnode())
    assert err == 0
    assert [x["name"] for x in parse_nodes(data[:n])] == ["rtable", "stats"]


def test_one_interface_list_per_kernel(g: Guest) -> None:  # noqa: F811
    assert ifnet_list(g.k) is ifnet_list(g.k)
    assert [i.name for i in ifnet_list(g.k)] == ["lo0"]
