"""Fixtures: a real etcd (Debian's etcd-server) on 127.0.0.1 with free ports and a temporary data dir."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from kbench.etcd.gateway import Gateway


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data_root() -> str | None:
    shm = Path("/dev/shm")  # tmpfs: keeps etcd's fsyncs from dominating the test's time
    return str(shm) if shm.is_dir() else None


@pytest.fixture(scope="session")
def etcd_binary() -> str:
    binary = shutil.which("etcd") or (Path("/usr/bin/etcd").exists() and "/usr/bin/etcd")
    if not binary:
        pytest.skip("the etcd binary is absent: install Debian's etcd-server (.ci/run does) to run this test")
    return binary


@contextlib.contextmanager
def _running_etcd(binary: str):
    """A fresh single-member etcd on 127.0.0.1; yields a Gateway to it and stops it afterwards."""
    client, peer = _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="kbench-etcd-", dir=_data_root()) as data:
        url = f"http://127.0.0.1:{client}"
        proc = subprocess.Popen(
            [
                binary,
                "--name",
                "kbench-test",
                "--data-dir",
                data,
                "--listen-client-urls",
                url,
                "--advertise-client-urls",
                url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"kbench-test=http://127.0.0.1:{peer}",
                "--log-level",
                "error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(url + "/health", timeout=1) as resp:
                        if b'"health":"true"' in resp.read():
                            break
                except OSError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"etcd exited: {proc.stderr.read().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("etcd did not become healthy within 30 s")
                time.sleep(0.1)
            yield Gateway(url)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def etcd(etcd_binary):
    """A fresh single-member etcd for the session; yields a Gateway to it."""
    with _running_etcd(etcd_binary) as gateway:
        yield gateway


@pytest.fixture
def fresh_etcd(etcd_binary):
    """A single-member etcd of the test's own, started empty."""
    with _running_etcd(etcd_binary) as gateway:
        yield gateway
