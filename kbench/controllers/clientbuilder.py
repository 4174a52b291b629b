"""The controller managers' client builder (k8s.io/controller-manager/pkg/clientbuilder, v1.35).

kube-controller-manager and cloud-controller-manager hand every controller a client of its own:
``SimpleControllerClientBuilder.ClientOrDie(name)`` copies the process's ``rest.Config`` (``--kube-api-qps``,
``--kube-api-burst``), sets the user agent to ``name`` and builds a new clientset, and a new clientset has a new
token bucket. So each controller is paced at the configured QPS on its own, and so are the shared informers
(``ClientOrDie("shared-informers")``) and leader election (its own ``leader-election`` client). All of them send
on the process's one connection (client-go's transport cache gives clients of one rest.Config one HTTP/2
connection), so the apiserver sees one connection pinned to one instance.

:meth:`SimpleControllerClientBuilder.new_client` is the one place that decides "one bucket per client".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kbench.apiserver.server import APIServer
from kbench.client import Client


@dataclass(frozen=True)
class RestConfig:
    """The parts of client-go's ``rest.Config`` kbench models: who the requests are from and how fast they go."""

    user: str
    qps: float
    burst: int
    user_agent: str = ""

    def scaled(self, qps: float = 1.0, burst: float = 1.0) -> RestConfig:
        """A copy with QPS and burst multiplied (kube-controller-manager gives some controllers more)."""
        return replace(self, qps=self.qps * qps, burst=int(self.burst * burst))


class SimpleControllerClientBuilder:
    """clientbuilder.SimpleControllerClientBuilder: a new client per ``client_or_die(name)``, each with its own
    token bucket, all on one connection as the process's user.

    Parameters
    ----------
    server : APIServer
    config : RestConfig
        The process's configuration (its user, ``--kube-api-qps``, ``--kube-api-burst``).
    """

    def __init__(self, server: APIServer, config: RestConfig) -> None:
        self.server, self.config = server, config
        self.connection = server.connect(config.user)
        self.clients: dict[str, list[Client]] = {}
        """user agent -> the clients built for it (for tests and taps)."""

    def config_or_die(self, name: str) -> RestConfig:
        """ConfigOrDie: the process's configuration with user agent ``name``."""
        return replace(self.config, user_agent=name)

    def client_or_die(self, name: str) -> Client:
        """ClientOrDie: a new client for ``name`` (``kubernetes.NewForConfig(ConfigOrDie(name))``)."""
        return self.new_client(self.config_or_die(name))

    def new_client(self, config: RestConfig) -> Client:
        """``kubernetes.NewForConfig(config)``: a new client, so a new token bucket at ``config``'s QPS and burst.

        This is where upstream's "one token bucket per controller" lives: every controller, the shared informers
        and leader election get their own bucket here (to compare against all of a process's requests sharing
        one bucket, return one cached client from this method instead).
        """
        client = Client(self.server, config.user, qps=config.qps, burst=config.burst, connection=self.connection)
        self.clients.setdefault(config.user_agent, []).append(client)
        return client
