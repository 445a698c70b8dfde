"""The ``nmc`` command line: thin commands over the Python API (docs/cli.md).

Exit codes (docs/architecture.md#errors-and-exit-codes): 0 success; 1 the network or input
is invalid or does not fit; 2 usage or configuration error; 3 a toolchain is missing;
70 an internal error (a bug: the message asks you to report it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from nmcompiler.cli_import import ImportOptions, import_options, load
from nmcompiler.ir.errors import NmcError, UsageError
from nmcompiler.passes.options import PartitionMethod, PlaceMethod

app = typer.Typer(
    name="nmc",
    help="nmcompiler: fit a spiking network onto any neuromorphic chip.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 160)


def _print_version(value: bool) -> None:
    if value:
        from nmcompiler import __version__

        print(f"nmc (nmcompiler) {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version,
                                 is_eager=True, help="print the version and exit"),
) -> None:
    """nmcompiler: fit a spiking network onto any neuromorphic chip."""

err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

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


@app.command()
def backends() -> None:
    """List the installed backends: name, target families, and whether they run here."""
    from .backend import load_backends

    table = Table(title="nmcompiler backends (entry points 'nmcompiler.backends')")
    for col in ("backend", "families", "runs here"):
        table.add_column(col)
    for name, cls in load_backends().items():
        reason = cls().available()
        table.add_row(name, ", ".join(cls.families),
                      "yes" if reason is None else f"no: {reason}")
    console.print(table)


#: the passes' own choices (nmcompiler.passes.options)
PartitionChoice = PartitionMethod
PlaceChoice = PlaceMethod


def _load(model: Path, nir: ImportOptions, max_bytes: int | None = None):
    from .cli_checks import plain
    from .limits import check_model_memory

    check_model_memory(model, max_bytes)
    return load(model, nir, lambda w: err_console.print(f"[yellow]warning:[/] {plain(w)}",
                                                        highlight=False))


FORCE_HELP = ("replace a non-empty output directory nmcompiler did not write "
              "(never a file; docs/cli.md)")
MEMORY_HELP = ("refuse models whose declared arrays need more than this many GB "
               "(default: half the available memory; docs/cli.md)")


@app.command()
@import_options
def compile(  # noqa: A001
    model: Path = typer.Argument(..., help="a .nir file or a saved .nmir network"),
    target: str = typer.Option(..., "--target", "-t",
                               help="bundled target (nmc targets) or a .toml file"),
    out: Path = typer.Option(Path("build"), "--out", "-o", help="output directory"),
    seed: int = typer.Option(0, help="seed of every pass (same seed: same bytes)"),
    partitioner: PartitionChoice = typer.Option(PartitionChoice.auto,
                                                help=PartitionChoice.__doc__),
    placer: PlaceChoice = typer.Option(PlaceChoice.auto, help=PlaceChoice.__doc__),
    time_limit: float = typer.Option(10.0, help="CP-SAT time limit (s)"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
    nir: ImportOptions = ImportOptions(),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    max_memory: Optional[float] = typer.Option(None, "--max-memory", help=MEMORY_HELP),
    check_input: Optional[Path] = typer.Option(
        None, "--check-input", help="your own input for the behaviour check (.npz: one "
        "(T, n) or (T, B, n) array per input; .npy: the array of a one-input network) in "
        "place of 200 random steps (docs/cli.md)"),
) -> None:
    """Compile MODEL for a target: writes OUT/compiled.nmc, report.json, usage.png."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from . import cli_checks as chk
    from .api import compile as compile_network
    from .compiled import report_json, save_compiled
    from .outputs import check_output
    from .report import plot_core_usage, render_compile_report

    chk.check_int("seed", seed, 0, chk.MAX_SEED)
    chk.check_float("dt", nir.dt, 0.0, 1e6, lo_open=True)
    chk.check_float("time-limit", time_limit, 0.0, 1e6, lo_open=True)
    limit = _memory_limit(max_memory)
    chk.check_path(model, "model")
    check_output(out, inputs=[model] + ([check_input] if check_input else []), force=force)
    given = chk.load_inputs(check_input) if check_input is not None else None
    net = _load(model, nir, limit)
    if given is not None and check_input is not None:
        given = chk.check_input_arrays(given, net, check_input)
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("compiling", total=5)

        def progress(phase: str, index: int, total: int) -> None:
            bar.update(task, completed=index, description=f"compiling: {phase}")

        compiled = compile_network(net, target, seed=seed, partition_method=partitioner.value,
                                   place_method=placer.value, time_limit_s=time_limit,
                                   progress=progress, check_input=given)
        bar.update(task, completed=5)

    def plots(tmp: Path) -> None:
        plot_core_usage(compiled, tmp / "usage.png")

    save_compiled(compiled, out, extra=plots)
    if json_out:
        console.print_json(report_json(compiled.report))
    else:
        render_compile_report(compiled.report, console)
        console.print(f"wrote {chk.plain(out)}/compiled.nmc, report.json, usage.png",
                      highlight=False)


