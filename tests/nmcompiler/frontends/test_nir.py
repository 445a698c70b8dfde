"""NIR import / export: node types, discretisation, real files, round trips, bad input."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir.errors import ImportFormatError, UsageError

nir = pytest.importorskip("nir")

from nmcompiler.exporters.nir import networks_equivalent, to_nir, write_nir  # noqa: E402
from nmcompiler.frontends.nir import (  # noqa: E402
    Integration,
    NirOptions,
    Preset,
    from_nir,
)


def _a(*v):
    return np.asarray(v, dtype=np.float64)


def _lif(n, tau=0.01, thr=1.0, **kw):
    return nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=np.full(n, thr), v_reset=np.zeros(n), **kw)


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _roundtrip(net, opts, tmp_path):
    """export -> nir.write -> nir.read (type-checked) -> import; returns the differences."""
    path = tmp_path / "rt.nir"
    write_nir(net, path, options=opts)
    nir.read(path)  # nir itself accepts the file
    back, warns = from_nir(path, options=opts)
    assert warns == []
    return networks_equivalent(net, back)


# ----------------------------------------------------------------------------- formulas
def test_lif_euler_and_exact_formulas():
    g = _graph({"in": nir.Input(input_type={"input": np.array([2])}),
                "aff": nir.Affine(weight=np.eye(2) * 2.0, bias=_a(0.5, 0.0)),
                "lif": nir.LIF(tau=_a(0.01, 0.02), r=_a(1.0, 2.0), v_leak=_a(0.1, 0.0),
                               v_threshold=_a(1.0, 1.0), v_reset=_a(0.0, 0.0)),
                "out": nir.Output(output_type={"output": np.array([2])})},
               [("in", "aff"), ("aff", "lif"), ("lif", "out")])
    dt = 1e-3
    net, _ = from_nir(g, dt=dt)
    m = net.populations["lif"].model
    x = dt / _a(0.01, 0.02)
    np.testing.assert_allclose(m.lam, 1 - x)
    gain = x * _a(1.0, 2.0)
    np.testing.assert_allclose(net.projections["in->lif"].conn.weight, np.diag(2 * gain))
    np.testing.assert_allclose(m.bias, x * _a(0.1, 0.0) + gain * _a(0.5, 0.0))
    assert m.reset is ir.Reset.HARD and not m.fire_at_threshold
    net, _ = from_nir(g, dt=dt, integration="exact", input_scale="exact", reset="subtract")
    m = net.populations["lif"].model
    lam = np.exp(-x)
    np.testing.assert_allclose(m.lam, lam)
    np.testing.assert_allclose(net.projections["in->lif"].conn.weight,
                               np.diag(2 * (1 - lam) * _a(1.0, 2.0)))
    assert m.reset is ir.Reset.SOFT
    # scale_voltage keeps weights and divides the voltage parameters by the gain
    net, _ = from_nir(g, dt=dt, scale_voltage=True)
    m = net.populations["lif"].model
    np.testing.assert_allclose(net.projections["in->lif"].conn.weight, 2 * np.eye(2))
    np.testing.assert_allclose(m.theta, 1.0 / gain)


def test_presets_are_distinct_options():
    assert Preset("norse") is Preset.NORSE
    assert Preset.SINABS.options.fire_at_threshold and Preset.SINABS.options.graded
    assert Preset.LAVA.options.synapse_delay == 1
    assert Preset.SNNTORCH.options.reset_delay
    assert len({p.options for p in Preset}) == len(Preset)
    with pytest.raises(UsageError, match="unknown NIR preset"):
        from_nir(_graph({}, []), preset="brian")
    with pytest.raises(UsageError, match="integration"):
        NirOptions(integration="rk4")


# ----------------------------------------------------------------------------- node types
def _every_node_graph():
    """One graph using every node type of nir 1.0.8, a subgraph and a recurrent cycle."""
    n = 4
    sub = _graph({"i": nir.Input(input_type={"input": np.array([n])}),
                  "li": nir.LI(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n)),
                  "o": nir.Output(output_type={"output": np.array([n])})},
                 [("i", "li"), ("li", "o")])
    conv_w = np.random.default_rng(0).normal(size=(3, 2, 3, 3))
    nodes = {
        "in": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=conv_w, stride=1, padding=1,
                           dilation=1, groups=1, bias=np.array([0.1, 0.0, -0.1])),
        "if": nir.IF(r=np.ones((3, 6, 6)), v_threshold=np.ones((3, 6, 6))),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                             padding=np.array([0, 0])),
        "avg": nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([3, 3]),
                             padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 1, 1])}, start_dim=0),
        "aff": nir.Affine(weight=np.ones((n, 3)) * 0.5, bias=np.full(n, 0.2)),
        "lif": _lif(n),
        "rec": nir.Linear(weight=-0.3 * np.ones((n, n))),
        "scale": nir.Scale(scale=np.full(n, 2.0)),
        "cuba": nir.CubaLIF(tau_syn=np.full(n, 0.005), tau_mem=np.full(n, 0.01),
                            r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                            v_reset=np.zeros(n), w_in=np.ones(n)),
        "delay": nir.Delay(delay=np.full(n, 3e-4)),
        "thr": nir.Threshold(threshold=np.full(n, 0.5)),
        "integ": nir.I(r=np.ones(n)),
        "culi": nir.CubaLI(tau_syn=np.full(n, 0.005), tau_mem=np.full(n, 0.01),
                           r=np.ones(n), v_leak=np.zeros(n), w_in=np.ones(n)),
        "sub": sub,
        "conv1": nir.Conv1d(input_shape=4, weight=np.ones((2, 1, 2)), stride=1, padding=0,
                            dilation=1, groups=1, bias=np.zeros(2)),
        "lif1d": _lif(6).__class__(tau=np.full((2, 3), 0.01), r=np.ones((2, 3)),
                                   v_leak=np.zeros((2, 3)), v_threshold=np.ones((2, 3)),
                                   v_reset=np.zeros((2, 3))),
        "in1d": nir.Input(input_type={"input": np.array([1, 4])}),
        "out": nir.Output(output_type={"output": np.array([n])}),
        "out2": nir.Output(output_type={"output": np.array([n])}),
        "out3": nir.Output(output_type={"output": np.array([2, 3])}),
    }
    edges = [("in", "conv"), ("conv", "if"), ("if", "sum"), ("sum", "avg"), ("avg", "flat"),
             ("flat", "aff"), ("aff", "lif"), ("lif", "rec"), ("rec", "lif"),
             ("lif", "scale"), ("scale", "cuba"), ("cuba", "delay"), ("delay", "thr"),
             ("thr", "integ"), ("integ", "out"), ("lif", "culi"), ("culi", "sub"),
             ("sub", "out2"), ("in1d", "conv1"), ("conv1", "lif1d"), ("lif1d", "out3")]
    return _graph(nodes, edges)


def test_every_node_type_imports_and_runs():
    g = _every_node_graph()
    net, warns = from_nir(g, dt=1e-4)
    assert warns == []
    ir.verify(net)
    kinds = {n: type(p.model).__name__ for n, p in net.populations.items()}
    assert kinds == {"if": "IF", "lif": "LIF", "cuba": "LIF", "thr": "LIF", "integ": "LI",
                     "culi": "LI", "sub.li": "LI", "lif1d": "LIF"}
    assert net.populations["lif1d"].shape == (2, 1, 3)  # Conv1d as Conv2d with H = 1
    proj = net.projections
    assert isinstance(proj["in->if"].conn, ir.Conv2d)
    assert isinstance(proj["in1d->lif1d"].conn, ir.Conv2d)
    assert isinstance(proj["if->lif"].conn, ir.Dense)  # sum -> avg -> flatten -> affine
    assert proj["lif->lif"].delay == 1  # the recurrent (back) edge takes one step
    assert proj["if->lif"].delay == 0
    assert proj["cuba->thr"].delay == 3  # Delay 3e-4 s at dt = 1e-4 s
    np.testing.assert_allclose(net.populations["cuba"].model.alpha_u, 1 - 1e-4 / 0.005)
    assert net.populations["integ"].model.lam == pytest.approx(1.0)
    assert {o.name: o.source for o in net.outputs.values()} == {
        "out": "integ", "out2": "sub.li", "out3": "lif1d"}
    # the Affine bias and the conv bias became neuron bias (per step, times the gain)
    np.testing.assert_allclose(net.populations["lif"].model.bias, 0.2 * 1e-4 / 0.01)
    bias_if = np.asarray(net.populations["if"].model.bias).reshape(3, 6, 6)
    np.testing.assert_allclose(bias_if[:, 0, 0], np.array([0.1, 0.0, -0.1]) * 1e-4)
    rng = np.random.default_rng(1)
    res = ir.simulate(net, {"in": (rng.random((30, 2, 6, 6)) < 0.5) * 1.0,
                            "in1d": (rng.random((30, 1, 4)) < 0.5) * 1.0})
    assert set(res.outputs) == {"out", "out2", "out3"}


def test_every_node_type_round_trips(tmp_path):
    opts = NirOptions(dt=1e-4)
    net, _ = from_nir(_every_node_graph(), options=opts)
    assert _roundtrip(net, opts, tmp_path) == []


@pytest.mark.parametrize("preset", list(Preset))
def test_round_trip_under_each_preset(preset, tmp_path):
    n = 3
    g = _graph({"in": nir.Input(input_type={"input": np.array([2])}),
                "aff": nir.Affine(weight=np.arange(6.0).reshape(3, 2) / 6, bias=np.zeros(n)),
                "lif": _lif(n, tau=20.0 if preset is Preset.SINABS else 0.02, thr=0.3),
                "w": nir.Linear(weight=np.eye(n) * 0.1),
                "cuba": nir.CubaLIF(tau_syn=np.full(n, 0.01), tau_mem=np.full(n, 0.02),
                                    r=np.ones(n), v_leak=np.full(n, 0.01),
                                    v_threshold=np.ones(n), v_reset=np.zeros(n),
                                    w_in=np.ones(n)),
                "out": nir.Output(output_type={"output": np.array([n])})},
               [("in", "aff"), ("aff", "lif"), ("lif", "w"), ("w", "cuba"), ("cuba", "out")])
    # float32_params rounds what a framework computed in float32; the round trip checks
    # the inversion of the discretisation itself, in float64
    opts = dataclasses.replace(preset.options, dt=1e-3, float32_params=False)
    net, _ = from_nir(g, options=opts)
    assert _roundtrip(net, opts, tmp_path) == []


def test_cuba_affine_bias_is_exact_through_a_bias_source():
    n = 2
    g = _graph({"in": nir.Input(input_type={"input": np.array([n])}),
                "aff": nir.Affine(weight=np.eye(n), bias=np.full(n, 3.0)),
                "cuba": nir.CubaLI(tau_syn=np.full(n, 0.002), tau_mem=np.full(n, 0.004),
                                   r=np.ones(n), v_leak=np.zeros(n), w_in=np.ones(n)),
                "out": nir.Output(output_type={"output": np.array([n])})},
               [("in", "aff"), ("aff", "cuba"), ("cuba", "out")])
    net, _ = from_nir(g, dt=1e-3)
    res = ir.simulate(net, steps=10)
    # reference: Euler on the NIR equations with a constant input current of 3
    a, lam = 1 - 1e-3 / 0.002, 1 - 1e-3 / 0.004
    i = v = 0.0
    ref = []
    for _ in range(10):
        i = a * i + (1e-3 / 0.002) * 3.0
        v = lam * v + (1e-3 / 0.004) * i
        ref.append(v)
    np.testing.assert_allclose(res.get("out")[:, 0], ref, rtol=1e-12)


def test_pool_then_conv_composes_exactly():
    """SumPool -> Conv (padding 1) composes into one Conv2d that computes the same map."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 2, 3, 3))
    g = _graph({"in": nir.Input(input_type={"input": np.array([2, 8, 8])}),
                "if": nir.IF(r=np.ones((2, 8, 8)), v_threshold=np.ones((2, 8, 8))),
                "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                      padding=np.array([0, 0])),
                "conv": nir.Conv2d(input_shape=(4, 4), weight=w, stride=1, padding=1,
                                   dilation=1, groups=1, bias=np.zeros(3)),
                "li": nir.LI(tau=np.full((3, 4, 4), 1.0), r=np.ones((3, 4, 4)),
                             v_leak=np.zeros((3, 4, 4))),
                "out": nir.Output(output_type={"output": np.array([3, 4, 4])})},
               [("in", "if"), ("if", "pool"), ("pool", "conv"), ("conv", "li"), ("li", "out")])
    net, _ = from_nir(g, preset="sinabs", input_scale="unit")  # unit gain: compare maps
    conn = net.projections["if->li"].conn
    assert isinstance(conn, ir.Conv2d) and conn.weight.shape == (3, 2, 6, 6)
    x = (rng.random((2, 8, 8)) * 3).round()
    pooled = x.reshape(2, 4, 2, 4, 2).sum(axis=(2, 4))
    ref = ir.simulate.__globals__["_conv2d"](pooled.reshape(1, -1), ir.Conv2d(
        weight=w, padding=(1, 1)), (2, 4, 4))
    got = ir.simulate.__globals__["_conv2d"](x.reshape(1, -1), conn, (2, 8, 8))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_non_integral_delay_strict_and_lenient():
    g = _graph({"in": nir.Input(input_type={"input": np.array([1])}),
                "d": nir.Delay(delay=np.array([2.5e-4])), "lif": _lif(1),
                "out": nir.Output(output_type={"output": np.array([1])})},
               [("in", "d"), ("d", "lif"), ("lif", "out")])
    with pytest.raises(ImportFormatError, match="node 'd'.*whole number of steps"):
        from_nir(g, dt=1e-4)
    net, warns = from_nir(g, dt=1e-4, lenient=True)
    assert [w.node for w in warns] == ["d"] and net.projections["in->lif"].delay in (2, 3)


