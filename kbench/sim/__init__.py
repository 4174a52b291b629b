"""Discrete-event simulation core: engine, processes, named random streams, distributions."""

from kbench.sim.dist import (
    Constant,
    Distribution,
    Empirical,
    Exponential,
    LogNormal,
    Uniform,
    from_spec,
)
from kbench.sim.engine import Engine, Event, Interrupt, Process, Timer
from kbench.sim.resource import Resource
from kbench.sim.rng import Streams

__all__ = [
    "Constant",
    "Distribution",
    "Empirical",
    "Exponential",
    "LogNormal",
    "Uniform",
    "from_spec",
    "Engine",
    "Event",
    "Interrupt",
    "Process",
    "Timer",
    "Streams",
    "Resource",
]
