"""The routing sysctl in real guests: fixtures/c/rtsock_iflist.c (NET_RT_IFLIST through
raw __sysctl: message types, versions, lengths, filters, ENOMEM, errnos) and the Go
netifaces fixture (net.Interfaces / Interface.Addrs / InterfaceAddrs), both compared with
the interface list of the kernel model (rtsock.ifnet_list)."""
from __future__ import annotations

import ipaddress

import pytest

from fixtures.build import build_c, build_go
from fixtures.expected import GO_OUTPUT
from nbemu.syscalls.rtsock import (AF_INET, AF_INET6, IFF_LOOPBACK, IFF_MULTICAST, IFF_RUNNING,
                                   IFF_UP, Ifaddr, ifnet_list)
from tests.guest import ARCHES, run_nbemu
from tests.khelp import make_kernel

_GO_FLAGS = [(IFF_UP, "up"), (0x2, "broadcast"), (IFF_LOOPBACK, "loopback"),
             (0x10, "pointtopoint"), (IFF_MULTICAST, "multicast"), (IFF_RUNNING, "running")]


def _ip(ifa: Ifaddr) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if ifa.family == AF_INET:
        return ipaddress.IPv4Address(ifa.addr[4:8])
    return ipaddress.IPv6Address(ifa.addr[8:24])


def _prefix(ifa: Ifaddr) -> int:
    assert ifa.netmask is not None
    raw = ifa.netmask[4:8] if ifa.family == AF_INET else ifa.netmask[8:24]
    return sum(bin(b).count("1") for b in raw)


def _model():
    k, _ = make_kernel(deterministic=True)
    return ifnet_list(k)


def go_expected() -> str:
    lines, every = [], []
    for ifp in _model():
        flags = "|".join(n for bit, n in _GO_FLAGS if ifp.flags & bit)
        lines.append(f'if {ifp.index} {ifp.name} mtu={ifp.mtu} flags={flags} hw=""')
        for ifa in ifp.addrs:
            if ifa.family in (AF_INET, AF_INET6):
                lines.append(f"addr {ifp.name} {_ip(ifa)}/{_prefix(ifa)}")
                every.append(f"any {_ip(ifa)}/{_prefix(ifa)}")
    return "\n".join(lines + every) + "\n" + GO_OUTPUT["netifaces"]


def c_expected() -> list[str]:
    out = []
    for ifp in _model():
        out.append(f"if {ifp.name} index {ifp.index} flags 0x{ifp.flags:x} mtu {ifp.mtu}")
        for ifa in ifp.addrs:
            if ifa.family == AF_INET:
                a = str(_ip(ifa))
            elif ifa.family == AF_INET6:
                a = ":".join(f"{int.from_bytes(ifa.addr[8 + i:10 + i], 'big'):x}"
                             for i in range(0, 16, 2))
            else:
                a = "link"
            out.append(f"addr {ifp.name} {ifp.index} {ifa.family} {a}")
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_c_iflist(arch: str) -> None:
    r = run_nbemu(build_c("rtsock_iflist", arch))
    assert "Traceback" not in r.stderr, r.stderr
    assert "FAIL" not in r.stdout, r.stdout
    assert r.returncode == 0 and r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)
    shown = [x for x in r.stdout.splitlines() if x.startswith(("if ", "addr "))]
    assert shown == c_expected()


@pytest.mark.parametrize("goarch,opts", [("amd64", ()), ("386", ()),
                                         ("amd64", ("--deterministic", "--seed", "2"))])
def test_go_interfaces(goarch: str, opts: tuple[str, ...]) -> None:
    r = run_nbemu(build_go("netifaces", "netbsd", goarch), "-v", opts=opts)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout == go_expected()


@pytest.mark.parametrize("goarch", ["amd64", "arm"])
def test_go_summary_matches_linux(goarch: str) -> None:
    """Without -v the fixture prints what holds on any machine with a loopback: the
    same as the linux/amd64 build run natively."""
    import subprocess
    native = subprocess.run([str(build_go("netifaces", "linux", "amd64"))], capture_output=True,
                            text=True, timeout=120)
    assert native.returncode == 0, native.stderr
    r = run_nbemu(build_go("netifaces", "netbsd", goarch))
    assert r.returncode == 0, r.stderr
    assert r.stdout == native.stdout == GO_OUTPUT["netifaces"]
