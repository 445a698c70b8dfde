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

import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from nmcompiler.ir.errors import FormatError, ToolchainMissing, UsageError

__all__ = ["register", "deploy"]


def _load_inputs(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: np.asarray(f[k]) for k in f.files}
    except FileNotFoundError:
        raise FormatError(f"input file '{path}' does not exist", obj=str(path),
                          rule="file exists", hint="check the path") from None
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise FormatError(f"input file '{path}' is not a .npz of arrays ({exc})",
                          obj=str(path), rule="npz",
                          hint="write it with numpy.savez(path, input_name=array)") from None


def deploy(
    build: Path,
    backend_name: str,
    *,
    input_path: Path | None = None,
    steps: int | None = None,
    out: Path | None = None,
    rate: float = 0.05,
    seed: int = 0,
    echo: Any = print,
    probes: tuple[str, ...] = (),
    record_all: bool = False,
    batch_size: int | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Lower ``build`` for ``backend_name`` and run it; returns a summary dict.

    Raises:
        ToolchainMissing: the backend cannot run here (after the artifact is written).
        UsageError: unknown backend, or a backend that does not serve the build's target.
    """
    from .backend import get_backend
    from .compiled import load_compiled

    compiled = load_compiled(build)
    backend = get_backend(backend_name)
    family = compiled.target.backend
    if family not in backend.families:
        raise UsageError(
            f"backend '{backend_name}' serves {', '.join(backend.families)} targets; "
            f"'{build}' was compiled for '{compiled.target.name}' ({family})",
            obj=backend_name, rule="target family", need=family,
            limit=list(backend.families), hint="compile for a matching target first")
    dest = Path(out) if out is not None else Path(build) / f"deploy-{backend_name}"
    dest.mkdir(parents=True, exist_ok=True)
    artifact = backend.lower(compiled, dest)
    echo(f"wrote {artifact}")
    reason = backend.available()
    if reason is not None:
        raise ToolchainMissing(f"backend '{backend_name}' cannot run here: {reason}",
                               obj=backend_name, rule="toolchain")
    if input_path is not None:
        inputs = _load_inputs(input_path)
        if steps is None:
            steps = min((int(v.shape[0]) for v in inputs.values() if v.ndim), default=0)
    else:
        steps = 100 if steps is None else steps
        rng = np.random.default_rng(seed)
        inputs = {name: (rng.random((steps, inp.size)) < rate).astype(np.int64)
                  for name, inp in compiled.network.inputs.items()}
    if not steps or steps < 1:
        raise UsageError("nothing to run: 0 steps", obj="steps", rule="steps >= 1",
                         hint="pass --steps N")
    from .run_outputs import run_with_outputs

    ro = run_with_outputs(backend, artifact, inputs, steps, network=compiled.network,
                          probes=probes, record_all=record_all, batch_size=batch_size,
                          show_progress=show_progress, label=f"running on {backend_name}")
    result = ro.result
    ro.write(dest)
    saved = {**{k: v for k, v in result.outputs.items()},
             **{k: v for k, v in result.probes.items() if k not in result.outputs}}
    run_file = dest / f"run_{backend_name}.npz"
    np.savez(run_file, **saved)
    summary = {
        "backend": backend_name,
        "steps": int(steps),
        "artifact": str(artifact),
        "results": str(run_file),
        "outputs": {k: (int(v.sum()) if k in result.outputs else None)
                    for k, v in result.outputs.items()},
        "info": {k: v for k, v in result.info.items() if isinstance(v, (int, float, str))},
        "outputs_file": str(dest / "outputs.npz"),
        "output_counts": ro.counts(),
    }
    emu = None
    if backend_name != "emulator":
        # the same inputs on the emulator in the target's arithmetic, for comparison
        emu = get_backend("emulator").run(compiled, inputs, steps)
        energy = emu.counters.energy_j
        summary["emulator"] = {
            "outputs": {k: int(v.sum()) for k, v in emu.outputs.items()},
            "energy_j": {k: float(v) for k, v in energy.items()},
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
               echo=typer.echo, probes=tuple(probe), record_all=record_all,
               batch_size=batch_size, show_progress=progress_allowed(False))
