"""Our Speck mapping and lowering against sinabs' own, network by network.

For sinabs' example networks (its auto-mapping test network on MNIST, its large-network
test ``DynapCnnNetA``), the NIR paper's CNN and 22 seeded sinabs-style networks, this
compiles each for speck2f and lowers it with the ``sinabs`` backend, then -- through the
samna stand-in of tests/backends/speck (samna itself is never imported) -- builds
sinabs' ``DynapcnnNetwork`` (``discretize=True``) of sinabs' own float model and runs
sinabs' max-flow ``get_valid_mapping``. It reports per network: whether each side maps
it, the cores per layer, whether the kernel / neuron / bias memory of every layer agree,
whether the spikes of the sinabs backend equal the emulator's on every layer, and how
many configuration fields equal what sinabs' ``Speck2FConfigBuilder`` writes for our
placement. Writes its section of docs/speck_backend.md::

    .venv/bin/python bench/speck_vs_sinabs.py
"""

from __future__ import annotations

import copy
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "backends" / "speck"))

import samna_standin  # noqa: E402
from speck_nets import (  # noqa: E402
    LARGE_NET_SPEC,
    MNIST_SPEC,
    random_spec,
    sinabs_float_model,
    sinabs_style_graph,
)

from nmcompiler.api import compile as nmc_compile  # noqa: E402
from nmcompiler.backend import get_backend  # noqa: E402
from nmcompiler.backends.speck import SpeckBackend  # noqa: E402
from nmcompiler.frontends.nir import from_nir  # noqa: E402
from nmcompiler.ir.errors import NmcError  # noqa: E402

DOC = ROOT / "docs" / "speck_backend.md"
SECTION = "speck_vs_sinabs"


def _write_section(body: str, command: str) -> None:
    text = DOC.read_text()
    block = (f"<!-- bench:{SECTION} -->\nWritten by `{command}`.\n\n{body}\n"
             f"<!-- /bench:{SECTION} -->")
    pat = re.compile(rf"<!-- bench:{SECTION} -->.*?<!-- /bench:{SECTION} -->", re.S)
    DOC.write_text(pat.sub(lambda _: block, text) if pat.search(text) else
                   text.rstrip() + "\n\n" + block + "\n")


def _sinabs_side(dyn, builder, model, input_shape, dvs):
    net = dyn.DynapcnnNetwork(model, input_shape=input_shape, discretize=True,
                              dvs_input=True if dvs else None)
    layers = {k: v for k, v in net.dynapcnn_layers.items() if hasattr(v, "memory_summary")}
    mem = [{k: int(v) for k, v in layers[k].memory_summary().items()} for k in sorted(layers)]
    try:
        m = builder.map_layers_to_cores(net.dynapcnn_layers)
        cores = [m[k] for k in sorted(layers)]
    except ValueError as exc:
        cores = f"refused: {str(exc).split('.')[0]}"
    return net, mem, cores


