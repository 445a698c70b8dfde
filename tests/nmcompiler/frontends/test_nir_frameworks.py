"""Other frameworks' NIR: build in snnTorch / Norse / sinabs, export with their own
exporter, import with their preset, and compare spike trains with their own simulation.

The frameworks run in float32; inputs and weights are chosen so that no voltage lands
within float32 rounding of a threshold (the comparison is exact equality).
"""

from __future__ import annotations

import numpy as np
import pytest

from nmcompiler import ir

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

from nmcompiler.frontends.nir import from_nir  # noqa: E402

T = 60


def _spikes(x: np.ndarray, rate: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(x) < rate).astype(np.float32)


def _run_ir(net: ir.Network, x: np.ndarray) -> np.ndarray:
    res = ir.simulate(net, {next(iter(net.inputs)): x})
    return next(iter(res.outputs.values()))[:, 0]


# ----------------------------------------------------------------------------- snnTorch
snn = None


def _snntorch():
    global snn
    snn = pytest.importorskip("snntorch")
    import snntorch.utils as sutils
    from snntorch.export_nir import export_to_nir

    return snn, export_to_nir, sutils


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("kind", ["leaky", "synaptic", "rleaky"])
def test_snntorch_matches(kind, reset):
    snn, export_to_nir, sutils = _snntorch()
    torch.manual_seed(0)
    nin, nh, no = 8, 12, 4

    def beta(n, b):
        return torch.full((n,), b)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(nin, nh)
            kw = dict(threshold=torch.ones(nh), reset_mechanism=reset, init_hidden=True)
            if kind == "synaptic":
                self.lif1 = snn.Synaptic(alpha=beta(nh, 0.8), beta=beta(nh, 0.9), **kw)
            elif kind == "rleaky":
                self.lif1 = snn.RLeaky(beta=beta(nh, 0.9), linear_features=nh, **kw)
            else:
                self.lif1 = snn.Leaky(beta=beta(nh, 0.9), **kw)
            self.fc2 = torch.nn.Linear(nh, no)
            self.lif2 = snn.Leaky(beta=beta(no, 0.8), threshold=torch.ones(no),
                                  reset_mechanism=reset, init_hidden=True)

        def forward(self, x):
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    net = Net()
    with torch.no_grad():
        net.fc1.weight.mul_(3.0)
        net.fc2.weight.mul_(3.0)
    x = _spikes((T, nin), 0.4, 1)
    graph = export_to_nir(net, torch.from_numpy(x[:1]), ignore_dims=[0])
    sutils.reset(net)
    with torch.no_grad():
        ref = torch.stack([net(torch.from_numpy(x[t:t + 1])) for t in range(T)])[:, 0].numpy()
    imported, warns = from_nir(graph, preset="snntorch", reset=reset)
    assert warns == []
    got = _run_ir(imported, x)
    assert ref.sum() > 3
    np.testing.assert_array_equal(got, ref)


# ----------------------------------------------------------------------------- Norse
@pytest.mark.parametrize("cell", ["lifbox", "lifcell"])
def test_norse_matches(cell):
    nt = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir as norse_to_nir

    torch.manual_seed(1)
    nin, nh, no, dt = 8, 12, 4, 1e-3

    def layer(n):
        if cell == "lifbox":
            return nt.LIFBoxCell(nt.LIFBoxParameters(
                tau_mem_inv=torch.full((n,), 100.0), v_th=torch.full((n,), 0.5),
                v_leak=torch.zeros(n)), dt=dt)
        return nt.LIFCell(nt.LIFParameters(
            tau_mem_inv=torch.full((n,), 100.0), tau_syn_inv=torch.full((n,), 200.0),
            v_th=torch.full((n,), 0.3), v_leak=torch.zeros(n)), dt=dt)

    model = nt.SequentialState(torch.nn.Linear(nin, nh), layer(nh),
                               torch.nn.Linear(nh, no), layer(no))
    with torch.no_grad():
        model[0].weight.mul_(20.0)
        model[2].weight.mul_(20.0)
    x = _spikes((T, nin), 0.3, 2)
    state, outs = None, []
    with torch.no_grad():
        for t in range(T):
            o, state = model(torch.from_numpy(x[t:t + 1]), state)
            outs.append(o[0].numpy())
    ref = np.array(outs)
    # quirk: norse 1.1.0 writes tau = dt / tau_inv; exporting with dt=1 writes tau in s,
    # (plain seconds), so the preset's tau_times_dt is turned off
    graph = norse_to_nir(model, torch.from_numpy(x[0]), dt=1.0)
    imported, warns = from_nir(graph, preset="norse", dt=dt, tau_times_dt=False)
    assert warns == []
    assert ref.sum() > 3
    np.testing.assert_array_equal(_run_ir(imported, x), ref)


