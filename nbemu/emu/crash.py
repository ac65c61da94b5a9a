"""Reports for a guest that died of a fault or deadlocked: the LWP table,
the faulting LWP's registers, capstone disassembly at its PC, and the last
system calls of each LWP."""
from __future__ import annotations

from typing import TextIO

from nbemu.syscalls.lwp import LSSLEEP, Lwp, lwp_flag_names


def _lwp_line(l: Lwp) -> str:
    cpu = l.l_cpu.ci_index if l.l_cpu is not None else "-"
    name = (l.l_name or b"").decode("latin-1")
    what = ""
    if l.l_stat == LSSLEEP:
        what = f" waiting on {l.l_wmesg}"
        if l.l_wmesg == "parked":
            what += f" (hint {l.l_park_hint:#x})"
        elif l.l_waitingfor:
            what += f" (lid {l.l_waitingfor})"
    recent = ", ".join(l.l_recent[-3:])
    return (f"  lid {l.l_lid:<6} {l.l_stat.name:<12} cpu {cpu:<3} {name:<16}{what}"
            + (f"  last: {recent}" if recent else ""))


def lwp_table(s, out: TextIO, p=None) -> None:
    p = p or s.kernel.proc
    print(f"LWPs of pid {p.p_pid}:", file=out)
    for l in sorted(p.p_lwps.values(), key=lambda x: x.l_lid):
        print(_lwp_line(l), file=out)


def disassemble(s, pc: int, n: int = 6, vm=None) -> list[str]:
    import capstone
    abi = s.machine.abi
    vm = vm or s.kernel.proc.p_vmspace
    code = vm.copyin(pc, 16 * n)
    if isinstance(code, int):
        return [f"  {pc:#x}: <unreadable>"]
    try:
        md = capstone.Cs(*abi.capstone_arch_mode())
    except (AttributeError, capstone.CsError):
        return []
    out = []
    for ins in md.disasm(code, pc):
        out.append(f"  {'=>' if ins.address == pc else '  '} {ins.address:#x}: {ins.mnemonic} {ins.op_str}")
        if len(out) >= n:
            break
    return out


def crash_report(s, out: TextIO) -> None:
    m = s.machine
    f = m.last_fault
    l = m.last_fault_lwp
    p = l.l_proc
    who = f"lid {l.l_lid}" if p is s.kernel.proc else f"pid {p.p_pid} lid {l.l_lid}"
    print(f"nbemu: crash: {who}: {f.what}", file=out)
    if l.l_md is not None or l is m.loaded:
        names = [n for n, _ in m.abi.report_regs]
        vals = m.regs_get(l, [r for _, r in m.abi.report_regs])
        regs = dict(zip(names, vals))
        for i in range(0, len(names), 4):
            print("  " + "  ".join(f"{n:>7}={regs[n]:#018x}" for n in names[i:i + 4]), file=out)
        pc = m.regs_get(l, (m.abi.pc_reg,))[0]
        for line in disassemble(s, pc, vm=p.p_vmspace):
            print(line, file=out)
    lwp_table(s, out, p)


def deadlock_report(s, out: TextIO) -> None:
    """The wait-for report printed when every LWP is blocked forever (exit 125):
    what each LWP waits on, the wait-for chains and cycles, then each LWP's last
    system calls and backtrace."""
    print("nbemu: deadlock: every LWP is blocked and no timeout is pending "
          "(exit status 125)", file=out)
    for line in wait_for_report(s):
        print(line, file=out)


def internal_error_report(s, err, out: TextIO) -> None:
    """A Python exception escaped the kernel: show it with the guest's state."""
    import traceback
    from nbemu.syscalls.table import name_of
    l = err.lwp
    code = -1
    if err.vals:
        try:
            code = s.machine.abi.decode_syscall(list(err.vals))[0]
        except Exception:                      # (a report must not fail)
            pass
    print(f"nbemu: internal error (a bug in nbemu, not in the guest) while serving "
          f"{name_of(code)} for lid {l.l_lid}:", file=out)
    traceback.print_exception(err.exc, file=out)
    m = s.machine
    if l is m.loaded or l.l_md is not None:
        pc = m.regs_get(l, (m.abi.pc_reg,))[0]
        for line in disassemble(s, pc):
            print(line, file=out)
    lwp_table(s, out)


# -- symbols, backtraces and the wait-for report ------------------------------------------
_IMAGE_CACHE: dict[tuple[type, int], tuple[object, object]] = {}   # (kind, id(image)) -> (image, it)
_IMAGE_CACHE_MAX = 16


