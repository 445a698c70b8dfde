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

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.backend import Backend, Counters, RunResult
from nmcompiler.compiled import CompiledNetwork
from nmcompiler.ir.errors import BackendError, InputError, ToolchainMissing

__all__ = ["LoihiBackend", "LAVA_DIR", "NETWORK_FILE", "SCRIPT_FILE"]

LAVA_DIR = "lava"
NETWORK_FILE = "network.npz"
SCRIPT_FILE = "run_lava.py"


class LoihiBackend(Backend):
    """Lava (Loihi 1 / Loihi 2 bit-accurate CPU models) backend (docs/loihi_backend.md)."""

    name = "lava"
    families = ("loihi",)

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
    def lower(self, compiled: CompiledNetwork, out_dir: Path, *,
              probes: tuple[str, ...] = ()) -> Path:
        """Write ``out_dir/lava/{network.npz, run_lava.py}``; return ``out_dir/lava``.

        ``probes`` adds ``"pop.var"`` recordings to the network's own outputs and probes.
        """
        from .harness import RUNNER
        from .lower import lower_compiled, write_graph

        graph = lower_compiled(compiled, probes=probes)
        dest = Path(out_dir) / LAVA_DIR
        dest.mkdir(parents=True, exist_ok=True)
        write_graph(graph, dest / NETWORK_FILE)
        shutil.copyfile(RUNNER, dest / SCRIPT_FILE)
        return dest

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
        if steps is None or int(steps) < 1:
            raise InputError("nothing to run: 0 steps", obj="steps", rule="steps >= 1",
                             hint="pass steps >= 1")
        steps = int(steps)
        with tempfile.TemporaryDirectory(prefix="nmc_lava_run_") as tmp:
            npz, script = self._artifact(artifact, Path(tmp), probes, record_all)
            graph = read_graph(npz)
            arrays = self._check_inputs(graph.inputs, inputs, steps)
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

    def _artifact(self, artifact: Any, tmp: Path, probes: tuple[str, ...],
                  record_all: bool) -> tuple[Path, Path | None]:
        """(network.npz, script or None) for any accepted artifact."""
        from .lower import lower_compiled, write_graph

        compiled = artifact
        if isinstance(artifact, (str, Path)):
            p = Path(artifact).resolve()  # the runner starts elsewhere: absolute paths
            lava_dir = p if p.is_dir() and (p / NETWORK_FILE).exists() else None
            if p.is_file() and p.suffix == ".npz":
                lava_dir = p.parent
                npz = p
            elif lava_dir is not None:
                npz = lava_dir / NETWORK_FILE
            else:
                from nmcompiler.compiled import load_compiled

                compiled = load_compiled(p)
                lava_dir = None
            if lava_dir is not None:
                script = lava_dir / SCRIPT_FILE
                return npz, script if script.exists() else None
        graph = lower_compiled(compiled, probes=probes)
        if record_all:
            graph.record_all()
        return write_graph(graph, tmp / NETWORK_FILE), None

    @staticmethod
    def _check_inputs(names: Mapping[str, int], inputs: Mapping[str, np.ndarray],
                      steps: int) -> dict[str, np.ndarray]:
        out = {}
        for name, x in (inputs or {}).items():
            if name not in names:
                raise InputError(f"input '{name}' is not an input of the network",
                                 obj=name, rule="known input",
                                 hint="inputs: " + (", ".join(names) or "none"))
            a = np.asarray(x)
            if a.ndim not in (2, 3) or a.shape[-1] != names[name] or a.shape[0] < steps:
                raise InputError(
                    f"input '{name}' has shape {a.shape}; need (T >= {steps}, "
                    f"{names[name]}) or (T, B, {names[name]})", obj=name, rule="input shape",
                    hint="one (T, n) or (T, B, n) array per input")
            if a.size and not np.all(np.equal(np.mod(a, 1), 0)):
                raise InputError(
                    f"input '{name}' holds non-integer values; Loihi takes integer spikes "
                    "or payloads", obj=name, rule="integer input", hint="round the input")
            out[name] = a[:steps]
        batches = {np.asarray(a).shape[1] for a in out.values() if np.asarray(a).ndim == 3}
        if len(batches) > 1:
            raise InputError(f"inputs have different batch sizes {sorted(batches)}",
                             obj="inputs", rule="one batch size", hint="use one B for all")
        if batches:
            b = batches.pop()
            out = {k: (v if v.ndim == 3 else np.repeat(v[:, None, :], b, axis=1))
                   for k, v in out.items()}
        return out
