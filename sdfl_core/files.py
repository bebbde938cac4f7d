"""Files written through a temporary file beside the target (then renamed into place) get the mode a plain
``open()`` would have given them: ``mkstemp`` makes 0600 files."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plain_file_mode() -> int:
    """0666 less the process umask."""
    return 0o666 & ~umask()


@contextlib.contextmanager
def replacing(target: str | Path, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary file's path beside ``target`` (its folder created) to write to; on a clean exit it gets
    the plain file mode and is renamed over ``target``, on an error it is removed and ``target`` is left as
    it was. An interrupted write never leaves a half file under the target's name."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, plain_file_mode())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