def _memory_limit(max_memory: float | None) -> int:
    """Bytes a model's declared arrays may need (``--max-memory`` GB, else the default)."""
    from . import cli_checks as chk
    from .limits import default_memory_limit

    if max_memory is None:
        return default_memory_limit()
    chk.check_float("max-memory", max_memory, 0.0, 1e6, lo_open=True)
    return int(max_memory * 1e9)


@app.command()
def report(
    build: Path = typer.Argument(..., help="a directory written by nmc compile"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Print the compile report of a build directory again."""
    from .cli_checks import check_path
    from .compiled import report_json
    from .report import load_report, render_compile_report

    check_path(build, "build directory")
    rep = load_report(build)
    if json_out:
        console.print_json(report_json(rep))
    else:
        render_compile_report(rep, console)


def _random_inputs(net, steps: int, rate: float, seed: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    return {name: (rng.random((steps, inp.size)) < rate).astype(np.float64)
            for name, inp in net.inputs.items()}


@app.command()
@import_options
def run(
    model: Path = typer.Argument(..., help="a build directory (nmc compile) or a .nir/.nmir "
                                 "model (then --target compiles it on the fly)"),
    input: Optional[Path] = typer.Option(None, "--input", "-i",  # noqa: A002
                                         help=".npz: one (T, n) or (T, B, n) array per input; "
                                         ".npy: the array of a one-input network"),
    steps: Optional[int] = typer.Option(None, help="steps to run (default: the input's)"),
    rate: float = typer.Option(0.05, help="without --input: Bernoulli spike rate per step"),
    target: Optional[str] = typer.Option(None, "--target", "-t",
                                         help="target when MODEL is not compiled yet"),
    seed: int = typer.Option(0, help="compile seed and random-input seed"),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="where to write run_report.json and the PNGs"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
    nir: ImportOptions = ImportOptions(),
    probe: list[str] = typer.Option([], "--probe", help="record POP.v / POP.u / POP.spikes "
                                    "into outputs.npz (repeatable)"),
    record_all: bool = typer.Option(False, "--record-all",
                                    help="record every population's spikes"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="run a (T, B, n) "
                                             "input this many samples at a time"),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    max_memory: Optional[float] = typer.Option(None, "--max-memory", help=MEMORY_HELP),
    align: bool = typer.Option(True, "--align/--no-align",
                               help="pad the input by the output shift so that output row t "
                               "is the response to input step t (docs/cli.md)"),
) -> None:
    """Run a compiled network on the emulator: SOPs, energy, latency, rasters, heatmap."""
    import json

    from . import cli_checks as chk
    from .backend import get_backend
    from .compiled import load_compiled, report_json, write_dir_atomically
    from .outputs import check_output, safe_name
    from .report import plot_activity, plot_raster, render_run_report, run_report

    chk.check_int("seed", seed, 0, chk.MAX_SEED)
    chk.check_int("steps", steps, 1, chk.MAX_STEPS)
    chk.check_float("rate", rate, 0.0, 1.0)
    limit = _memory_limit(max_memory)
    chk.check_path(model, "model")
    inputs = chk.load_inputs(input) if input is not None else None
    reads = [model] + ([input] if input is not None else [])
    if model.is_dir():
        default_out = model / "run"
        check_output(out or default_out, inputs=reads, allowed_inside=[default_out],
                     force=force)
        compiled = load_compiled(model)
    else:
        if target is None:
            raise UsageError(f"'{model}' is not a build directory; give --target to compile "
                             "it on the fly", obj=str(model), rule="target",
                             hint="nmc run MODEL.nir --target loihi2")
        from .api import compile as compile_network
        from .api import resolve_target

        tgt, _ = resolve_target(target)
        default_out = Path(f"{safe_name(model.stem)}-{safe_name(tgt.base_name)}-run")
        check_output(out or default_out, inputs=reads, force=force)
        net = _load(model, nir, limit)
        compiled = compile_network(net, target, seed=seed)
    if inputs is not None and input is not None:
        inputs = chk.name_inputs(inputs, compiled.network, input)
        steps = chk.input_steps(inputs, steps)
    else:
        steps = 100 if steps is None else steps
        inputs = _random_inputs(compiled.network, steps, rate, seed)
    if not steps or steps < 1:
        raise UsageError("nothing to run: 0 steps", obj="steps", rule="steps >= 1",
                         hint="pass --steps N")
    from .run_outputs import alignment_of, progress_allowed, run_with_outputs

    backend = get_backend("emulator")
    ro = run_with_outputs(backend, compiled, inputs, steps, network=compiled.network,
                          probes=probe, record_all=record_all, batch_size=batch_size,
                          show_progress=progress_allowed(json_out),
                          align=alignment_of(compiled) if align else None)
    result = ro.result
    rep = ro.annotate(run_report(result, compiled), compiled.target)
    dest = out or default_out

    def fill(tmp: Path) -> None:
        ro.write(tmp)
        (tmp / "run_report.json").write_text(report_json(rep))
        plot_raster(result, tmp / "raster.png")
        plot_activity(result, compiled, tmp / "activity.png")

    write_dir_atomically(dest, fill, kind="nmc run")
    if json_out:
        console.print_json(json.dumps(rep))
    else:
        render_run_report(rep, console)
        ro.render(rep, console)
        console.print(f"wrote {chk.plain(dest)}/run_report.json, outputs.npz, raster.png, "
                      "activity.png", highlight=False)


@app.command("compare")
def compare_cmd(
    model: Path = typer.Argument(..., help="a .nir file or a saved .nmir network"),
    targets: Optional[str] = typer.Option(None, "--targets",
                                          help="comma-separated targets (default: all)"),
    input: Optional[Path] = typer.Option(None, "--input", "-i",  # noqa: A002
                                         help=".npz: one (T, n) or (T, B, n) array per input"),
    rate: float = typer.Option(0.05, help="without --input: Bernoulli spike rate per step"),
    steps: Optional[int] = typer.Option(None, help="steps (default: the input's, or 100)"),
    seed: int = typer.Option(0, help="compile seed and random-input seed"),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="output directory (default MODEL-compare)"),
    jobs: Optional[int] = typer.Option(None, help="processes (default: one per target)"),
    json_out: bool = typer.Option(False, "--json", help="print the records as JSON"),
) -> None:
    """One network on every target: fit, cores, SOPs, energy, latency, agreement."""
    from .compare import compare_command

    compare_command(model, targets, input, rate, steps, seed, out, jobs, json_out, console)


@app.command("sweep")
def sweep_cmd(
    model: Path = typer.Argument(..., help="a .nir file or a saved .nmir network"),
    grid: Path = typer.Option(..., "--grid", "-g", help="the grid TOML (docs/scale.md)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="output directory (default MODEL-sweep)"),
    scheduler: Optional[str] = typer.Option(None, help="Dask scheduler, tcp://host:8786 "
                                            "(default: a LocalCluster here)"),
    workers: Optional[int] = typer.Option(None, help="LocalCluster worker processes"),
    serial: bool = typer.Option(False, help="run the points here, one after another"),
    cache: Optional[Path] = typer.Option(None, help="point cache (default OUT.cache)"),
    json_out: bool = typer.Option(False, "--json", help="print the records as JSON"),
) -> None:
    """Design-space sweep on Dask: targets x seeds x compile options x inputs."""
    from .sweep import sweep_command

    sweep_command(model, grid, out, scheduler, workers, serial, cache, json_out, console,
                  err_console)


def _register_plugins() -> None:
    from .cli_deploy import register

    register(app)


_register_plugins()


def _plain(x: object) -> str:
    from .cli_checks import plain

    return plain(x)


def main() -> None:
    """Entry point of ``nmc``: runs the app and maps errors to exit codes.

    Usage errors are click's own (exit 2); nmcompiler's errors print their one-sentence
    message and exit with the family's code; anything else is a bug (exit 70).
    """
    try:
        app()
    except NmcError as exc:
        from .cli_checks import plain

        err_console.print(f"[bold red]error:[/] {plain(exc)}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {_plain(exc)}\n"
            "This is a bug in nmcompiler: please report it with the command you ran.",
            highlight=False,
        )
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":  # pragma: no cover
    main()
