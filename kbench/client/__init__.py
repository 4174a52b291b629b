"""How components talk to the apiserver (client-go's shape): a rate-limited client, informers, workqueues.

- :class:`Client`: one connection as a user, with client-side QPS / burst (``rest.Config``; client-go's
  default is 5 QPS / 10 burst, components set their own).
- :class:`Informer`: list, then watch from the list's resourceVersion; a local cache; add / update / delete
  handlers; periodic resync; a watch that gets 410 Gone relists and replays the differences.
- :class:`WorkQueue`: deduplicating, rate-limited queue with workers (``DefaultControllerRateLimiter``: the
  larger of per-item exponential backoff, 5 ms doubling to 1000 s, and a 10 QPS / 100 burst bucket).
- :func:`update_fresh`: read-modify-write retried on 409 Conflict with a fresh read (``retry.RetryOnConflict``).
"""

from kbench.client.client import Client, TokenBucket
from kbench.client.informer import Informer
from kbench.client.retry import Backoff, is_conflict, update_fresh
from kbench.client.workqueue import WorkQueue

__all__ = ["Backoff", "Client", "Informer", "TokenBucket", "WorkQueue", "is_conflict", "update_fresh"]