def test_lava_preset_delays_every_projection():
    g = _graph({"in": nir.Input(input_type={"input": np.array([1])}),
                "lif": _lif(1), "out": nir.Output(output_type={"output": np.array([1])})},
               [("in", "lif"), ("lif", "out")])
    net, _ = from_nir(g, preset="lava")
    assert net.projections["in->lif"].delay == 1


# ----------------------------------------------------------------------------- real files
def _csv(shared, name):
    return np.loadtxt(shared / "interop" / "nir_paper_lif" / name, delimiter=",")


@pytest.mark.parametrize("preset,csv", [(Preset.NORSE, "lif_norse.csv"),
                                        (Preset.SINABS, "lif_sinabs.csv")])
def test_paper_lif_reproduces_recorded_run(shared, preset, csv):
    """lif_norse.nir under the Norse / sinabs conventions at the recording's dt = 1e-4 s.

    Both CSVs hold the voltage after the reset (0 after a Norse spike, v - theta after a
    sinabs one), which is the IR's ``v`` probe; the sinabs run fed the input already
    multiplied by dt/tau = 0.04 (its CSV's input column), as sinabs' units ask.
    """
    data = _csv(shared, csv)
    # the paper's script wrote tau in seconds, not Norse 1.1's dt * tau, and its sinabs run
    # imported with sinabs.from_nir, whose LIF has norm_input=False (docs/nir.md#presets)
    extra = {"input_scale": "unit"} if preset is Preset.SINABS else {}
    net, warns = from_nir(shared / "interop" / "nir_paper_lif" / "lif_norse.nir",
                          preset=preset, dt=1e-4, tau_times_dt=False, **extra)
    assert warns == []
    res = ir.simulate(net, {"input": data[:, :1]}, probes=("1.v",))
    spikes = res.get("output")[:, 0]
    np.testing.assert_array_equal(np.flatnonzero(spikes), np.flatnonzero(data[:, 2]))
    np.testing.assert_allclose(res.get("1.v")[:, 0], data[:, 1], rtol=0, atol=1e-6)


