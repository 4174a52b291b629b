"""Discrete-event engine: a virtual clock, an event queue and generator processes.

Work due at the same time runs in a fixed order: *urgent* entries (event
triggers, process starts) before *normal* ones (timers, process wake-ups), and
within each kind in the order it was scheduled, i.e. the queue is ordered by
(time, priority, sequence). Urgent entries wait in a FIFO deque. Normal entries
wait in a calendar queue: a bucket holds the entries whose time falls in one
slice ``[k, k + 1) / scale`` of the clock, appended unsorted; a heap of the
bucket numbers ``k`` finds the next bucket, which is sorted by time when it
opens (a stable sort, so entries due at the same time keep their FIFO order)
and then run in that order; entries scheduled into the open bucket are inserted
in place. The width ``1 / scale`` follows the event density (about
:data:`_TARGET` entries a bucket), so distinct times cost a list append instead
of a heap operation each, and exact ties cost no more.

An entry is the list ``[callback, arg, time, owner]``; it doubles as the handle
that :meth:`Engine.cancel` takes (cancelling blanks the callback, and the run
loop skips it). A sleeping process's wake-up entry is ``[_WAKE, generator, time,
process]`` (``owner`` is None in every other entry): the run loop resumes the
generator itself and, if it sleeps again, files the same entry again at its new
time (the hot path of a simulation, so it skips a call and an allocation per
wake-up, and reads the process object only when the generator ends or waits on
something else: with thousands of processes waking in random order, that object
is one more cache miss a wake-up). A run with a horizon leaves the entries past it
in their bucket (:meth:`Engine._open_next`), so the loop needs no check per
entry; between runs no bucket is open.

A process is a generator. It yields a number to sleep that many seconds, or an
:class:`Event` to wait for it; the event's value is sent back in, and a failed
event raises its exception inside the generator. A process is itself an event
that succeeds with the generator's return value, so processes can wait on each
other.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_right, insort
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from heapq import heappop, heappush
from itertools import groupby
from math import floor
from operator import itemgetter, length_hint
from typing import Any

Timer = list
"""Handle of a scheduled callback: the entry ``[callback, arg, time, owner]``; pass it to :meth:`Engine.cancel`."""

_PENDING = object()
_INF = float("inf")
_TIME = itemgetter(2)
_WAKE: Any = object()
"""The ``callback`` of a sleeping process's wake-up entry ``[_WAKE, generator, time, process]``, which the run loop
resumes inline."""
_TARGET = 32
"""Entries a bucket the width is tuned for: enough to spread the heap and dict work, few enough to sort fast."""
_MIN_WINDOW = 4096
"""Entries opened between two looks at the density; a rescale re-files every pending entry, so the next look
waits at least that many entries."""
_MIN_SCALE, _MAX_SCALE = 2.0**-30, 2.0**30


def _bucket(time: float, scale: float) -> float:
    """Bucket number of ``time``: monotone in ``time``, so buckets open in time order; +-inf past every float."""
    try:
        return floor(time * scale)
    except OverflowError:
        return time * scale


class Interrupt(Exception):
    """Raised inside a process by :meth:`Process.interrupt`; ``cause`` says why."""

    def __init__(self, cause: Any = None) -> None:
        super().__init__(cause)
        self.cause = cause


class _StopRun(Exception):
    """Unwinds :meth:`Engine.run` when its ``until`` event has fired."""


class Engine:
    """Virtual clock in seconds plus the event queue.

    Parameters
    ----------
    start : float
        Initial value of :attr:`now`.
    trace : bool
        Record ``(time, label)`` for every callback run, in :attr:`trace`, to
        check that two runs are identical.
    """

    __slots__ = (
        "now",
        "trace",
        "steps",
        "_urgent",
        "_buckets",
        "_keys",
        "_scale",
        "_open_key",
        "_open",
        "_iter",
        "_seen",
        "_window",
        "_window_key",
        "_horizon",
    )

    def __init__(self, start: float = 0.0, trace: bool = False) -> None:
        self.now = float(start)
        self.trace: list[tuple[float, str]] | None = [] if trace else None
        self.steps = 0
        """Callbacks run so far (the engine's event count)."""
        self._urgent: deque[Timer] = deque()
        self._buckets: dict[float, list[Timer]] = {}  # bucket number -> its entries, unsorted
        self._keys: list[float] = []  # heap of the bucket numbers in _buckets
        self._scale = 1.0  # buckets per second
        self._open_key: float | None = None  # number of the bucket being run (no longer in _buckets), if any
        self._open: list[Timer] = []  # that bucket, sorted
        self._iter: Iterator[Timer] = iter(self._open)  # its entries not run yet
        self._horizon = _INF  # of the run under way: _open_next leaves later entries in their bucket
        self._seen, self._window, self._window_key = 0, _MIN_WINDOW, _bucket(self.now, 1.0)  # for _adapt

    # -- scheduling ---------------------------------------------------------
    def schedule(self, delay: float, callback: Callable[[Any], Any], arg: Any = None) -> Timer:
        """Call ``callback(arg)`` after ``delay`` seconds; returns a cancellable handle. (``_WAKE`` with a generator
        is the engine's own wake-up entry of a sleeping process, which the run loop resumes: Process._sleep.)"""
        if not delay >= 0:  # also rejects NaN
            raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
        time = self.now + delay
        entry = [callback, arg, time, None]
        key: float
        try:  # _bucket(time, self._scale), inline on this hot path
            key = floor(time * self._scale)
        except OverflowError:
            key = time * self._scale
        if key == self._open_key:  # _insert_open, inline on this hot path
            if time > self._horizon:
                self._file(key, [entry])
            else:
                insort(self._open, entry, len(self._open) - length_hint(self._iter), key=_TIME)
        else:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._buckets[key] = [entry]
                heappush(self._keys, key)
            else:
                bucket.append(entry)
        return entry

    def schedule_urgent(self, callback: Callable[[Any], Any], arg: Any = None) -> Timer:
        """Call ``callback(arg)`` now, before any normal entry still due now."""
        entry = [callback, arg, self.now, None]
        self._urgent.append(entry)
        return entry

    @staticmethod
    def cancel(timer: Timer) -> None:
        """Cancel a handle returned by :meth:`schedule`; cancelling twice is harmless."""
        timer[0] = None

    def peek(self) -> float:
        """Time of the next pending entry (``inf`` when nothing is scheduled)."""
        if self._urgent:
            return self.now
        left = length_hint(self._iter) if self._open_key is not None else 0
        if left:
            return self._open[-left][2]
        if self._keys:
            return min(self._buckets[self._keys[0]], key=_TIME)[2]
        return _INF

    # -- running ------------------------------------------------------------
    def run(self, until: float | Event | None = None) -> None:
        """Run until nothing is left, the clock would pass ``until``, or the event ``until`` is processed."""
        if isinstance(until, Event):
            if until.processed:
                return
            until.add_callback(self._request_stop)
            with contextlib.suppress(_StopRun):
                self._run(_INF)
            return
        horizon = _INF if until is None else float(until)
        if horizon < self.now:
            raise ValueError(f"until={until!r} is before now={self.now!r}")
        self._run(horizon)
        if until is not None:
            self.now = horizon

    def _request_stop(self, _: Any) -> None:
        self.schedule_urgent(_raise_stop)

    def _run(self, horizon: float) -> None:
        urgent, trace, floor_, float_, type_, wake = self._urgent, self.trace, floor, float, type, _WAKE
        steps = 0  # urgent callbacks run, plus the entries taken from buckets (counted a bucket at a time)
        self._horizon = horizon
        try:
            if urgent:
                steps += self._run_urgent()
            while (it := self._open_next()) is not None:
                buckets, scale, open_key = self._buckets, self._scale, self._open_key  # fixed while a bucket is open
                for entry in it if trace is None else _traced(it, trace):
                    callback, arg, time, owner = entry
                    self.now = time
                    if callback is wake:  # a sleeping process wakes: Process._resume inline, refiling its entry
                        try:
                            delay = arg.send(None)
                        except BaseException as exc:
                            owner._end(exc)
                        else:
                            if type_(delay) is float_ and delay >= 0.0:
                                time += delay
                                entry[2] = time
                                key: float
                                try:  # _bucket(time, scale) and Engine.schedule, inline
                                    key = floor_(time * scale)
                                except OverflowError:
                                    key = time * scale
                                if key == open_key:
                                    self._insert_open(entry)
                                else:
                                    try:
                                        buckets[key].append(entry)
                                    except KeyError:
                                        buckets[key] = [entry]
                                        heappush(self._keys, key)
                            else:
                                owner._follow(delay)
                    elif callback is not None:
                        callback(arg)
                    else:  # cancelled
                        steps -= 1
                        continue
                    if urgent:
                        steps += self._run_urgent()
                steps += len(self._open)
        except BaseException:
            if self._open_key is not None:  # a callback raised: its entry counts, the rest goes back
                steps += len(self._open) - length_hint(self._iter)
                self._close()
            raise
        finally:
            self.steps += steps

    def _run_urgent(self) -> int:
        """Run the urgent entries (including those they schedule); returns how many callbacks ran."""
        urgent, trace, ran = self._urgent, self.trace, 0
        while urgent:
            callback, arg, _, _ = urgent.popleft()
            if callback is not None:
                ran += 1
                if trace is not None:
                    trace.append((self.now, _label(callback)))
                try:
                    callback(arg)
                except BaseException:
                    self.steps += ran
                    raise
        return ran

    def _open_next(self) -> Iterator[Timer] | None:
        """Open the earliest bucket, sorted by time (stably: FIFO among ties), less its entries due after the run's
        horizon, which go back; None when nothing is left to run before the horizon."""
        if not self._keys:
            self._open_key = None
            return None
        key = heappop(self._keys)
        bucket = self._buckets.pop(key)
        self._seen += len(bucket)
        if self._seen >= self._window and self._adapt(key, bucket):
            return self._open_next()
        if len(bucket) > 1:
            bucket.sort(key=_TIME)
        if bucket[-1][2] > self._horizon:
            cut = bisect_right(bucket, self._horizon, key=_TIME)
            self._buckets[key] = bucket[cut:]
            heappush(self._keys, key)
            del bucket[cut:]
            if not bucket:
                self._open_key = None
                return None
        self._open_key, self._open = key, bucket
        self._iter = it = iter(bucket)
        return it

    def _insert_open(self, entry: Timer) -> None:
        """File ``entry`` in the open bucket, after the entries due at its time, among those not run yet (an entry
        already run may have been filed again, with a later time); past the run's horizon, in the bucket instead."""
        if entry[2] > self._horizon:
            assert self._open_key is not None  # called on the open bucket only
            self._file(self._open_key, [entry])
        else:
            insort(self._open, entry, len(self._open) - length_hint(self._iter), key=_TIME)

    def _close(self) -> None:
        """Put the open bucket's entries not run yet back in the queue, before its entries past the horizon."""
        key, self._open_key = self._open_key, None
        assert key is not None  # called from _run, on the open bucket
        self._file(key, self._open[len(self._open) - length_hint(self._iter) :], first=True)

    def _file(self, key: float, entries: list[Timer], first: bool = False) -> None:
        """Add ``entries`` to bucket ``key`` (after its entries, or before them if ``first``)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if entries:
                self._buckets[key] = entries
                heappush(self._keys, key)
        elif first:
            self._buckets[key] = entries + bucket
        else:
            bucket += entries

    def _adapt(self, key: float, bucket: list[Timer]) -> bool:
        """Retune the bucket width to the event density seen lately; True if ``bucket`` went back to the queue."""
        per_bucket = self._seen / (key - self._window_key + 1)
        self._seen, self._window_key = 0, key
        if _TARGET / 4 <= per_bucket <= _TARGET * 4 or per_bucket == 0:
            return False
        scale = min(max(self._scale * per_bucket / _TARGET, _MIN_SCALE), _MAX_SCALE)
        if scale == self._scale:
            return False
        entries = bucket
        for old in self._buckets.values():
            entries += old
        entries.sort(key=_TIME)  # stable: ties were in one bucket, in FIFO order, and stay so
        self._scale = scale
        self._buckets = {k: list(group) for k, group in groupby(entries, key=lambda e: _bucket(e[2], scale))}
        self._keys = list(self._buckets)  # increasing, so already a heap
        self._window = max(_MIN_WINDOW, len(entries))
        self._window_key = self._keys[0]
        return True

    # -- factories ----------------------------------------------------------
    def event(self) -> Event:
        """A new untriggered event."""
        return Event(self)

    def timeout(self, delay: float, value: Any = None) -> Event:
        """An event that succeeds with ``value`` after ``delay`` seconds."""
        ev = Event(self)
        ev._value = value
        self.schedule(delay, ev._fire)
        return ev

    def process(self, generator: Generator, name: str | None = None) -> Process:
        """Start ``generator`` as a process at the current time."""
        return Process(self, generator, name)

    def any_of(self, events: Iterable[Event]) -> Event:
        """An event that succeeds with the first of ``events`` to fire (the event itself)."""
        events = list(events)
        if not events:
            raise ValueError("any_of needs at least one event")
        result = Event(self)

        def first(ev: Event) -> None:
            if result._value is _PENDING:
                if ev._ok:
                    result.succeed(ev)
                else:
                    result.fail(ev._value)

        for ev in events:
            ev.add_callback(first)
        return result


def _raise_stop(_: Any) -> None:
    raise _StopRun


class Event:
    """Something that happens once: it succeeds with a value or fails with an exception."""

    __slots__ = ("engine", "callbacks", "_value", "_ok")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.callbacks: list[Callable[[Event], Any]] | None = []
        self._value: Any = _PENDING
        self._ok = True

    @property
    def triggered(self) -> bool:
        """True once :meth:`succeed` or :meth:`fail` was called."""
        return self._value is not _PENDING

    @property
    def processed(self) -> bool:
        """True once the callbacks have run."""
        return self.callbacks is None

    @property
    def ok(self) -> bool:
        """True unless the event failed."""
        return self._ok

    @property
    def value(self) -> Any:
        """The value (or exception) the event was triggered with."""
        if self._value is _PENDING:
            raise RuntimeError("event has not been triggered yet")
        return self._value

    def succeed(self, value: Any = None) -> Event:
        """Trigger the event; its callbacks run at the current time, before other work."""
        if self._value is not _PENDING:
            raise RuntimeError("event already triggered")
        self._value = value
        self.engine.schedule_urgent(self._fire)
        return self

    def fail(self, exception: BaseException) -> Event:
        """Trigger the event with an exception, raised in every process waiting on it."""
        if not isinstance(exception, BaseException):
            raise TypeError(f"fail() needs an exception, got {exception!r}")
        if self._value is not _PENDING:
            raise RuntimeError("event already triggered")
        self._value, self._ok = exception, False
        self.engine.schedule_urgent(self._fire)
        return self

    def add_callback(self, callback: Callable[[Event], Any]) -> None:
        """Call ``callback(event)`` when the event is processed (now, via the heap, if it already was)."""
        if self.callbacks is None:
            self.engine.schedule_urgent(callback, self)
        else:
            self.callbacks.append(callback)

    def _fire(self, _: Any) -> None:
        callbacks, self.callbacks = self.callbacks, None
        assert callbacks is not None  # succeed() and fail() schedule _fire once, before any other run
        for callback in callbacks:
            callback(self)


class Process(Event):
    """A generator driven by the engine; as an event it succeeds with the return value."""

    __slots__ = ("_gen", "_target", "name")

    def __init__(self, engine: Engine, generator: Generator, name: str | None = None) -> None:
        if not hasattr(generator, "send"):
            raise TypeError(f"process() needs a generator, got {generator!r}")
        super().__init__(engine)
        self._gen = generator
        self.name: str = name if name else getattr(generator, "__qualname__", "process")
        self._target: Timer | Event | None = engine.schedule_urgent(self._resume)

    @property
    def is_alive(self) -> bool:
        """True until the generator returns or raises."""
        return self._value is _PENDING

    def interrupt(self, cause: Any = None) -> None:
        """Raise :class:`Interrupt` in the process at the current time, abandoning what it waits for."""
        if self._value is not _PENDING:
            raise RuntimeError(f"{self.name} has terminated and cannot be interrupted")
        target = self._target
        if isinstance(target, Event):
            if target.callbacks is not None and self._on_event in target.callbacks:
                target.callbacks.remove(self._on_event)
        elif target is not None:  # a wake-up entry: cancelled, its generator and process dropped
            target[0] = target[1] = target[3] = None
        self._target = self.engine.schedule_urgent(self._throw, Interrupt(cause))

    def _resume(self, value: Any) -> None:
        try:
            target = self._gen.send(value)
        except BaseException as exc:
            self._end(exc)
            return
        self._follow(target)

    def _follow(self, target: Any) -> None:
        """Sleep or wait on what the generator yielded."""
        if type(target) is float:  # a delay (a negative or NaN one: schedule() raises its ValueError out of run())
            self._target = self._sleep(target)
        else:
            self._wait(target)

    def _sleep(self, delay: float) -> Timer:
        """File the process's wake-up entry ``delay`` seconds from now (the run loop files it again while it sleeps)."""
        entry = self.engine.schedule(delay, _WAKE, self._gen)
        entry[3] = self
        return entry

    def _throw(self, exception: BaseException) -> None:
        try:
            target = self._gen.throw(exception)
        except BaseException as exc:
            self._end(exc)
            return
        self._wait(target)

    def _on_event(self, event: Event) -> None:
        if event._ok:
            self._resume(event._value)
        else:
            self._throw(event._value)

    def _wait(self, target: Any) -> None:
        if isinstance(target, Event):
            self._target = target
            target.add_callback(self._on_event)
        elif isinstance(target, (int, float)) and not isinstance(target, bool) and target >= 0:
            self._target = self._sleep(float(target))
        else:
            self._target = None
            self._throw(TypeError(f"{self.name} yielded {target!r}; yield a delay >= 0 in seconds or an Event"))

    def _end(self, exc: BaseException) -> None:
        self._target = None
        if isinstance(exc, StopIteration):
            self.succeed(exc.value)
        elif self.callbacks:
            self.fail(exc)
        else:  # nobody waits on this process: crash loudly
            raise exc


def _traced(entries: Iterator[Timer], trace: list[tuple[float, str]]) -> Iterator[Timer]:
    """``entries``, recording each one not cancelled in ``trace`` as it is taken."""
    for entry in entries:
        if entry[0] is not None:
            trace.append((entry[2], _label(entry[0] if entry[3] is None else entry[3])))
        yield entry


def _label(callback: Callable) -> str:
    owner = callback if isinstance(callback, Process) else getattr(callback, "__self__", None)
    if isinstance(owner, Process):
        return owner.name
    return getattr(callback, "__qualname__", type(callback).__name__)
