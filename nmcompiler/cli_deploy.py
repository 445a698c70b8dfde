"""``nmc deploy``: lower a build to a vendor backend and run it there (docs/cli.md).

``register(app)`` adds the command to the typer app of :mod:`nmcompiler.cli`::

    nmc deploy BUILD --backend lava [--input spikes.npz] [--steps N] [-o OUT]

It loads ``BUILD/compiled.nmc``, finds the backend through
:func:`nmcompiler.backend.get_backend` (entry points ``nmcompiler.backends``), writes the
backend's artifact under ``OUT`` (default ``BUILD/deploy-NAME``; for ``lava``:
``OUT/lava/network.npz`` and the standalone ``OUT/lava/run_lava.py``), then runs it and
writes ``OUT/run_NAME.npz`` (one ``(T, B, n)`` array per output name and probe key). When
the backend cannot run here it stops after lowering with
:class:`~nmcompiler.ir.errors.ToolchainMissing` (exit code 3) and the backend's ``available()``
message. The input file is an ``.npz`` with one ``(T, n)`` or ``(T, B, n)`` array per
input name (as ``ir.simulate`` takes); without it, seeded Bernoulli spikes are used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from nmcompiler.ir.errors import BackendError, ToolchainMissing, UsageError

__all__ = ["register", "deploy", "LOG_FILE"]

#: the backend's full message when its run fails, kept in the output directory
LOG_FILE = "deploy.log"


def deploy(
    build: Path,
    backend_name: str,
    *,
    input_path: Path | None = None,
    steps: int | None = None,
    out: Path | None = None,
    rate: float = 0.05,
    seed: int = 0,
    force: bool = False,
    echo: Any = print,
    probes: tuple[str, ...] = (),
    record_all: bool = False,
    batch_size: int | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Lower ``build`` for ``backend_name`` and run it; returns a summary dict.

    The output directory is written atomically (docs/cli.md): a failed deploy leaves it
    as it was. Two failures keep it, on purpose: a backend that cannot run here (the
    artifact is written, then :class:`ToolchainMissing`), and a backend run that fails
    (the artifact and ``deploy.log``, the backend's full message, then
    :class:`BackendError`).

    Raises:
        ToolchainMissing: the backend cannot run here (after the artifact is written).
        UsageError: unknown backend, a backend that does not serve the build's target,
            a missing path or an output the ``-o`` rule refuses.
        InputError: a bad ``--input`` file.
        BackendError: the backend's run failed (summary; the full text in deploy.log).
    """
    from . import cli_checks as chk
    from .backend import get_backend
    from .compiled import load_compiled, write_dir_atomically
    from .outputs import check_output, safe_name

    chk.check_int("seed", seed, 0, chk.MAX_SEED)
    chk.check_int("steps", steps, 1, chk.MAX_STEPS)
    chk.check_float("rate", rate, 0.0, 1.0)
    build = Path(build)
    chk.check_path(build, "build directory")
    backend = get_backend(backend_name)
    default_out = build / f"deploy-{safe_name(backend_name)}"
    reads = [build] + ([Path(input_path)] if input_path is not None else [])
    dest = Path(out) if out is not None else default_out
    check_output(dest, inputs=reads, allowed_inside=[default_out], force=force)
    given = chk.load_inputs(Path(input_path)) if input_path is not None else None
    compiled = load_compiled(build)
    family = compiled.target.backend
    if family not in backend.families:
        raise UsageError(
            f"backend '{backend_name}' serves {', '.join(backend.families)} targets; "
            f"'{build}' was compiled for '{compiled.target.name}' ({family})",
            obj=backend_name, rule="target family", need=family,
            limit=list(backend.families), hint="compile for a matching target first")
    if given is not None:
        inputs = chk.name_inputs(given, compiled.network, Path(input_path))
        steps = chk.input_steps(inputs, steps)
    else:
        steps = 100 if steps is None else steps
        rng = np.random.default_rng(seed)
        inputs = {name: (rng.random((steps, inp.size)) < rate).astype(np.int64)
                  for name, inp in compiled.network.inputs.items()}
    if not steps or steps < 1:
        raise UsageError("nothing to run: 0 steps", obj="steps", rule="steps >= 1",
                         hint="pass --steps N")
    reason = backend.available()
    state: dict[str, Any] = {}

    def fill(tmp: Path) -> None:
        artifact = backend.lower(compiled, tmp)
        state["artifact"] = dest / Path(artifact).relative_to(tmp)
        if reason is not None:
            return
        from .run_outputs import run_with_outputs

        try:
            ro = run_with_outputs(backend, artifact, inputs, steps, network=compiled.network,
                                  probes=probes, record_all=record_all, batch_size=batch_size,
                                  show_progress=show_progress,
                                  label=f"running on {backend_name}")
        except BackendError as exc:
            (tmp / LOG_FILE).write_text(getattr(exc, "log", None) or str(exc))
            state["failed"] = exc
            return
        result = ro.result
        ro.write(tmp)
        saved: dict[str, Any] = {
            **{k: v for k, v in result.outputs.items()},
            **{k: v for k, v in result.probes.items() if k not in result.outputs}}
        np.savez(tmp / f"run_{safe_name(backend_name)}.npz", **saved)
        state["result"] = result
        state["counts"] = ro.counts()

    write_dir_atomically(dest, fill, kind="nmc deploy")
    echo(f"wrote {state['artifact']}")
    if reason is not None:
        raise ToolchainMissing(f"backend '{backend_name}' cannot run here: {reason}",
                               obj=backend_name, rule="toolchain")
    if "failed" in state:
        exc = state["failed"]
        raise BackendError(f"{exc.message}; the full message is in {dest / LOG_FILE}",
                           obj=exc.obj, rule=exc.rule, hint=exc.hint)
    result = state["result"]
    run_file = dest / f"run_{safe_name(backend_name)}.npz"
    summary = {
        "backend": backend_name,
        "steps": int(steps),
        "artifact": str(state["artifact"]),
        "results": str(run_file),
        "outputs": {k: (int(v.sum()) if k in result.outputs else None)
                    for k, v in result.outputs.items()},
        "info": {k: v for k, v in result.info.items() if isinstance(v, (int, float, str))},
        "outputs_file": str(dest / "outputs.npz"),
        "output_counts": state["counts"],
    }
    emu = None
    if backend_name != "emulator":
        # the same inputs on the emulator in the target's arithmetic, for comparison
        emu = get_backend("emulator").run(compiled, inputs, steps)
        summary["emulator"] = {
            "outputs": {k: int(v.sum()) for k, v in emu.outputs.items()},
            "energy_j": {k: float(v) for k, v in emu.counters.energy_j.items()},
        }
    for k, v in result.outputs.items():
        line = f"output {k}: shape {tuple(v.shape)}, sum {float(v.sum()):g}"
        if emu is not None and k in emu.outputs:
            line += f" | emulator sum {float(emu.outputs[k].sum()):g}"
        echo(line)
    if emu is not None and emu.counters.energy_j:
        energy = dict(emu.counters.energy_j)
        total = energy.pop("total", sum(energy.values()))
        parts = ", ".join(f"{k} {v:.3g} J" for k, v in energy.items())
        echo(f"emulator energy estimate ({compiled.target.name}): {total:.3g} J ({parts})")
    secs = result.info.get("wall_seconds")
    echo(f"ran {steps} steps on '{backend_name}'"
         + (f" in {secs:.2f} s" if isinstance(secs, float) else "") + f"; wrote {run_file}")
    return summary