def test_norse_exporter_writes_dt_times_tau():
    """Documented quirk: norse's to_nir(dt=...) writes tau = dt / tau_mem_inv."""
    nt = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir as norse_to_nir

    model = nt.SequentialState(torch.nn.Linear(2, 3), nt.LIFBoxCell(nt.LIFBoxParameters(
        tau_mem_inv=torch.full((3,), 100.0), v_th=torch.ones(3), v_leak=torch.zeros(3))))
    graph = norse_to_nir(model, torch.zeros(2), dt=1e-3)
    lif = next(n for n in graph.nodes.values() if isinstance(n, nir.LIF))
    np.testing.assert_allclose(np.asarray(lif.tau), 1e-3 / 100.0)  # not 1/100 s
    with pytest.raises(ir.errors.ImportFormatError, match="cannot be discretised") as err:
        from_nir(graph, dt=1e-3)  # tau = 1e-5 s < dt = 1e-3 s under Euler
    assert "preset='norse'" in str(err.value) and "integration='exact'" not in \
        str(err.value).split(":")[-1].split(";")[0]
    assert from_nir(graph, preset="norse").network.populations  # the preset undoes it


# ----------------------------------------------------------------------------- sinabs
def test_sinabs_convnet_matches():
    sl = pytest.importorskip("sinabs.layers")
    from sinabs.nir import to_nir as sinabs_to_nir

    torch.manual_seed(2)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=1),
        sl.SumPool2d(2), torch.nn.Conv2d(4, 6, 3, padding=1), sl.IAFSqueeze(batch_size=1),
        sl.SumPool2d(2), torch.nn.Flatten(), torch.nn.Linear(6 * 3 * 3, 10),
        sl.IAFSqueeze(batch_size=1))
    with torch.no_grad():
        for m in model:
            if hasattr(m, "weight"):
                m.weight.mul_(2.0)
    x = _spikes((30, 2, 12, 12), 0.3, 3)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    graph = sinabs_to_nir(model, torch.zeros(1, 2, 12, 12))
    imported, warns = from_nir(graph, preset="sinabs")
    assert warns == []
    got = _run_ir(imported, x)
    assert ref.sum() > 3 and ref.max() >= 1
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)


def test_sinabs_importer_clamps_voltage_quirk():
    """Documented quirk: sinabs.from_nir builds IF layers with min_v_mem = -v_threshold,
    a lower voltage clamp NIR does not describe; the IR (and the preset) has none."""
    pytest.importorskip("sinabs.layers")
    from sinabs.nir import from_nir as sinabs_from_nir

    graph = nir.NIRGraph.from_list(nir.IF(r=np.ones(1), v_threshold=np.ones(1)))
    model = sinabs_from_nir(graph, batch_size=1)
    x = np.array([[-3.0], [2.5], [0.0]], dtype=np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    theirs = (out[0] if isinstance(out, tuple) else out).numpy()[:, 0]
    ours = _run_ir(from_nir(graph, preset="sinabs").network, x)[:, 0]
    np.testing.assert_array_equal(theirs, [0.0, 1.0, 0.0])  # clamped at -1, then 1.5
    np.testing.assert_array_equal(ours, [0.0, 0.0, 0.0])  # -3 + 2.5 = -0.5
