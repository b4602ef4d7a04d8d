"""Where the JSON Schemas live: `schemas/` at the repository root (the single source of truth).

Boundary: path lookup only.
"""

from __future__ import annotations

import os
from pathlib import Path


def schemas_dir() -> Path:
    """The schemas directory: $CHARGEOPS_SCHEMAS if set, else `schemas/` beside the package."""
    env = os.environ.get("CHARGEOPS_SCHEMAS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "schemas"
