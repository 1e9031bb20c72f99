"""The share of new connections each process of [server] workers takes (issue 18).

Every serving process accepts on the same listening sockets (workers.py): the kernel
wakes all of them for a connection and the first to call accept() gets it.  That
first one is whichever process happens to be quickest, not the least loaded, so
long-lived sessions pile up on one process: measured with imaptest (10 IMAP sessions
kept open, 2 processes each kept to its own CPU), all 10 went to the main process and
the worker served none.  Short SMTP sessions even out over time; IMAP sessions live for
hours.

So the processes keep a board for their IMAP listeners (service.BOARD_PROTOCOLS; the
other protocols accept freely: a deferred accept cost SMTP's short sessions 5x their
rate): shared memory of one signed 64-bit slot per process (index 0 the main process,
i worker i) holding the IMAP connections it has open, or -1 for a process not running.
Each process writes only its own slot; the others read it without a lock (aligned
8-byte stores are not torn).  Before each accept a process with
more connections than the least loaded other running process waits DEFER seconds,
long enough for that one to wake and take the connection; if nobody took it by then
(the other is stopped, frozen or swamped), it takes it itself.  A single process has
no board (NO_BOARD: counts nothing, never waits).

The main process creates the board (a memfd) and passes its descriptor to each worker
(CLEVERMAIL_BOARD); its supervisor marks a worker that died as not running.
"""

import mmap
import os
import struct
import tempfile
import threading

ENV = "CLEVERMAIL_BOARD"
SLOT = struct.Struct("=q")
ABSENT = -1
# Seconds a process with more connections than another waits for that one to take the
# connection before taking it itself: a woken process gets the GIL within its switch
# interval (1 ms, process.py) when busy.  Only a process ahead of another ever waits.
DEFER = 0.005


class NoBoard:
    """One process: nothing to share."""

    index = 0

    def opened(self):
        pass

    def closed(self):
        pass

    def ahead(self):
        return False

    def gone(self, index):
        pass


NO_BOARD = NoBoard()


class LoadBoard:
    """This process's view of the shared board (see the module docstring)."""

    def __init__(self, fd, slots, index, defer=DEFER):
        self.slots = slots
        self.index = index
        self.defer = defer
        self._map = mmap.mmap(fd, slots * SLOT.size)
        self._lock = threading.Lock()       # this process's threads, for its own slot
        self._open = 0
        self._set(index, 0)
        self._others = [i for i in range(slots) if i != index]

    @classmethod
    def create(cls, slots, defer=DEFER):
        """The main process's board for `slots` processes (itself included), every
        other slot not running yet; its descriptor is `fd` (for the workers)."""
        try:
            fd = os.memfd_create("clevermail-load-board")
        except (AttributeError, OSError):
            # no memfd (not Linux): an unlinked file serves as well
            with tempfile.TemporaryFile() as f:
                fd = os.dup(f.fileno())
        os.ftruncate(fd, slots * SLOT.size)
        board = cls(fd, slots, 0, defer)
        board.fd = fd
        for i in range(1, slots):
            board._set(i, ABSENT)
        return board

    @classmethod
    def inherited(cls, index, environ=None, defer=DEFER):
        """A worker's board from CLEVERMAIL_BOARD ("fd:slots", taken out of the
        environment), or NO_BOARD when there is none or it is unusable."""
        environ = os.environ if environ is None else environ
        value = environ.pop(ENV, None)
        if value is None:
            return NO_BOARD
        try:
            fd, slots = (int(v) for v in value.split(":"))
        except ValueError:
            return NO_BOARD
        try:
            return cls(fd, slots, index, defer) if 0 < index < slots else NO_BOARD
        except (ValueError, OSError):
            return NO_BOARD
        finally:
            try:
                os.close(fd)        # a mapping keeps the memory; unused, it goes
            except OSError:
                pass

    def environ_value(self):
        """CLEVERMAIL_BOARD's value for the workers (the main process's board)."""
        return f"{self.fd}:{self.slots}"

    def _set(self, index, value):
        SLOT.pack_into(self._map, index * SLOT.size, value)

    def count(self, index):
        return SLOT.unpack_from(self._map, index * SLOT.size)[0]

    def opened(self):
        with self._lock:
            self._open += 1
            self._set(self.index, self._open)

    def closed(self):
        with self._lock:
            self._open -= 1
            self._set(self.index, self._open)

    def ahead(self):
        """True when another running process has fewer connections open than this one."""
        mine = self._open
        for i in self._others:
            other = self.count(i)
            if 0 <= other < mine:
                return True
        return False

    def gone(self, index):
        """Worker `index` is not running (the main process's supervisor says so)."""
        self._set(index, ABSENT)
