"""PyNN backend: lowering, refusals, ``nmc deploy --backend pynn`` and NEST against the
emulator in SpiNNaker arithmetic (docs/spinnaker_backend.md).

The agreement tests build 24 seeded networks (12 integer-valued, 12 with float
parameters; several populations, recurrence, delays up to 5, per-synapse delays),
compile each for ``spinnaker``, run them all in ONE NEST process (the lowered graphs
merged, names prefixed) and compare every spike with the emulator's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import nmcompiler
from nmcompiler.backend import get_backend
from nmcompiler.backends.emulator import EmulatorBackend
from nmcompiler.backends.spinnaker import PyNNBackend, run_graph_file
from nmcompiler.backends.spinnaker.lower import (
    lower_compiled,
    lower_network,
    merge_graphs,
    nest_retiming,
    read_graph,
    write_graph,
)
from nmcompiler.ir import IF, LIF, RF, Dense, Network, Reset, Sparse
from nmcompiler.ir.errors import BackendError

STEPS = 60
N_NETS = 12  # per kind: 12 integer-valued + 12 float networks


def _sparse(rng, n_pre, n_post, p, weights, delays=None):
    mask = rng.random((n_post, n_pre)) < p
    post, pre = np.nonzero(mask)
    w = weights(pre.size)
    dl = None if delays is None else rng.integers(0, delays + 1, size=pre.size)
    return Sparse.from_coo(pre=pre, post=post, weight=w, n_pre=n_pre, n_post=n_post,
                           delays=dl)


def random_network(seed: int, integer: bool) -> Network:
    """2-4 populations: input -> p0 -> p1 -> ..., a recurrent projection, a back edge."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 5))
    sizes = rng.integers(10, 60, size=k)
    net = Network(f"{'int' if integer else 'float'}{seed}")
    net.input("x", 8)
    exp = []
    for i, n in enumerate(sizes):
        if integer:
            model = IF(theta=float(rng.integers(3, 12)), bias=float(rng.integers(0, 2)),
                       v_reset=float(-rng.integers(0, 3)), refractory=int(rng.integers(0, 3)))
            exp.append(False)
        else:
            alpha = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.3, 0.9))
            model = LIF(alpha_u=alpha, lam=float(rng.uniform(0.7, 0.99)),
                        theta=float(rng.uniform(1.0, 3.0)), bias=float(rng.uniform(0, 0.2)),
                        refractory=int(rng.integers(0, 3)))
            exp.append(alpha > 0)
        net.population(f"p{i}", int(n), model)

    def weights(m, scale=1.0):
        if integer:
            return rng.integers(-4, 7, size=m).astype(np.float64)
        return rng.normal(0.4, 1.0, size=m) * scale

    net.connect("x", "p0", _sparse(rng, 8, int(sizes[0]), 0.5, lambda m: weights(m) * 2),
                delay=1, name="x->p0")
    for i in range(1, k):
        net.connect(f"p{i - 1}", f"p{i}",
                    _sparse(rng, int(sizes[i - 1]), int(sizes[i]), 0.3, weights,
                            delays=2 if seed % 2 else None),
                    delay=int(rng.integers(1, 4)), name=f"p{i - 1}->p{i}")
    r = int(rng.integers(0, k))
    # recurrent projections: delay >= 2 into IF_curr_exp keeps the NEST run exact
    net.connect(f"p{r}", f"p{r}", _sparse(rng, int(sizes[r]), int(sizes[r]), 0.1,
                                          lambda m: weights(m, 0.5)),
                delay=int(rng.integers(2 if exp[r] else 1, 4)), name=f"p{r}->p{r}")
    if k > 2:
        net.connect(f"p{k - 1}", "p0", _sparse(rng, int(sizes[-1]), int(sizes[0]), 0.1,
                                               lambda m: weights(m, 0.5)),
                    delay=int(rng.integers(2, 6)), name=f"p{k - 1}->p0")
    for i in range(k):
        net.output(f"p{i}")
    return net


@pytest.fixture(scope="module")
def nest_ok():
    reason = PyNNBackend().available()
    if reason is not None:
        pytest.skip(f"PyNN + NEST cannot run: {reason}")


