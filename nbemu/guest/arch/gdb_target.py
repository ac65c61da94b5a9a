"""GDB target descriptions (target.xml) of the four ports, from one description.

Each port lists its features and registers below; the XML is written from
that list. The order of the <reg> elements IS gdb's register numbering and the
order of a 'g' packet (emu/gdb_regs.py maps each name to where it lives).
x86's two ports share their flag and vector types, the x87 and SSE registers;
what differs is the general registers, the number of xmm registers and the
width of the segment bases.
"""
from __future__ import annotations

# A register: (name, bitsize, type or None, group or None)
Reg = tuple[str, int, "str | None", "str | None"]


def _flags(fid: str, size: int, fields: list[tuple]) -> str:
    """fields: (name, bit) or (name, first bit, last bit)."""
    body = "".join(f'      <field name="{f[0]}" start="{f[1]}" end="{f[-1]}"/>\n' for f in fields)
    return f'    <flags id="{fid}" size="{size}">\n{body}    </flags>\n'


def _vectors(vecs: list[tuple[str, str, int]]) -> str:
    return "".join(f'    <vector id="{i}" type="{t}" count="{c}"/>\n' for i, t, c in vecs)


def _union(uid: str, fields: list[tuple[str, str]]) -> str:
    body = "".join(f'      <field name="{n}" type="{t}"/>\n' for n, t in fields)
    return f'    <union id="{uid}">\n{body}    </union>\n'


def _regs(regs: list[Reg]) -> str:
    out = []
    for name, bits, typ, group in regs:
        attrs = f'name="{name}" bitsize="{bits}"'
        if typ is not None:
            attrs += f' type="{typ}"'
        if group is not None:
            attrs += f' group="{group}"'
        out.append(f"    <reg {attrs}/>\n")
    return "".join(out)


def _target(architecture: str, features: list[tuple[str, str, list[Reg]]]) -> bytes:
    """features: (name, the type definitions it opens with, its registers)."""
    body = "".join(f'  <feature name="{name}">\n{types}{_regs(regs)}  </feature>\n'
                   for name, types, regs in features)
    return (f'<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n'
            f'<target version="1.0">\n  <architecture>{architecture}</architecture>\n'
            f"{body}</target>\n").encode()


# -- x86 (amd64, i386) -----------------------------------------------------------------
_EFLAGS = _flags("i386_eflags", 4, [
    ("CF", 0), ("", 1), ("PF", 2), ("AF", 4), ("ZF", 6), ("SF", 7), ("TF", 8), ("IF", 9),
    ("DF", 10), ("OF", 11), ("NT", 14), ("RF", 16), ("VM", 17), ("AC", 18), ("VIF", 19),
    ("VIP", 20), ("ID", 21)])
_MXCSR = _flags("i386_mxcsr", 4, [
    ("IE", 0), ("DE", 1), ("ZE", 2), ("OE", 3), ("UE", 4), ("PE", 5), ("DAZ", 6), ("IM", 7),
    ("DM", 8), ("ZM", 9), ("OM", 10), ("UM", 11), ("PM", 12), ("FZ", 15)])
_VEC128 = _vectors([("v4f", "ieee_single", 4), ("v2d", "ieee_double", 2), ("v16i8", "int8", 16),
                    ("v8i16", "int16", 8), ("v4i32", "int32", 4), ("v2i64", "int64", 2)]) + \
    _union("vec128", [("v4_float", "v4f"), ("v2_double", "v2d"), ("v16_int8", "v16i8"),
                      ("v8_int16", "v8i16"), ("v4_int32", "v4i32"), ("v2_int64", "v2i64"),
                      ("uint128", "uint128")])
# gdb requires every register of the core feature, x87 included.
_SEGS: list[Reg] = [(n, 32, "int32", None) for n in ("cs", "ss", "ds", "es", "fs", "gs")]
_X87: list[Reg] = ([(f"st{i}", 80, "i387_ext", None) for i in range(8)]
                   + [(n, 32, "int", "float") for n in ("fctrl", "fstat", "ftag", "fiseg",
                                                       "fioff", "foseg", "fooff", "fop")])


