"""Putting a finished file in place: the usual permissions, then an atomic rename.

Temporary files made with ``tempfile.mkstemp`` are private (0600); a screenshot or a
recording should get the permissions any new file of the user gets (0666 less the
umask) before it is renamed over its final name.
"""

from __future__ import annotations

import os
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(temporary: str | os.PathLike, final: str | os.PathLike) -> Path:
    """chmod ``temporary`` to the user's default file mode and rename it to ``final``."""
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, final)
    return Path(final)
