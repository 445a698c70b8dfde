"""The SpiNNaker backend: lowers a spinnaker CompiledNetwork to PyNN; runs it on NEST.

:class:`PyNNBackend` (entry point ``pynn``, family ``spinnaker``):

* ``lower(compiled, out_dir)`` writes ``out_dir/pynn/network.npz`` (the PyNN network and
  our mapping as arrays, deterministic bytes; :mod:`nmcompiler.backends.spinnaker.lower`)
  and ``out_dir/pynn/run_pynn.py``, a standalone script that builds it with PyNN 0.13 and
  runs it with ``--simulator nest`` (``pyNN.nest``) or ``--simulator spinnaker``
  (sPyNNaker's ``pyNN.spiNNaker``: every slice pinned to the chip and core our placer
  chose; ``--virtual-board 5`` maps without a board);
* ``run(artifact, inputs, steps)`` runs that script on NEST in a subprocess (the PyNN
  interpreter: ``$NMC_PYNN_PYTHON`` or this one) and returns a
  :class:`~nmcompiler.backend.RunResult` with the spikes (and voltages in the compiled
  network's raw units) of the outputs and probes;
* ``available()`` says what is missing when PyNN + NEST cannot run.

docs/spinnaker_backend.md derives the cell parameters and the NEST retiming.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.backend import Counters, RunResult, ScriptBackend
from nmcompiler.ir.errors import BackendError, InputError, ToolchainMissing

__all__ = ["PyNNBackend", "PYNN_DIR", "NETWORK_FILE", "SCRIPT_FILE", "RUNNER",
           "run_graph_file", "pynn_python"]

PYNN_DIR = "pynn"
NETWORK_FILE = "network.npz"
SCRIPT_FILE = "run_pynn.py"
RUNNER = Path(__file__).resolve().parent / "pynn_runner.py"
ENV_VAR = "NMC_PYNN_PYTHON"
_AVAILABLE: dict[str, str | None] = {}


def pynn_python() -> str:
    """The interpreter that has PyNN + NEST: ``$NMC_PYNN_PYTHON`` or this one."""
    return os.environ.get(ENV_VAR) or sys.executable


def nest_available(python: str | None = None) -> str | None:
    """None when ``python -c 'import pyNN.nest'`` works, else why not (cached)."""
    py = python or pynn_python()
    if py in _AVAILABLE:
        return _AVAILABLE[py]
    reason = None
    try:
        r = subprocess.run([py, "-c", "import pyNN, nest, pyNN.nest; print('ok')"],
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0 or "ok" not in r.stdout:
            tail = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
            reason = (f"PyNN + NEST not importable with {py}: {tail}; install them with "
                      "pip install 'nmcompiler[spinnaker]' (pynn==0.13.0, nest-simulator)")
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = f"cannot run {py}: {exc}"
    _AVAILABLE[py] = reason
    return reason


def run_graph_file(network_npz: str | Path, inputs: Mapping[str, np.ndarray], steps: int, *,
                   simulator: str = "nest", python: str | None = None,
                   script: str | Path | None = None, timeout: float = 1800,
                   extra: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Run ``script`` (default: the runner, shipped as ``run_pynn.py``) on ``network_npz``.

    Returns ``{"pop/s" | "pop/v": (T, B, n)}`` plus ``"meta"`` (JSON string) and
    ``"wall_seconds"``. Raises :class:`BackendError` when the script fails.
    """
    py = python or pynn_python()
    with tempfile.TemporaryDirectory(prefix="nmc_pynn_") as tmp:
        src, dst = Path(tmp) / "inputs.npz", Path(tmp) / "out.npz"
        spikes: dict[str, Any] = {k: np.asarray(v).astype(np.int8) for k, v in inputs.items()}
        np.savez(src, **spikes)
        cmd = [py, str(Path(script or RUNNER).resolve()), "--network",
               str(Path(network_npz).resolve()),
               "--simulator", simulator, "--input", str(src), "--steps", str(int(steps)),
               "--out", str(dst), "--quiet", *extra]
        env = dict(os.environ, MPLBACKEND="Agg")
        t0 = time.perf_counter()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp,
                               env=env)
        except subprocess.TimeoutExpired:
            raise BackendError(f"the PyNN run on {simulator} timed out after {timeout} s",
                               obj=simulator, rule="timeout", hint="run fewer steps") from None
        wall = time.perf_counter() - t0
        if r.returncode != 0 or not dst.exists():
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
            raise BackendError(f"the PyNN run on {simulator} failed (status {r.returncode}):"
                               f"\n{tail}", obj=simulator, rule="PyNN run",
                               hint="run the script by hand to see the whole error")
        with np.load(dst, allow_pickle=False) as z:
            out = {k: np.array(z[k]) for k in z.files}
    out["wall_seconds"] = np.array(wall)
    return out


