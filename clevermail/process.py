"""Process-wide tuning of the serving process: the GIL switch interval, the
open-file limit and the stack size of the threads it starts.

Only `clevermail start` (cli.py) calls tune_process(): these settings belong to the
whole interpreter, so importing the package, or building and starting a MailService
(as the tests do, many times in one pytest process), must leave them alone.
"""

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


def tune_process():
    """Raise the descriptor limit to its hard maximum (one descriptor per connection,
    per open message file), shorten the GIL switch interval (never lengthen it) and
    give the threads to come THREAD_STACK_SIZE stacks."""
    raise_fd_limit()
    threading.stack_size(THREAD_STACK_SIZE)
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)


def raise_fd_limit():
    """Soft RLIMIT_NOFILE up to the hard one; a refusal leaves the limit as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
