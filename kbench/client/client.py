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
            tokens = self.tokens + (t - self.last) * self.qps
            self.tokens = tokens if tokens < self.burst else self.burst  # min(burst, tokens), without its call
            self.last = t
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def reserve(self, t: float) -> float:
        """Reserve: take a token at ``t`` (borrowing one if none is there); how long the request waits for it."""
        if t > self.last:
            tokens = self.tokens + (t - self.last) * self.qps
            self.tokens = tokens if tokens < self.burst else self.burst  # min(burst, tokens), without its call
            self.last = t
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.qps + (self.last - t)  # self.last >= t by now


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
        """Send a request ``delay`` seconds from now; see ``Connection.request``.

        It takes its token from the rate limiter when its send time comes, as rest.Request's ``tryThrottle``
        calls ``rateLimiter.Wait`` just before the request goes out (k8s.io/client-go/rest/request.go), so a
        request scheduled ahead (a Lease renewal 10 s away) holds up none sent before it. Watches are not
        rate-limited. Returns the request's handle: cancelling it (``Engine.cancel``) before the request leaves
        (its send time, then any wait for a token) takes it back.
        """
        if verb == "watch":
            return self.conn.request(verb, resource, callback, delay=delay, **kwargs)
        if not delay >= 0:  # also rejects NaN
            raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
        if delay > 0:
            scheduled = _Scheduled(self, verb, resource, callback, kwargs)
            scheduled.handle = self.engine.schedule(delay, scheduled.due)
            return scheduled.handle
        wait = self.limiter.reserve(self.engine.now)
        return self.conn.request(verb, resource, callback, delay=wait, **kwargs)

    def call(self, verb: str, resource: str, **kwargs):
        """The request as an Event for processes (fails with the APIError)."""
        done = self.engine.event()

        def answer(result, error, delay):
            self.engine.schedule(
                delay, done.fail if error is not None else done.succeed, error if error is not None else result
            )

        self.request(verb, resource, answer, **kwargs)
        return done


class _Scheduled:
    """A request scheduled ahead: at its send time it waits for a token, then goes out unless its handle (the entry
    of its send time) has been cancelled meanwhile."""

    __slots__ = ("client", "verb", "resource", "callback", "kwargs", "handle")

    def __init__(self, client: Client, verb: str, resource: str, callback: Callback, kwargs: dict) -> None:
        self.client, self.verb, self.resource, self.callback, self.kwargs = client, verb, resource, callback, kwargs
        self.handle: Timer = []
        """The entry of its send time (:meth:`Client.request` schedules :meth:`due` and sets it)."""

    def due(self, _) -> None:
        """The send time: take a token, then leave at once, or wait for the token if there is none."""
        client = self.client
        wait = client.limiter.reserve(client.engine.now)
        if wait > 0:
            client.engine.schedule(wait, self.leave)
        else:  # the handle is live: due runs only when it was not cancelled
            self.handle = []  # drops the cycle (see leave)
            client.conn.request(self.verb, self.resource, self.callback, **self.kwargs)

    def leave(self, _) -> None:
        """The token is there: the request goes out, unless it was taken back while it waited."""
        # The handle holds ``due``, which holds self: a reference cycle, which the collector, frozen during long runs
        # (kbench.sim.collector.settle), would keep with its request until the run ends; dropping it frees both.
        handle, self.handle = self.handle, []
        if handle[0] is not None:
            self.client.conn.request(self.verb, self.resource, self.callback, **self.kwargs)
