"""Files written through a temporary file beside the target (then renamed into place) get the mode a plain
``open()`` would have given them: ``mkstemp`` makes 0600 files."""
from __future__ import annotations

import os


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plain_file_mode() -> int:
    """0666 less the process umask."""
    return 0o666 & ~umask()
