"""SessionThreads: the threads that run a server's sessions, one thread per session.

socketserver's ThreadingMixIn starts a new thread for every connection, and
Thread.start() makes the accepting thread wait until the new thread has run: with many
busy sessions that is a GIL round trip (or several) per connection for the single
accept loop, plus a dozen syscalls to create and tear down the thread.  Measured with
20 SMTP clients opening a connection per message: about a third of them were waiting
in the listen backlog (`ss -ltn`, Recv-Q averaging 7); with these threads and the
accept loop taking the whole backlog per wake-up (netbase), it is mostly empty.

Here a session still has a thread to itself for its whole life, but a thread whose
session has ended waits (up to `idle_timeout`) for the next connection instead of
exiting; new threads are started only when no thread is waiting.  Handing a
connection to a waiting thread is one put() on a C queue: the accept loop never waits.
At most `keep` threads wait so: after 10,000 sessions ended at once, 10,000 threads
waking together at the end of their wait (or at stop) would fight for the GIL as the
sessions' end did (issue 18); the rest end with their session.
"""

import itertools
import queue
import threading
import time

IDLE_THREAD_SECONDS = 60.0
KEEP_IDLE_THREADS = 64      # threads kept waiting for the next connection, at most


class SessionThreads:
    def __init__(self, run, name, idle_timeout=IDLE_THREAD_SECONDS, keep=KEEP_IDLE_THREADS):
        self._run = run                   # run(*job): serves one connection to its end
        self._name = name
        self.idle_timeout = idle_timeout
        self.keep = keep
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Invariant (under _lock): threads waiting in _next() == _idle + jobs queued,
        # so a job is only queued when a waiting thread is certain to take it.
        self._idle = 0
        self._threads = set()
        self._stopped = False
        self._numbers = itertools.count(1)

    def submit(self, *job):
        """Run `job` on a waiting thread, or on a new one.  False once stopped."""
        with self._lock:
            if self._stopped:
                return False
            if self._idle:
                self._idle -= 1
                self._jobs.put(job)
                return True
            thread = threading.Thread(target=self._work, args=(job,), daemon=True,
                                      name=f"{self._name}-{next(self._numbers)}")
            self._threads.add(thread)
        thread.start()
        return True

    def _work(self, job):
        try:
            while job is not None:
                self._run(*job)
                job = None            # drop the connection's references while waiting
                job = self._next()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _next(self):
        """The next job, or None: stopped, enough threads wait already, or idle for
        `idle_timeout`."""
        with self._lock:
            if self._stopped or self._idle >= self.keep:
                return None
            self._idle += 1
        while True:
            try:
                return self._jobs.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._idle -= 1
                        return None
                # a job was queued for a waiting thread just as we timed out: take it

    @property
    def size(self):
        """Threads alive: serving a session or waiting for one."""
        with self._lock:
            return len(self._threads)

    @property
    def waiting(self):
        with self._lock:
            return self._idle

    def stop(self):
        """Let every thread end: waiting ones at once, busy ones after their session
        (ending the sessions themselves is the server's job)."""
        with self._lock:
            self._stopped = True
            count = len(self._threads)
        for _ in range(count):
            self._jobs.put(None)

    def join(self, timeout):
        """Wait (up to `timeout` in all) for the threads to end after stop()."""
        with self._lock:
            threads = list(self._threads)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            if thread is threading.current_thread():
                continue
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
