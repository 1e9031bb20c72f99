"""Process-wide tuning of the serving process: the GIL switch interval and the
open-file limit.

Only `clevermail start` (cli.py) calls tune_process(): these settings belong to the
whole interpreter, so importing the package, or building and starting a MailService
(as the tests do, many times in one pytest process), must leave them alone.
"""

import resource
import sys

# The GIL switch interval of the serving process.  Session threads block on sockets and
# fsync many times per message; coming back, one waits for the GIL until the holder
# yields or this interval forces it, so a shorter interval than Python's 5 ms lets
# sessions get on with their work sooner (scripts/bench_smtp.py measures it).
SWITCH_INTERVAL = 0.001


def tune_process():
    """Raise the descriptor limit to its hard maximum (one descriptor per connection,
    per open message file) and shorten the GIL switch interval, never lengthen it."""
    raise_fd_limit()
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
