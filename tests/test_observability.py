"""Request logs, business events and the Prometheus metrics."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.logs import JsonFormatter, bind_context, event
from app.metrics import observe_detect, observe_merge
from tests.conftest import World
from tests.support import bearer

Client = TestClient[Any, Any]


class Captured:
    """Every log line of the service, formatted as it would be written."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self, logger: str | None = None) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.text.splitlines() if line]
        return [line for line in parsed if logger is None or line["logger"] == logger]


@pytest.fixture
def logs() -> Iterator[Captured]:
    captured = Captured()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def access_lines(logs: Captured) -> list[dict[str, Any]]:
    return logs.lines("dupes.access")


async def scrape(client: Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float],
    name: str,
    **labels: str,
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_request_log_line_names_route_status_duration_organization_and_id(
    client: Client, world: World, logs: Captured
) -> None:
    response = await client.get(
        "/api/v1/me",
        headers={**bearer(world.acme.admin_token), "X-Request-ID": "req-42"},
    )

    assert response.status == 200
    assert response.headers["X-Request-ID"] == "req-42"
    [line] = access_lines(logs)
    assert line["msg"] == "request"
    assert line["level"] == "info"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/me"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0
    assert line["organization"] == "acme"
    assert line["org_id"] == str(world.acme.id)
    assert line["request_id"] == "req-42"
    assert line["pid"] == os.getpid()


async def test_request_without_id_gets_one_and_the_log_line_carries_it(
    client: Client, logs: Captured
) -> None:
    response = await client.get("/healthz")

    request_id = response.headers["X-Request-ID"]
    assert len(request_id) >= 16
    [line] = access_lines(logs)
    assert line["request_id"] == request_id
    assert "organization" not in line


async def test_route_pattern_is_logged_not_the_path_and_unknown_paths_share_a_label(
    client: Client, world: World, logs: Captured
) -> None:
    await client.get(
        "/api/v1/no-such-thing/4242", headers=bearer(world.acme.admin_token)
    )
    await client.get("/definitely/not/here")

    lines = access_lines(logs)
    assert [line["route"] for line in lines] == ["unmatched", "unmatched"]
    assert [line["status"] for line in lines] == [404, 404]
    assert all("4242" not in json.dumps(line) for line in lines)


async def test_logs_never_hold_the_token_or_the_request_body(
    client: Client, world: World, logs: Captured
) -> None:
    secret_value = "private-value-9f3a1c"
    token = world.acme.admin_token
    for body in (
        {"action": "detect", "object_name": secret_value},
        {"action": secret_value},
        {"action": "merge", "object_name": "contacts", "master_id": secret_value},
    ):
        await client.post("/api/v1/duplicates", json=body, headers=bearer(token))
    await client.get("/api/v1/me", headers=bearer(token + "x"))
    await client.get("/api/v1/me", headers={"Authorization": secret_value})

    assert len(access_lines(logs)) == 5
    assert token not in logs.text
    assert token[4:20] not in logs.text
    assert secret_value not in logs.text


async def test_worker_pid_header_names_the_answering_process(client: Client) -> None:
    response = await client.get("/healthz")

    assert response.headers["X-Worker-PID"] == str(os.getpid())


async def test_metrics_count_requests_and_time_them_per_route_pattern_and_status(
    client: Client, world: World
) -> None:
    before = await scrape(client)
    for _ in range(3):
        await client.get("/healthz")
    await client.get("/api/v1/me", headers=bearer(world.acme.member_token))
    await client.get("/api/v1/me")

    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert delta("dupes_http_requests_total", **healthz) == 3
    assert delta("dupes_http_request_duration_seconds_count", **healthz) == 3
    assert (
        delta("dupes_http_request_duration_seconds_bucket", **healthz, le="+Inf") == 3
    )
    me = {"method": "GET", "route": "/api/v1/me"}
    assert delta("dupes_http_requests_total", **me, status="200") == 1
    assert delta("dupes_http_requests_total", **me, status="401") == 1


async def test_metrics_report_the_connection_pool_of_the_process(
    client: Client, world: World
) -> None:
    await client.get("/api/v1/me", headers=bearer(world.acme.admin_token))

    samples = await scrape(client)

    size = sample(samples, "dupes_db_pool_connections")
    idle = sample(samples, "dupes_db_pool_idle_connections")
    assert sample(samples, "dupes_db_pool_max_connections") == 10
    assert size >= 1
    assert 0 <= idle <= size
    assert sample(samples, "dupes_db_pool_in_use_connections") == size - idle
    assert sample(samples, "dupes_worker_info", pid=str(os.getpid())) == 1


async def test_detect_and_merge_observations_appear_in_the_metrics(
    client: Client,
) -> None:
    before = await scrape(client)
    observe_detect("companies", 0.3)
    observe_merge("companies", 0.05, 3)
    observe_merge("companies", 0.04, 2, dry_run=True)

    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("dupes_detect_duration_seconds_count", object_name="companies") == 1
    assert delta("dupes_records_merged_total", object_name="companies") == 3
    assert (
        delta(
            "dupes_merge_duration_seconds_count", object_name="companies", mode="merge"
        )
        == 1
    )
    assert (
        delta(
            "dupes_merge_duration_seconds_count",
            object_name="companies",
            mode="dry_run",
        )
        == 1
    )


def test_business_event_is_an_info_line_with_its_counts_and_request_context(
    logs: Captured,
) -> None:
    with bind_context(lambda: {"request_id": "r-7", "organization": "acme"}):
        event("merge.done", object_name="contacts", duplicates_deleted=2, name="x")
    event("demo.filled", contacts=10)

    merge, demo = logs.lines("dupes.events")
    assert merge["level"] == "info"
    assert merge["msg"] == merge["event"] == "merge.done"
    assert merge["duplicates_deleted"] == 2
    assert merge["name_"] == "x"
    assert merge["request_id"] == "r-7"
    assert merge["organization"] == "acme"
    assert demo["contacts"] == 10
    assert "request_id" not in demo


async def test_a_merge_through_the_api_is_counted_in_the_metrics(
    client: Client, world: World
) -> None:
    headers = bearer(world.acme.admin_token)
    ids = []
    for _ in range(3):
        response = await client.post(
            "/api/v1/records/contacts",
            json={"first_name": "Ada", "last_name": "Byron"},
            headers=headers,
        )
        assert response.status == 201
        ids.append((await response.json())["id"])
    before = await scrape(client)

    response = await client.post(
        "/api/v1/duplicates",
        json={
            "action": "merge",
            "object_name": "contacts",
            "master_id": ids[0],
            "duplicate_ids": ids[1:],
        },
        headers=headers,
    )
    assert response.status == 200

    after = await scrape(client)
    merged = {"object_name": "contacts"}
    assert (
        sample(after, "dupes_records_merged_total", **merged)
        - sample(before, "dupes_records_merged_total", **merged)
        == 2
    )
    timed = {"object_name": "contacts", "mode": "merge"}
    assert (
        sample(after, "dupes_merge_duration_seconds_count", **timed)
        - sample(before, "dupes_merge_duration_seconds_count", **timed)
        == 1
    )
