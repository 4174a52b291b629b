"""Compiled random draws shared by kbench's Numba kernels.

``splitmix_unit`` is the compiled twin of :func:`kbench.scheduler.select.next_unit`:
one splitmix64 step on a one-element ``uint64`` state array, returning u in (0, 1].
``splitmix_step`` is the same step on a scalar state, for loops that keep the state in a register.
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
