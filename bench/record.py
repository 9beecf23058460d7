"""The JSON record the benchmark scripts write with ``--json``: figures plus when, where, how."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import torch


def write_record(path: Path, overrides: Sequence[str], figures: dict[str, Any]) -> None:
    record = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "overrides": list(overrides),
        **figures,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
