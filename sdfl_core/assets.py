"""Where sdfl's bundled assets (detector models and their licences) live: ``<repo root>/assets``."""
from __future__ import annotations

from pathlib import Path

# The package is installed editable, so the repo's assets/ folder sits beside sdfl_core/.
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"


def asset_path(*parts: str) -> Path:
    """Path of an asset under ``assets/``; raises FileNotFoundError when it is missing."""
    path = ASSETS_DIR.joinpath(*parts)
    if not path.exists():
        if not ASSETS_DIR.is_dir():
            raise FileNotFoundError(f"sdfl assets folder not found at {ASSETS_DIR} (install sdfl from a source checkout)")
        raise FileNotFoundError(f"asset {'/'.join(parts)!r} not found under {ASSETS_DIR}")
    return path
