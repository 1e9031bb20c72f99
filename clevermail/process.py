"""Process-wide tuning of the serving process: the GIL switch interval, the
open-file limit, the stack size of the threads it starts and glibc's mmap threshold.

Only `clevermail start` (cli.py) calls tune_process(): these settings belong to the
whole interpreter, so importing the package, or building and starting a MailService
(as the tests do, many times in one pytest process), must leave them alone.
"""

import ctypes
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


def tune_process():
    """Raise the descriptor limit to its hard maximum (one descriptor per connection,
    per open message file), shorten the GIL switch interval (never lengthen it), give
    the threads to come THREAD_STACK_SIZE stacks and fix glibc's mmap threshold."""
    raise_fd_limit()
    threading.stack_size(THREAD_STACK_SIZE)
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)
    fix_mmap_threshold()


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