def _per_image(cls, img):
    """cls(img.data), made once per program image (a fork shares its parent's)."""
    key = (cls, id(img))
    hit = _IMAGE_CACHE.get(key)
    if hit is not None and hit[0] is img:
        return hit[1]
    it = cls(img.data if img is not None else None)
    if len(_IMAGE_CACHE) >= _IMAGE_CACHE_MAX:
        _IMAGE_CACHE.pop(next(iter(_IMAGE_CACHE)))
    _IMAGE_CACHE[key] = (img, it)          # (holding img keeps its id unique)
    return it


class Symbols:
    """The program's ELF symbols (functions and data objects), for naming addresses:
    `Symbols.of(session).name(0x401234)` -> "worker+0x14" (None far from any)."""

    NEAR = 0x1000          # a sizeless symbol names addresses up to this far after it

    def __init__(self, data: bytes | None) -> None:
        self._addrs: list[int] = []
        self._syms: list[tuple[int, int, str]] = []
        self._by_name: dict[str, int] = {}
        if not data:
            return
        import io
        try:
            from elftools.elf.elffile import ELFFile
            elf = ELFFile(io.BytesIO(data))
            tab = elf.get_section_by_name(".symtab")
            if tab is None:
                return
            syms = []
            for sym in tab.iter_symbols():
                if sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT") and sym["st_value"] \
                        and sym.name:
                    syms.append((sym["st_value"], sym["st_size"], sym.name))
                    self._by_name.setdefault(sym.name, sym["st_value"])
        except Exception:          # a damaged symbol table only costs us names
            return
        syms.sort()
        self._syms = syms
        self._addrs = [a for a, _, _ in syms]

    @classmethod
    def of(cls, s, p=None) -> "Symbols":
        """The (cached) symbols of the program process p runs (default: the first
        process's): after an exec, the new program's."""
        return _per_image(cls, (p or s.kernel.proc).p_textvp)

    def name(self, addr: int) -> str | None:
        import bisect
        i = bisect.bisect_right(self._addrs, addr) - 1
        # Among symbols at the same address prefer one whose size covers addr.
        while i >= 0:
            a, size, nm = self._syms[i]
            off = addr - a
            if (size and off < size) or (not size and off < self.NEAR):
                return nm if off == 0 else f"{nm}+{off:#x}"
            if i > 0 and self._syms[i - 1][0] == a:
                i -= 1
                continue
            return None
        return None

    def address(self, name: str) -> int | None:
        return self._by_name.get(name)

    def describe(self, addr: int) -> str:
        """`0x601040 <flag+0x8>` or `0x601040`."""
        nm = self.name(addr)
        return f"{addr:#x} <{nm}>" if nm else f"{addr:#x}"


class Unwinder:
    """Call frame information (.eh_frame or .debug_frame) of the program, for
    backtraces of LWPs that are not running."""

    def __init__(self, data: bytes | None) -> None:
        self._fdes: list = []
        self._starts: list[int] = []
        self._rows: dict[int, list] = {}
        if not data:
            return
        import io
        try:
            from elftools.dwarf.callframe import FDE
            from elftools.elf.elffile import ELFFile
            elf = ELFFile(io.BytesIO(data))
            if not elf.has_dwarf_info():
                return
            dw = elf.get_dwarf_info()
            ents = dw.EH_CFI_entries() if dw.has_EH_CFI() else (
                dw.CFI_entries() if dw.has_CFI() else [])
            fdes = [e for e in ents if isinstance(e, FDE)]
        except Exception:
            return
        fdes.sort(key=lambda e: e.header["initial_location"])
        self._fdes = fdes
        # The return address column (the CIE's; one CIE per program here).
        self.ra_column = fdes[0].cie.header["return_address_register"] if fdes else None
        self._starts = [e.header["initial_location"] for e in fdes]

    @classmethod
    def of(cls, s, p=None) -> "Unwinder":
        """The (cached) CFI of the program process p runs (default: the first's)."""
        return _per_image(cls, (p or s.kernel.proc).p_textvp)

    def row(self, pc: int):
        """(CFA rule, register rules) in force at pc, or None without CFI there."""
        import bisect
        i = bisect.bisect_right(self._starts, pc) - 1
        if i < 0:
            return None
        fde = self._fdes[i]
        start = fde.header["initial_location"]
        if pc >= start + fde.header["address_range"]:
            return None
        rows = self._rows.get(i)
        if rows is None:
            try:
                rows = self._rows[i] = fde.get_decoded().table
            except Exception:
                rows = self._rows[i] = []
        best = None
        for r in rows:
            if r["pc"] <= pc:
                best = r
            else:
                break
        return best


