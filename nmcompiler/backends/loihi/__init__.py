"""The Loihi backend: lowers a loihi / loihi2 CompiledNetwork to Lava and runs it there.

:class:`LoihiBackend` (entry point ``lava``, family ``loihi``):

* ``lower(compiled, out_dir)`` writes ``out_dir/lava/network.npz`` (the Lava process
  graph as integer arrays, :mod:`nmcompiler.backends.loihi.lower`) and ``out_dir/lava/run_lava.py``
  (a standalone script needing only lava-nc and numpy: ``python run_lava.py --steps N
  --input spikes.npz``);
* ``run(artifact, inputs, steps)`` runs that graph on Lava's bit-accurate CPU models
  (``Loihi2SimCfg(select_tag="fixed_pt")``) in the Python 3.10 Lava environment, as a
  subprocess (:mod:`nmcompiler.backends.loihi.harness`), and returns a
  :class:`~nmcompiler.backend.RunResult` whose outputs and probes are in the compiled
  network's integer units, the same as the emulator's;
* ``available()`` says exactly what is missing when Lava cannot run.

Lava 0.10 needs Python 3.10; nothing here imports Lava (docs/loihi_backend.md).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.backend import Counters, RunResult, ScriptBackend
from nmcompiler.ir.errors import BackendError, InputError, ToolchainMissing

__all__ = ["LoihiBackend", "LAVA_DIR", "NETWORK_FILE", "SCRIPT_FILE"]

LAVA_DIR = "lava"
NETWORK_FILE = "network.npz"
SCRIPT_FILE = "run_lava.py"


class LoihiBackend(ScriptBackend):
    """Lava (Loihi 1 / Loihi 2 bit-accurate CPU models) backend (docs/loihi_backend.md)."""

    name = "lava"
    families = ("loihi",)
    dir_name = LAVA_DIR
    network_file = NETWORK_FILE
    script_file = SCRIPT_FILE
    broadcast_batch = True

    def __init__(self, python: str | None = None) -> None:
        #: the Lava interpreter; None = ``$NMC_LAVA_PYTHON`` or ``.venv-lava``
        self.python = python

    # ---------------------------------------------------------------- availability
    def available(self) -> str | None:
        """None when Lava can run here, else what is missing (one sentence)."""
        from .harness import RUNNER, lava_available

        if not RUNNER.exists():  # pragma: no cover - broken checkout
            return f"the Lava runner {RUNNER} is missing (reinstall nmcompiler)"
        return lava_available(self.python)

    def _require(self) -> None:
        reason = self.available()
        if reason is not None:
            raise ToolchainMissing(
                f"backend '{self.name}' cannot run Lava here: {reason}",
                obj=self.name, rule="toolchain",
            )

    # ---------------------------------------------------------------- lowering
    def runner(self) -> Path:
        """``run_lava.py``, copied next to the graph (needs only lava-nc and numpy)."""
        from .harness import RUNNER

        return RUNNER

    def graph_io(self) -> tuple[Any, Any, Any]:
        """The Lava process graph's lowering, writer and reader (:mod:`.lower`)."""
        from .lower import lower_compiled, read_graph, write_graph

        return lower_compiled, write_graph, read_graph

    # ---------------------------------------------------------------- running
    def run(
        self,
        artifact: Path | Any,
        inputs: Mapping[str, np.ndarray],
        steps: int,
        *,
        probes: tuple[str, ...] = (),
        record_all: bool = False,
        fuse: bool = False,
        timeout: float = 1800,
    ) -> RunResult:
        """Run on Lava for ``steps`` steps.

        Args:
            artifact: a CompiledNetwork, a build directory / ``compiled.nmc``, or a lowered
                ``lava/`` directory / its ``network.npz``.
            inputs: ``{input name: (T, n) or (T, B, n)}`` integer spikes or payloads.
            steps: steps to run.
            probes: extra ``"pop.spikes" | ".v" | ".u"`` recordings (compiled networks).
            record_all: record spikes, u and v of every population (compiled networks).
            fuse: run every population as one Lava LIF process and merge compatible
                connections (``lava_runner.fuse_network``): the same numbers with far
                fewer Lava OS processes -- faster for many small networks, slower for one
                network with large matrices (docs/benchmarks.md). False (default) builds
                one process per population and projection, as ``run_lava.py`` does.
            timeout: seconds before the Lava subprocess is killed.

        Returns:
            RunResult with ``outputs`` (spikes of spiking outputs, v of readouts) and
            ``probes``, float64 ``(T, B, n)`` in the compiled network's units; counters
            are empty (Lava's CPU simulation counts nothing); ``info`` has ``lava_seconds``
            (graph build + run inside Lava), ``wall_seconds`` (with Python start) and
            ``network_npz``.
        """
        from .harness import LavaRunError, run_graph_file
        from .lower import read_graph

        self._require()
        steps = self.check_steps(steps)
        with tempfile.TemporaryDirectory(prefix="nmc_lava_run_") as tmp:
            npz, script = self.artifact_files(artifact, Path(tmp), probes, record_all)
            graph = read_graph(npz)
            arrays = self.check_inputs(graph.inputs, inputs, steps)
            try:
                raw = run_graph_file(npz, arrays, steps, python=self.python,
                                     timeout=timeout, script=script, fuse=fuse)
            except LavaRunError as exc:
                err = BackendError(f"the Lava run failed: {exc}", obj=self.name,
                                   rule="Lava run")
                # the full text, for a log file in the output directory
                setattr(err, "log", getattr(exc, "log", None) or str(exc))  # noqa: B010
                raise err from None
        outputs = {k: raw[v].astype(np.float64) for k, v in graph.outputs.items()}
        probe_out = {k: raw[v].astype(np.float64) for k, v in graph.probes.items()}
        if record_all:
            for p in graph.populations:
                for var, x in (("spikes", "s"), ("v", "v"), ("u", "u")):
                    probe_out.setdefault(f"{p['name']}.{var}", raw[f"{p['name']}/{x}"]
                                         .astype(np.float64))
        info = {
            "lava_seconds": float(raw["lava_seconds"]),
            "wall_seconds": float(raw["wall_seconds"]),
            "run_config": "Loihi2SimCfg(select_tag='fixed_pt')",
            "fused": bool(fuse),
            "target": graph.info.get("target", ""),
            "network_npz": str(npz) if not str(npz).startswith(tempfile.gettempdir())
            else None,
        }
        spikes = sum(int(raw[f"{p['name']}/s"].sum()) for p in graph.populations
                     if f"{p['name']}/s" in raw)
        info["recorded_spikes"] = spikes
        return RunResult(backend=self.name, steps=steps, outputs=outputs, probes=probe_out,
                         counters=Counters(), info=info)

    def check_input_values(self, name: str, a: np.ndarray) -> None:
        """Loihi takes integer spikes or payloads."""
        if a.size and not np.all(np.equal(np.mod(a, 1), 0)):
            raise InputError(
                f"input '{name}' holds non-integer values; Loihi takes integer spikes "
                "or payloads", obj=name, rule="integer input", hint="round the input")
