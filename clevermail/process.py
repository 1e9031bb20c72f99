"""Process-wide tuning of the serving process: the GIL switch interval, the
open-file limit, the stack size of the threads it starts, glibc's mmap threshold, the
garbage collector's thresholds and frozen start-up heap, and the CPU each serving
process keeps to ([server] cpu_affinity).

Only `clevermail start` and its workers (cli/serve.py) call tune_process() and
settle_heap(): these settings belong to the whole interpreter, so importing the
package, or building and starting a MailService (as the tests do, many times in one
pytest process), must leave them alone.
"""

import ctypes
import gc
import logging
import os
import resource
import sys
import threading

# The GIL switch interval of the serving process.  Session threads block on sockets and
# fsync many times per message; coming back, one waits for the GIL until the holder
# yields or this interval forces it, so a shorter interval than Python's 5 ms lets
# sessions get on with their work sooner (scripts/bench_smtp.py measures it).
SWITCH_INTERVAL = 0.001

# The stack of every thread started from here on (one per session): glibc's default is
# 8 MiB of address space each, 80 GB at 10,000 sessions, which a strict overcommit
# policy (vm.overcommit_memory = 2) refuses long before.  Measured: the deepest paths
# a client can drive (BODYSTRUCTURE and sections of a message nested to MIME's
# MAX_DEPTH, SEARCH nested to its bound) run in 32 KiB; hostile JSON nesting (the
# control socket) needs 256 KiB to end in RecursionError rather than a crash.
# tests/test_thread_stack.py runs those paths with half of this.
THREAD_STACK_SIZE = 512 * 1024

# glibc's malloc serves a block of this size or more with its own mmap, returned to the
# system when freed.  Left alone, glibc raises the threshold to the size of any mmapped
# block freed (up to 32 MiB): after the first login, each scrypt's 16 MiB (passwords.py)
# comes from the heap of whichever of its 8-per-core arenas the thread uses, and stays
# there once freed (a heap is trimmed only from its top, and only past twice that
# threshold).  Measured (200 logins at once, each thread then keeping a little): 3.2 GB
# resident afterwards as is, 3.2 GB with M_ARENA_MAX 2 (fewer arenas, each grows more
# heaps), 105 MB after malloc_trim (but the same peak), 23 MB with the threshold fixed
# at 1 MiB; at 10,000 IDLE sessions the held RSS varied from 368 to 767 MB by how many
# logins had overlapped.  1 MiB keeps the blocks of ordinary work (a command line, a
# 100 KiB message, a 256 KiB reply) in the heap, as the dynamic threshold did.
MMAP_THRESHOLD = 1 << 20
M_MMAP_THRESHOLD = -3           # mallopt(3)'s parameter number (malloc.h)

# The collector's thresholds of the serving process, and its start-up heap frozen
# (settle_heap).  Python's default (700, 10, 10) runs a young collection every 700 net
# container allocations, and a full one, which walks every tracked object (the FETCH
# and sort caches hold hundreds of thousands), whenever the survivors grow by a quarter:
# under imaptest (sessions kept, workers = 2) that was about 13 us of CPU per command,
# 4% of it, in ~270 young, ~23 middle and 2 full collections per process in 13 s.  With
# these and the modules, tables and settings of start-up frozen (never walked again),
# 9 young collections per process and 4.4 us per command.  Little of a server's garbage
# is cyclic (reference counting frees the rest at once), so collecting it later holds
# little memory.
GC_THRESHOLDS = (20_000, 20, 20)

# [server] cpu_affinity = auto: each serving process (the main one and every worker of
# [server] workers) keeps to one CPU of those it was started with, the i-th process to
# the i-th CPU, round robin.  A Python process runs one thread at a time (the GIL), so
# it never needs two CPUs at once; left to float, its session threads wake each other
# across CPUs at every blocking system call that hands the GIL over (a cross-CPU wake-up
# and a migration each time).  Measured with imaptest bench, sessions kept, 10 clients,
# 2 cores: one process 1,325 -> 2,843 ops/s, its CPU per command 0.86 -> 0.33 ms,
# context switches 32,500/s -> 6,100/s; two processes 2,241 -> 3,894 ops/s.
# The main process names the set it started with in CLEVERMAIL_CPUS for its workers:
# they inherit its narrowed one.
CPUS_ENV = "CLEVERMAIL_CPUS"

