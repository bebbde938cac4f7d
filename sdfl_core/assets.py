"""Where sdfl's bundled assets (landmark models, detector models, the demo portrait) live.

Installed, they are the package data of ``sdfl_assets`` (the repo's ``assets/`` folder, mapped to that
name in pyproject.toml) and are found with ``importlib.resources``. In a source checkout that is not
installed, they are the ``assets/`` folder beside ``sdfl_core/``.
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path

ASSETS_PACKAGE = "sdfl_assets"


def assets_dir() -> Path:
    try:
        root = importlib.resources.files(ASSETS_PACKAGE)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "assets"
    # Installed as a plain folder (wheel or editable install), so the resources are real files.
    return Path(str(root))


def asset_path(*parts: str) -> Path:
    """Path of an asset under the assets folder; raises FileNotFoundError when it is missing."""
    root = assets_dir()
    path = root.joinpath(*parts)
    if not path.exists():
        if not root.is_dir():
            raise FileNotFoundError(f"sdfl assets folder not found at {root} (reinstall sdfl)")
        raise FileNotFoundError(f"asset {'/'.join(parts)!r} not found under {root}")
    return path
