"""Bundled target descriptions of nmcompiler: one TOML file per chip.

The files are package data; read them through :func:`path` and :func:`names` so that the
lookup works from a source checkout, an installed wheel or a zip. The format is described
in ``docs/targets.md`` and checked by :func:`nmcompiler.targets.load_target`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["names", "path"]

_SUFFIX = ".toml"


def names() -> list[str]:
    """Names of the bundled targets (the file stems), sorted: ``['emulator', 'loihi', ...]``."""
    root = resources.files(__name__)
    return sorted(
        entry.name[: -len(_SUFFIX)]
        for entry in root.iterdir()
        if entry.is_file() and entry.name.endswith(_SUFFIX)
    )


def path(name: str) -> Path:
    """Filesystem path of the bundled target file ``<name>.toml``.

    Raises ``FileNotFoundError`` naming the bundled targets when there is no such file.
    """
    entry = resources.files(__name__) / f"{name}{_SUFFIX}"
    if not entry.is_file():
        raise FileNotFoundError(
            f"no bundled target {name!r} in hw_configs; bundled: {', '.join(names())}"
        )
    return Path(str(entry))
