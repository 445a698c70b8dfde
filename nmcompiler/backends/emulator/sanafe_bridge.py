"""Run a mapped network on SANA-FE, an independent architecture simulator (docs/sanafe.md).

SANA-FE ("Simulating Advanced Neuromorphic Architectures for Fast Exploration", Boyle et
al., IEEE TCAD 2025; ``pip install sanafe``) ships an architecture description of Intel
Loihi (``sanafe/examples/loihi.yaml``) whose per-event energies and latencies were
calibrated by micro-benchmarks on the chip. This module lets the emulator's cost model be
checked against it: the same neurons, placed on the same physical cores, fed the same
input spikes, run on SANA-FE's Loihi model, and its energy and time per step read back.
See docs/sanafe.md for what SANA-FE models and how the comparison is set up.

Everything here takes and returns plain data (numpy arrays, dicts); ``sanafe`` is imported
lazily, inside the functions, so importing this module never needs it.

The network description (``spec``) handed to :func:`run_on_sanafe`::

    {
      "groups": [
        {"name": "in", "size": 4, "model": "input",
         "tile": [0, 0, 0, 0], "core": [0, 0, 0, 0],     # SANA-FE tile id, core in tile
         "spikes": bool array (steps, 4)},                # input spike trains
        {"name": "hid", "size": 8, "model": "lif",
         "tile": ..., "core": ...,
         "threshold": 10.0, "bias": 0.0,                  # scalar or (size,) array
         "leak_decay": 1.0, "input_decay": 0.0,           # v and u kept per step
         "reset": 0.0, "reset_mode": "hard"},
      ],
      "synapses": [
        {"pre": "in", "post": "hid", "pre_idx": (S,), "post_idx": (S,), "weight": (S,),
         "hw": "loihi_dense_synapse"},                    # optional synapse unit name
      ],
    }

SANA-FE's Loihi soma (model ``leaky_integrate_fire``, ``src/models.cpp``
``LoihiLifModel``) computes per step, in floating point::

    u = u * input_decay + sum(w * s_pre[t-1])
    v = trunc(v * leak_decay * 64) / 64 + bias + u
    spike if v > threshold; hard reset: v = reset; soft: v -= threshold

which is Lava's bit-accurate CUBA LIF divided by 64 (``u, v, bias`` in Lava units / 64,
``threshold = vth``, ``weight = w``, ``leak_decay = (4096 - dv) / 4096``,
``input_decay = (4096 - du - 1) / 4096``); :func:`lif_params_from_loihi` does that
conversion.

Tiles: SANA-FE numbers the tiles of its 8 x 4 mesh column by column (tile ``t`` is at
``x = t // 4, y = t % 4``), core ``k`` of tile ``t`` is global core ``4 t + k``;
:func:`tile_of` converts mesh coordinates.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "sanafe_available",
    "sanafe_version",
    "loihi_arch_path",
    "loihi_cost_from_sanafe",
    "sync_time",
    "tile_of",
    "lif_params_from_loihi",
    "run_on_sanafe",
    "mapped_tiles",
    "spec_summary",
]

#: the synapse unit every connection uses unless its spec names another
DEFAULT_SYNAPSE_HW = "loihi_dense_synapse"
LIF_SOMA_HW = "loihi_lif"
INPUT_SOMA_HW = "loihi_inputs"  # loihi_inputs[0..1023]: one unit per input neuron of a core
TIMING_MODELS = ("simple", "detailed")


# --------------------------------------------------------------------------- availability


def sanafe_available() -> str | None:
    """None when ``sanafe`` can be imported and loads its Loihi model, else the reason."""
    try:
        import sanafe  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the environment
        return f"sanafe is not importable ({type(exc).__name__}: {exc}); pip install sanafe"
    try:
        loihi_arch_path()
    except Exception as exc:  # pragma: no cover
        return f"sanafe has no bundled Loihi architecture ({exc})"
    return None


def sanafe_version() -> str:
    """The installed sanafe version (``"unknown"`` where the metadata is missing)."""
    from importlib import metadata

    try:
        return metadata.version("sanafe")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def loihi_arch_path() -> Path:
    """Path of the Loihi architecture file bundled with sanafe."""
    path = Path(str(resources.files("sanafe.examples").joinpath("loihi.yaml")))
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


# --------------------------------------------------------------------------- costs


def _yaml_number(text: str, key: str) -> float:
    """First ``key: number`` of a (simple) YAML text; sanafe's yaml files are flat enough."""
    m = re.search(rf"^\s*{re.escape(key)}\s*:\s*([-+0-9.eE]+)\s*$", text, re.M)
    if m is None:
        raise KeyError(key)
    return float(m.group(1))


