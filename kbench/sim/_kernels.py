"""Compiled pieces shared by kbench's Numba kernels: random draws, and busy spans staged for a busy-time record.

``splitmix_unit`` is the compiled twin of :func:`kbench.scheduler.select.next_unit`:
one splitmix64 step on a one-element ``uint64`` state array, returning u in (0, 1].
``splitmix_step`` is the same step on a scalar state, for loops that keep the state in a register.
``stage_span`` is :meth:`kbench.sim.busy.BusyTime.add` for a compiled timing model (the etcd member set's write
timing, :func:`kbench.etcd._kernels.book`): the span goes to a stage in the model's state array, which its front
moves to the record (:meth:`~kbench.sim.busy.BusyTime.unstage`) before the stage fills and before the record is read.
"""

import numpy as np
from numba import njit


# _nrt=False (compile without Numba's reference-counting runtime: these kernels allocate nothing) is a private
# njit option that numba's type stubs do not list; hence the targeted ignores below
@njit(cache=True, inline="always", error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def splitmix_step(state):
    """(next state, u in (0, 1])."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return state, float((z >> np.uint64(11)) + np.uint64(1)) * 2.0**-53


@njit(cache=True, error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def splitmix_unit(rng):
    """Advance the one-element ``uint64`` state ``rng`` by one splitmix64 step; return u in (0, 1]."""
    state, u = splitmix_step(rng[0])
    rng[0] = state
    return u


@njit(cache=True, inline="always")
def stage_span(buffer, count, first, start, end):
    """Stage the busy span ``start``-``end`` as :meth:`kbench.sim.busy.BusyTime.add` takes one (a span of no time is
    nothing; a NaN or an infinite time is refused): its bounds go to ``buffer[first + buffer[count]:]``, and
    ``buffer[count]`` (the bounds staged) grows by two. The caller keeps room for them."""
    if -np.inf < start < end < np.inf:
        n = int(buffer[count])
        buffer[first + n] = start
        buffer[first + n + 1] = end
        buffer[count] = n + 2
    elif not end <= start:
        raise ValueError("busy time: a span's start and end must be finite numbers")