def _x86(architecture: str, gprs: list[Reg], nxmm: int, base_bits: int) -> bytes:
    xmm: list[Reg] = [(f"xmm{i}", 128, "vec128", None) for i in range(nxmm)]
    return _target(architecture, [
        ("org.gnu.gdb.i386.core", _EFLAGS, gprs + _SEGS + _X87),
        ("org.gnu.gdb.i386.sse", _VEC128 + _MXCSR,
         xmm + [("mxcsr", 32, "i386_mxcsr", "vector")]),
        # NetBSD's TLS base: %fs on amd64, %gs on i386
        ("org.gnu.gdb.i386.segments", "",
         [("fs_base", base_bits, "int", None), ("gs_base", base_bits, "int", None)]),
    ])


def _amd64() -> bytes:
    ptr = {"rbp": "data_ptr", "rsp": "data_ptr"}
    gprs: list[Reg] = [(n, 64, ptr.get(n, "int64"), None) for n in (
        "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15".split())]
    gprs += [("rip", 64, "code_ptr", None), ("eflags", 32, "i386_eflags", None)]
    return _x86("i386:x86-64", gprs, 16, 64)


def _i386() -> bytes:
    """gdb's order of the eight GPRs: eax ecx edx ebx esp ebp esi edi."""
    ptr = {"esp": "data_ptr", "ebp": "data_ptr"}
    gprs: list[Reg] = [(n, 32, ptr.get(n, "int32"), None)
                       for n in "eax ecx edx ebx esp ebp esi edi".split()]
    gprs += [("eip", 32, "code_ptr", None), ("eflags", 32, "i386_eflags", None)]
    return _x86("i386", gprs, 8, 32)


# -- aarch64 ---------------------------------------------------------------------------
def _aarch64() -> bytes:
    """The core feature (x0-x30, sp, pc, cpsr), the fpu feature (v0-v31, fpsr,
    fpcr), the tls feature (tpidr: TPIDR_EL0, NetBSD's TLS base)."""
    cpsr = _flags("cpsr_flags", 4, [("SP", 0), ("EL", 2, 3), ("nRW", 4), ("F", 6), ("I", 7),
                                    ("A", 8), ("D", 9), ("V", 28), ("C", 29), ("Z", 30),
                                    ("N", 31)])
    vtypes = _vectors([("v2d", "ieee_double", 2), ("v2u", "uint64", 2), ("v4f", "ieee_single", 4),
                       ("v4u", "uint32", 4), ("v8u", "uint16", 8), ("v16u", "uint8", 16)]) + \
        _union("aarch64v", [("d", "v2d"), ("u2", "v2u"), ("s", "v4f"), ("u4", "v4u"),
                            ("h", "v8u"), ("b", "v16u"), ("q", "uint128")])
    core: list[Reg] = [(f"x{i}", 64, "int", None) for i in range(31)]
    core += [("sp", 64, "data_ptr", None), ("pc", 64, "code_ptr", None),
             ("cpsr", 32, "cpsr_flags", None)]
    fpu: list[Reg] = [(f"v{i}", 128, "aarch64v", None) for i in range(32)]
    fpu += [("fpsr", 32, "int", None), ("fpcr", 32, "int", None)]
    return _target("aarch64", [("org.gnu.gdb.aarch64.core", cpsr, core),
                               ("org.gnu.gdb.aarch64.fpu", vtypes, fpu),
                               ("org.gnu.gdb.aarch64.tls", "", [("tpidr", 64, "data_ptr", None)])])


# -- arm (earmv7hf) --------------------------------------------------------------------
def _arm() -> bytes:
    """The core feature (r0-r12, sp, lr, pc, cpsr), VFPv3 (d0-d31, fpscr), the
    tls feature (tpidruro: TPIDRURO, NetBSD's TLS base)."""
    core: list[Reg] = [(f"r{i}", 32, "uint32", None) for i in range(13)]
    core += [("sp", 32, "data_ptr", None), ("lr", 32, None, None), ("pc", 32, "code_ptr", None),
             ("cpsr", 32, None, None)]
    vfp: list[Reg] = [(f"d{i}", 64, "ieee_double", None) for i in range(32)]
    vfp += [("fpscr", 32, "int", "float")]
    return _target("arm", [("org.gnu.gdb.arm.core", "", core), ("org.gnu.gdb.arm.vfp", "", vfp),
                           ("org.gnu.gdb.arm.tls", "", [("tpidruro", 32, "data_ptr", None)])])


_TARGETS = {"amd64": _amd64, "i386": _i386, "aarch64": _aarch64, "earmv7hf": _arm}


def target_xml(arch: str) -> bytes | None:
    """The target.xml of a port (Abi.gdb_arch-style name), None for another."""
    gen = _TARGETS.get(arch)
    return gen() if gen is not None else None