def register(app: typer.Typer) -> None:
    """Add ``nmc deploy`` to ``app``."""

    @app.command(name="deploy")
    def deploy_cmd(
        build: Path = typer.Argument(..., help="a build directory written by nmc compile"),
        backend: str = typer.Option(..., "--backend", "-b",
                                    help="backend name (installed: nmcompiler.backends)"),
        input: Optional[Path] = typer.Option(  # noqa: A002
            None, "--input", "-i", help=".npz: one (T, n) or (T, B, n) array per input"),
        steps: Optional[int] = typer.Option(None, help="steps (default: the input's T, or 100)"),
        out: Optional[Path] = typer.Option(None, "--out", "-o",
                                           help="output directory (default BUILD/deploy-NAME)"),
        rate: float = typer.Option(0.05, help="without --input: Bernoulli spike rate"),
        seed: int = typer.Option(0, help="without --input: seed of the random spikes"),
        force: bool = typer.Option(False, "--force", help="replace a non-empty output "
                                   "directory nmcompiler did not write (never a file)"),
        probe: list[str] = typer.Option([], "--probe", help="record POP.v / POP.u / "
                                        "POP.spikes into outputs.npz (repeatable)"),
        record_all: bool = typer.Option(False, "--record-all",
                                        help="record every population's spikes"),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="run a (T, B, n) "
                                                 "input this many samples at a time"),
    ) -> None:
        """Lower BUILD to a backend's artifact (e.g. a Lava process graph) and run it there."""
        from .run_outputs import progress_allowed

        deploy(build, backend, input_path=input, steps=steps, out=out, rate=rate, seed=seed,
               force=force, echo=typer.echo, probes=tuple(probe), record_all=record_all,
               batch_size=batch_size, show_progress=progress_allowed(False))