def backtrace(s, l: Lwp, max_frames: int = 24) -> list[tuple[int, str]]:
    """Return addresses of l's call stack, innermost first, from its saved
    registers: CFI where the program has it, else the frame-pointer chain.
    Each entry is (pc, how) with how "cfi", "fp" or "pc" (frame 0)."""
    m = s.machine
    abi = m.abi
    names = abi.frame_regs               # (pc, sp, frame pointer): guest/arch/<port>.py
    if l.l_md is None and l is not m.loaded:
        return []
    ids = dict(abi.report_regs)
    if not all(n in ids for n in names):
        return []
    dwarf = abi.dwarf_regs
    track = [n for n in dwarf.values() if n in ids]
    track += [n for n in names if n not in track]
    regs = dict(zip(track, m.regs_get(l, [ids[n] for n in track])))
    pcn, spn, fpn = names
    vm = l.l_proc.p_vmspace
    ws = abi.word_size
    ra_on_stack = abi.ra_on_stack

    def word(addr: int) -> int | None:
        b = vm.copyin(addr, ws)
        return None if isinstance(b, int) else int.from_bytes(b, "little")

    unw = Unwinder.of(s, l.l_proc) if dwarf else None
    ra_col = unw.ra_column if unw is not None else None
    frames = [(regs[pcn], "pc")]
    pc = regs[pcn]
    for depth in range(max_frames):
        row = unw.row(pc if depth == 0 else pc - 1) if unw is not None else None
        nxt = None
        if row is not None and row.get("cfa") is not None and row["cfa"].reg is not None:
            cfa_reg = dwarf.get(row["cfa"].reg)
            if cfa_reg in regs:
                cfa = regs[cfa_reg] + row["cfa"].offset
                new = dict(regs)
                ok = True
                for regno, rule in row.items():
                    if not isinstance(regno, int) or regno not in dwarf:
                        continue
                    if rule.type == "OFFSET":
                        v = word(cfa + rule.arg)
                        if v is None:
                            ok = False
                            break
                        new[dwarf[regno]] = v
                    elif rule.type == "VAL_OFFSET":
                        new[dwarf[regno]] = cfa + rule.arg
                if ra_col in row and row[ra_col].type == "UNDEFINED":
                    break              # the outermost frame (_start)
                if ra_col in row:
                    ra = new.get(dwarf.get(ra_col, ""))
                elif ra_on_stack:
                    ra = word(cfa - ws)
                else:                  # a leaf: the return address is still in lr
                    ra = regs.get(dwarf.get(ra_col, ""))
                if ok and ra:
                    new[spn] = cfa
                    new[pcn] = abi.return_pc(ra)
                    nxt = (new, "cfi")
        if nxt is None:
            fp = regs.get(fpn, 0)
            sp = regs.get(spn, 0)
            if not fp or fp < sp or fp % ws:
                break
            ra, prev = word(fp + ws), word(fp)
            if not ra or prev is None:
                break
            new = dict(regs)
            new[fpn], new[spn], new[pcn] = prev, fp + 2 * ws, ra
            nxt = (new, "fp")
        new, how = nxt
        if new[spn] < regs[spn] or (new[spn] == regs[spn]
                                    and (ra_on_stack or depth > 0 or new[pcn] == regs[pcn])):
            break                      # a caller's frame is always above its callee's
            # (only a leaf, frame 0 of a link-register port, may have none)
        regs = new
        pc = regs[pcn]
        if pc < 0x1000:
            break
        frames.append((pc, how))
    return frames


def _lwp_label(l: Lwp) -> str:
    name = (l.l_name or b"").decode("latin-1")
    return f'lid {l.l_lid}' + (f' "{name}"' if name else "")


def waits_on(s, l: Lwp) -> tuple[str, list[int]]:
    """What l waits for, in words, and the lids it waits for (wait-for edges)."""
    from nbemu.syscalls.lwp import LSSUSPENDED, LSZOMB
    from nbemu.syscalls.table import name_of
    p = l.l_proc
    if l.l_stat == LSZOMB:
        return "zombie: exited, not yet collected by _lwp_wait", []
    if l.l_stat == LSSUSPENDED:
        return "suspended (_lwp_suspend): waits for an _lwp_continue", []
    if l.l_stat.name == "LSSTOP":
        return "stopped by a signal: waits for SIGCONT", []
    if l.l_stat != LSSLEEP:
        return l.l_stat.name, []
    call = name_of(l.l_syscode) if l.l_kstack is not None else "?"
    if l.l_wmesg == "parked":
        hint = l.l_park_hint
        what = Symbols.of(s, l.l_proc).describe(hint) if hint else "none"
        return f"parked in {call}, hint {what}: waits for an _lwp_unpark", []
    if l.l_wmesg == "lwpwait":
        lid = l.l_waitingfor
        if lid:
            t = p.lwp_find(lid)
            return (f"in {call} for {_lwp_label(t) if t else f'lid {lid}'}: waits for it to "
                    "exit", [lid])
        cands = [x.l_lid for x in p.p_lwps.values()
                 if x is not l and not x.l_prflag & 0x00800000 and x.l_waiter in (0, l.l_lid)]
        return f"in {call} for any LWP: waits for one of {cands} to exit", cands
    if l.l_wmesg == "suspend":
        tgt = getattr(l.l_sysargs, "target", 0) if l.l_sysargs else 0
        t = p.lwp_find(tgt)
        return (f"in {call}: waits for {_lwp_label(t) if t else f'lid {tgt}'} to be "
                "suspended", [tgt] if tgt else [])
    if l.l_wmesg == "wait":
        kids = ", ".join(f"pid {c.p_pid} ({c.p_comm.decode(errors='replace')})"
                         for c in p.p_children) or "none"
        return f"in {call}: waits for a child to change state (children: {kids})", []
    if l.l_wmesg == "ppwait":
        return f"in {call}: waits for its vfork child to exec or exit", []
    return f"sleeping on {l.l_wmesg or l.l_wchan!r} in {call}", []


