/*
 * nbhook: the only native code in nbemu — a Unicorn block hook that stops the
 * engine at an exact instruction boundary.
 *
 * Why native: a Python UC_HOOK_BLOCK costs ~190x on tight loops; this one costs
 * a few ns per translated block. Why a block hook at all: uc_emu_stop() called
 * asynchronously from another thread may abandon a translated block half-way
 * (inside a memory helper) and resume at the block's first instruction, so
 * read-modify-write instructions run twice (measured: tests/test_preempt_exact.py).
 * uc_emu_stop() called from a block hook runs before the block's own exit check,
 * so the engine leaves before executing any of it: exact.
 *
 * Two preemption sources share the hook:
 *  - fast mode: a ticker thread sets nb_preempt every slice (host time);
 *  - deterministic mode: nb_budget counts blocks down to zero (guest work).
 * nb_blocks counts executed blocks: the deterministic mode's virtual clock.
 * On nbemu's patched engine, under --deterministic, the engine itself counts
 * nb_blocks at every block's start, inline, and stops when it reaches
 * nb_stop_at (uc_nb_count_blocks): nb_engine_counts is set, nb_budget unused,
 * and the hook, when installed at all (gdb), only sees nb_preempt.
 *
 * Beside it: the system-call trap glue, a turn's and a switch's engine calls
 * (nb_run, nb_switch), the clock_gettime fast path, the native park path
 * (_lwp_unpark / ___lwp_park60 and the switch between the LWPs they hand off
 * to), the interrupt trap glue, and who sent a host signal (the end of this file).
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

typedef int (*uc_stop_fn)(void *uc);

static uc_stop_fn g_stop;
volatile int nb_preempt;       /* set asynchronously by the ticker */
volatile int nb_armed;         /* ticker sets nb_preempt only while armed */
volatile int64_t nb_budget;    /* >0: blocks left in this slice; <=0: no budget */
volatile uint64_t nb_blocks;   /* blocks executed since start */
volatile int nb_engine_counts; /* the engine counts nb_blocks (nb_stop_at) */
volatile uint64_t nb_stop_at;  /* the engine's count that ends the slice; 0: none */
static volatile int g_ticker_run;
static long g_tick_ns;

void nb_set_stop(void *fn) { g_stop = (uc_stop_fn)fn; }

void nb_block_hook(void *uc, uint64_t addr, uint32_t size, void *user)
{
    (void)addr; (void)size; (void)user;
    if (__builtin_expect(nb_preempt, 0)) {
        nb_preempt = 0;
        if (!nb_engine_counts)
            nb_blocks++;
        g_stop(uc);
        return;
    }
    if (nb_engine_counts)
        return;
    nb_blocks++;
    if (nb_budget > 0 && --nb_budget == 0)
        g_stop(uc);
}

/*
 * nb_async_uc: the engine of the turn, when it needs no block hook to be
 * preempted exactly. On nbemu's patched Unicorn (engine_lib.py) a translated
 * block leaves early only at a fault or a hook: without memory hooks no helper
 * checks for a stop request after a load or store, so an asynchronous
 * uc_emu_stop() is seen at the next block's start, as the block hook would
 * see nb_preempt -- without the hook's call at every block. The machine sets
 * it for the turn (0: use nb_preempt and the block hook).
 */
void *volatile nb_async_uc;
volatile uint64_t nb_async_stops;

static void *ticker(void *arg)
{
    (void)arg;
    struct timespec ts = { g_tick_ns / 1000000000L, g_tick_ns % 1000000000L };
    while (g_ticker_run) {
        nanosleep(&ts, 0);
        if (nb_armed) {
            void *uc = nb_async_uc;
            if (uc) {
                /* every tick while armed: a stop that lands before
                 * uc_emu_start has begun is forgotten by it (it clears
                 * stop_request); one that reaches the engine's next turn
                 * only shortens that turn */
                nb_async_stops++;
                g_stop(uc);
            } else
                nb_preempt = 1;
        }
    }
    return 0;
}

int nb_start_ticker(long tick_ns)
{
    pthread_t t;
    if (g_ticker_run)
        return 0;
    g_tick_ns = tick_ns;
    g_ticker_run = 1;
    if (pthread_create(&t, 0, ticker, 0) != 0) {
        g_ticker_run = 0;
        return -1;
    }
    pthread_detach(t);
    return 0;
}

