#!/usr/bin/env python
"""Run a Speck network lowered by nmcompiler on sinabs (CPU torch): standalone.

Needs only numpy, torch and sinabs (never samna). Beside this script lie
``sinabs_model.json`` (the layer list) and ``sinabs_model.pt`` (its state dict)::

    python run_sinabs.py --input spikes.npz [--steps N] [--out result.npz]
    python run_sinabs.py --events events.npz [--dt 1000] [--steps N]

``spikes.npz`` holds one array under the input's name: ``(T, C, H, W)``,
``(T, B, C, H, W)``, ``(T, n)`` or ``(T, B, n)`` integer spike counts. ``events.npz``
holds the arrays ``x``, ``y``, ``p``, ``t`` (one entry per event: column, row, polarity
0/1, timestamp); an event falls into step ``(t - t0) // dt`` (``t0`` = ``--t0``, default
0). The DVS options in ``sinabs_model.json`` (sensor size, crop, flips, merged
polarities) turn sensor events into the network's input, as the chip's DVS layer does.
The result holds one ``(T, B, n)`` spike array per population (its name) and per output.
The format of every file is in docs/speck_backend.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

MODEL_JSON = "sinabs_model.json"
MODEL_PT = "sinabs_model.pt"
FORMAT = "nmcompiler.sinabs_model"
VERSION = 1


# ------------------------------------------------------------------ events and the DVS layer
def events_to_frames(events: Any, sensor: tuple[int, int], *, dt: int = 1, t0: int = 0,
                     steps: int | None = None, polarities: int = 2) -> np.ndarray:
    """Bin an event list into ``(T, polarities, H, W)`` int64 counts.

    ``events``: a structured array or a mapping with integer fields ``x`` (column), ``y``
    (row), ``p`` (polarity, 0 or 1) and ``t`` (timestamp); step ``(t - t0) // dt``.
    Events outside the sensor, of another polarity, before ``t0`` or at or after
    ``steps`` raise ValueError (nothing is dropped silently).
    """
    get = (lambda k: np.asarray(events[k])) if not isinstance(events, np.ndarray) or \
        events.dtype.names else None
    if get is None:
        raise ValueError("events must have the fields x, y, p, t")
    try:
        x, y, p, t = (get(k).astype(np.int64, copy=False).reshape(-1) for k in "xypt")
    except (KeyError, ValueError) as exc:
        raise ValueError(f"events must have integer fields x, y, p, t ({exc})") from None
    if not (len(x) == len(y) == len(p) == len(t)):
        raise ValueError("the event fields x, y, p, t have different lengths")
    if dt < 1:
        raise ValueError(f"dt = {dt}; it must be >= 1")
    h, w = sensor
    bad = (x < 0) | (x >= w) | (y < 0) | (y >= h) | (p < 0) | (p >= polarities) | (t < t0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"event {i} (x={x[i]}, y={y[i]}, p={p[i]}, t={t[i]}) lies outside "
                         f"the sensor {w} x {h} with {polarities} polarities, or before t0 "
                         f"= {t0}")
    step = (t - t0) // dt
    n = int(step.max()) + 1 if step.size else 0
    if steps is None:
        steps = n
    elif n > steps:
        raise ValueError(f"events reach step {n - 1}; only {steps} steps are run")
    out = np.zeros((int(steps), polarities, h, w), dtype=np.int64)
    np.add.at(out, (step, p, y, x), 1)
    return out


def dvs_preprocess(frames: np.ndarray, dvs: dict[str, Any]) -> np.ndarray:
    """Sensor frames ``(T, [B,] P, H, W)`` -> the network's input, as the DVS layer:
    merge the polarities (``merge``), crop to ``crop = [[top, bottom], [left, right]]``
    (sensor pixels, end exclusive), mirror (``flip_y``, ``flip_x``), swap the axes
    (``swap_xy``). Pooling is the network's first layer."""
    a = np.asarray(frames)
    if dvs.get("merge"):
        a = a.sum(axis=-3, keepdims=True)
    crop = dvs.get("crop")
    if crop is not None:
        (top, bottom), (left, right) = crop
        a = a[..., top:bottom, left:right]
    if dvs.get("flip_y"):
        a = a[..., ::-1, :]
    if dvs.get("flip_x"):
        a = a[..., :, ::-1]
    if dvs.get("swap_xy"):
        a = np.swapaxes(a, -1, -2)
    return np.ascontiguousarray(a)


