"""The CPU engine: one function that creates and configures the Unicorn engine
for an ABI, and what was measured about Unicorn's controls (BENCHMARKS.md,
"real code" rows; profile and figures there).

On real code (fixtures/c/bench_real.c) nbemu runs at the speed of a bare
engine (0.9-1.1x): the time is the engine's, not nbemu's. perf puts half of it
in three costs of Unicorn 2.1.4's soft-MMU:

- every guest store takes the slow path (store_helper, then two
  find_memory_mapping -> flatview_translate -> phys_page_find lookups and
  notdirty_write): without a guest MMU every page is mapped RWX in the TLB, so
  TLB_NOTDIRTY (write watch for translated code) is never cleared;
- a helper call (check_exit_request) after every guest load and store, which
  also makes TCG spill its cached guest registers around it;
- TLB refills (victim_tlb_hit, tlb_set_page) for scattered accesses.

None of these has a control in 2.1.4's API. Measured (CPU time, bare engine,
bench_real at scale 30, amd64):
- UC_CTL_TLB_TYPE = UC_TLB_VIRTUAL without a fill hook (each refill grants only
  the access at hand, so loads and stores of one page evict each other): slower,
  lz 2.67 s vs 1.39 s, sort 3.45 s vs 1.15 s.
- UC_TLB_VIRTUAL with a native UC_HOOK_TLB_FILL that grants the region's
  permissions (data pages without EXEC, so notdirty_write clears TLB_NOTDIRTY
  after a page's first store) and no invalid-access hooks (a hook covering a
  page keeps its TLB_NOTDIRTY): lz 0.59 s vs 1.18 s, sort 0.37 vs 1.19, but
  hash 0.40 vs 0.31 and list 0.68 vs 0.62 (each refill runs cpu_restore_state;
  the TLB stays at 256 entries: QEMU grows it only when >70 % of it is used at
  a flush, which lz's 110 pages never reach; flushing every 5 ms made lz and
  sort slower). The patched engine below: 0.30 / 0.27 / 0.14 / 0.38 s.
- translation buffer 8 MB / 64 MB instead of 1 GB: no change (1.34-1.69 s lz,
  1.03-1.05 s sort, within noise); the default stays.
- the invalid-access hooks (unmapped / protection), installed for the whole
  address space: no change (lz 1.24 vs 1.35 s, sort 1.12 vs 1.06 s); with the
  CPU TLB, notdirty_write never clears a page anyway.
- the fast-mode ticker thread (1 ms wake-ups) on a single-LWP run: no change
  (hash: 0.38-0.42 s CPU with or without).
The block hook is already installed only while it is needed (machine.py).

What lifts the floor is the engine itself: native/unicorn-2.1.4-nbemu.patch
(TLB_NOTDIRTY only on executable regions, as upstream's PR 2337 + 2414; no
check_exit_request after loads and stores unless a memory hook that sees
successful accesses is installed, the store helper leaving the TB itself on an
invalid access as the load helper already does; a TLB of at least 4096
entries that doubles, up to 65,536, as soon as it is 70 % full: bench_real
hash, 40 MB read at random, 0.71-0.80 s -> 0.31 s on amd64, 1.0 -> 0.42 s on
aarch64, whose TLB has 23K pages in use). `make setup` builds it (native/build_engine.py) and nbemu runs on it
whenever it is built (native/engine_lib.py); its measured effect is in
BENCHMARKS.md.
"""
from __future__ import annotations

from unicorn import Uc

from nbemu.guest.arch.base import Abi


def new_engine(abi: Abi) -> Uc:
    """A Unicorn engine for abi's CPU, set up once before any LWP runs."""
    uc = Uc(abi.uc_arch, abi.uc_mode)
    abi.init_engine(uc)
    return uc

