"""Measure `dupes import` on a generated file.

    .venv/bin/python scripts/bench_import.py --rows 100000 --org bench

Writes a CSV of contacts (names, emails, phones, LinkedIn URLs, with some repeats and
some invalid rows), creates the organization if needed, runs the import command in a
child process as a user would, and prints rows, seconds and rows per second. Uses
DATABASE_URL when set, otherwise the embedded server of --data-dir.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST = ["Ann", "Bob", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal", "Ida", "Jo"]
LAST = ["Lee", "Stone", "García", "Müller", "O'Neil", "Nguyen", "Smith", "Khan"]


def write_file(path: Path, rows: int, seed: int) -> None:
    """Contacts; about 5% repeat an earlier email and 0.5% have a broken one."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["First name", "Last name", "E-mail", "Phone", "LinkedIn", "City"]
        )
        for number in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email_id = (
                rng.randrange(number) if number and rng.random() < 0.05 else number
            )
            email = f"{first.lower()}.{email_id}@example.com"
            if rng.random() < 0.005:
                email = "broken-address"
            phone = (
                f"({rng.randint(200, 989)}) {rng.randint(200, 999)}-{number % 10000:04}"
            )
            writer.writerow(
                [
                    first,
                    last,
                    email,
                    phone,
                    f"https://www.linkedin.com/in/{first.lower()}-{number}",
                    "Chicago",
                ]
            )


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--org", default="bench")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--data-dir", default=".dupes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-duplicates", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    options = parser.parse_args()
    env = dict(os.environ)
    common = ["--data-dir", options.data_dir]
    created = run(["org", "create", options.org, *common], env)
    if created.returncode not in (0, 1):
        print(created.stderr, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contacts.csv"
        started = time.perf_counter()
        write_file(path, options.rows, options.seed)
        print(
            f"wrote {options.rows:,} rows ({path.stat().st_size / 1e6:.1f} MB) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        command = [
            "import",
            "contacts",
            str(path),
            "--org",
            options.org,
            "--map",
            "First name=first_name",
            "--map",
            "Last name=last_name",
            "--map",
            "E-mail=email",
            "--map",
            "LinkedIn=linkedin_url",
            "--batch-size",
            str(options.batch_size),
            "--workers",
            str(options.workers),
            "--json",
            *common,
        ]
        if options.skip_duplicates:
            command.append("--skip-duplicates")
        started = time.perf_counter()
        result = run(command, env)
        wall = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return result.returncode
    report = json.loads(result.stdout)
    print(
        f"rows {report['rows']:,}  created {report['created']:,}  "
        f"duplicates {report['duplicates']:,}  failed {report['failed']:,}  "
        f"import {report['seconds']:.1f} s ({report['rows_per_second']:,.0f} rows/s)  "
        f"process {wall:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