@pytest.fixture(scope="module")
def agreement(nest_ok, tmp_path_factory):
    """Per network: (integer?, emulator spikes, NEST spikes) for every population."""
    nets = [(f"i{s}", random_network(100 + s, True)) for s in range(N_NETS)]
    nets += [(f"f{s}", random_network(200 + s, False)) for s in range(N_NETS)]
    graphs, inputs, emu = {}, {}, {}
    for tag, net in nets:
        cn = nmcompiler.compile(net, "spinnaker", seed=0)
        rng = np.random.default_rng(zlib.crc32(tag.encode()))
        x = (rng.random((STEPS, 8)) < 0.25).astype(np.int64)
        g = lower_compiled(cn)
        g.record_all()
        graphs[tag] = g
        inputs[f"{tag}:x"] = x[:, None, :]
        res = EmulatorBackend().run(cn, {"x": x}, STEPS)
        emu[tag] = {k: v[:, 0] for k, v in res.outputs.items()}
    path = tmp_path_factory.mktemp("pynn") / "merged.npz"
    write_graph(merge_graphs(graphs), path)
    raw = run_graph_file(path, inputs, STEPS)
    out = {}
    for tag, _ in nets:
        nest = {k.split(":", 1)[1].rsplit("/", 1)[0]: v[:, 0] for k, v in raw.items()
                if k.startswith(f"{tag}:") and k.endswith("/s")}
        out[tag] = (tag.startswith("i"), emu[tag], nest)
    return out


def _counts(em, ne):
    both = sum(int(np.minimum(em[k], ne[k]).sum()) for k in em)
    n_em = sum(int(v.sum()) for v in em.values())
    n_ne = sum(int(v.sum()) for v in ne.values())
    return both, n_em, n_ne


def test_integer_networks_agree_spike_for_spike(agreement):
    total = 0
    print()
    for tag, (_, em, ne) in agreement.items():
        b, e, n = _counts(em, ne)
        print(f"{tag}: emulator {e} spikes, NEST {n}, same (step, neuron) {b}")
    for tag, (integer, em, ne) in agreement.items():
        if not integer:
            continue
        assert set(em) == set(ne), tag
        for k in em:
            diff = np.argwhere(em[k] != ne[k])
            assert diff.size == 0, f"{tag}/{k}: first differences (step, neuron) {diff[:5]}"
        total += sum(int(v.sum()) for v in em.values())
    assert total > 500  # the networks are active


def test_float_networks_agree_to_99_percent(agreement):
    both = n_em = n_ne = 0
    for _, (integer, em, ne) in agreement.items():
        if integer:
            continue
        b, e, n = _counts(em, ne)
        both, n_em, n_ne = both + b, n_em + e, n_ne + n
    assert n_em > 500
    match = 2 * both / (n_em + n_ne)
    print(f"float networks: {both} of {n_em} emulator / {n_ne} NEST spikes at the same "
          f"(step, neuron): {100 * match:.2f} %")
    assert match >= 0.99


# ---------------------------------------------------------------------------- lowering
@pytest.fixture(scope="module")
def compiled():
    return nmcompiler.compile(random_network(7, False), "spinnaker", seed=0)


def test_lowered_npz_is_deterministic(compiled, tmp_path):
    a = PyNNBackend().lower(compiled, tmp_path / "a")
    b = PyNNBackend().lower(compiled, tmp_path / "b")
    assert (a / "network.npz").read_bytes() == (b / "network.npz").read_bytes()
    assert (a / "run_pynn.py").read_text() == (b / "run_pynn.py").read_text()
    g = read_graph(a / "network.npz")
    # the mapping travels: every neuron's slice is its logical core, on our chip/core
    for p in g.populations:
        cores = compiled.partition.cores_of(p["name"])
        np.testing.assert_array_equal(g.blocks["core"][p["block"]], cores)
        xy = compiled.placement.coords[cores][:, [0, 1]]
        np.testing.assert_array_equal(np.c_[g.blocks["x"], g.blocks["y"]][p["block"]], xy)
        np.testing.assert_array_equal(g.blocks["p"][p["block"]],
                                      compiled.placement.coords[cores][:, 4] + 1)
    assert g.blocks["n"].max() <= 256


def test_a_lowered_artifact_runs_from_a_relative_path(nest_ok, compiled, tmp_path,
                                                     monkeypatch):
    """The runner starts in a temporary directory: relative artifact paths are resolved
    first (as the Lava backend does), so ``run("dep/pynn", ...)`` works from any cwd."""
    PyNNBackend().lower(compiled, tmp_path / "dep")
    monkeypatch.chdir(tmp_path)
    n = {name: inp.size for name, inp in compiled.network.inputs.items()}
    x = {name: np.zeros((5, k), dtype=np.int64) for name, k in n.items()}
    r = PyNNBackend().run("dep/pynn", x, 5)
    assert set(r.outputs) == set(compiled.network.outputs)


def test_cell_parameters_follow_the_derivation(compiled):
    g = lower_compiled(compiled)
    for p in g.populations:
        pop = compiled.network.populations[p["name"]]
        lam = float(np.real(pop.model.lam))
        np.testing.assert_allclose(np.exp(-1.0 / p["tau_m"]), lam, rtol=1e-12)
        np.testing.assert_allclose(p["v_thresh"], float(pop.model.theta) / 2**15)
        if p["celltype"] == "IF_curr_exp":
            np.testing.assert_allclose(np.exp(-1.0 / p["tau_syn"]),
                                       float(pop.model.alpha_u), rtol=1e-12)
        else:
            assert float(pop.model.alpha_u) == 0.0


