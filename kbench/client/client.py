"""A component's API client with client-side rate limiting (k8s.io/client-go/util/flowcontrol)."""

from __future__ import annotations

from kbench.apiserver.server import APIServer, Callback, Connection
from kbench.sim import Timer

DEFAULT_QPS, DEFAULT_BURST = 5.0, 10
"""client-go rest.Config defaults (DefaultQPS, DefaultBurst)."""


class TokenBucket:
    """golang.org/x/time/rate.Limiter as client-go's tokenBucketRateLimiter uses it: ``qps`` tokens per second,
    at most ``burst`` saved; ``reserve(t)`` returns how long a request made at ``t`` waits."""

    def __init__(self, qps: float, burst: int) -> None:
        if not qps > 0 or burst < 1:
            raise ValueError(f"qps must be > 0 and burst >= 1; got {qps}, {burst}")
        self.qps, self.burst = qps, burst
        self.tokens = float(burst)
        self.last = 0.0

    def try_accept(self, t: float) -> bool:
        """TryAccept: take a token if one is there at ``t`` (nothing is borrowed when none is)."""
        if t > self.last:
            self.tokens = min(self.burst, self.tokens + (t - self.last) * self.qps)
            self.last = t
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def reserve(self, t: float) -> float:
        """Reserve: take a token at ``t`` (borrowing one if none is there); how long the request waits for it."""
        if t > self.last:
            self.tokens = min(self.burst, self.tokens + (t - self.last) * self.qps)
            self.last = t
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.qps + max(0.0, self.last - t)


class Client:
    """A clientset: requests as ``user`` through one apiserver connection, paced by its own token bucket (watches
    are not).

    Parameters
    ----------
    server : APIServer
    user, groups
        Who the requests are from.
    qps, burst
        The client-side rate limit (``rest.Config`` QPS / Burst): each Client has its own bucket, as each clientset
        ``kubernetes.NewForConfig`` builds gets its own ``flowcontrol.NewTokenBucketRateLimiter``.
    connection : Connection, optional
        The connection to send on; by default a new one (pinned to an instance by the load balancer). Clients of
        one process share one (client-go's transport cache gives clientsets of the same rest.Config one HTTP/2
        connection).
    """

    def __init__(
        self,
        server: APIServer,
        user: str,
        groups: tuple[str, ...] = (),
        qps: float = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
        connection: Connection | None = None,
    ) -> None:
        self.server = server
        self.engine = server.engine
        self.conn = connection if connection is not None else server.connect(user, groups)
        self.limiter = TokenBucket(qps, burst)

    def request(self, verb: str, resource: str, callback: Callback, delay: float = 0.0, **kwargs) -> Timer:
        """Send a request ``delay`` seconds from now, after the rate limiter; see ``Connection.request`` (it returns
        the request's cancellable handle)."""
        if verb != "watch":
            delay += self.limiter.reserve(self.engine.now + delay)
        return self.conn.request(verb, resource, callback, delay=delay, **kwargs)

    def call(self, verb: str, resource: str, **kwargs):
        """The request as an Event for processes (fails with the APIError)."""
        done = self.engine.event()

        def answer(result, error, delay):
            self.engine.schedule(
                delay, done.fail if error is not None else done.succeed, error if error is not None else result
            )

        self.request(verb, resource, answer, **kwargs)
        return done