void nb_stop_ticker(void) { g_ticker_run = 0; }

/*
 * The system-call trap glue. Unicorn calls nb_syscall_hook at a `syscall`
 * instruction; it reads the trap registers in one batch into nb_in_vals, calls
 * the Python kernel (a no-argument callback, the cheapest ctypes can make), and
 * writes back nb_out_vals when the kernel produced a return (nb_out_valid).
 * This saves two ctypes round trips per system call. A kernel that ends the
 * turn at this trap sets nb_stop_after instead of calling uc_emu_stop itself
 * (a third round trip): the stop is requested here, after the write-back.
 */
typedef int (*uc_batch_fn)(void *uc, int *ids, void **vals, int count);
typedef void (*trap_fn)(void);

static uc_batch_fn g_read_batch, g_write_batch;
static trap_fn g_trap;
int nb_in_ids[16];
uint64_t nb_in_vals[16];
static void *g_in_ptrs[16];
int nb_nin;
int nb_out_ids[8];
uint64_t nb_out_vals[8];
static void *g_out_ptrs[8];
int nb_nout;
volatile int nb_out_valid;
volatile int nb_stop_after;

int nb_set_trap(void *read_batch, void *write_batch, void *trap, int nin, int nout)
{
    if (nin > 16 || nout > 8)
        return -1;
    g_read_batch = (uc_batch_fn)read_batch;
    g_write_batch = (uc_batch_fn)write_batch;
    g_trap = (trap_fn)trap;
    nb_nin = nin;
    nb_nout = nout;
    /* A 32-bit port's registers fill only the low half of a slot: clear what an
     * earlier machine of a 64-bit port (same process) left in the high halves. */
    memset(nb_in_vals, 0, sizeof(nb_in_vals));
    memset(nb_out_vals, 0, sizeof(nb_out_vals));
    for (int i = 0; i < nin; i++)
        g_in_ptrs[i] = &nb_in_vals[i];
    for (int i = 0; i < nout; i++)
        g_out_ptrs[i] = &nb_out_vals[i];
    return 0;
}

/*
 * The clock_gettime fast path (amd64). Go's runtime reads the clock with a
 * system call (NetBSD has no vDSO) before every timer it adds: a Go program
 * making timers does little else (time's TestLongAdjustTimers: 9 system calls
 * in 10 are __clock_gettime50). Served here, CLOCK_MONOTONIC and CLOCK_REALTIME
 * skip the ctypes callback and the Python kernel; it gives the same answer as
 * the kernel's host clock (kern_tc.Clock: host CLOCK_MONOTONIC + nb_fc_mono_off,
 * host CLOCK_REALTIME) and writes the timespec as copyout would, into the host
 * memory behind a writable map entry [nb_fc_lo, nb_fc_hi) of the loaded address
 * space. The machine sets that window after a clock_gettime the kernel served
 * (when nothing needs the kernel at system-call end: no pending signal, trace,
 * record, virtual clock, debugger); any other system call clears it here before
 * the kernel runs (it may change the map), and so does every turn's start (the
 * next LWP may be another process's). nb_fc_count: calls served here (--stats).
 */
int nb_fc_sysno = -1;          /* the call's number; -1: no fast path (not amd64) */
int nb_fc_flags_idx;           /* nb_in_vals index of the flags register (carry: error) */
uint64_t nb_fc_carry;
volatile uint64_t nb_fc_lo, nb_fc_hi;  /* the writable window; hi == 0: none */
volatile uint64_t nb_fc_host;  /* host address of nb_fc_lo */
int64_t nb_fc_mono_off;
volatile uint64_t nb_fc_count;
/* Calls that leave the window open: the kernel serves them whole and they
 * change no mapping (the park calls: a timed wait polls the clock between
 * parks -- NetBSD's t_cond cond_timedwait_race 640,000 times --, and each park
 * closed the window for the next clock_gettime). -1: unused. A park that
 * blocks ends the turn, and the next turn's start closes the window. */
int nb_fc_keep[4] = { -1, -1, -1, -1 };

static int fc_kept(uint64_t sysno)
{
    for (int i = 0; i < 4; i++)
        if ((uint64_t)(int64_t)nb_fc_keep[i] == sysno)
            return 1;
    return 0;
}