log = logging.getLogger("clevermail.process")


def tune_process():
    """Raise the descriptor limit to its hard maximum (one descriptor per connection,
    per open message file), shorten the GIL switch interval (never lengthen it), give
    the threads to come THREAD_STACK_SIZE stacks and fix glibc's mmap threshold."""
    raise_fd_limit()
    threading.stack_size(THREAD_STACK_SIZE)
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)
    fix_mmap_threshold()


def settle_heap():
    """Once the service has started: what start-up made moves to the collector's
    permanent generation (gc.freeze) and the thresholds become GC_THRESHOLDS."""
    gc.collect()            # start-up's garbage is not frozen with the rest
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def fix_mmap_threshold(threshold=MMAP_THRESHOLD):
    """Fix glibc's mmap threshold (see MMAP_THRESHOLD); True when set.  Without glibc
    (musl, macOS) nothing is done: their allocators have no such threshold."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1


def raise_fd_limit():
    """Soft RLIMIT_NOFILE up to the hard one; a refusal leaves the limit as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def usable_cpus(environ=None):
    """The CPUs the server may use, sorted: a worker's come from CLEVERMAIL_CPUS (the
    main process's set before it kept to one; taken out of `environ`, so nothing it
    starts sees it), a main process's are its own affinity (taskset, systemd's
    CPUAffinity=, a cpuset).  A malformed variable counts as absent."""
    environ = os.environ if environ is None else environ
    named = environ.pop(CPUS_ENV, None)
    if named is not None:
        try:
            cpus = sorted({int(c) for c in named.split(",") if c.strip()})
            if cpus and min(cpus) >= 0:
                return cpus
        except ValueError:
            pass
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []       # no affinity calls here (not Linux): nothing to choose from


def encode_cpus(cpus):
    """CLEVERMAIL_CPUS's value for a set of CPUs."""
    return ",".join(str(c) for c in cpus)


def keep_to_one_cpu(index, cpus):
    """Keep this process (its threads now and the ones they start) to the index-th CPU
    of `cpus`, round robin; the CPU, or None when there is nothing to choose (one CPU
    or none) or the kernel refuses (a cpuset that no longer allows it)."""
    if len(cpus) < 2:
        return None
    cpu = cpus[index % len(cpus)]
    return cpu if _set_affinity({cpu}) else None


def _set_affinity(mask):
    """Every thread of this process, and so the threads they start, on `mask`."""
    try:
        # sched_setaffinity(0) sets the calling thread only; a thread inherits the mask
        # of the one that starts it, so the threads already running are set one by one
        tasks = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tasks = []
    try:
        for task in tasks:
            try:
                os.sched_setaffinity(task, mask)
            except ProcessLookupError:
                pass        # a thread that ended meanwhile
        os.sched_setaffinity(0, mask)
    except OSError as exc:
        log.warning("cannot set the CPUs of this process to %s: %s",
                    encode_cpus(sorted(mask)), exc.strerror)
        return False
    return True


def place(mode, index, cpus):
    """[server] cpu_affinity for serving process `index` (0: the main one) on `cpus`
    (usable_cpus()): "auto" keeps it to one of them and returns it; "off" leaves it to
    the kernel on all of them (a worker started again after a reload to "off" would
    otherwise stay on the one CPU it inherited from the main process).  Called before
    the service starts its threads; say_placed() logs the outcome once it runs."""
    if mode == "auto":
        return keep_to_one_cpu(index, cpus)
    try:
        mine = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return None
    if cpus and mine != set(cpus):
        _set_affinity(set(cpus))
    return None


def say_placed(cpu, cpus):
    """Log the CPU place() kept this process to, if any (after a successful start, so
    that a start that fails says only why)."""
    if cpu is not None:
        log.info("keeping to CPU %d of %s ([server] cpu_affinity = auto)", cpu, encode_cpus(cpus))
