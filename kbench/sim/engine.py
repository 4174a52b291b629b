"""Discrete-event engine: a virtual clock, an event queue and generator processes.

Work due at the same time runs in a fixed order: *urgent* entries (event
triggers, process starts) before *normal* ones (timers, process wake-ups), and
within each kind in the order it was scheduled, i.e. the queue is ordered by
(time, priority, sequence). The queue is a heap of distinct float times (fast C
comparisons) plus a dict from time to the FIFO list of entries due then.
An entry is the list ``[callback, arg]``; it doubles as the handle that
:meth:`Engine.cancel` takes (cancelling blanks the callback, and the run loop
skips it).

A process is a generator. It yields a number to sleep that many seconds, or an
:class:`Event` to wait for it; the event's value is sent back in, and a failed
event raises its exception inside the generator. A process is itself an event
that succeeds with the generator's return value, so processes can wait on each
other.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Generator, Iterable
from heapq import heappop, heappush
from typing import Any

Timer = list
"""Handle of a scheduled callback: the entry ``[callback, arg]``; pass it to :meth:`Engine.cancel`."""

_PENDING = object()


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

    __slots__ = ("now", "_times", "_slots", "_urgent", "trace", "steps")

    def __init__(self, start: float = 0.0, trace: bool = False) -> None:
        self.now = float(start)
        self._times: list[float] = []
        self._slots: dict[float, list[Timer]] = {}
        self._urgent: deque[Timer] = deque()
        self.trace: list[tuple[float, str]] | None = [] if trace else None
        self.steps = 0
        """Callbacks run so far (the engine's event count)."""

    # -- scheduling ---------------------------------------------------------
    def schedule(self, delay: float, callback: Callable[[Any], Any], arg: Any = None) -> Timer:
        """Call ``callback(arg)`` after ``delay`` seconds; returns a cancellable handle."""
        if not delay >= 0:  # also rejects NaN
            raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
        time = self.now + delay
        entry = [callback, arg]
        slot = self._slots.get(time)
        if slot is None:
            self._slots[time] = [entry]
            heappush(self._times, time)
        else:
            slot.append(entry)
        return entry

    def schedule_urgent(self, callback: Callable[[Any], Any], arg: Any = None) -> Timer:
        """Call ``callback(arg)`` now, before any normal entry still due now."""
        entry = [callback, arg]
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
        return self._times[0] if self._times else float("inf")

    # -- running ------------------------------------------------------------
    def run(self, until: float | Event | None = None) -> None:
        """Run until nothing is left, the clock would pass ``until``, or the event ``until`` is processed."""
        if isinstance(until, Event):
            if until.processed:
                return
            until.add_callback(self._request_stop)
            with contextlib.suppress(_StopRun):
                self._run(float("inf"))
            return
        horizon = float("inf") if until is None else float(until)
        if horizon < self.now:
            raise ValueError(f"until={until!r} is before now={self.now!r}")
        self._run(horizon)
        if until is not None:
            self.now = horizon

    def _request_stop(self, _: Any) -> None:
        self.schedule_urgent(_raise_stop)

    def _run(self, horizon: float) -> None:
        times, slots, urgent, trace = self._times, self._slots, self._urgent, self.trace
        steps, bucket, pos = 0, None, 0
        try:
            while True:
                while urgent:
                    callback, arg = urgent.popleft()
                    if callback is not None:
                        steps += 1
                        if trace is not None:
                            trace.append((self.now, _label(callback)))
                        callback(arg)
                if not times or times[0] > horizon:
                    break
                self.now = time = heappop(times)
                bucket, pos = slots.pop(time), 0
                for callback, arg in bucket:
                    pos += 1
                    if callback is not None:
                        steps += 1
                        if trace is not None:
                            trace.append((time, _label(callback)))
                        callback(arg)
                        if urgent:
                            while urgent:
                                ucallback, uarg = urgent.popleft()
                                if ucallback is not None:
                                    steps += 1
                                    if trace is not None:
                                        trace.append((time, _label(ucallback)))
                                    ucallback(uarg)
                bucket = None
        except BaseException:
            if bucket is not None and pos < len(bucket):
                self._requeue_front(bucket[pos:])
            raise
        finally:
            self.steps += steps

    def _requeue_front(self, entries: list[Timer]) -> None:
        """Put entries of an interrupted bucket back ahead of anything scheduled since."""
        later = self._slots.get(self.now)
        if later is None:
            heappush(self._times, self.now)
            self._slots[self.now] = entries
        else:
            self._slots[self.now] = entries + later

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

    __slots__ = ("_gen", "_target", "_wake", "name")

    def __init__(self, engine: Engine, generator: Generator, name: str | None = None) -> None:
        if not hasattr(generator, "send"):
            raise TypeError(f"process() needs a generator, got {generator!r}")
        super().__init__(engine)
        self._gen = generator
        self.name: str = name if name else getattr(generator, "__qualname__", "process")
        self._wake = self._resume  # one bound method, reused for every wake-up
        self._target: Timer | Event | None = engine.schedule_urgent(self._wake)

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
        elif target is not None:
            target[0] = None
        self._target = self.engine.schedule_urgent(self._throw, Interrupt(cause))

    def _resume(self, value: Any) -> None:
        try:
            target = self._gen.send(value)
        except BaseException as exc:
            self._end(exc)
            return
        if target.__class__ is float:  # the hot path: sleep
            self._target = self.engine.schedule(target, self._wake)
        else:
            self._wait(target)

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
            self._target = self.engine.schedule(float(target), self._wake)
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


def _label(callback: Callable) -> str:
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, Process):
        return owner.name
    return getattr(callback, "__qualname__", type(callback).__name__)
