"""Lua scripts on the Redis server behind Django's Redis cache: one held connection per process.

The rate limiter runs one Lua script per request, and the extraction monitor one more on monitored
deployments. Through Django's ``RedisCache`` a script call used to cost three layers of client overhead: a
new ``redis.Redis`` client per ``get_client`` call (about 60 us), a connection checked out of the pool and
back per command, with a readiness poll (about 20 us), and ``redis-py``'s command wrapper (retries,
observability hooks: about 20 us), for a round trip that takes 15 us on a bare connection. Here each
process holds one connection of the cache backend's pool and sends ``EVALSHA`` on it directly (redis-py's
``Connection.send_packed_command`` / ``read_response``), under a lock so that threads may share it. The command
is packed here, into one buffer (:func:`pack`): redis-py's packer encodes and joins argument by argument,
about 1 us each, and a monitored request sends two dozen. Like
``redis-py``'s ``Script``, a script the server does not know (after a restart or ``SCRIPT FLUSH``) is loaded
and sent again; like its default retry policy, a broken connection is reopened and the command sent once
more. (Caching a ``Script`` per per-request client, as before, also kept every such client alive: one
leaked client per request.)
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from typing import Any

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError, NoScriptError, TimeoutError  # noqa: A004 - redis' own


class _Connection:
    """One connection of a cache backend's pool, held by this process."""

    def __init__(self, cache_client: Any) -> None:
        self.pid = os.getpid()
        self.pool = cache_client.get_client(None, write=True).connection_pool
        self.connection: Any = None
        self.lock = threading.Lock()

    def evalsha(self, sha: str, source: str, keys: list[Any], args: list[Any]) -> Any:
        with self.lock:
            for attempt in (1, 2):
                if self.connection is None:
                    self.connection = self.pool.make_connection()  # ours for good: it connects on the first send
                try:
                    command = [pack("EVALSHA", sha, len(keys), *keys, *args)]
                    try:
                        self.connection.send_packed_command(command)
                        return self.connection.read_response()
                    except NoScriptError:
                        self.connection.send_packed_command([pack("SCRIPT", "LOAD", source)])
                        self.connection.read_response()
                        self.connection.send_packed_command(command)
                        return self.connection.read_response()
                except (ConnectionError, TimeoutError):
                    self.connection.disconnect()  # reconnects on the next send
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")


def pack(*args: Any) -> bytes:
    """One Redis command in the wire protocol (RESP): an array of bulk strings. Arguments are encoded as redis-py
    encodes them: bytes as they are, str as UTF-8, int and float by ``repr``; anything else (bool included) is
    refused."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            value = arg
        elif isinstance(arg, str):
            value = arg.encode()
        elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
            value = repr(arg).encode()
        else:
            raise TypeError(f"A Redis command argument must be bytes, str, int or float; got {type(arg).__name__}.")
        parts += (b"$%d\r\n" % len(value), value, b"\r\n")
    return b"".join(parts)


# per cache backend (dropped with it): this process's connection
_connections: weakref.WeakKeyDictionary[Any, _Connection] = weakref.WeakKeyDictionary()
_shas: dict[str, str] = {}
_lock = threading.Lock()


def is_redis(backend: Any) -> bool:
    """Whether ``backend`` is Django's Redis cache (scripts run there; other backends use the cache API)."""
    return isinstance(backend, RedisCache)


def run(backend: Any, source: str, keys: list[str], args: list[Any]) -> Any:
    """Run the Lua script ``source`` on Django's Redis cache ``backend``; ``keys`` are full Redis keys."""
    cache_client = backend._cache  # one per backend instance, holding its connection pools
    held = _connections.get(cache_client)
    # a connection opened before a fork must not be shared by the children: one per process
    if held is None or held.pid != os.getpid():
        with _lock:
            held = _connections[cache_client] = _Connection(cache_client)
    sha = _shas.get(source)
    if sha is None:
        sha = _shas[source] = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts so
    return held.evalsha(sha, source, keys, args)
