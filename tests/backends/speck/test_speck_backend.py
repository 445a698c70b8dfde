"""The Speck backend against the emulator, sinabs' own simulation, mapping and config builder.

docs/speck_backend.md describes what is compared and what the samna stand-in cannot reach.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sinabs")
pytest.importorskip("nir")

DATA = Path(__file__).resolve().parents[2] / "data"
from speck_nets import (  # noqa: E402
    MNIST_SPEC,
    ir_network,
    random_spec,
    sinabs_float_model,
    sinabs_style_graph,
)

from nmcompiler.api import compile as nmc_compile  # noqa: E402
from nmcompiler.backend import get_backend  # noqa: E402
from nmcompiler.backends.speck import CONFIG_FILE, MODEL_JSON, SpeckBackend  # noqa: E402
from nmcompiler.backends.speck.config import validate_config  # noqa: E402
from nmcompiler.frontends.nir import from_nir  # noqa: E402
from nmcompiler.ir.errors import FitError, InputError  # noqa: E402

STEPS = 30
PAPER_CNN_SHA256 = "e2fa55bda7aab5a772485e1b690358bcb825b303eca7dc426e3973937fcb5bcb"


def _compile_spec(seed: int):
    spec = random_spec(seed)
    net = from_nir(sinabs_style_graph(spec, seed), preset="sinabs").network
    return nmc_compile(net, "speck2f", seed=seed)


def _input(cn, seed: int, steps: int = STEPS, batch: int = 2, rate: float = 0.2):
    name, inp = next(iter(cn.network.inputs.items()))
    rng = np.random.default_rng(seed)
    return name, (rng.random((steps, batch, inp.size)) < rate).astype(np.int64)


def _emulator_spikes(cn, name, x, steps=STEPS):
    pops = tuple(f"{p}.spikes" for p in cn.network.populations)
    return get_backend("emulator").run(cn, {name: x}, steps, probes=pops).probes


def _equal_everywhere(cn, seed):
    name, x = _input(cn, seed)
    em = _emulator_spikes(cn, name, x)
    sb = SpeckBackend().run(cn, {name: x}, STEPS)
    total = 0
    for key, ref in em.items():
        np.testing.assert_array_equal(sb.probes[key], ref, err_msg=key)
        total += int(ref.sum())
    return name, x, sb, total


def _uses_dvs(cfg) -> bool:
    return bool(cfg["dvs_layer"]["destinations"])


def _sinabs_network(dynapcnn, cn, backend=None):
    """sinabs' DynapcnnNetwork (discretize=True) of our sinabs model; with a DVS layer
    (``dvs_input=True``) where our configuration uses one (pooling of the input)."""
    be = backend or SpeckBackend()
    model, arch = be._model(cn, batch=1)
    dvs = _uses_dvs(be.artifacts(cn)[1])
    net = dynapcnn.dyn.DynapcnnNetwork(copy.deepcopy(model).float(),
                                       input_shape=tuple(arch["input"]["shape"]),
                                       discretize=True, dvs_input=True if dvs else None)
    return net, arch


def _sinabs_config(dynapcnn, net, layer2core):
    B = dynapcnn.Builder
    for lay in net.dynapcnn_layers.values():  # a freshly loaded chip: states at 0
        if hasattr(lay, "spk"):
            lay.spk.reset_states()
    cfg = B.build_config(layers=net.all_layers, layer2core_map=layer2core,
                         destination_map=net.layer_destination_map)
    exits = [layer2core[i] for i, d in net.layer_destination_map.items()
             if i in layer2core and any(x < 0 for x in d)]
    B.monitor_layers(cfg, exits)
    return cfg


def _compare_config(ours: dict, theirs) -> int:
    """Field by field; returns the number of fields compared."""
    n = 0
    for lay in ours["cnn_layers"]:
        s = theirs.cnn_layers[lay["core"]].as_dict()
        for key in ("dimensions", "weights", "biases", "return_to_zero", "threshold_high",
                    "threshold_low", "monitor_enable", "neurons_initial_value"):
            assert lay[key] == s[key], (lay["core"], key)
            n += 1
        assert lay["leak_enable"] == bool(s["leak_enable"])
        enabled = [{k: d[k] for k in ("layer", "enable", "pooling")}
                   for d in s["destinations"] if d["enable"]]
        assert [{k: d[k] for k in ("layer", "enable", "pooling")}
                for d in lay["destinations"]] == enabled, lay["core"]
        n += 2
    used = {lay["core"] for lay in ours["cnn_layers"]}
    for core, s in enumerate(theirs.cnn_layers):  # unused cores stay at samna's defaults
        if core not in used:
            assert s.dimensions is None and not any(d.enable for d in s.destinations)
    dvs, sd = ours["dvs_layer"], theirs.dvs_layer.as_dict()
    # an unused DVS layer keeps samna's defaults in sinabs' configuration
    keys = ("merge", "mirror", "mirror_diagonal", "cut", "origin", "pooling") \
        if dvs["destinations"] else ()
    for key in keys + ("pass_sensor_events",):
        if sd.get(key) is not None:
            assert dvs[key] == sd[key], ("dvs", key)
            n += 1
    sdest = [d["layer"] for d in sd["destinations"] if d["enable"]]
    assert [d["layer"] for d in dvs["destinations"]] == sdest
    return n


# --------------------------------------------------------------------------- equality
@pytest.mark.parametrize("seed", range(22))
def test_seeded_nir_networks_equal_emulator_sinabs_and_config(seed, dynapcnn, tmp_path):
    cn = _compile_spec(seed)
    name, x, ours, total = _equal_everywhere(cn, seed)
    assert total > 0  # something spiked
    be = SpeckBackend()
    plan, cfg, _, _ = be.artifacts(cn)
    validate_config(cfg)
    # sinabs' own DYNAP-CNN layers (discretize=True) simulate the same spikes
    net, arch = _sinabs_network(dynapcnn, cn, be)
    out_name = next(iter(arch["outputs"]))
    for b in range(x.shape[1]):
        xs = x[:, b].reshape(STEPS, *arch["input"]["shape"]).astype(np.float32)
        import torch

        for lay in net.dynapcnn_layers.values():
            if hasattr(lay, "spk"):
                lay.spk.reset_states()
        got = net(torch.from_numpy(xs)).detach().numpy().reshape(STEPS, -1)
        np.testing.assert_array_equal(got, ours.outputs[out_name][:, b])
    # memory: sinabs' memory_summary == ours == what the partition charged
    layers = [lay for lay in net.dynapcnn_layers.values() if hasattr(lay, "memory_summary")]
    part = cn.partition
    for mine, theirs in zip(plan.layers, layers, strict=True):
        ms = {k: int(v) for k, v in theirs.memory_summary().items()}
        assert ms == mine.memory_summary()
        k = part.populations.index(mine.name)
        assert int(part.usage.column("kernel_memory_words")[k]) == ms["kernel"]
        assert int(part.usage.column("neuron_memory_words")[k]) == ms["neuron"]
        assert int(part.usage.column("bias_memory_words")[k]) == ms["bias"]
    # sinabs' max-flow mapping finds cores too; ours satisfies sinabs' own constraints
    theirs = dynapcnn.Builder.map_layers_to_cores(net.dynapcnn_layers)
    cons = dynapcnn.Builder.get_constraints()
    keys = sorted(k for k in net.dynapcnn_layers if hasattr(net.dynapcnn_layers[k],
                                                              "memory_summary"))
    assert sorted(theirs) == keys
    for key, mine in zip(keys, plan.layers, strict=True):
        assert cons[mine.core].fits(net.dynapcnn_layers[key])
    # the configuration sinabs' Speck2FConfigBuilder writes for our placement == ours
    # (sinabs' DVS layer passes sensor events: dvs_input=True)
    if _uses_dvs(cfg):
        cfg = SpeckBackend(dvs={"sensor_events": True}).artifacts(cn)[1]
    ours_map = {key: mine.core for key, mine in zip(keys, plan.layers, strict=True)}
    assert _compare_config(cfg, _sinabs_config(dynapcnn, net, ours_map)) >= 10 * len(keys)


@pytest.mark.parametrize("seed", range(4))
def test_ir_networks_hard_reset_binary_spikes_and_pool_layers(seed, dynapcnn):
    cn = nmc_compile(ir_network(seed), "speck2f", seed=seed)
    _, _, _, total = _equal_everywhere(cn, seed)
    assert total > 0
    plan = SpeckBackend().artifacts(cn)[0]
    assert plan.layer("p1").source_pool == (2, 2)  # the pooling went to c1's destination
    assert plan.layer("p1").weight.shape == (4, 4, 1, 1)
    assert all(lay.return_to_zero == bool(seed % 2) and lay.max_spikes == 0
               for lay in plan.layers)
    net, _ = _sinabs_network(dynapcnn, cn)
    keys = sorted(net.dynapcnn_layers)
    cfg = SpeckBackend().artifacts(cn)[1]
    _compare_config(cfg, _sinabs_config(dynapcnn, net, {k: lay.core for k, lay in
                                                        zip(keys, plan.layers, strict=True)}))


# --------------------------------------------------------------------------- the paper CNN
@pytest.fixture(scope="module")
def paper_cnn_build(tmp_path_factory):
    path = DATA / "nir_paper_cnn" / "cnn_sinabs.nir"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PAPER_CNN_SHA256
    out = tmp_path_factory.mktemp("paper") / "b"
    from typer.testing import CliRunner

    from nmcompiler.cli import app

    r = CliRunner().invoke(app, ["compile", str(path), "--preset", "sinabs", "-t", "speck2f",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_paper_cnn_deploy_equals_nmc_run(paper_cnn_build, tmp_path, dynapcnn):
    from typer.testing import CliRunner

    from nmcompiler.cli import app
    from nmcompiler.compiled import load_compiled

    cn = load_compiled(paper_cnn_build)
    name, x = _input(cn, 7, steps=40, batch=1)
    np.savez(tmp_path / "in.npz", **{name: x})
    r = CliRunner().invoke(app, ["deploy", str(paper_cnn_build), "--backend", "sinabs",
                                 "--input", str(tmp_path / "in.npz"), "-o",
                                 str(tmp_path / "dep")])
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in (tmp_path / "dep").iterdir() if not p.name.startswith("."))
    assert files == ["outputs.npz", "run_sinabs.npz", "run_sinabs.py", "sinabs_model.json",
                     "sinabs_model.pt", "speck_config.json"]
    em = _emulator_spikes(cn, name, x, 40)
    with np.load(tmp_path / "dep" / "run_sinabs.npz") as f:
        np.testing.assert_array_equal(f["output"], em[f"{cn.network.outputs['output'].source}"
                                                      ".spikes"])
        assert f["output"].sum() > 0
    # every layer, spike for spike
    _equal_everywhere(cn, 7)
    # the standalone script gives the same numbers from the files alone
    res = subprocess.run([sys.executable, str(tmp_path / "dep" / "run_sinabs.py"), "--input",
                          str(tmp_path / "in.npz"), "--out", str(tmp_path / "alone.npz")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "alone.npz") as f, np.load(tmp_path / "dep" / "run_sinabs.npz") as g:
        np.testing.assert_array_equal(f["output"], g["output"])
    # without --input, nmc deploy and nmc run draw the same seeded input: same spikes
    r = CliRunner().invoke(app, ["deploy", str(paper_cnn_build), "--backend", "sinabs",
                                 "-o", str(tmp_path / "dep2")])
    assert r.exit_code == 0, r.output
    r2 = CliRunner().invoke(app, ["run", str(paper_cnn_build), "--json", "-o",
                                  str(tmp_path / "run")])
    assert r2.exit_code == 0, r2.output
    rep = json.loads((tmp_path / "run" / "run_report.json").read_text())
    with np.load(tmp_path / "dep2" / "run_sinabs.npz") as f:
        assert float(f["output"].sum()) == rep["output_spikes"]["output"] > 0
    cfg = json.loads((tmp_path / "dep" / CONFIG_FILE).read_text())
    validate_config(cfg)
    assert len(cfg["cnn_layers"]) == 5
    pooled = {lay["population"]: [d["pooling"] for d in lay["destinations"]]
              for lay in cfg["cnn_layers"]}
    assert pooled["3"] == [2] and pooled["6"] == [2]  # SumPool layers taken out again
    net, _ = _sinabs_network(dynapcnn, cn)
    plan = SpeckBackend().artifacts(cn)[0]
    keys = sorted(net.dynapcnn_layers)
    _compare_config(cfg, _sinabs_config(dynapcnn, net, {k: lay.core for k, lay in
                                                        zip(keys, plan.layers, strict=True)}))


# --------------------------------------------------------------------------- sinabs' own nets
def test_sinabs_mnist_example_maps_here_and_in_sinabs(dynapcnn):
    # sinabs' auto-mapping test network (its own float model, its own discretisation):
    # sinabs maps it; so must we, with the same memory per layer
    graph = sinabs_style_graph(MNIST_SPEC, 3)
    cn = nmc_compile(from_nir(graph, preset="sinabs").network, "speck2f")
    theirs = dynapcnn.dyn.DynapcnnNetwork(sinabs_float_model(graph), input_shape=(1, 28, 28),
                                          discretize=True)
    layers = list(theirs.dynapcnn_layers.values())
    mapping = dynapcnn.Builder.map_layers_to_cores(theirs.dynapcnn_layers)
    plan = SpeckBackend().artifacts(cn)[0]
    mem_theirs = [{k: int(v) for k, v in lay.memory_summary().items()} for lay in layers]
    assert [lay.memory_summary() for lay in plan.layers] == mem_theirs
    assert mem_theirs[1]["kernel"] == 20 * 2 ** (5 + 5)  # was charged 81920 composed
    cores_theirs = [mapping[k] for k in sorted(mapping)]
    cores_ours = [lay.core for lay in plan.layers]
    cons = dynapcnn.Builder.get_constraints()
    assert all(cons[c].fits(lay) for c, lay in zip(cores_ours, layers, strict=True))
    assert sorted(cores_theirs) == sorted(cores_ours)  # the same cores, maybe permuted
    _equal_everywhere(cn, 3)


# --------------------------------------------------------------------------- schema
def test_schema_rejects_what_the_chip_cannot_hold():
    cfg = SpeckBackend().artifacts(_compile_spec(4))[1]
    validate_config(cfg)
    for path, value in ((("cnn_layers", 0, "weights", 0, 0, 0, 0), 200),
                        (("cnn_layers", 0, "dimensions", "stride", "x"), 3),
                        (("cnn_layers", 0, "core"), 9),
                        (("dvs_layer", "pooling", "x"), 8),
                        (("cnn_layers", 0, "threshold_high"), 40000)):
        bad = copy.deepcopy(cfg)
        node = bad
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(ValueError, match="schema"):
            validate_config(bad)
    bad = copy.deepcopy(cfg)
    bad["cnn_layers"][0]["destinations"] *= 3
    with pytest.raises(ValueError, match="schema"):
        validate_config(bad)


def test_lowering_is_deterministic(tmp_path):
    cn = _compile_spec(9)
    a = SpeckBackend().lower(cn, tmp_path / "a")
    b = SpeckBackend().lower(cn, tmp_path / "b")
    for f in (CONFIG_FILE, MODEL_JSON, "sinabs_model.pt", "run_sinabs.py"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


# --------------------------------------------------------------------------- events, DVS
def test_event_list_equals_spike_tensor():
    cn = _compile_spec(10)  # a (4, 2) rectangular DVS pooling
    name, x = _input(cn, 10, batch=1, rate=0.1)
    c, h, w = cn.network.inputs[name].shape
    t, _, ci, yi, xi = np.nonzero(x.reshape(STEPS, 1, c, h, w))
    ev = np.zeros(len(t), dtype=[("x", "i8"), ("y", "i8"), ("p", "i8"), ("t", "i8")])
    ev["x"], ev["y"], ev["p"], ev["t"] = xi, yi, ci, t
    be = SpeckBackend()
    a = be.run(cn, {name: x}, STEPS).outputs
    b = be.run(cn, {name: ev}, STEPS).outputs
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    cfg = be.artifacts(cn)[1]
    assert cfg["dvs_layer"]["pooling"] == {"x": 2, "y": 4}


def test_dvs_crop_flip_merge():
    cn = _compile_spec(6)  # 1-channel input 48 x 24, DVS pooling (4, 2)
    name = next(iter(cn.network.inputs))
    rng = np.random.default_rng(0)
    n = 400
    ev = {"x": rng.integers(0, 40, n), "y": rng.integers(0, 64, n), "p": rng.integers(0, 2, n),
          "t": np.sort(rng.integers(0, STEPS, n))}
    dvs = {"sensor": [64, 40], "crop": [[8, 56], [4, 28]], "flip_x": True}
    be = SpeckBackend(dvs=dvs)
    cfg = be.artifacts(cn)[1]
    d = cfg["dvs_layer"]
    assert d["merge"] and d["mirror"] == {"x": True, "y": False}
    assert d["origin"] == {"x": 2, "y": 2} and d["cut"] == {"x": 13, "y": 13}
    got = be.run(cn, {name: np.rec.fromarrays([ev[k] for k in "xypt"], names="x,y,p,t")},
                 STEPS)
    # the same by hand: bin, merge polarities, crop, mirror x, then the network
    frames = np.zeros((STEPS, 1, 64, 40), dtype=np.int64)
    np.add.at(frames, (ev["t"], 0, ev["y"], ev["x"]), 1)
    x = frames[:, :, 8:56, 4:28][..., ::-1].reshape(STEPS, -1)
    ref = _emulator_spikes(cn, name, x)
    out = cn.network.outputs
    for k, o in out.items():
        np.testing.assert_array_equal(got.outputs[k][:, 0], ref[f"{o.source}.spikes"][:, 0])
    with pytest.raises(FitError, match="pooling grid"):
        SpeckBackend(dvs={"sensor": [64, 40], "crop": [[7, 55], [4, 28]]}).artifacts(cn)
    with pytest.raises(FitError, match="input is 48 x 24"):
        SpeckBackend(dvs={"crop": [[0, 40], [0, 24]], "sensor": [64, 40]}).artifacts(cn)
    bad = dict(ev, x=ev["x"] + 100)
    with pytest.raises(InputError, match="outside the sensor"):
        be.run(cn, {name: np.rec.fromarrays([bad[k] for k in "xypt"], names="x,y,p,t")},
               STEPS)


# --------------------------------------------------------------------------- refusals
def test_refusals_name_the_object():
    import nmcompiler.ir as ir

    net = ir.Network("rect")
    net.input("in", shape=(2, 8, 8))
    net.population("c", shape=(3, 4, 8), model=ir.IF(fire_at_threshold=True))
    net.connect("in", "c", ir.Conv2d(weight=np.ones((3, 2, 5, 1)), padding=(0, 0)), delay=0)
    with pytest.raises(FitError, match="kernel"):
        nmc_compile(net, "speck2f")
    net = ir.Network("dense")
    net.input("in", shape=(2, 4, 6))
    net.population("d", 5, ir.IF(fire_at_threshold=True))
    net.connect("in", "d", ir.Dense(weight=np.arange(240.0).reshape(5, 48) % 7 - 3), delay=0)
    net.output("d")
    with pytest.raises(FitError, match="layer 'd' needs a 4 x 6 kernel"):
        nmc_compile(net, "speck2f")
    with pytest.raises(InputError, match="spikes only"):
        SpeckBackend().run(_compile_spec(1), {}, 3, probes=("if0.v",))
    with pytest.raises(InputError, match="not inputs"):
        SpeckBackend().run(_compile_spec(1), {"nope": np.zeros((3, 4))}, 3)
