"""``python -m nmcompiler.models [NAME]``: list the bundled models, or print one's path.

Without NAME: one line per model (name, neurons, path). With NAME: only its
path, for ``nmc compile "$(python -m nmcompiler.models tiny_if)" -t loihi2``. Exit 2 for
an unknown name.
"""

from __future__ import annotations

import sys

from nmcompiler.ir.errors import UsageError
from nmcompiler.models import NAMES, build, path


def main(argv: list[str]) -> int:
    """List the bundled models, or print the path of the one named in ``argv``."""
    if len(argv) > 1:
        print("usage: python -m nmcompiler.models [NAME]", file=sys.stderr)
        return 2
    if argv:
        try:
            print(path(argv[0]))
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        return 0
    for name in NAMES:
        net = build(name)
        neurons = sum(p.size for p in net.populations.values())
        print(f"{name}\t{neurons} neurons\t{path(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
