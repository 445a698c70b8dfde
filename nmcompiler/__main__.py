"""``python -m nmcompiler``: the ``nmc`` command line (docs/cli.md)."""

from nmcompiler.cli import main

if __name__ == "__main__":
    main()