def _sync_table(text: str) -> dict[int, float]:
    m = re.search(r"^\s*latency_sync\s*:\s*\{([^}]*)\}", text, re.M)
    if m is None:
        return {}
    out = {}
    for item in m.group(1).split(","):
        k, _, v = item.partition(":")
        out[int(k)] = float(v)
    return dict(sorted(out.items()))


def loihi_cost_from_sanafe(arch_path: str | Path | None = None) -> dict[str, Any]:
    """SANA-FE's Loihi per-event costs, and our :class:`~nmcompiler.targets.CostModel`
    fields set to match them.

    Unit costs are read from the loaded architecture (pipeline units, axon units); the
    tile hop costs and the barrier table, which the Python API does not expose, from the
    YAML text. Returns::

        {"path", "sanafe_version",
         "energy": {"synop_dense", "synop_sparse", "synop_conv", "neuron_access",
                    "neuron_update", "spike_out", "message_out", "message_in",
                    "hop_east", "hop_west", "hop_north", "hop_south"},      # J per event
         "latency": {same keys},                                            # s per event
         "sync_table": {mapped_tiles: seconds},   # barrier, by tiles in use (floor lookup)
         "cost_model": {CostModel field: value}}  # see below

    ``cost_model`` maps SANA-FE's events onto our fields: synop = dense synapse read;
    active neuron update = access + update, inactive = access only; ``spike_sent`` (our
    emulator: per message to another core) and ``spike_local`` (per message to the same
    core) = axon out + axon in, which SANA-FE charges for every message; hops per axis;
    no network latency without a hop. SANA-FE's per-spike energy (``spike_out``) and its
    per-message and per-spike *latencies* have no field in our cost model
    (docs/sanafe.md); they are returned under ``energy`` / ``latency``.
    """
    import sanafe

    path = Path(arch_path) if arch_path is not None else loihi_arch_path()
    text = path.read_text()
    arch = sanafe.load_arch(str(path))
    core = arch.tiles[0].cores[0]
    units = {p.name: dict(p.model_info.model_attributes) for p in core.pipeline_hw}

    def attr(unit: str, key: str) -> float:
        return float(units[unit][key])

    energy = {
        "synop_dense": attr("loihi_dense_synapse", "energy_process_spike"),
        "synop_sparse": attr("loihi_sparse_synapse", "energy_process_spike"),
        "synop_conv": attr("loihi_conv_synapse", "energy_process_spike"),
        "neuron_access": attr(LIF_SOMA_HW, "energy_access_neuron"),
        "neuron_update": attr(LIF_SOMA_HW, "energy_update_neuron"),
        "spike_out": attr(LIF_SOMA_HW, "energy_spike_out"),
        "message_out": float(core.axon_out[0].metrics.energy_message_out),
        "message_in": float(core.axon_in[0].metrics.energy_message_in),
    }
    latency = {
        "synop_dense": attr("loihi_dense_synapse", "latency_process_spike"),
        "synop_sparse": attr("loihi_sparse_synapse", "latency_process_spike"),
        "synop_conv": attr("loihi_conv_synapse", "latency_process_spike"),
        "neuron_access": attr(LIF_SOMA_HW, "latency_access_neuron"),
        "neuron_update": attr(LIF_SOMA_HW, "latency_update_neuron"),
        "spike_out": attr(LIF_SOMA_HW, "latency_spike_out"),
        "message_out": float(core.axon_out[0].metrics.latency_message_out),
        "message_in": float(core.axon_in[0].metrics.latency_message_in),
    }
    for d in ("east", "west", "north", "south"):
        energy[f"hop_{d}"] = _yaml_number(text, f"energy_{d}_hop")
        latency[f"hop_{d}"] = _yaml_number(text, f"latency_{d}_hop")
    table = _sync_table(text)
    cost_model = {
        "energy_per_synop_j": energy["synop_dense"],
        "energy_per_neuron_update_j": energy["neuron_access"] + energy["neuron_update"],
        "energy_per_neuron_update_inactive_j": energy["neuron_access"],
        "energy_per_spike_sent_j": energy["message_out"] + energy["message_in"],
        "energy_per_spike_local_j": energy["message_out"] + energy["message_in"],
        "energy_per_hop_j": max(energy["hop_east"], energy["hop_north"]),
        "energy_per_hop_x_j": energy["hop_east"],
        "energy_per_hop_y_j": energy["hop_north"],
        "time_per_synop_s": latency["synop_dense"],
        "time_per_neuron_update_s": latency["neuron_access"] + latency["neuron_update"],
        "time_per_neuron_update_inactive_s": latency["neuron_access"],
        "time_per_spike_local_s": 0.0,
        "time_per_hop_s": max(latency["hop_east"], latency["hop_north"]),
        "time_per_hop_x_s": latency["hop_east"],
        "time_per_hop_y_s": latency["hop_north"],
        "barrier_time_s": max(table.values()) if table else 0.0,
        "static_power_w": 0.0,
    }
    return {
        "path": str(path),
        "sanafe_version": sanafe_version(),
        "energy": energy,
        "latency": latency,
        "sync_table": table,
        "cost_model": cost_model,
    }


