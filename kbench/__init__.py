"""kbench: a discrete-event performance benchmark suite for Kubernetes control planes and node layers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