/* A system call served here returns 0: the first result 0, the second as the
 * trap left it, the flags' error bit clear (what the kernel's encode_return
 * writes for a success). */
static void trap_return0(void *uc, uint64_t rv1, uint64_t flags, uint64_t carry)
{
    nb_out_vals[0] = 0;
    nb_out_vals[1] = rv1;
    nb_out_vals[2] = flags & ~carry;
    g_write_batch(uc, nb_out_ids, g_out_ptrs, nb_nout);
}

static int fast_clock(void *uc)
{
    uint64_t id = nb_in_vals[1], tp = nb_in_vals[2];   /* rdi, rsi */
    struct timespec ts;
    int64_t ns, out[2];

    if (nb_in_vals[0] != (uint64_t)nb_fc_sysno || nb_fc_hi == 0)
        return 0;
    if ((id != 0 && id != 3) || tp < nb_fc_lo || tp > nb_fc_hi - sizeof(out))
        return 0;
    if (clock_gettime(id == 3 ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts) != 0)
        return 0;
    ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (id == 3 ? nb_fc_mono_off : 0);
    out[0] = ns / 1000000000;
    out[1] = ns % 1000000000;
    memcpy((void *)(uintptr_t)(nb_fc_host + (tp - nb_fc_lo)), out, sizeof(out));
    trap_return0(uc, nb_in_vals[3], nb_in_vals[nb_fc_flags_idx], nb_fc_carry);  /* (rdx kept) */
    nb_fc_count++;
    return 1;
}

/*
 * A turn and a switch in one call each (Machine._run_slice, Machine._load).
 * nb_run reads the PC (and, on ARM, the T bit of the instruction-set register
 * the start address must carry), arms the preemption the turn needs, runs
 * uc_emu_start and disarms: one ctypes round trip instead of the PC's batch
 * read, uc_emu_start and five writes of these globals through ctypes objects.
 * arm: 0 none (nothing else to run), 1 the ticker sets nb_preempt for the
 * block hook, 2 the ticker stops the engine itself (nb_async_uc). nb_switch
 * saves the engine's registers into one u-area context and loads another's.
 * A hop between two LWPs makes one of each (~1.5 us less of ~20).
 */
typedef int (*uc_reg_read_fn)(void *uc, int regid, void *value);
typedef int (*uc_emu_start_fn)(void *uc, uint64_t begin, uint64_t until, uint64_t timeout,
                               size_t count);
typedef int (*uc_ctx_fn)(void *uc, void *ctx);
static uc_reg_read_fn g_reg_read;
static uc_emu_start_fn g_emu_start;
static uc_ctx_fn g_ctx_save, g_ctx_restore;

void nb_set_run(void *reg_read, void *emu_start, void *ctx_save, void *ctx_restore)
{
    g_reg_read = (uc_reg_read_fn)reg_read;
    g_emu_start = (uc_emu_start_fn)emu_start;
    g_ctx_save = (uc_ctx_fn)ctx_save;
    g_ctx_restore = (uc_ctx_fn)ctx_restore;
}

int nb_switch(void *uc, void *save_ctx, void *load_ctx)
{
    int err = save_ctx ? g_ctx_save(uc, save_ctx) : 0;
    return err ? err : g_ctx_restore(uc, load_ctx);
}

/*
 * The native park path: _lwp_unpark and ___lwp_park60 (no timeout) between
 * the LWPs of the running process, served here without the Python kernel --
 * a park/unpark hop is two system calls and a context switch, ~124K host
 * instructions through the kernel's Python and ~7.7K here (BENCHMARKS.md).
 *
 * State (declared here, one table per process, owned by emu/npark.py): an
 * entry per LWP id, whose state says what this path may do with it:
 *  NP_PARKED   parked without a timeout, nothing else pending: the kernel
 *              registered it (sys_lwp.lwp_park); an _lwp_unpark here wakes it;
 *  NP_WOKEN    woken here, queued on np_runq for this vCPU;
 *  NP_RUNNING  the LWP on the engine may park here (its kernel flags are
 *              clean: no pending unpark, signal, suspension, exit);
 *  NP_NONE     the kernel's: every call about it goes to the kernel.
 * The kernel learns what happened here before it runs again (nb_np_sync:
 * called before the next trap the kernel serves, and by the machine when the
 * turn ends): the LWPs touched here, their states, run time and calls.
 * A park served here switches LWPs in nb_run, outside the hook: the engine
 * stops after the trap, nb_run saves the parked LWP's context to its u-area,
 * loads the next one's, writes its park's return (0) and starts the engine
 * again -- unless a tick or another stop asked for the run loop.
 */
