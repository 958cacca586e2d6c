"""Detection on real data: the Chicago early-childhood sites, loaded as companies,
scored against the clusters a person made by hand (`True Id`).

A pair of records is predicted by a field when some group of that field holds both;
it is true when both rows carry the same True Id. Exact keys cannot reach every true
pair (a site listed under two spellings of its name, or with two phone numbers), and
some shared values are not the same site (an agency's main number on all of its
sites), so the test pins the figures measured, with a small tolerance, and prints
them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import World
from tests.realdata import CHICAGO_ROWS, load_chicago_companies
from tests.test_detect import detect

Client = TestClient[Any, Any]
Pair = tuple[UUID, UUID]

# 1,162 hand-made clusters make this many pairs of rows of the same site.
TRUE_PAIRS = 6608


@dataclass(frozen=True)
class Score:
    groups: int
    pairs: int
    correct: int
    precision: float
    recall: float


# Measured on the shared data set with the matching rules of the README.
EXPECTED = {
    "name": Score(groups=906, pairs=1992, correct=1836, precision=0.922, recall=0.278),
    "phone": Score(groups=746, pairs=6010, correct=5061, precision=0.842, recall=0.766),
    "name or phone": Score(
        groups=1394, pairs=6236, correct=5180, precision=0.831, recall=0.784
    ),
}


def pairs_of(groups: Iterable[Iterable[UUID]]) -> set[Pair]:
    found: set[Pair] = set()
    for members in groups:
        found.update(itertools.combinations(sorted(members), 2))
    return found


def score(groups: int, predicted: set[Pair], truth: set[Pair]) -> Score:
    correct = len(predicted & truth)
    return Score(
        groups=groups,
        pairs=len(predicted),
        correct=correct,
        precision=round(correct / len(predicted), 3),
        recall=round(correct / len(truth), 3),
    )


@pytest.mark.parametrize("settings_overrides", [{"detect_window": 0}])
async def test_chicago_sites_against_the_hand_made_clusters(
    client: Client, db_dsn: str, world: World
) -> None:
    load = await load_chicago_companies(db_dsn, "acme")
    assert load.report.created == CHICAGO_ROWS
    truth = pairs_of(load.clusters.values())
    assert len(truth) == TRUE_PAIRS

    measured: dict[str, Score] = {}
    predicted: dict[str, set[Pair]] = {}
    for field in ("name", "phone"):
        payload = await detect(
            client, world.acme, object_name="companies", fields=[field], limit=1000
        )
        assert payload["records_scanned"] == CHICAGO_ROWS
        groups = payload["duplicate_groups"]
        # Every group and every record of each is listed, so the pairs are complete.
        assert len(groups) == payload["total_groups"]
        assert all(len(g["records"]) == g["record_count"] for g in groups)
        predicted[field] = pairs_of(
            [UUID(record["id"]) for record in group["records"]] for group in groups
        )
        measured[field] = score(payload["total_groups"], predicted[field], truth)
    both = await detect(client, world.acme, object_name="companies", limit=1)
    measured["name or phone"] = score(
        both["total_groups"], predicted["name"] | predicted["phone"], truth
    )

    report = "\n".join(f"{field}: {figures}" for field, figures in measured.items())
    print(f"\nChicago early-childhood sites, {CHICAGO_ROWS} rows:\n{report}")
    for field, expected in EXPECTED.items():
        got = measured[field]
        assert got.precision == pytest.approx(expected.precision, abs=0.005), report
        assert got.recall == pytest.approx(expected.recall, abs=0.005), report
        assert got.pairs == pytest.approx(expected.pairs, rel=0.01), report
        assert got.groups == pytest.approx(expected.groups, rel=0.01), report