class PyNNBackend(ScriptBackend):
    """PyNN (NEST runs, sPyNNaker mapping) backend for SpiNNaker targets."""

    name = "pynn"
    families = ("spinnaker",)
    dir_name = PYNN_DIR
    network_file = NETWORK_FILE
    script_file = SCRIPT_FILE

    def __init__(self, python: str | None = None) -> None:
        #: the PyNN + NEST interpreter; None = ``$NMC_PYNN_PYTHON`` or this one
        self.python = python

    def available(self) -> str | None:
        """None when PyNN + NEST can run here, else what is missing (one sentence)."""
        return nest_available(self.python)

    def runner(self) -> Path:
        """``run_pynn.py``, copied next to the graph (needs only PyNN and numpy)."""
        return RUNNER

    def graph_io(self) -> tuple[Any, Any, Any]:
        """The PyNN graph's lowering, writer and reader (:mod:`.lower`)."""
        from .lower import lower_compiled, read_graph, write_graph

        return lower_compiled, write_graph, read_graph

    def run(
        self,
        artifact: Path | Any,
        inputs: Mapping[str, np.ndarray],
        steps: int,
        *,
        probes: tuple[str, ...] = (),
        record_all: bool = False,
        timeout: float = 1800,
    ) -> RunResult:
        """Run on NEST through PyNN for ``steps`` steps.

        Args:
            artifact: a CompiledNetwork, a build directory / ``compiled.nmc``, or a lowered
                ``pynn/`` directory / its ``network.npz``.
            inputs: ``{input name: (T, n) or (T, B, n)}`` 0/1 spikes.
            steps: steps to run.
            probes: extra ``"pop.spikes" | "pop.v"`` recordings (compiled networks).
            record_all: record the spikes of every population (compiled networks).
            timeout: seconds before the NEST subprocess is killed.

        Returns:
            RunResult: ``outputs`` and ``probes`` float64 ``(T, B, n)`` (spikes; voltages
            in the compiled network's raw s16.15 units); no counters (NEST counts
            nothing); ``info`` has ``wall_seconds``, ``run_seconds`` (NEST build + run),
            ``nest_late_synapses`` and ``recorded_spikes``.
        """
        from .lower import read_graph

        reason = self.available()
        if reason is not None:
            raise ToolchainMissing(f"backend '{self.name}' cannot run NEST here: {reason}",
                                   obj=self.name, rule="toolchain")
        steps = self.check_steps(steps)
        with tempfile.TemporaryDirectory(prefix="nmc_pynn_run_") as tmp:
            npz, script = self.artifact_files(artifact, Path(tmp), probes, record_all)
            graph = read_graph(npz)
            arrays = self.check_inputs({k: v["n"] for k, v in graph.inputs.items()},
                                       inputs, steps)
            raw = run_graph_file(npz, arrays, steps, python=self.python, script=script,
                                 timeout=timeout)
        meta = json.loads(str(raw.pop("meta")))
        outputs = {k: raw[v].astype(np.float64) for k, v in graph.outputs.items()}
        probe_out = {k: raw[v].astype(np.float64) for k, v in graph.probes.items()}
        if record_all:
            for p in graph.populations:
                key = f"{p['name']}/s"
                if key in raw:
                    probe_out.setdefault(f"{p['name']}.spikes", raw[key].astype(np.float64))
        info = {
            "simulator": "nest",
            "wall_seconds": float(raw["wall_seconds"]),
            "run_seconds": float(meta.get("run_seconds", 0.0)) + float(
                meta.get("build_seconds", 0.0)),
            "nest_late_synapses": int(graph.info.get("nest_late_synapses", 0)),
            "target": graph.info.get("target", ""),
            "recorded_spikes": int(sum(int(v.sum()) for k, v in raw.items()
                                       if k.endswith("/s"))),
        }
        return RunResult(backend=self.name, steps=steps, outputs=outputs, probes=probe_out,
                         counters=Counters(), info=info)

    def check_input_values(self, name: str, a: np.ndarray) -> None:
        """PyNN's SpikeSourceArray sends binary spikes."""
        if a.size and np.any((a != 0) & (a != 1)):
            raise InputError(
                f"input '{name}' holds values other than 0 and 1; PyNN's "
                "SpikeSourceArray sends binary spikes", obj=name, rule="binary input",
                hint="send spikes (0/1); graded inputs run on the emulator")
