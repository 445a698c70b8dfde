"""The ``nmc`` command line: thin commands over the Python API (DESIGN.md section 7).

Exit codes: 0 success; 1 the network or input is invalid or does not fit; 2 usage or
configuration error; 3 a toolchain is missing; 70 an internal error (a bug: the message
asks you to report it).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from ir.errors import NmcError

app = typer.Typer(
    name="nmc",
    help="nmcompiler: fit a spiking network onto any neuromorphic chip.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 160)


@app.callback()
def _root() -> None:
    """nmcompiler: fit a spiking network onto any neuromorphic chip."""

err_console = Console(stderr=True)

EXIT_INTERNAL = 70


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, tuple):
        return "/".join(_fmt(x) for x in v) if len(set(v)) > 1 else _fmt(v[0])
    if isinstance(v, int) and v >= 10_000:
        return f"{v:,}"
    return str(v)


@app.command()
def targets() -> None:
    """List the bundled targets with their headline budgets."""
    from .targets import list_targets

    table = Table(title="nmcompiler targets (hw_configs/)")
    for col in ("target", "backend", "chips x cores", "neurons/core", "fan-in/core",
                "synaptic memory/core", "delays", "routing/chip", "unknown numbers"):
        table.add_column(col)
    for t in list_targets():
        for name in (t.name,) + tuple(f"{t.base_name}:{v}" for v in t.variants
                                      if f"{t.base_name}:{v}" != t.name):
            if name != t.name:
                from .targets import load_target

                t = load_target(name)
            bits = t.core.synaptic_memory_bits
            mem = _fmt(tuple(b // 8192 for b in bits) if isinstance(bits, tuple) else bits // 8192)
            table.add_row(
                t.name,
                t.backend,
                f"{t.n_chips} x {t.topology.cores_per_chip}",
                _fmt(t.core.neurons),
                _fmt(t.core.input_axons),
                f"{mem} KiB",
                f"{t.core.min_delay}..{t.core.max_delay}",
                _fmt(t.chip.routing_entries),
                str(len(t.unknown_fields())),
            )
    console.print(table)
    console.print("Unknown numbers are labelled conservative defaults: see docs/targets.md.")


def main() -> None:
    """Entry point of ``nmc``: runs the app and maps errors to exit codes.

    Usage errors are click's own (exit 2); nmcompiler's errors print their one-sentence
    message and exit with the family's code; anything else is a bug (exit 70).
    """
    try:
        app()
    except NmcError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc}\n"
            "This is a bug in nmcompiler: please report it with the command you ran.",
            highlight=False,
        )
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":  # pragma: no cover
    main()