def test_paper_lif_snntorch_voltage_units(shared):
    """snnTorch's importer scales the voltage by tau/(r dt) = 25 (scale_voltage) and
    resets to zero at once (its importer sets reset_delay=False)."""
    data = _csv(shared, "lif_snntorch.csv")
    net, _ = from_nir(shared / "interop" / "nir_paper_lif" / "lif_norse.nir",
                      preset="snntorch", reset="zero", reset_delay=False)
    res = ir.simulate(net, {"input": data[:, :1]}, probes=("1.v",))
    np.testing.assert_array_equal(np.flatnonzero(res.get("output")[:, 0]),
                                  np.flatnonzero(data[:, 2]))
    np.testing.assert_allclose(res.get("1.v")[:, 0], data[:, 1], rtol=1e-6, atol=1e-6)


def test_rockpool_file_bad_output_shape(shared):
    """Rockpool writes its Output as (1, 1, N) (batch and time axes): the rockpool preset
    drops them (docs/nir.md); strict NIR without the preset refuses the file, and lenient
    mode repairs it with a warning."""
    path = shared / "interop" / "nir_paper_lif" / "lif_rockpool.nir"
    net, warns = from_nir(path, preset="rockpool")
    assert warns == [] and list(net.outputs) == ["output"]
    with pytest.raises(ImportFormatError, match="node 'output'.*Output declares shape"):
        from_nir(path)
    net, warns = from_nir(path, lenient=True)
    assert [(w.node, w.rule) for w in warns] == [("output", "output shape")]
    assert list(net.outputs) == ["output"]


