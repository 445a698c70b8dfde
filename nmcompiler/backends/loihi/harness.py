"""Run a network on Lava's bit-accurate models from the main (Python 3.11) environment.

Lava 0.10 needs Python 3.10 (docs/loihi_backend.md), so the network travels as plain integer
arrays in an ``.npz`` to ``lava_runner.py``, which runs in ``.venv-lava``. The spec is the
one :func:`nmcompiler.targets.families.loihi.run_spec` takes, so both sides can be compared
array for array.

``net_spec``::

    {"populations": [{"name": str, "n": int,
                      "du", "dv", "vth", "bias_mant", "bias_exp": int or int array (n,),
                      "model": "lif" (default) | "lif_reset",
                      "reset_interval", "reset_offset": int (lif_reset),
                      "u0", "v0": int or int array (n,) initial state (default 0)}],
     "connections": [{"pre": population or input name, "post": population name,
                      "weights": int array (n_post, n_pre),
                      "weight_exp": int = 0, "num_message_bits": int = 0,
                      "num_weight_bits": int = 8, "sign_mode": None | "mixed" |
                      "excitatory" | "inhibitory", "sparse": bool = False,
                      "delays": None | int | int array (n_post, n_pre) (DelayDense)}],
     "inputs": {name: int array (steps, n): 0/1 spikes or graded payloads}}

Result: ``{f"{pop}/s", f"{pop}/u", f"{pop}/v": int32 array (steps, n)}``, the state after
every step.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LavaRunError",
    "lava_available",
    "lava_python",
    "run_graph_file",
    "run_on_lava",
    "write_spec",
]

_HERE = Path(__file__).resolve().parent
RUNNER = _HERE / "lava_runner.py"
REPO_ROOT = _HERE.parents[2]  # the checkout: nmcompiler/backends/loihi -> repository root
ENV_VAR = "NMC_LAVA_PYTHON"


class LavaRunError(RuntimeError):
    """The Lava runner failed; the message carries its exit status and stderr tail."""


def lava_python() -> Path:
    """The interpreter of the Lava environment: ``$NMC_LAVA_PYTHON`` or ``.venv-lava``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return REPO_ROOT / ".venv-lava" / "bin" / "python"


_AVAILABLE_CACHE: dict[str, str | None] = {}


def lava_available(python: str | None = None) -> str | None:
    """None if Lava can run here, else the reason it cannot (cached per interpreter)."""
    py = Path(python) if python else lava_python()
    key = str(py)
    if key in _AVAILABLE_CACHE:
        return _AVAILABLE_CACHE[key]
    reason: str | None = None
    if not py.exists():
        src = f"${ENV_VAR}" if os.environ.get(ENV_VAR) and not python else "the Lava venv"
        reason = (
            f"no Lava Python at {py} ({src}); create it with `make lava-venv` "
            f"(Python 3.10 + lava-nc 0.10.0) or set {ENV_VAR}"
        )
    else:
        probe = (
            "import sys; v = sys.version_info; "
            "assert v[:2] == (3, 10), f'Python {v[0]}.{v[1]}, Lava needs 3.10'; "
            "import lava.proc.lif.models, lava.proc.dense.models, lava.proc.monitor.process; "
            "from lava.magma.core.run_configs import Loihi2SimCfg; print('ok')"
        )
        try:
            r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            reason = f"cannot run {py}: {e}"
        else:
            if r.returncode != 0 or "ok" not in r.stdout:
                tail = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
                reason = f"lava not importable with {py}: {tail}"
    _AVAILABLE_CACHE[key] = reason
    return reason


def _per_neuron(x: Any, n: int, what: str) -> np.ndarray:
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer) and not np.all(np.asarray(a) == np.rint(a)):
        raise ValueError(f"{what} must be integers, got {a!r}")
    return np.broadcast_to(a.astype(np.int64), (n,)).copy()


