"""CLI commands contributed by feature modules.

Each entry takes the subparsers object and the shared options parser and adds its
command, with ``func`` set to an ``async (args, settings) -> int``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Register = Callable[[Any, argparse.ArgumentParser], None]

REGISTRY: list[Register] = []