enum { NP_NONE, NP_PARKED, NP_WOKEN, NP_RUNNING };

struct nb_np_ent {
    uint64_t md;        /* its u-area's saved context (Lwp.l_md) */
    uint64_t lwpctl;    /* host address of its lwpctl_t (lc_curcpu first); 0: none */
    uint64_t run_ns;    /* host CLOCK_MONOTONIC ns it ran since the last sync */
    uint32_t nsys;      /* system calls served here for it since the last sync */
    uint8_t state;
    uint8_t touched;    /* on nb_np_touched */
    uint8_t ran;        /* switched to since the last sync (its park's registers changed) */
    uint8_t pad;
};

#define NP_RING 256     /* runnable LWPs and touched LWPs between two syncs */

struct nb_np_ent *volatile nb_np_tab;   /* the running process's table; 0: off */
uint32_t nb_np_cap;                     /* entries in it (LWP ids 1 .. cap-1) */
uint32_t nb_np_cur;                     /* the LWP on the engine (its id) */
int nb_np_cpu;                          /* the vCPU of this turn (lc_curcpu) */
int nb_np_switch_ok;                    /* nothing else wants the host: park may switch */
uint32_t nb_np_runq[NP_RING];
uint32_t nb_np_rq_head, nb_np_rq_len;
uint32_t nb_np_touched[NP_RING];
uint32_t nb_np_ntouched;
uint32_t nb_np_switches;                /* switches since the last sync */
uint64_t nb_np_t;                       /* when the LWP on the engine started running */
uint64_t nb_np_count;                   /* calls served here (--stats) */
static uint32_t g_np_next;              /* the LWP to switch to once the engine stops */
static int g_np_armed;                  /* this path armed the ticker */
/* the port's trap (emu/npark.py, guest/arch/base.py NparkTrap): where
 * nb_in_vals holds the call's number (-1: the appended instruction word's
 * immediate, (word >> shift) & mask, its OS bits 0 or os_val) and its
 * arguments, a mode whose calls are the kernel's (thumb_idx -1: none), the
 * second return value, the flags and their error bit, the bits of a register
 * that count; the calls' numbers */
int nb_np_sysno_idx = -1;
int nb_np_insn_shift;
uint64_t nb_np_insn_mask, nb_np_os_mask, nb_np_os_val;
int nb_np_thumb_idx = -1;
uint64_t nb_np_thumb_bit;
int nb_np_arg_idx[6];
int nb_np_rv1_idx, nb_np_flags_idx;
uint64_t nb_np_carry;
uint64_t nb_np_word_mask = ~(uint64_t)0;
int nb_np_nr_park = -1, nb_np_nr_unpark = -1;
static trap_fn g_np_sync;
volatile int nb_np_kick;                /* the watchdog stopped the engine (emu/hostsig.py) */

void nb_np_set_sync(void *sync) { g_np_sync = (trap_fn)sync; }

static uint64_t np_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct nb_np_ent *np_ent(uint64_t lid)
{
    lid &= 0xffffffffu;                   /* lwpid_t */
    return lid != 0 && lid < nb_np_cap ? &nb_np_tab[lid] : 0;
}

static void np_touch(uint32_t lid)
{
    struct nb_np_ent *e = &nb_np_tab[lid];
    if (!e->touched) {
        e->touched = 1;
        nb_np_touched[nb_np_ntouched++] = lid;
    }
}

/* room for `n` more touched LWPs */
static int np_room(int n) { return nb_np_ntouched + (uint32_t)n <= NP_RING; }

static void np_return0(void *uc)
{
    trap_return0(uc, nb_in_vals[nb_np_rv1_idx] & nb_np_word_mask,
                 nb_in_vals[nb_np_flags_idx] & nb_np_word_mask, nb_np_carry);
}

static void np_wake(uint32_t lid)
{
    nb_np_tab[lid].state = NP_WOKEN;
    np_touch(lid);
    nb_np_runq[(nb_np_rq_head + nb_np_rq_len++) % NP_RING] = lid;
}

