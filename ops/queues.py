"""How many tasks wait in each Celery queue, read straight from the broker.

Celery has no portable "queue length" call; each transport keeps messages its own way,
so this reads the two the project supports: Redis lists and the filesystem transport's
files (what `make run` uses).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis
from django.conf import settings

# kombu's Redis transport keeps priorities 3, 6 and 9 in lists of their own next to the
# queue's list ("<queue>\x06\x16<priority>"); the project sends no priorities today, but a
# task sent with one would otherwise be invisible here.
_REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass(frozen=True)
class QueueDepths:
    broker_up: bool
    waiting: dict[str, int]  # queue name -> messages not yet handed to a worker
    unacked: int | None  # handed to a worker, not yet acknowledged (Redis only)


def queue_names() -> list[str]:
    return [queue.name for queue in settings.CELERY_TASK_QUEUES]


def queue_depths() -> QueueDepths:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        return _redis_depths(url)
    if url.startswith("filesystem://"):
        return _filesystem_depths()
    return QueueDepths(broker_up=True, waiting={}, unacked=None)


def _redis_depths(url: str) -> QueueDepths:
    # A scrape must answer quickly even when Redis does not: one second, then "down".
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    # kombu puts the transport's global_keyprefix before every key it writes.
    prefix = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", ""))
    try:
        with client.pipeline(transaction=False) as pipe:
            for name in queue_names():
                for suffix in _REDIS_PRIORITY_SUFFIXES:
                    pipe.llen(prefix + name + suffix)
            pipe.hlen(prefix + "unacked")
            counts = pipe.execute()
    except redis.RedisError:
        return QueueDepths(broker_up=False, waiting={}, unacked=None)
    finally:
        client.close()
    per_queue = len(_REDIS_PRIORITY_SUFFIXES)
    waiting = {
        name: sum(counts[i * per_queue : (i + 1) * per_queue])
        for i, name in enumerate(queue_names())
    }
    return QueueDepths(broker_up=True, waiting=waiting, unacked=int(counts[-1]))


def _filesystem_depths() -> QueueDepths:
    # kombu names each message file "<ms>_<uuid>.<queue>.msg" in data_folder_in.
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", "")
    try:
        files = os.listdir(str(folder))
    except OSError:
        return QueueDepths(broker_up=False, waiting={}, unacked=None)
    waiting = dict.fromkeys(queue_names(), 0)
    for filename in files:
        queue = filename.partition(".")[2].removesuffix(".msg")
        if queue in waiting:
            waiting[queue] += 1
    return QueueDepths(broker_up=True, waiting=waiting, unacked=None)