def sync_time(table: Mapping[int, float], mapped_tiles: int) -> float:
    """SANA-FE's barrier time for ``mapped_tiles`` tiles in use: the entry of the largest
    key not above it (measured: 3 tiles -> the value for 2, 28 -> the value for 4)."""
    best = 0.0
    for k in sorted(table):
        if k <= mapped_tiles:
            best = table[k]
    return best


def tile_of(x: Any, y: Any, height: int = 4) -> np.ndarray:
    """SANA-FE tile id of mesh position (x, y): tiles are numbered along y first."""
    return np.asarray(x, dtype=np.int64) * height + np.asarray(y, dtype=np.int64)


def lif_params_from_loihi(
    *, vth: Any, du: Any = 4095, dv: Any = 0, bias_mant: Any = 0, bias_exp: Any = 0
) -> dict[str, Any]:
    """SANA-FE ``leaky_integrate_fire`` attributes equal to Lava's Loihi CUBA LIF.

    Lava's state is 64 x SANA-FE's (weights enter ``u`` shifted left by 6, the threshold
    is ``vth << 6``), so ``threshold = vth``, ``bias = bias_mant * 2**bias_exp / 64``,
    ``leak_decay = (4096 - dv) / 4096``, ``input_decay = (4096 - du - 1) / 4096`` (Loihi
    1's ``ds_offset = 1``: ``du = 4095`` clears ``u`` every step). Weights carry over
    unchanged. SANA-FE truncates ``v`` to 1/64 after its leak, as Lava truncates its
    integer ``v``; ``u`` is not truncated there, so with ``0 < du < 4095`` the two can
    drift apart by rounding (use ``du = 4095`` for exact agreement).
    """
    bias = np.asarray(bias_mant, dtype=np.float64) * np.exp2(np.asarray(bias_exp)) / 64.0
    return {
        "threshold": np.asarray(vth, dtype=np.float64),
        "bias": bias,
        "leak_decay": (4096.0 - np.asarray(dv, dtype=np.float64)) / 4096.0,
        "input_decay": (4096.0 - np.asarray(du, dtype=np.float64) - 1.0) / 4096.0,
    }


# --------------------------------------------------------------------------- run

_LIF_KEYS = ("threshold", "bias", "leak_decay", "input_decay", "reset")
_LIF_DEFAULTS = {"threshold": 1.0, "bias": 0.0, "leak_decay": 1.0, "input_decay": 0.0, "reset": 0.0}


