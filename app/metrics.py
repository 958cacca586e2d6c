"""Prometheus metrics of one process.

The HTTP middleware fills the request metrics; the detect and merge services call
`observe_detect` and `observe_merge`. Pool gauges are read from the live pools at
scrape time. Each worker process keeps and serves its own numbers: a scrape of the
shared port reaches one worker, so a scraper should sum over the ``pid`` it sees in
``dupes_worker_info`` or scrape each worker's series as they come.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Literal

import asyncpg
from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# The *_created series double the output and no dashboard here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Latencies of ordinary requests: a few milliseconds to a few seconds.
_HTTP_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
# Detect scans up to thousands of records, a merge re-points every reference.
_WORK_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

HTTP_REQUESTS = Counter(
    "dupes_http_requests_total",
    "HTTP requests answered, by method, route pattern and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "dupes_http_request_duration_seconds",
    "Time from receiving a request to its response, by method, route and status.",
    ["method", "route", "status"],
    buckets=_HTTP_BUCKETS,
)
DETECT_SECONDS = Histogram(
    "dupes_detect_duration_seconds",
    "Duration of duplicate detection runs, by object.",
    ["object_name"],
    buckets=_WORK_BUCKETS,
)
MERGE_SECONDS = Histogram(
    "dupes_merge_duration_seconds",
    "Duration of merges, by object and mode (merge or dry_run).",
    ["object_name", "mode"],
    buckets=_WORK_BUCKETS,
)
RECORDS_MERGED = Counter(
    "dupes_records_merged_total",
    "Duplicate records merged into a master and deleted (dry runs excluded).",
    ["object_name"],
)
WORKER_INFO = Gauge(
    "dupes_worker_info",
    "Always 1; its label names the process that answered this scrape.",
    ["pid"],
)


def observe_detect(object_name: str, seconds: float) -> None:
    """Records one finished detection run."""
    DETECT_SECONDS.labels(object_name=object_name).observe(seconds)


def observe_merge(
    object_name: str, seconds: float, duplicates_deleted: int, dry_run: bool = False
) -> None:
    """Records one finished merge; a dry run counts its time, not its records."""
    mode: Literal["merge", "dry_run"] = "dry_run" if dry_run else "merge"
    MERGE_SECONDS.labels(object_name=object_name, mode=mode).observe(seconds)
    if not dry_run:
        RECORDS_MERGED.labels(object_name=object_name).inc(duplicates_deleted)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = {"method": method, "route": route, "status": str(status)}
    HTTP_REQUESTS.labels(**labels).inc()
    HTTP_SECONDS.labels(**labels).observe(seconds)


class PoolCollector(Collector):
    """Gauges of the connection pools of this process, read at scrape time."""

    def __init__(self) -> None:
        self._pools: dict[int, asyncpg.Pool] = {}

    def track(self, pool: asyncpg.Pool) -> None:
        self._pools[id(pool)] = pool

    def forget(self, pool: asyncpg.Pool) -> None:
        self._pools.pop(id(pool), None)

    def _pools_alive(self) -> Iterable[asyncpg.Pool]:
        return [pool for pool in self._pools.values() if not pool.is_closing()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pools = self._pools_alive()
        size = sum(pool.get_size() for pool in pools)
        idle = sum(pool.get_idle_size() for pool in pools)
        maximum = sum(pool.get_max_size() for pool in pools)
        yield GaugeMetricFamily(
            "dupes_db_pool_connections",
            "Connections open in this process's pool.",
            value=size,
        )
        yield GaugeMetricFamily(
            "dupes_db_pool_idle_connections",
            "Open connections not lent to a request.",
            value=idle,
        )
        yield GaugeMetricFamily(
            "dupes_db_pool_in_use_connections",
            "Connections lent to a request right now.",
            value=size - idle,
        )
        yield GaugeMetricFamily(
            "dupes_db_pool_max_connections",
            "The most connections the pool may open.",
            value=maximum,
        )


POOLS = PoolCollector()
REGISTRY.register(POOLS)
WORKER_INFO.labels(pid=str(os.getpid())).set(1)