def _cycles(edges: dict[int, list[int]]) -> list[list[int]]:
    """Elementary cycles of a small wait-for graph (each reported once)."""
    found: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()

    def walk(path: list[int]) -> None:
        for nxt in edges.get(path[-1], ()):
            if nxt == path[0]:
                i = path.index(min(path))
                key = tuple(path[i:] + path[:i])
                if key not in seen:
                    seen.add(key)
                    found.append(list(key))
            elif nxt not in path and nxt > path[0] and len(path) < 16:
                walk(path + [nxt])
    for start in sorted(edges):
        walk([start])
    return found


def _chains(edges: dict[int, list[int]]) -> list[list[int]]:
    """Wait-for chains of two edges or more that end outside any cycle: from each
    LWP nobody waits for, along single edges, to an LWP that waits on no LWP."""
    waited = {x for tos in edges.values() for x in tos}
    out = []
    for start in sorted(edges):
        if start in waited or len(edges[start]) != 1:
            continue
        chain = [start]
        while len(edges.get(chain[-1], ())) == 1 and edges[chain[-1]][0] not in chain:
            chain.append(edges[chain[-1]][0])
        if len(chain) >= 3 and not edges.get(chain[-1]):
            out.append(chain)
    return out


def recent_syscalls(l: Lwp) -> list[str]:
    """The LWP's last system calls: strace's lines when --strace ran, else the
    kernel's history of call names; a blocked call is marked."""
    from nbemu.syscalls.table import name_of
    if l.l_recent:
        out = list(l.l_recent[-6:])
    else:
        out = [name_of(c) for c in list(getattr(l, "l_syshist", ()))[-6:]]
    if l.l_kstack is not None and l.l_syscode >= 0:
        nm = name_of(l.l_syscode)
        if out and out[-1] == nm:
            out[-1] = nm + " (blocked)"
        else:
            out.append(nm + " (blocked)")
    return out


def wait_for_report(s) -> list[str]:
    """The lines of the wait-for report, for every live process of the guest
    (the first one first): one summary line per LWP, wait-for cycles and
    chains, then per LWP its last system calls and backtrace."""
    from nbemu.syscalls.lwp import SZOMB
    k = s.kernel
    procs = [k.proc] + sorted((p for p in k.allproc.values()
                               if p is not k.proc and p.p_stat != SZOMB),
                              key=lambda p: p.p_pid)
    lines: list[str] = []
    for p in procs:
        lines += _proc_wait_report(s, p)
    return lines


def _proc_wait_report(s, p) -> list[str]:
    lwps = sorted(p.p_lwps.values(), key=lambda x: x.l_lid)
    sym = Symbols.of(s, p)
    lines = [f"Wait-for report, pid {p.p_pid} ({len(lwps)} LWPs):"]
    edges: dict[int, list[int]] = {}
    width = max((len(_lwp_label(l)) for l in lwps), default=8)
    for l in lwps:
        what, to = waits_on(s, l)
        edges[l.l_lid] = [x for x in to if x in p.p_lwps]
        lines.append(f"  {_lwp_label(l):<{width}}  {what}")
    for c in _cycles(edges):
        lines.append("  cycle: " + " -> ".join(_lwp_label(p.p_lwps[x]) for x in c + c[:1]))
    for chain in _chains(edges):
        lines.append("  chain: " + " -> ".join(_lwp_label(p.p_lwps[x]) for x in chain))
    for l in lwps:
        lines.append(f"{_lwp_label(l)}: {l.l_stat.name}"
                     + (f", flags {lwp_flag_names(l.l_flag)}" if l.l_flag else ""))
        rec = recent_syscalls(l)
        if rec:
            lines.append("  last system calls: " + ", ".join(rec))
        bt = backtrace(s, l)
        if bt:
            lines.append("  backtrace:")
            for i, (pc, how) in enumerate(bt):
                nm = sym.name(pc)
                lines.append(f"    #{i:<2} {pc:#014x} in {nm or '??'}"
                             + (" (frame pointer)" if how == "fp" else ""))
    return lines