def test_paper_cnn_sinabs(shared):
    path = shared / "interop" / "nir_paper_cnn" / "cnn_sinabs.nir"
    net, warns = from_nir(path, preset="sinabs")
    assert warns == []
    ir.verify(net)
    assert net.inputs["input"].shape == (2, 34, 34)
    assert all(isinstance(p.model, ir.IF) and p.model.graded and p.model.fire_at_threshold
               for p in net.populations.values())
    assert sum(isinstance(p.conn, ir.Conv2d) for p in net.projections.values()) == 3
    assert net.size_of(next(iter(net.outputs.values())).source) == 10
    x = (np.random.default_rng(0).random((20, 2, 34, 34)) < 0.05).astype(np.float64)
    res = ir.simulate(net, {"input": x})
    out = res.get("output")
    assert out.shape == (20, 10) and np.all(out >= 0) and np.all(out == np.round(out))


# ----------------------------------------------------------------------------- bad input
def _write_simple(tmp_path, name="g.nir"):
    g = nir.NIRGraph.from_list(nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)), _lif(2))
    path = tmp_path / name
    nir.write(path, g)
    return path


def test_dangling_edge():
    g = _graph({"in": nir.Input(input_type={"input": np.array([1])}), "lif": _lif(1)},
               [("in", "lif"), ("lif", "ghost")])
    with pytest.raises(ImportFormatError, match="names node 'ghost'.*dangling edge"):
        from_nir(g)