def write_spec(net_spec: Mapping[str, Any], steps: int, path: str | Path) -> None:
    """Write ``net_spec`` as the runner's ``.npz`` (see ``lava_runner.py``)."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"steps": int(steps), "populations": [], "connections": []}
    sizes: dict[str, int] = {}
    inputs = dict(net_spec.get("inputs", {}))
    meta["inputs"] = []
    for k, (name, x) in enumerate(inputs.items()):
        a = np.asarray(x).astype(np.int64)
        if a.ndim != 2 or a.shape[0] < steps:
            raise ValueError(f"input {name!r}: need shape (steps={steps}, n), got {a.shape}")
        arrays[f"in{k}"] = a[:steps]
        meta["inputs"].append({"name": str(name), "n": int(a.shape[1])})
        sizes[str(name)] = int(a.shape[1])
    for i, p in enumerate(net_spec["populations"]):
        name, n = str(p["name"]), int(p["n"])
        if name in sizes:
            raise ValueError(f"population {name!r}: name already used")
        sizes[name] = n
        defaults = {"du": 0, "dv": 0, "vth": 10, "bias_mant": 0, "bias_exp": 0, "u0": 0, "v0": 0}
        for key, d in defaults.items():
            arrays[f"pop{i}.{key}"] = _per_neuron(p.get(key, d), n, f"{name}.{key}")
        meta["populations"].append(
            {
                "name": name,
                "n": n,
                "model": p.get("model", "lif"),
                "reset_interval": int(p.get("reset_interval", 1)),
                "reset_offset": int(p.get("reset_offset", 0)),
            }
        )
    pops = {str(p["name"]) for p in net_spec["populations"]}
    for j, c in enumerate(net_spec.get("connections", [])):
        pre, post = str(c["pre"]), str(c["post"])
        if pre not in sizes or post not in pops:
            raise ValueError(f"connection {j}: unknown pre {pre!r} or post population {post!r}")
        w = np.asarray(c["weights"]).astype(np.int64)
        if w.shape != (sizes[post], sizes[pre]):
            raise ValueError(
                f"connection {j} ({pre}->{post}): weights {w.shape} != {(sizes[post], sizes[pre])}"
            )
        arrays[f"conn{j}.weights"] = w
        has_delays = c.get("delays") is not None
        if has_delays:
            arrays[f"conn{j}.delays"] = np.broadcast_to(
                np.asarray(c["delays"]).astype(np.int64), w.shape
            ).copy()
        meta["connections"].append(
            {
                "pre": pre,
                "post": post,
                "weight_exp": int(c.get("weight_exp", 0)),
                "num_message_bits": int(c.get("num_message_bits", 0)),
                "num_weight_bits": int(c.get("num_weight_bits", 8)),
                "sign_mode": c.get("sign_mode"),
                "sparse": bool(c.get("sparse", False)),
                "delays": has_delays,
            }
        )
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


def run_on_lava(
    net_spec: Mapping[str, Any], steps: int, *, python: str | None = None, timeout: float = 600
) -> dict[str, np.ndarray]:
    """Run ``net_spec`` for ``steps`` steps on Lava (``Loihi2SimCfg(select_tag="fixed_pt")``).

    Args:
        net_spec: the network (module docstring).
        steps: number of time steps.
        python: the Lava interpreter; default ``$NMC_LAVA_PYTHON`` or ``.venv-lava``.
        timeout: seconds before the runner is killed.

    Returns:
        ``{f"{pop}/s" | "/u" | "/v": int32 (steps, n)}`` plus ``"lava_seconds"`` (0-d).

    Raises:
        LavaRunError: Lava is unavailable, or the runner failed or timed out.
    """
    py = _checked_python(python)
    with tempfile.TemporaryDirectory(prefix="nmc_lava_") as tmp:
        src, dst = Path(tmp) / "net.npz", Path(tmp) / "out.npz"
        write_spec(net_spec, steps, src)
        return _run_runner([str(py), str(RUNNER), str(src), str(dst)], dst, tmp, timeout)


def _checked_python(python: str | None) -> Path:
    """The Lava interpreter, or LavaRunError saying why Lava cannot run."""
    py = Path(python) if python else lava_python()
    reason = lava_available(str(py))
    if reason is not None:
        raise LavaRunError(reason)
    return py


def _run_runner(cmd: list[str], dst: Path, cwd: str, timeout: float) -> dict[str, np.ndarray]:
    """Run the Lava runner command; return the arrays it wrote to ``dst``."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise LavaRunError(f"Lava runner timed out after {timeout} s") from e
    if r.returncode != 0 or not dst.exists():
        lines = [ln.strip() for ln in r.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else "(no message)"
        err = LavaRunError(f"Lava runner exited with status {r.returncode} ({last[:300]})")
        err.log = (f"command: {' '.join(cmd)}\nexit status: {r.returncode}\n"
                   f"--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}")
        raise err
    with np.load(dst, allow_pickle=False) as z:
        return {k: np.array(z[k]) for k in z.files}


def run_graph_file(
    network_npz: str | Path,
    inputs: Mapping[str, np.ndarray],
    steps: int,
    *,
    python: str | None = None,
    timeout: float = 600,
    script: str | Path | None = None,
    fuse: bool = False,
) -> dict[str, np.ndarray]:
    """Run a lowered ``network.npz`` (``backends/loihi/lower.py``) on Lava.

    Calls ``script`` (default: ``lava_runner.py``, the file shipped as ``run_lava.py``) in
    the Lava interpreter as ``--network N --input X --steps T --out O``, exactly as a user
    runs the standalone script.

    Args:
        network_npz: the lowered graph.
        inputs: ``{input name: (T, n) or (T, B, n)}`` integer spikes / payloads.
        steps: number of steps.
        fuse: pass ``--fuse`` (all populations in one LIF process; same numbers, faster).

    Returns:
        ``{"pop/x": int32 (T, B, n)}`` for every recorded variable, plus ``"lava_seconds"``
        and ``"wall_seconds"`` (the subprocess, Python start included).

    Raises:
        LavaRunError: Lava is unavailable, or the runner failed or timed out.
    """
    import time

    py = _checked_python(python)
    # the runner starts in a temporary directory: hand it absolute paths only
    network_npz = Path(network_npz).resolve()
    script = Path(script).resolve() if script is not None else None
    with tempfile.TemporaryDirectory(prefix="nmc_lava_") as tmp:
        src, dst = Path(tmp) / "inputs.npz", Path(tmp) / "out.npz"
        arrays = {}
        for k, x in inputs.items():
            a = np.asarray(x)
            arrays[k] = (a[:, None, :] if a.ndim == 2 else a).astype(np.int64)
        np.savez(src, **arrays)
        cmd = [str(py), str(script or RUNNER), "--network", str(network_npz), "--input",
               str(src), "--steps", str(int(steps)), "--out", str(dst), "--quiet"]
        if fuse:
            cmd.append("--fuse")
        t0 = time.perf_counter()
        out = _run_runner(cmd, dst, tmp, timeout)
        wall = time.perf_counter() - t0
        out.pop("meta", None)
    for k, v in out.items():
        if k != "lava_seconds" and v.ndim == 2:
            out[k] = v[:, None, :]
    out["wall_seconds"] = np.array(wall)
    return out
