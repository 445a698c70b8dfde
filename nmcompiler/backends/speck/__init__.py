"""The Speck backend: lowers a Speck CompiledNetwork to sinabs and to a chip configuration.

:class:`SpeckBackend` (entry point ``sinabs``, family ``speck``):

* ``lower(compiled, out_dir)`` writes into ``out_dir``: ``speck_config.json`` (the chip
  configuration, one entry per used core, in samna's DYNAP-CNN fields; checked against
  ``speck_config.schema.json``), ``sinabs_model.json`` + ``sinabs_model.pt`` (a
  ``torch.nn.Sequential`` of ``Conv2d``, ``SumPool2d`` and ``IAFSqueeze`` with the
  quantised integer weights, biases and thresholds, and its state dict) and the
  standalone ``run_sinabs.py``;
* ``run(artifact, inputs, steps)`` runs that model on CPU torch and returns a
  :class:`~nmcompiler.backend.RunResult` with the spikes of every population, equal
  spike for spike to the emulator's Speck arithmetic;
* inputs are spike tensors (``(T, C, H, W)``, ``(T, B, C, H, W)``, flat ``(T, [B,] n)``)
  or event lists (structured arrays with fields ``x``, ``y``, ``p``, ``t``) turned into
  the network's input by the DVS layer's settings (``dvs=`` options: sensor size, crop,
  flips, merged polarities).

samna (the chip runtime) is never imported: docs/speck_backend.md says what that leaves out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.backend import Backend, Counters, RunResult
from nmcompiler.ir.errors import FitError, InputError, ToolchainMissing

from .config import dvs_options, speck_config, validate_config
from .layers import SpeckPlan, plan_layers

__all__ = ["SpeckBackend", "CONFIG_FILE", "MODEL_JSON", "MODEL_PT", "SCRIPT_FILE",
           "model_arch", "plan_layers"]

CONFIG_FILE = "speck_config.json"
MODEL_JSON = "sinabs_model.json"
MODEL_PT = "sinabs_model.pt"
SCRIPT_FILE = "run_sinabs.py"
_SCRIPT = Path(__file__).with_name(SCRIPT_FILE)


def model_arch(plan: SpeckPlan, dvs: dict[str, Any]) -> tuple[dict[str, Any],
                                                             dict[str, np.ndarray]]:
    """(``sinabs_model.json`` content, state dict as numpy arrays) of a chain of layers.

    Module order per layer: the source's pooling (``SumPool2d``; for the first layer the
    DVS layer's), ``Conv2d``, ``IAFSqueeze`` -- sinabs' ``DynapcnnLayer`` order with the
    pooling of a destination moved in front of the layer it feeds.
    """
    mods: list[dict[str, Any]] = []
    state: dict[str, np.ndarray] = {}
    records: dict[str, str] = {}
    prev = plan.input
    for lay in plan.layers:
        if lay.source != prev:
            raise FitError(
                f"layer '{lay.name}' is fed by '{lay.source}', not by the layer before it "
                f"('{prev}'); the sinabs model of this backend is a chain (nn.Sequential)",
                obj=lay.name, rule="chain of layers",
                hint="the chip configuration supports branches; the sinabs model does not")
        prev = lay.name
        if lay.source_pool != (1, 1):
            mods.append({"type": "SumPool2d", "kernel_size": list(lay.source_pool),
                         "population": None})
        f, c, kh, kw = (int(x) for x in lay.weight.shape)
        has_bias = bool(np.any(lay.bias != 0))
        k = len(mods)
        mods.append({"type": "Conv2d", "in_channels": c, "out_channels": f,
                     "kernel_size": [kh, kw], "stride": list(lay.stride),
                     "padding": list(lay.padding), "bias": has_bias})
        state[f"{k}.weight"] = lay.weight.astype(np.float64)
        if has_bias:
            state[f"{k}.bias"] = lay.bias.astype(np.float64)
        records[str(len(mods))] = lay.name
        mods.append({"type": "IAFSqueeze", "spike_threshold": int(lay.threshold),
                     "min_v_mem": int(lay.min_v_mem), "return_to_zero": lay.return_to_zero,
                     "max_spikes": int(lay.max_spikes), "population": lay.name,
                     "core": int(lay.core)})
    c, h, w = plan.input_shape
    arch = {"format": "nmcompiler.sinabs_model", "version": 1, "target": plan.target,
            "input": {"name": plan.input, "shape": [int(c), int(h), int(w)]},
            "dvs": dvs, "modules": mods, "records": records,
            "outputs": dict(sorted(plan.outputs.items()))}
    return arch, state


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _torch_bytes(state: dict[str, np.ndarray]) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, buf)
    return buf.getvalue()


class SpeckBackend(Backend):
    """sinabs (CPU torch) + chip configuration backend for Speck targets."""

    name = "sinabs"
    families = ("speck",)

    def __init__(self, dvs: Mapping[str, Any] | None = None) -> None:
        #: DVS layer options (docs/speck_backend.md): sensor, crop, flip_x, flip_y,
        #: swap_xy, merge, polarities
        self.dvs = dict(dvs or {})

    # ---------------------------------------------------------------- availability
    def available(self) -> str | None:
        """None when torch and sinabs can be imported, else what is missing."""
        missing = [m for m in ("torch", "sinabs") if importlib.util.find_spec(m) is None]
        if missing:
            return (f"{' and '.join(missing)} not installed (pip install torch==2.13.0 "
                    "first, then sinabs==3.1.3 --no-deps: see the Makefile)")
        return None

    # ---------------------------------------------------------------- lowering
    def artifacts(self, compiled: Any) -> tuple[SpeckPlan, dict[str, Any], dict[str, Any],
                                                dict[str, np.ndarray]]:
        """(plan, speck_config dict, sinabs arch, state dict) of ``compiled``, in memory."""
        plan = plan_layers(compiled)
        dvs = dvs_options(plan, self.dvs)
        cfg = speck_config(plan, dvs)
        arch, state = model_arch(plan, dvs)
        return plan, cfg, arch, state

    def lower(self, compiled: Any, out_dir: Path) -> Path:
        """Write the four files (module docstring) into ``out_dir``; return ``out_dir``.

        Everything is computed before the first file is written; each file is written
        atomically. Without torch, ``sinabs_model.pt`` is not written (the JSON files are).
        """
        plan, cfg, arch, state = self.artifacts(compiled)
        if importlib.util.find_spec("jsonschema") is not None:
            validate_config(cfg)
        pt = _torch_bytes(state) if importlib.util.find_spec("torch") else None
        dest = Path(out_dir)
        dest.mkdir(parents=True, exist_ok=True)
        _write(dest / CONFIG_FILE, (json.dumps(cfg, separators=(",", ":")) + "\n").encode())
        _write(dest / MODEL_JSON, (json.dumps(arch, indent=1) + "\n").encode())
        if pt is not None:
            _write(dest / MODEL_PT, pt)
        _write(dest / SCRIPT_FILE, _SCRIPT.read_bytes())
        return dest

    # ---------------------------------------------------------------- running
    def _model(self, artifact: Any, batch: int) -> tuple[Any, dict[str, Any]]:
        from . import run_sinabs as rs

        if isinstance(artifact, (str, Path)):
            p = Path(artifact)
            d = p if p.is_dir() else p.parent
            if (d / MODEL_JSON).exists():
                return rs.load_model(d, batch_size=batch)
            from nmcompiler.compiled import load_compiled

            artifact = load_compiled(p)
        _, _, arch, state = self.artifacts(artifact)
        import torch

        model = rs.build_model(arch, batch_size=batch)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()},
                              strict=False)
        return model, arch

    def _arch_only(self, artifact: Any) -> dict[str, Any]:
        if isinstance(artifact, (str, Path)):
            p = Path(artifact)
            d = p if p.is_dir() else p.parent
            if (d / MODEL_JSON).exists():
                return json.loads((d / MODEL_JSON).read_text())
            from nmcompiler.compiled import load_compiled

            artifact = load_compiled(p)
        return self.artifacts(artifact)[2]

    def prepare_input(self, arch: dict[str, Any], x: Any, steps: int) -> np.ndarray:
        """An input array or event list -> ``(T, B, C, H, W)`` float64 (module docstring)."""
        from . import run_sinabs as rs

        name = arch["input"]["name"]
        a = x if isinstance(x, np.ndarray) and x.dtype.names else np.asarray(x)
        try:
            if isinstance(a, np.ndarray) and a.dtype.names:
                dvs = arch["dvs"]
                frames = rs.events_to_frames(a, tuple(dvs["sensor"]), steps=steps,
                                             polarities=int(dvs["polarities"]))
                a = rs.dvs_preprocess(frames, dvs)
            out = rs.network_input(a, arch)
        except ValueError as exc:
            raise InputError(f"input '{name}': {exc}", obj=name, rule="Speck input",
                             hint="docs/speck_backend.md describes spike tensors and "
                                  "event lists") from None
        if not np.all(np.equal(np.mod(out, 1), 0)):
            raise InputError(f"input '{name}' holds non-integer values; Speck takes spike "
                             "counts", obj=name, rule="integer input", hint="round the input")
        if out.shape[0] < steps:
            raise InputError(f"input '{name}' has {out.shape[0]} steps; {steps} requested",
                             obj=name, rule="input length", need=steps, limit=out.shape[0],
                             hint="pass fewer steps or a longer input")
        return out[:steps]

    def run(self, artifact: Path | Any, inputs: Mapping[str, np.ndarray], steps: int,
            *, probes: tuple[str, ...] = (), record_all: bool = False) -> RunResult:
        """Run the sinabs model of ``artifact`` (a lowered directory, a build directory or
        a CompiledNetwork) for ``steps`` steps on CPU torch.

        ``probes``: ``"pop.spikes"`` keys (every population's spikes are recorded anyway;
        ``v`` and ``u`` are not: sinabs' ``IAFSqueeze`` keeps only the last step's state).
        ``record_all`` changes nothing for the same reason.

        Returns spikes ``(T, B, n)`` (float64) per output, and per population as probe
        ``"pop.spikes"``; ``info`` has ``wall_seconds`` and the sinabs version.
        """
        del record_all
        for key in probes:
            pop, _, var = str(key).rpartition(".")
            if var != "spikes":
                raise InputError(f"probe '{key}': the sinabs backend records spikes only",
                                 obj=str(key), rule="spike probes",
                                 hint="probe 'population.spikes', or run on the emulator")
        reason = self.available()
        if reason is not None:
            raise ToolchainMissing(f"backend '{self.name}' cannot run here: {reason}",
                                   obj=self.name, rule="toolchain")
        if steps is None or int(steps) < 1:
            raise InputError("nothing to run: 0 steps", obj="steps", rule="steps >= 1",
                             hint="pass steps >= 1")
        steps = int(steps)
        arch = self._arch_only(artifact)
        name = arch["input"]["name"]
        extra = set(inputs or {}) - {name}
        if extra:
            raise InputError(f"input(s) {sorted(extra)} are not inputs of the network",
                             obj=sorted(extra)[0], rule="known input", hint=f"inputs: {name}")
        if name not in (inputs or {}):
            raise InputError(f"no input '{name}' given", obj=name, rule="input given",
                             hint="pass spikes or events for the network's input")
        x = self.prepare_input(arch, inputs[name], steps)
        import sinabs

        from . import run_sinabs as rs

        t0 = time.perf_counter()
        model, arch = self._model(artifact, batch=x.shape[1])
        out = rs.run_model(model, arch, x)
        wall = time.perf_counter() - t0
        outputs = {k: out[k] for k in arch["outputs"]}
        recorded = {f"{p}.spikes": out[p] for p in arch["records"].values()}
        missing = [k for k in probes if k not in recorded]
        if missing:
            raise InputError(f"probe '{missing[0]}' names no layer of the network",
                             obj=missing[0], rule="known population",
                             hint="populations: " + ", ".join(arch["records"].values()))
        return RunResult(backend=self.name, steps=steps, outputs=outputs, probes=recorded,
                         counters=Counters(),
                         info={"wall_seconds": float(wall), "sinabs": sinabs.__version__,
                               "target": arch.get("target", "")})