def test_dangling_edge_in_file(tmp_path):
    path = _write_simple(tmp_path)
    with h5py.File(path, "r+") as f:
        edges = f["node/edges"][()]
        del f["node/edges"]
        f["node/edges"] = np.concatenate([edges, np.array([[b"lif", b"nowhere"]])])
    with pytest.raises(ImportFormatError, match="'nowhere'.*dangling"):
        from_nir(path)


def test_unsupported_node(tmp_path):
    path = _write_simple(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif/type"] = b"Izhikevich"
    with pytest.raises(ImportFormatError, match="node 'lif'.*unsupported node type "
                                                "'Izhikevich'"):
        from_nir(path)


def test_node_that_cannot_be_discretised():
    g = nir.NIRGraph.from_list(_lif(1, tau=5e-5))
    with pytest.raises(ImportFormatError, match="node 'lif' \\(LIF\\) cannot be discretised.*"
                                                "dt <= tau"):
        from_nir(g, dt=1e-4)
    from_nir(g, dt=1e-4, integration=Integration.EXACT)  # fine with exact decay
    g = nir.NIRGraph.from_list(nir.Threshold(threshold=np.array([-1.0])))
    with pytest.raises(ImportFormatError, match="node 'threshold'.*positive threshold"):
        from_nir(g)


def test_wrong_array_shapes():
    g = _graph({"in": nir.Input(input_type={"input": np.array([4])}),
                "aff": nir.Affine(weight=np.ones((3, 5)), bias=np.zeros(3)), "lif": _lif(3)},
               [("in", "aff"), ("aff", "lif")])
    with pytest.raises(ImportFormatError, match="node 'aff'.*wrong array shapes"):
        from_nir(g)
    g = _graph({"in": nir.Input(input_type={"input": np.array([4])}), "lif": _lif(3)},
               [("in", "lif")])
    with pytest.raises(ImportFormatError, match="node 'lif'.*wrong array shapes"):
        from_nir(g)


def test_wrong_parameter_shapes_in_file(tmp_path):
    path = _write_simple(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/tau"]
        f["node/nodes/lif/tau"] = np.ones(5)
    with pytest.raises(ImportFormatError, match="node 'lif'") as info:
        from_nir(path, lenient=True)
    assert "wrong array shapes" in str(info.value)


def test_scalar_parameters_strict_and_lenient():
    g = _graph({"in": nir.Input(input_type={"input": np.array([3])}),
                "aff": nir.Affine(weight=np.ones((3, 3)), bias=np.zeros(3)),
                "lif": nir.LIF(tau=np.array(0.01), r=np.array(1.0), v_leak=np.array(0.0),
                               v_threshold=np.array(1.0), v_reset=np.array(0.0))},
               [("in", "aff"), ("aff", "lif")])
    with pytest.raises(ImportFormatError, match="node 'lif'.*scalars where arrays"):
        from_nir(g)
    net, warns = from_nir(g, lenient=True)
    assert [w.node for w in warns] == ["lif"] and net.size_of("lif") == 3


@pytest.mark.parametrize("content", ["text", "hdf5", "empty", "missing"])
def test_not_a_nir_file(tmp_path, content):
    path = tmp_path / "x.nir"
    if content == "text":
        path.write_text("hello")
        match = "is not an HDF5 file"
    elif content == "hdf5":
        with h5py.File(path, "w") as f:
            f["data"] = np.arange(3)
        match = "is HDF5 but not NIR"
    elif content == "empty":
        path.write_bytes(b"")
        match = "is not an HDF5 file"
    else:
        match = "does not exist"
    with pytest.raises(ImportFormatError, match=match) as info:
        from_nir(path)
    assert str(path) in str(info.value)


def test_nir_node_that_fails_nirs_own_checks(tmp_path):
    """A node nir's constructor rejects (AssertionError inside nir) names the node."""
    path = _write_simple(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/v_threshold"]
        f["node/nodes/lif/v_threshold"] = np.ones(3)
    with pytest.raises(ImportFormatError, match="node 'lif'.*LIF node cannot be built"):
        from_nir(path)


def test_export_refuses_what_nir_cannot_say():
    net = ir.Network()
    net.input("in", 2)
    net.population("p", 2, ir.LIF(lam=0.9, refractory=2))
    net.connect("in", "p", ir.Dense(weight=np.eye(2)), delay=0)
    with pytest.raises(UsageError, match="population 'p' has a refractory period"):
        to_nir(net)


def test_round_trip_keeps_the_output_names(tmp_path):
    """An output named like its population (``net.output("h2")``) must come back as
    ``h2``, not as the NIR node ``h2.output`` (user code reads ``outputs["h2"]``)."""
    net = ir.Network("names")
    net.input("x", 3)
    net.population("h2", 2, ir.LIF(lam=0.9, theta=1.0))
    net.population("o", 2, ir.LIF(lam=0.5, theta=0.5))
    net.connect("x", "h2", ir.Dense(weight=np.ones((2, 3))), delay=0)
    net.connect("h2", "o", ir.Dense(weight=np.eye(2)), delay=0)
    net.output("h2")
    net.output("o", name="readout")
    path = tmp_path / "names.nir"
    write_nir(net, path)
    back, warns = from_nir(path)
    assert warns == []
    assert {o.name: o.source for o in back.outputs.values()} == {"h2": "h2", "readout": "o"}