static void np_count(void)
{
    struct nb_np_ent *c = &nb_np_tab[nb_np_cur];
    c->nsys++;
    np_touch(nb_np_cur);
    nb_np_count++;
}

/* _lwp_unpark(target, hint) of a parked LWP: it joins this vCPU's queue. */
static int np_unpark(void *uc)
{
    uint32_t lid = (uint32_t)nb_in_vals[nb_np_arg_idx[0]];   /* (lwpid_t) */
    struct nb_np_ent *t = np_ent(lid);
    if (!t || t->state != NP_PARKED || nb_np_rq_len == NP_RING || !np_room(2))
        return 0;
    np_wake(lid);
    np_count();
    np_return0(uc);
    if (!nb_armed) {
        /* work appeared while the turn runs unpreemptible: as the kernel's
         * work_added, let the ticker end the turn (the woken LWP waits on
         * this vCPU until the running one parks) */
        nb_async_uc = uc;
        nb_armed = 1;
        g_np_armed = 1;
    }
    return 1;
}

/* ___lwp_park60(clock_id, flags, ts, unpark, hint, unparkhint) with no
 * timeout, by an LWP that may park here, when an LWP is there to run. */
static int np_park(void *uc)
{
    struct nb_np_ent *c = np_ent(nb_np_cur), *u = 0;
    uint32_t unpark = (uint32_t)nb_in_vals[nb_np_arg_idx[3]];

    if (!nb_np_switch_ok || !c || c->state != NP_RUNNING
        || (nb_in_vals[nb_np_arg_idx[2]] & nb_np_word_mask) != 0)
        return 0;
    if (unpark != 0) {
        u = np_ent(unpark);
        if (!u || u->state != NP_PARKED || nb_np_rq_len == NP_RING)
            return 0;
    } else if (nb_np_rq_len == 0)
        return 0;                           /* nothing to switch to: the kernel idles */
    if (!np_room(3))
        return 0;
    if (u)
        np_wake(unpark);
    np_count();
    c->state = NP_PARKED;
    g_np_next = nb_np_runq[nb_np_rq_head];
    nb_np_rq_head = (nb_np_rq_head + 1) % NP_RING;
    nb_np_rq_len--;
    g_stop(uc);                             /* nb_run switches once the engine stops */
    return 1;
}

static int np_trap(void *uc)
{
    uint64_t nr;
    if (nb_np_tab == 0)
        return 0;
    if (nb_np_thumb_idx >= 0 && (nb_in_vals[nb_np_thumb_idx] & nb_np_thumb_bit))
        return 0;
    if (nb_np_sysno_idx >= 0)
        nr = nb_in_vals[nb_np_sysno_idx];
    else {
        uint64_t word = nb_in_vals[nb_nin] & 0xffffffffu, os = word & nb_np_os_mask;
        if (os != 0 && os != nb_np_os_val)
            return 0;
        nr = (word >> nb_np_insn_shift) & nb_np_insn_mask;
    }
    if (nr == (uint64_t)nb_np_nr_unpark)
        return np_unpark(uc);
    if (nr == (uint64_t)nb_np_nr_park)
        return np_park(uc);
    return 0;
}

static void np_lwpctl(struct nb_np_ent *e, int cpu)
{
    if (e->lwpctl)
        *(volatile int32_t *)(uintptr_t)e->lwpctl = cpu;
}

/* The switch a park served here asked for (the engine has stopped). */
static int np_switch(void *uc)
{
    uint32_t next = g_np_next;
    struct nb_np_ent *c = &nb_np_tab[nb_np_cur], *n = &nb_np_tab[next];
    uint64_t now = np_now(), v[3] = { 0, 0, 0 };   /* (a 32-bit register fills the low half) */
    void *p[3] = { &v[0], &v[1], &v[2] };
    int err;

    g_np_next = 0;

    c->run_ns += now - nb_np_t;
    nb_np_t = now;
    np_lwpctl(c, -1);                       /* LWPCTL_CPU_NONE */
    if ((err = nb_switch(uc, (void *)(uintptr_t)c->md, (void *)(uintptr_t)n->md)) != 0)
        return err;
    /* its park returns 0: the first return value, the error flag clear */
    if ((err = g_read_batch(uc, nb_out_ids, p, nb_nout)) != 0)
        return err;
    v[0] = 0;
    v[2] &= ~nb_np_carry;
    if ((err = g_write_batch(uc, nb_out_ids, p, nb_nout)) != 0)
        return err;
    nb_np_cur = next;
    n->state = NP_RUNNING;
    n->ran = 1;
    np_touch(nb_np_cur);
    np_lwpctl(n, nb_np_cpu);
    nb_np_switches++;
    if (g_np_armed && nb_np_rq_len == 0) {  /* nothing waits any more */
        nb_armed = 0;
        nb_async_uc = 0;
        g_np_armed = 0;
    }
    return 0;
}

