"""``speck_config.json``: the chip configuration of a :class:`~.layers.SpeckPlan`.

One entry per used core with the fields of samna's DYNAP-CNN ``CNNLayerConfig`` as sinabs'
``DynapcnnConfigBuilder.get_dynapcnn_layer_config_dict`` fills them (chips/dynapcnn.py),
and the ``DVSLayerConfig`` fields of sinabs' ``DVSLayer.get_config_dict`` (dvs_layer.py).
Field by field sources: docs/speck_backend.md. The file is checked against
``speck_config.schema.json`` (beside this module) when ``jsonschema`` is installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.ir.errors import FitError

from .layers import SpeckPlan

__all__ = ["speck_config", "SCHEMA_PATH", "validate_config", "CONFIG_FORMAT", "dvs_options"]

CONFIG_FORMAT = "nmcompiler.speck_config"
SCHEMA_PATH = Path(__file__).with_name("speck_config.schema.json")


def dvs_options(plan: SpeckPlan, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The DVS layer's settings, checked: ``sensor`` ``[H, W]`` (default: the input's),
    ``crop`` ``[[top, bottom], [left, right]]`` in sensor pixels (end exclusive),
    ``flip_x``, ``flip_y``, ``swap_xy``, ``merge`` (sum both polarities into the input's
    one channel; default when the input has 1 channel), ``polarities`` (2),
    ``sensor_events`` (the chip's own sensor feeds the DVS layer: samna's
    ``pass_sensor_events``; default False: events come from the host)."""
    o = dict(options or {})
    c, h, w = plan.input_shape
    py, px = plan.dvs_pool
    known = {"sensor", "crop", "flip_x", "flip_y", "swap_xy", "merge", "polarities",
             "sensor_events"}
    extra = set(o) - known
    if extra:
        raise FitError(f"unknown DVS option(s) {sorted(extra)}", obj="dvs", rule="DVS options",
                       hint="options: " + ", ".join(sorted(known)))
    swap = bool(o.get("swap_xy", False))
    hh, ww = (w, h) if swap else (h, w)  # the crop's size, before swapping
    crop = o.get("crop")
    sensor = tuple(int(v) for v in o.get("sensor", (hh, ww) if crop is None else
                                         (int(crop[0][1]), int(crop[1][1]))))
    if crop is None:
        crop = [[0, sensor[0]], [0, sensor[1]]]
    crop = [[int(crop[0][0]), int(crop[0][1])], [int(crop[1][0]), int(crop[1][1])]]
    (top, bottom), (left, right) = crop
    if not (0 <= top < bottom <= sensor[0] and 0 <= left < right <= sensor[1]):
        raise FitError(f"DVS crop {crop} does not lie inside the {sensor[0]} x {sensor[1]} "
                       "sensor", obj="dvs.crop", rule="crop inside the sensor",
                       hint="crop = [[top, bottom], [left, right]], ends exclusive")
    if (bottom - top, right - left) != (hh, ww):
        raise FitError(f"DVS crop {crop} gives {bottom - top} x {right - left} pixels; the "
                       f"network's input is {hh} x {ww}", obj="dvs.crop", rule="crop size",
                       need=[bottom - top, right - left], limit=[hh, ww],
                       hint="crop to the input's size")
    if top % py or bottom % py or left % px or right % px:
        raise FitError(f"DVS crop {crop} is not on the DVS pooling grid {py} x {px} (the "
                       "chip crops after pooling)", obj="dvs.crop", rule="crop on the pool grid",
                       hint=f"use multiples of {py} (rows) and {px} (columns)")
    pol = int(o.get("polarities", 2))
    merge = bool(o.get("merge", c == 1 and pol == 2))
    if (1 if merge else pol) != c:
        raise FitError(f"the DVS gives {1 if merge else pol} channel(s); the network's input "
                       f"has {c}", obj="dvs.merge", rule="input channels",
                       hint="merge polarities for a 1-channel input")
    return {"sensor": [int(sensor[0]), int(sensor[1])], "crop": crop,
            "flip_x": bool(o.get("flip_x", False)), "flip_y": bool(o.get("flip_y", False)),
            "swap_xy": swap, "merge": merge, "polarities": pol,
            "sensor_events": bool(o.get("sensor_events", False))}