# ------------------------------------------------------------------ the model
def build_model(arch: dict[str, Any], batch_size: int = 1) -> Any:
    """The ``torch.nn.Sequential`` of ``arch["modules"]`` (Conv2d, SumPool2d, IAFSqueeze)."""
    import sinabs.activation as sa
    import sinabs.layers as sl
    import torch.nn as nn

    mods = []
    for m in arch["modules"]:
        kind = m["type"]
        if kind == "Conv2d":
            mods.append(nn.Conv2d(m["in_channels"], m["out_channels"],
                                  kernel_size=tuple(m["kernel_size"]),
                                  stride=tuple(m["stride"]), padding=tuple(m["padding"]),
                                  bias=bool(m["bias"])))
        elif kind == "SumPool2d":
            mods.append(sl.SumPool2d(kernel_size=tuple(m["kernel_size"])))
        elif kind == "IAFSqueeze":
            spike_fn = sa.SingleSpike if not m["max_spikes"] else \
                sa.MaxSpike(max_num_spikes_per_bin=int(m["max_spikes"]))
            reset_fn = sa.MembraneReset() if m["return_to_zero"] else sa.MembraneSubtract()
            mods.append(sl.IAFSqueeze(batch_size=batch_size,
                                      spike_threshold=float(m["spike_threshold"]),
                                      min_v_mem=float(m["min_v_mem"]), spike_fn=spike_fn,
                                      reset_fn=reset_fn))
        else:
            raise ValueError(f"unknown module type {kind!r} in {MODEL_JSON}")
    return nn.Sequential(*mods).double()


def load_model(directory: str | Path, batch_size: int = 1) -> tuple[Any, dict[str, Any]]:
    """(model with its state dict loaded, arch) from a lowered ``sinabs/`` directory."""
    import torch

    d = Path(directory)
    arch = json.loads((d / MODEL_JSON).read_text())
    if arch.get("format") != FORMAT or arch.get("version") != VERSION:
        raise ValueError(f"{d / MODEL_JSON} is not a {FORMAT} v{VERSION} file")
    model = build_model(arch, batch_size)
    state = torch.load(d / MODEL_PT, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.double() for k, v in state.items()}, strict=False)
    return model, arch


def network_input(x: np.ndarray, arch: dict[str, Any]) -> np.ndarray:
    """Any accepted input array -> ``(T, B, C, H, W)`` float64 network input."""
    c, h, w = arch["input"]["shape"]
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[:, None, :]
    if a.ndim == 3:
        a = a.reshape(a.shape[0], a.shape[1], c, h, w)
    elif a.ndim == 4:
        a = a[:, None]
    if a.ndim != 5 or tuple(a.shape[2:]) != (c, h, w):
        raise ValueError(f"input of shape {np.shape(x)}; need (T, C, H, W) = (T, {c}, {h}, "
                         f"{w}), (T, B, C, H, W) or flat (T, [B,] {c * h * w})")
    return a.astype(np.float64)


def run_model(model: Any, arch: dict[str, Any], x: np.ndarray) -> dict[str, np.ndarray]:
    """Run ``(T, B, C, H, W)`` input through ``model``; spikes ``(T, B, n)`` per population
    (and per output name), float64."""
    import torch

    t, b = x.shape[:2]
    h = torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, 0, 1)).reshape(b * t,
                                                                             *x.shape[2:]))
    records = {int(k): v for k, v in arch["records"].items()}
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for i, m in enumerate(model):
            if type(m).__name__ == "IAFSqueeze":
                m.reset_states()
            h = m(h)
            if h.dtype != torch.float64:  # SingleSpike returns float32 spikes
                h = h.double()
            if i in records:
                s = h.detach().numpy().reshape(b, t, -1)
                out[records[i]] = np.ascontiguousarray(np.swapaxes(s, 0, 1))
    for name, pop in arch["outputs"].items():
        out[name] = out[pop]
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: read the inputs, run the network in sinabs, write the outputs."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", type=Path, help=".npz with one array under the input's name")
    ap.add_argument("--events", type=Path, help=".npz with arrays x, y, p, t")
    ap.add_argument("--dt", type=int, default=1, help="timestamp units per step (events)")
    ap.add_argument("--t0", type=int, default=0, help="timestamp of step 0 (events)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("result_sinabs.npz"))
    args = ap.parse_args(argv)
    here = Path(__file__).resolve().parent
    arch = json.loads((here / MODEL_JSON).read_text())
    dvs = arch.get("dvs", {})
    if args.events is not None:
        with np.load(args.events) as f:
            ev = {k: f[k] for k in "xypt"}
        frames = events_to_frames(ev, tuple(dvs["sensor"]), dt=args.dt, t0=args.t0,
                                  steps=args.steps, polarities=int(dvs.get("polarities", 2)))
        x = network_input(dvs_preprocess(frames, dvs), arch)
    elif args.input is not None:
        with np.load(args.input) as f:
            x = network_input(f[arch["input"]["name"]], arch)
    else:
        ap.error("pass --input or --events")
    if args.steps is not None:
        x = x[:args.steps]
    model, arch = load_model(here, batch_size=x.shape[1])
    out = run_model(model, arch, x)
    arrays: dict[str, Any] = dict(out)
    np.savez(args.out, **arrays)
    for name in arch["outputs"]:
        print(f"output {name}: shape {out[name].shape}, spikes {int(out[name].sum())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