def one(name: str, net_ir, sinabs_model, input_shape, dyn, builder, seed: int) -> dict:
    row = {"network": name}
    t0 = time.perf_counter()
    try:
        cn = nmc_compile(net_ir, "speck2f", seed=seed)
    except NmcError as exc:
        row["ours"] = f"refused: {exc}"
        cn = None
    be = SpeckBackend()
    if cn is not None:
        plan, cfg, _, _ = be.artifacts(cn)
        row["ours"] = [lay.core for lay in plan.layers]
        dvs = bool(cfg["dvs_layer"]["destinations"])
        if sinabs_model is None:  # our own lowered model stands for sinabs' float model
            sinabs_model = copy.deepcopy(be._model(cn, batch=1)[0]).float()
        net, mem, cores = _sinabs_side(dyn, builder, sinabs_model, input_shape, dvs)
        row["sinabs"] = cores
        row["memory_equal"] = mem == [lay.memory_summary() for lay in plan.layers]
        row["kernel_words"] = [m["kernel"] for m in mem]
        name_in, inp = next(iter(cn.network.inputs.items()))
        x = (np.random.default_rng(seed).random((30, 1, inp.size)) < 0.2).astype(np.int64)
        probes = tuple(f"{p}.spikes" for p in cn.network.populations)
        em = get_backend("emulator").run(cn, {name_in: x}, 30, probes=probes).probes
        sb = be.run(cn, {name_in: x}, 30).probes
        row["spikes_equal"] = all(np.array_equal(em[k], sb[k]) for k in em)
        row["spikes"] = int(sum(v.sum() for v in em.values()))
        # sinabs' configuration for our placement, field by field
        if dvs:
            cfg = SpeckBackend(dvs={"sensor_events": True}).artifacts(cn)[1]
        own, _, _ = _sinabs_side(dyn, builder, copy.deepcopy(be._model(cn, 1)[0]).float(),
                                 input_shape, dvs)
        keys = sorted(k for k, v in own.dynapcnn_layers.items() if hasattr(v, "spk"))
        for k in keys:
            own.dynapcnn_layers[k].spk.reset_states()
        sc = builder.build_config(layers=own.all_layers,
                                  layer2core_map={k: lay.core for k, lay in
                                                  zip(keys, plan.layers, strict=True)},
                                  destination_map=own.layer_destination_map)
        same = total = 0
        for lay in cfg["cnn_layers"]:
            s = sc.cnn_layers[lay["core"]].as_dict()
            for key in ("dimensions", "weights", "biases", "return_to_zero", "threshold_high",
                        "threshold_low", "neurons_initial_value"):
                total += 1
                same += lay[key] == s[key]
            total += 2
            same += lay["leak_enable"] == bool(s["leak_enable"])
            same += [(d["layer"], d["pooling"]) for d in lay["destinations"]] == \
                [(d["layer"], d["pooling"]) for d in s["destinations"] if d["enable"]]
        row["config_fields"] = f"{same}/{total}"
    elif sinabs_model is not None:
        _, mem, cores = _sinabs_side(dyn, builder, sinabs_model, input_shape, False)
        row["sinabs"] = cores
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def main() -> int:
    samna_standin.install()
    import sinabs.backend.dynapcnn as dyn
    from sinabs.backend.dynapcnn.chips.speck2f import Speck2FConfigBuilder as builder

    rows = []
    for label, spec, seed in (("sinabs MNIST (test_auto_mapping)", MNIST_SPEC, 3),
                              ("sinabs DynapCnnNetA (test_large_net)", LARGE_NET_SPEC, 5)):
        graph = sinabs_style_graph(spec, seed)
        rows.append(one(label, from_nir(graph, preset="sinabs").network,
                        sinabs_float_model(graph), tuple(spec["input"]), dyn, builder, seed))
        print(rows[-1])
    paper = ROOT / "tests" / "data" / "nir_paper_cnn" / "cnn_sinabs.nir"
    from nmcompiler.api import load_model

    rows.append(one("NIR paper CNN (sinabs export)", load_model(paper, preset="sinabs")[0],
                    None, (2, 34, 34), dyn, builder, 0))
    print(rows[-1])
    for seed in range(22):
        spec = random_spec(seed)
        graph = sinabs_style_graph(spec, seed)
        rows.append(one(f"seeded {seed}", from_nir(graph, preset="sinabs").network,
                        sinabs_float_model(graph), tuple(spec["input"]), dyn, builder, seed))
        print(rows[-1])
    lines = ["| network | our cores (layer order) | sinabs' cores | memory equal | "
             "kernel words per layer | spikes equal (emulator = sinabs backend) | "
             "config fields equal |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']} | {r['ours']} | {r.get('sinabs', '-')} | "
                     f"{r.get('memory_equal', '-')} | {r.get('kernel_words', '-')} | "
                     f"{r.get('spikes_equal', '-')} ({r.get('spikes', '-')} spikes) | "
                     f"{r.get('config_fields', '-')} |")
    both = sum(isinstance(r.get("ours"), list) and isinstance(r.get("sinabs"), list)
               for r in rows)
    same_set = sum(isinstance(r.get("ours"), list) and isinstance(r.get("sinabs"), list)
                   and sorted(r["ours"]) == sorted(r["sinabs"]) for r in rows)
    identical = sum(r.get("ours") == r.get("sinabs") for r in rows)
    lines.append("")
    lines.append(f"{len(rows)} networks: both map {both}; the same set of cores {same_set}; "
                 f"the same core for every layer {identical}.")
    _write_section("\n".join(lines), "nice .venv/bin/python bench/speck_vs_sinabs.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