def _one(model):
    net = Network("r")
    net.input("x", 2)
    net.population("a", 3, model)
    net.connect("x", "a", Dense(weight=np.ones((3, 2))), delay=1)
    return net


@pytest.mark.parametrize("model, what", [
    (LIF(reset=Reset.SOFT), "reset 'soft'"),
    (LIF(graded=True, graded_max=3), "graded spikes"),
    (LIF(noise=0.1), "threshold noise"),
    (RF.from_frequency(tau=10, cycles_per_step=0.1), "resonate-and-fire"),
    (LIF(alpha_u=np.array([0.0, 0.5, 0.5])), "split the population"),
])
def test_what_pynn_cannot_express_is_refused_by_name(model, what):
    with pytest.raises(BackendError) as exc:
        lower_network(_one(model))
    assert "'a'" in str(exc.value) and what in (str(exc.value) + str(exc.value.hint))


def test_retiming_solves_feedforward_and_reports_delay_one_exp_loops():
    s, ok = nest_retiming(["x", "a", "b"], [("x", "a", 1, 1), ("a", "b", 1, 1)])
    assert ok and s == {"x": 0, "a": 1, "b": 2}
    _, ok = nest_retiming(["a"], [("a", "a", 1, 1)])
    assert not ok
    net = Network("loop")
    net.population("a", 4, LIF(alpha_u=0.5, lam=0.9))
    net.connect("a", "a", Dense(weight=np.ones((4, 4)) - np.eye(4)), delay=1)
    g = lower_network(net)
    assert g.info["nest_late_synapses"] == 12 and not g.info["nest_retiming_feasible"]


# ---------------------------------------------------------------------------- deploy
def test_deploy_runs_on_nest_beside_the_emulator(nest_ok, tmp_path):
    from nmcompiler.cli_deploy import deploy
    from nmcompiler.compiled import save_compiled

    net = random_network(3, True)
    cn = nmcompiler.compile(net, "spinnaker", seed=0)
    build = save_compiled(cn, tmp_path / "build")
    lines: list[str] = []
    summary = deploy(build, "pynn", steps=40, rate=0.3, echo=lines.append)
    assert (build / "deploy-pynn" / "pynn" / "run_pynn.py").is_file()
    assert summary["outputs"] == summary["emulator"]["outputs"]
    assert any("emulator energy estimate" in s for s in lines)
    # the written script runs by itself
    x = (np.random.default_rng(0).random((20, 8)) < 0.3).astype(np.int8)
    np.savez(tmp_path / "in.npz", x=x)
    r = subprocess.run([sys.executable, "run_pynn.py", "--simulator", "nest", "--input",
                        str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz")],
                       cwd=build / "deploy-pynn" / "pynn", capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    with np.load(tmp_path / "o.npz") as z:
        assert json.loads(str(z["meta"]))["steps"] == 20
        assert z["p0/s"].shape == (20, 1, net.populations["p0"].size)


def test_backend_is_found_by_name():
    b = get_backend("pynn")
    assert isinstance(b, PyNNBackend) and b.families == ("spinnaker",)


def test_other_target_families_are_refused(tmp_path):
    cn = nmcompiler.compile(_one(LIF()), "loihi", seed=0)
    with pytest.raises(BackendError, match="spinnaker"):
        PyNNBackend().lower(cn, Path(tmp_path))



def test_batched_hard_reset_ann_matches_emulator(nest_ok):
    """A hard-reset converted ANN (docs/ann2snn.md) deploys to PyNN; a batch of samples
    (one NEST kernel per sample) gives the emulator's spikes."""
    from nmcompiler.frontends import ann2snn

    rng = np.random.default_rng(9)
    layers = [(rng.normal(0, 0.5, (12, 6)), rng.normal(0, 0.05, 12)),
              (rng.normal(0, 0.5, (4, 12)), np.zeros(4))]
    x = rng.random((40, 6))
    net = ann2snn.convert(layers, x, percentile=100, reset="hard", input_encoding="rate",
                          output="spikes")
    cn = nmcompiler.compile(net, "spinnaker", seed=0)
    inp = ann2snn.encode(net, x[:3], 30, seed=0)
    em = EmulatorBackend().run(cn, {"input": inp}, 30)
    ne = PyNNBackend().run(cn, {"input": inp}, 30)
    assert ne.outputs["output"].shape == (30, 3, 4)
    assert em.outputs["output"].sum() > 10
    np.testing.assert_array_equal(ne.outputs["output"], em.outputs["output"])