def _dest(core: int, pooling: int) -> dict[str, Any]:
    return {"layer": int(core), "enable": True, "pooling": int(pooling), "feature_shift": 0}


def speck_config(plan: SpeckPlan, dvs: dict[str, Any]) -> dict[str, Any]:
    """The configuration as a JSON-able dict (module docstring; docs/speck_backend.md)."""
    core = {lay.name: lay.core for lay in plan.layers}
    exits = set(plan.outputs.values())
    cnn = []
    for lay in sorted(plan.layers, key=lambda x: x.core):
        f, c, kh, kw = (int(v) for v in lay.weight.shape)
        if kh != kw:
            raise FitError(
                f"layer '{lay.name}' needs a {kh} x {kw} kernel; Speck kernels are square",
                obj=lay.name, rule="square kernel", need=[kh, kw], limit="square",
                hint="a dense layer's kernel is its input map: make the map square")
        _, ih, iw = lay.in_shape
        _, oh, ow = lay.out_shape
        cnn.append({
            "core": int(lay.core),
            "population": lay.name,
            "dimensions": {
                "input_shape": {"size": {"x": int(iw), "y": int(ih)}, "feature_count": c},
                "output_shape": {"size": {"x": int(ow), "y": int(oh)}, "feature_count": f},
                "padding": {"x": int(lay.padding[1]), "y": int(lay.padding[0])},
                "stride": {"x": int(lay.stride[1]), "y": int(lay.stride[0])},
                "kernel_size": kh,
            },
            # samna's order is [f][c][x][y]: sinabs transposes the last two axes
            "weights": np.swapaxes(lay.weight, 2, 3).astype(int).tolist(),
            "biases": lay.bias.astype(int).tolist(),
            "leak_enable": bool(np.any(lay.bias != 0)),
            "return_to_zero": bool(lay.return_to_zero),
            "threshold_high": int(lay.threshold),
            "threshold_low": int(lay.min_v_mem),
            "monitor_enable": lay.name in exits,
            "neurons_initial_value": np.zeros((f, ow, oh), dtype=int).tolist(),
            "destinations": [_dest(core[d], p) for d, p in lay.destinations],
            "memory": lay.memory_summary(),
        })
    first = [lay for lay in plan.layers if lay.source == plan.input]
    py, px = plan.dvs_pool
    (top, bottom), (left, right) = dvs["crop"]
    uses_dvs = (py, px) != (1, 1) or dvs["merge"] or dvs["flip_x"] or dvs["flip_y"] or \
        dvs["swap_xy"] or [top, left] != [0, 0] or [bottom, right] != dvs["sensor"] or \
        dvs["sensor_events"]
    dvs_layer = {
        "merge": bool(dvs["merge"]),
        "mirror": {"x": bool(dvs["flip_x"]), "y": bool(dvs["flip_y"])},
        "mirror_diagonal": bool(dvs["swap_xy"]),
        "cut": {"x": right // px - 1, "y": bottom // py - 1},
        "origin": {"x": left // px, "y": top // py},
        "pooling": {"x": int(px), "y": int(py)},
        "pass_sensor_events": bool(dvs["sensor_events"]),
        "destinations": [_dest(lay.core, 1) for lay in first] if uses_dvs else [],
    }
    c, h, w = plan.input_shape
    return {
        "format": CONFIG_FORMAT,
        "version": 1,
        "target": plan.target,
        "input": {"name": plan.input, "shape": [int(c), int(h), int(w)],
                  "cores": sorted({int(lay.core) for lay in first}),
                  "sensor": dvs["sensor"], "polarities": dvs["polarities"]},
        "dvs_layer": dvs_layer,
        "cnn_layers": cnn,
        "outputs": {k: {"population": v, "core": int(core[v])}
                    for k, v in sorted(plan.outputs.items())},
    }


def validate_config(doc: dict[str, Any]) -> None:
    """Check ``doc`` against the schema (needs ``jsonschema``); raises ValueError."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise ValueError(f"speck_config.json does not follow its schema at '{where}': "
                         f"{exc.message}") from None