def _per_neuron(value: Any, size: int, key: str, group: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(size, float(arr))
    if arr.shape != (size,):
        raise ValueError(f"group {group!r}: {key} has shape {arr.shape}, expected ({size},)")
    return arr


def _check_spec(spec: Mapping[str, Any], steps: int) -> None:
    names = set()
    for g in spec["groups"]:
        name = g["name"]
        if name in names:
            raise ValueError(f"group {name!r} is listed twice")
        names.add(name)
        size = int(g["size"])
        for key in ("tile", "core"):
            a = np.asarray(g[key])
            if a.shape != (size,):
                raise ValueError(f"group {name!r}: {key} has shape {a.shape}, expected ({size},)")
        if g.get("model", "lif") == "input":
            sp = np.asarray(g.get("spikes", np.zeros((steps, size), bool)))
            if sp.ndim != 2 or sp.shape[1] != size:
                raise ValueError(f"group {name!r}: spikes must be (steps, {size})")
    for s in spec.get("synapses", ()):
        for key in ("pre", "post"):
            if s[key] not in names:
                raise ValueError(f"synapses: unknown group {s[key]!r}")


def run_on_sanafe(
    spec: Mapping[str, Any],
    steps: int,
    *,
    timing_model: str = "simple",
    arch_path: str | Path | None = None,
    record_spikes: bool = True,
    threads: int = 1,
) -> dict[str, Any]:
    """Build ``spec`` (module docstring) on SANA-FE's Loihi model, run ``steps`` steps.

    Every neuron is placed on the core its spec names (SANA-FE does no mapping of its
    own) and every connection uses the dense synapse unit (35.5 pJ, 3.8 ns per read in
    the bundled file); input neurons of one core take the soma units ``loihi_inputs[0]``,
    ``loihi_inputs[1]``, ... in order, which cost nothing (SANA-FE's Loihi model treats
    them as off-chip stimulus).

    Args:
        spec: groups and synapses, plain data (module docstring).
        steps: time steps to run.
        timing_model: SANA-FE's ``"simple"`` (per step: the busiest core's neuron or
            message processing, plus the barrier) or ``"detailed"`` (adds network delay,
            congestion and blocking by scheduling every message).
        arch_path: architecture file (default: the Loihi file bundled with sanafe).
        record_spikes: return per-neuron spike trains.
        threads: SANA-FE's neuron/message processing threads (1: single-threaded, for a
            fair wall-time comparison with a single-threaded emulator).

    Returns:
        ``{"energy_j": {"total", "synapse", "dendrite", "soma", "network"},
        "energy_per_step_j": (T,), "step_time_s": (T,), "spikes": {group: (T, n) bool},
        "fired": (T,), "updated": (T,), "synops": (T,), "hops": (T,), "messages": int,
        "wall_s": seconds in ``sim``, "build_s": seconds building and loading,
        "timing_model", "sanafe_version"}``. ``fired`` and ``updated`` count input
        neurons too (SANA-FE does); ``synops`` is SANA-FE's ``spikes`` counter (synapses
        read).
    """
    import sanafe

    if timing_model not in TIMING_MODELS:
        raise ValueError(f"timing_model must be one of {TIMING_MODELS}, got {timing_model!r}")
    steps = int(steps)
    if steps < 1:
        raise ValueError("steps must be >= 1")
    _check_spec(spec, steps)

    t0 = time.perf_counter()
    path = Path(arch_path) if arch_path is not None else loihi_arch_path()
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        arch = sanafe.load_arch(str(_trim_input_units(path, _max_inputs_per_core(spec), tmp)))
        out = _build_and_run(sanafe, arch, spec, steps, timing_model, record_spikes, threads, t0)
    return out


def _build_and_run(
    sanafe: Any,
    arch: Any,
    spec: Mapping[str, Any],
    steps: int,
    timing_model: str,
    record_spikes: bool,
    threads: int,
    t0: float,
) -> dict[str, Any]:
    tiles = arch.tiles
    net = sanafe.Network()
    groups: dict[str, Any] = {}
    input_slots: dict[tuple[int, int], int] = {}
    for g in spec["groups"]:
        name, size = g["name"], int(g["size"])
        tile = np.asarray(g["tile"], dtype=np.int64)
        core = np.asarray(g["core"], dtype=np.int64)
        if g.get("model", "lif") == "input":
            sp = np.asarray(g.get("spikes", np.zeros((steps, size), bool)), dtype=bool)
            if sp.shape[0] < steps:
                sp = np.concatenate([sp, np.zeros((steps - sp.shape[0], size), bool)])
            grp = net.create_neuron_group(name, size, log_spikes=record_spikes)
            for i in range(size):
                key = (int(tile[i]), int(core[i]))
                slot = input_slots.get(key, 0)
                input_slots[key] = slot + 1
                grp[i].set_attributes(
                    soma_hw_name=f"{INPUT_SOMA_HW}[{slot}]",
                    log_spikes=record_spikes,
                    model_attributes={"spikes": [bool(b) for b in sp[:steps, i]]},
                )
                grp[i].map_to_core(tiles[int(tile[i])].cores[int(core[i])])
        else:
            params = {k: _per_neuron(g.get(k, _LIF_DEFAULTS[k]), size, k, name) for k in _LIF_KEYS}
            shared = {k: float(v[0]) for k, v in params.items() if np.all(v == v[0])}
            shared["reset_mode"] = str(g.get("reset_mode", "hard"))
            varying = [k for k in _LIF_KEYS if k not in shared]
            grp = net.create_neuron_group(
                name,
                size,
                model_attributes=shared,
                soma_hw_name=LIF_SOMA_HW,
                log_spikes=record_spikes,
            )
            for i in range(size):
                if varying:
                    grp[i].set_attributes(
                        model_attributes={k: float(params[k][i]) for k in varying}
                    )
                grp[i].map_to_core(tiles[int(tile[i])].cores[int(core[i])])
        groups[name] = grp
    for s in spec.get("synapses", ()):
        pre_idx = np.asarray(s["pre_idx"], dtype=np.int64).tolist()
        post_idx = np.asarray(s["post_idx"], dtype=np.int64).tolist()
        weight = np.asarray(s["weight"], dtype=np.float64).tolist()
        if not (len(pre_idx) == len(post_idx) == len(weight)):
            raise ValueError(f"synapses {s['pre']}->{s['post']}: pre/post/weight lengths differ")
        if not pre_idx:
            continue
        attrs: dict[str, Any] = {"weight": weight}
        groups[s["pre"]].connect_neurons_sparse(
            groups[s["post"]], attrs, list(zip(pre_idx, post_idx, strict=True))
        )
    chip = sanafe.SpikingChip(arch)
    chip.load(net)
    build_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    res = chip.sim(
        steps,
        timing_model=timing_model,
        processing_threads=int(threads),
        spike_trace=bool(record_spikes),
        perf_trace=True,
    )
    wall_s = time.perf_counter() - t1

    perf = res["perf_trace"]
    out: dict[str, Any] = {
        "energy_j": {k: float(v) for k, v in res["energy"].items()},
        "energy_per_step_j": np.asarray(perf["total_energy"], dtype=np.float64),
        "energy_per_step_by_component_j": {
            k: np.asarray(perf[f"{k}_energy"], dtype=np.float64)
            for k in ("synapse", "dendrite", "soma", "network")
        },
        "step_time_s": np.asarray(perf["sim_time"], dtype=np.float64),
        "fired": np.asarray(perf["fired"], dtype=np.int64),
        "updated": np.asarray(perf["updated"], dtype=np.int64),
        "synops": np.asarray(perf["spikes"], dtype=np.int64),
        "hops": np.asarray(perf["hops"], dtype=np.int64),
        "messages": int(res.get("packets_sent", 0)),
        "wall_s": wall_s,
        "build_s": build_s,
        "timing_model": timing_model,
        "sanafe_version": sanafe_version(),
    }
    if record_spikes:
        sizes = {g["name"]: int(g["size"]) for g in spec["groups"]}
        trains = {name: np.zeros((steps, n), dtype=bool) for name, n in sizes.items()}
        for t, fired in enumerate(res["spike_trace"] or ()):
            for addr in fired:
                trains[addr.group_name][t, int(addr.neuron_offset)] = True
        out["spikes"] = trains
    return out


_INPUT_RANGE = re.compile(r"(name:\s*loihi_inputs)\[0\.\.(\d+)\]")


def _max_inputs_per_core(spec: Mapping[str, Any]) -> int:
    counts: dict[tuple[int, int], int] = {}
    for g in spec["groups"]:
        if g.get("model", "lif") != "input":
            continue
        for t, c in zip(
            np.asarray(g["tile"]).tolist(), np.asarray(g["core"]).tolist(), strict=True
        ):
            counts[(t, c)] = counts.get((t, c), 0) + 1
    return max(counts.values(), default=0)


def _trim_input_units(path: Path, needed: int, tmp: str) -> Path:
    """A copy of the architecture with only ``needed`` input soma units per core.

    The bundled Loihi file declares 1024 cost-free input units on each of its 128 cores;
    building those 131,072 units takes SANA-FE 3-10 s, against 0.2 s for a few. The copy
    changes nothing else (no cost, no core, no neuron capacity).
    """
    text = path.read_text()
    m = _INPUT_RANGE.search(text)
    if m is None or needed > int(m.group(2)):
        return path
    last = max(needed, 1) - 1
    trimmed = _INPUT_RANGE.sub(lambda mm: f"{mm.group(1)}[0..{last}]", text, count=1)
    out = Path(tmp) / path.name
    out.write_text(trimmed)
    return out


def _c_fflush() -> None:
    """Flush the C library's stdio buffers (SANA-FE prints with printf)."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:  # pragma: no cover - no libc (not Linux/macOS)
        pass


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence SANA-FE's C++ progress lines (printed straight to file descriptor 1)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # pragma: no cover - no real stdout
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        _c_fflush()
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def mapped_tiles(spec: Mapping[str, Any]) -> int:
    """Tiles that hold at least one neuron of ``spec`` (SANA-FE's barrier depends on it)."""
    tiles: set[int] = set()
    for g in spec["groups"]:
        tiles.update(int(t) for t in np.asarray(g["tile"]).ravel())
    return len(tiles)


def spec_summary(spec: Mapping[str, Any]) -> dict[str, int]:
    """Neurons, synapses and tiles of a spec (for reports)."""
    return {
        "neurons": int(sum(int(g["size"]) for g in spec["groups"])),
        "synapses": int(sum(len(np.asarray(s["weight"])) for s in spec.get("synapses", ()))),
        "tiles": mapped_tiles(spec),
    }
