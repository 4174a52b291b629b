"""DefaultBinder (``plugins/defaultbinder``): binds the pod by a ``pods/binding`` request through the handle."""

from __future__ import annotations

from typing import Any

from kbench.api.core import Pod
from kbench.scheduler.interface import Plugin


class DefaultBinder(Plugin):
    """Bind: ``POST pods/<name>/binding`` with the chosen node (the handle's ``binder``)."""

    name = "DefaultBinder"
    points = ("bind",)

    def bind(self, pod: Pod, node: str) -> Any:
        """Start binding ``pod`` to ``node``; returns the event that fires when the request is answered."""
        if self.handle.binder is None:
            raise RuntimeError(f"DefaultBinder: no binder to bind pod {pod.key}; give the Framework one")
        return self.handle.binder(pod, node)