int nb_run(void *uc, int pc_id, int state_id, uint64_t state_bit, uint64_t until, int arm,
           void *np, uint64_t np_cur_cpu)
{
    uint64_t pc = 0, state = 0;   /* (a 32-bit register fills the low half) */
    uint64_t ticks;
    int err, serr;

    nb_fc_hi = 0;                 /* the fast clock's window was the last turn's */
    /* the native park path for this turn: np, the process's table (0: off);
     * np_cur_cpu, the LWP's id and (high half) the vCPU's index */
    nb_np_tab = (struct nb_np_ent *)np;
    if (np) {
        nb_np_cur = (uint32_t)np_cur_cpu;
        nb_np_cpu = (int)(np_cur_cpu >> 32);
        nb_np_switch_ok = arm == 0;
        nb_np_t = np_now();
        g_np_armed = 0;
    }
    g_np_next = 0;
    nb_np_kick = 0;
    if (arm == 2)
        nb_async_uc = uc;
    else if (arm == 1)
        nb_preempt = 0;
    nb_armed = arm != 0;
    for (;;) {
        err = g_reg_read(uc, pc_id, &pc);
        if (err == 0 && state_id >= 0 && (err = g_reg_read(uc, state_id, &state)) == 0)
            pc = (state & state_bit) ? (pc | 1) : (pc & ~(uint64_t)1);
        if (err)
            break;
        ticks = nb_async_stops;
        err = g_emu_start(uc, pc, until, 0, 0);
        if (g_np_next == 0)
            break;
        /* (the park's trap had completed when the engine stopped: switch
         * even if the engine reports an error, which is then the run loop's) */
        serr = np_switch(uc);
        if (err == 0)
            err = serr;
        /* a tick, or a stop of the host-signal watchdog (nb_np_kick), is
         * the run loop's to see */
        if (err || ticks != nb_async_stops || nb_np_kick)
            break;
    }
    nb_armed = 0;
    nb_async_uc = 0;
    nb_np_tab = 0;
    return err;
}

void nb_syscall_hook(void *uc, void *user)
{
    (void)user;
    g_read_batch(uc, nb_in_ids, g_in_ptrs, nb_nin);
    if (np_trap(uc))
        return;
    if (nb_fc_sysno >= 0) {
        if (fast_clock(uc))
            return;
        if (nb_in_vals[0] != (uint64_t)nb_fc_sysno && !fc_kept(nb_in_vals[0]))
            nb_fc_hi = 0;
    }
    if (nb_np_ntouched)
        g_np_sync();                        /* the kernel first learns what np_trap did */
    nb_out_valid = 0;
    g_trap();
    if (nb_out_valid)
        g_write_batch(uc, nb_out_ids, g_out_ptrs, nb_nout);
    if (nb_stop_after) {
        nb_stop_after = 0;
        g_stop(uc);
    }
}

/*
 * The same glue for architectures whose system-call instruction raises an
 * exception (aarch64 `svc`): a UC_HOOK_INTR hook. Exception number
 * g_intr_swi is a system call; any other goes to g_intr_other (a fault).
 * With g_insn_pc_idx >= 0 the trapping instruction word (read at
 * nb_in_vals[g_insn_pc_idx] - g_insn_back) is appended as nb_in_vals[nb_nin]:
 * aarch64 encodes the system-call number in `svc #imm16`, and Unicorn does not
 * set ESR_EL1 when the exception is delivered to a hook.
 */
typedef int (*uc_mem_read_fn)(void *uc, uint64_t addr, void *bytes, uint64_t size);
typedef void (*intr_fn)(uint32_t intno);

static int g_intr_swi = -1;
static int g_insn_pc_idx = -1;
static uint64_t g_insn_back;
static uc_mem_read_fn g_mem_read;
static intr_fn g_intr_other;

