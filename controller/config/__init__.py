"""Owner configuration: load, validate and render the desired state (pure; no network imports).

Entry points: `validate_paths`, `validate_sources`, `load_desired`; the model lives in `model`, the
per-station merge in `effective`.
"""

from .diagnostics import ConfigError, Diagnostic, mask_id_tag
from .effective import BootInfo, EffectiveStation, effective_station
from .loader import LoadResult, load_desired, validate_paths, validate_sources
from .model import DesiredState

__all__ = [
    "BootInfo",
    "ConfigError",
    "DesiredState",
    "Diagnostic",
    "EffectiveStation",
    "LoadResult",
    "effective_station",
    "load_desired",
    "mask_id_tag",
    "validate_paths",
    "validate_sources",
]