int nb_set_intr(int swi_intno, int insn_pc_idx, uint64_t insn_back, void *mem_read,
                void *other)
{
    if (insn_pc_idx >= nb_nin || nb_nin >= 16)   /* call after nb_set_trap */
        return -1;
    g_intr_swi = swi_intno;
    g_insn_pc_idx = insn_pc_idx;
    g_insn_back = insn_back;
    g_mem_read = (uc_mem_read_fn)mem_read;
    g_intr_other = (intr_fn)other;
    return 0;
}

void nb_intr_hook(void *uc, uint32_t intno, void *user)
{
    (void)user;
    if ((int)intno != g_intr_swi) {
        g_intr_other(intno);
        return;
    }
    g_read_batch(uc, nb_in_ids, g_in_ptrs, nb_nin);
    if (g_insn_pc_idx >= 0) {
        uint32_t word = 0;
        g_mem_read(uc, nb_in_vals[g_insn_pc_idx] - g_insn_back, &word, 4);
        nb_in_vals[nb_nin] = word;
    }
    if (np_trap(uc))
        return;
    if (nb_np_ntouched)
        g_np_sync();
    nb_out_valid = 0;
    g_trap();
    if (nb_out_valid)
        g_write_batch(uc, nb_out_ids, g_out_ptrs, nb_nout);
    if (nb_stop_after) {
        nb_stop_after = 0;
        g_stop(uc);
    }
}

/*
 * Who sent a host signal (emu/hostsig.py). Python's signal handlers get no
 * siginfo, and the kernel must tell a terminal's Ctrl-C (which reaches the
 * whole foreground job) from a kill(2) of nbemu's pid (which reaches one
 * process). Linux says which in si_code: the kernel's own signals (the tty
 * driver's SIGINT/SIGQUIT/SIGWINCH, a hang-up's SIGHUP) have si_code > 0
 * (SI_KERNEL), a process's have si_code <= 0 (SI_USER from kill, SI_QUEUE,
 * SI_TKILL, ...). nb_sigorigin_wrap puts this SA_SIGINFO handler in front of
 * the handler Python installed for a signal: it counts each arrival by sender,
 * then calls Python's (which only notes the signal: async-signal-safe, as this
 * is). Python's handler, run later on the main thread, takes the counts.
 */
#define NB_NSIG 65
static void (*g_py_handler[NB_NSIG])(int);
static volatile uint32_t g_by_kernel[NB_NSIG], g_by_process[NB_NSIG];

static void sig_origin(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    if (sig <= 0 || sig >= NB_NSIG)
        return;
    if (si != 0 && si->si_code > 0)
        __atomic_add_fetch(&g_by_kernel[sig], 1, __ATOMIC_SEQ_CST);
    else
        __atomic_add_fetch(&g_by_process[sig], 1, __ATOMIC_SEQ_CST);
    if (g_py_handler[sig] != 0)
        g_py_handler[sig](sig);
}

/* Count sig's senders in front of its current (Python's) handler: 0, or -1
 * when sig has no plain handler to wrap (SIG_DFL, SIG_IGN, an SA_SIGINFO one). */
int nb_sigorigin_wrap(int sig)
{
    struct sigaction cur, sa;

    if (sig <= 0 || sig >= NB_NSIG || sigaction(sig, 0, &cur) != 0)
        return -1;
    if (cur.sa_flags & SA_SIGINFO)
        return cur.sa_sigaction == sig_origin ? 0 : -1;
    if (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN)
        return -1;
    g_py_handler[sig] = cur.sa_handler;
    __atomic_store_n(&g_by_kernel[sig], 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_by_process[sig], 0, __ATOMIC_SEQ_CST);
    sa = cur;
    sa.sa_sigaction = sig_origin;
    sa.sa_flags = cur.sa_flags | SA_SIGINFO;
    return sigaction(sig, &sa, 0);
}

/* The arrivals of sig since the last call: out[0] sent by the kernel, out[1]
 * by processes. */
void nb_sigorigin_take(int sig, uint32_t *out)
{
    out[0] = out[1] = 0;
    if (sig <= 0 || sig >= NB_NSIG)
        return;
    out[0] = __atomic_exchange_n(&g_by_kernel[sig], 0, __ATOMIC_SEQ_CST);
    out[1] = __atomic_exchange_n(&g_by_process[sig], 0, __ATOMIC_SEQ_CST);
}
