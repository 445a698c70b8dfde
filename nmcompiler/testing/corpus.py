"""The framework corpus: small seeded networks built in snnTorch, Norse, sinabs and Rockpool
with the options that change spikes, exported with each framework's own NIR exporter and
imported with the framework's preset (docs/nir.md#presets, docs/fidelity.md).

The frameworks (``torch``, ``snntorch``, ``norse``, ``sinabs``, ``rockpool``, ``nir``) are
imported only when a case is built; :func:`corpus_cases` lists the cases whose framework
is installed. Weights are whole multiples of 1/16 (exact in float32 and float64), as in
the test suite's corpus (tests/nmcompiler/frontends/test_nir_corpus.py), which builds the
same networks and checks them spike for spike against the frameworks.
"""

from __future__ import annotations

import importlib.util
import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["CorpusCase", "corpus_cases", "build_case", "snntorch_layer"]

#: sizes of every corpus network: input, hidden, output
N_IN, N_HIDDEN, N_OUT = 10, 16, 5


@dataclass(frozen=True, slots=True, kw_only=True)
class CorpusCase:
    """One corpus network.

    Attributes:
        name: ``framework/kind/options``.
        framework: ``snntorch``, ``norse``, ``sinabs`` or ``rockpool``.
        integrate_and_fire: every population is IF (no leak, no synaptic current), so
            leak-free targets (Speck) can run it.
        build: returns the imported :class:`nmcompiler.ir.Network`.
    """

    name: str
    framework: str
    integrate_and_fire: bool
    build: Callable[[], Any]


def _have(*mods: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in mods)


def _set_weights(module: Any, seed: int, scale: float, grid: bool) -> None:
    """Seeded normal weights of standard deviation ``scale``: on a 1/16 grid (exact in
    float32 and float64) when ``grid``, else ordinary float32 values (as training leaves
    them)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim == 2:
                w = torch.randn(p.shape, generator=g) * scale
                p.copy_(torch.round(w * 16) / 16 if grid else w)


def _import(graph: Any, **kw: Any) -> Any:
    """``from_nir`` through a temporary NIR file, as a user's export would go."""
    import nir

    from nmcompiler.frontends.nir import from_nir

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.nir"
        nir.write(str(path), graph)
        return from_nir(path, **kw).network


# ----------------------------------------------------------------------------- snnTorch
def snntorch_layer(kind: str, n: int, reset: str, delay: bool, learn: bool,
                   all_to_all: bool = True) -> Any:
    """One snnTorch layer of ``n`` neurons (``"leaky"``, ``"synaptic"``, ``"rleaky"``,
    ``"rsynaptic"``; recurrent ones all-to-all or one-to-one) with the corpus's
    threshold 1, beta 0.875 and alpha 0.75."""
    import snntorch as snn
    import torch

    kw = dict(threshold=torch.full((n,), 1.0), reset_mechanism=reset, reset_delay=delay,
              init_hidden=True, learn_threshold=learn)
    beta = torch.full((n,), 0.875)
    if kind == "leaky":
        return snn.Leaky(beta=beta, **kw)
    if kind == "synaptic":
        return snn.Synaptic(alpha=torch.full((n,), 0.75), beta=beta, **kw)
    rec = (dict(linear_features=n) if all_to_all
           else dict(all_to_all=False, V=torch.linspace(-0.5, 0.25, n)))
    if kind == "rleaky":
        return snn.RLeaky(beta=beta, **rec, **kw)
    return snn.RSynaptic(alpha=torch.full((n,), 0.75), beta=beta, **rec, **kw)


def _snntorch_net(kind: str, reset: str, delay: bool, learn: bool, seed: int = 0,
                  grid: bool = True) -> Any:
    import torch
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(N_IN, N_HIDDEN, bias=False)
            self.lif1 = snntorch_layer(kind, N_HIDDEN, reset, delay, learn)
            self.fc2 = torch.nn.Linear(N_HIDDEN, N_OUT, bias=False)
            self.lif2 = snntorch_layer("leaky", N_OUT, reset, delay, learn)

        def forward(self, x: Any) -> Any:
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    net = Net()
    _set_weights(net.fc1, seed, 0.6, grid)
    _set_weights(net.fc2, seed + 1, 0.6, grid)
    if learn:
        with torch.no_grad():
            net.lif1.threshold.copy_(torch.round(torch.linspace(0.75, 1.25, N_HIDDEN) * 16)
                                     / 16)
    if kind == "rleaky":
        _set_weights(net.lif1.recurrent, seed + 2, 0.3, grid)
    graph = export_to_nir(net, torch.zeros(1, N_IN), ignore_dims=[0])
    return _import(graph, preset="snntorch", reset=reset, reset_delay=delay)


# ----------------------------------------------------------------------------- Norse
def _norse_net(case: str, seed: int = 0, grid: bool = True) -> Any:
    import norse.torch as nt
    import torch
    from norse.torch.utils.export_nir import to_nir as norse_to_nir

    torch.manual_seed(seed)

    def layer(n: int, kind: str) -> Any:
        if kind == "lifbox":
            return nt.LIFBoxCell(nt.LIFBoxParameters(
                tau_mem_inv=torch.full((n,), 100.0), v_th=torch.full((n,), 0.25),
                v_leak=torch.zeros(n)))
        if kind == "lifcell_taus":
            return nt.LIFCell(nt.LIFParameters(
                tau_mem_inv=torch.tensor([125.0, 62.5] * (n // 2)),
                tau_syn_inv=torch.full((n,), 250.0), v_th=torch.full((n,), 0.25),
                v_leak=torch.zeros(n)))
        return nt.LIFCell(nt.LIFParameters(
            tau_mem_inv=torch.full((n,), 100.0), tau_syn_inv=torch.full((n,), 200.0),
            v_th=torch.full((n,), 0.25), v_leak=torch.zeros(n)))

    kinds = {"lifbox": ("lifbox", "lifbox"), "lifcell": ("lifcell", "lifcell"),
             "lifcell_taus": ("lifcell_taus", "lifbox")}[case]
    model = nt.SequentialState(torch.nn.Linear(N_IN, N_HIDDEN, bias=False),
                               layer(N_HIDDEN, kinds[0]),
                               torch.nn.Linear(N_HIDDEN, N_OUT, bias=False),
                               layer(N_OUT, kinds[1]))
    _set_weights(model[0], seed, 3.0, grid)
    _set_weights(model[2], seed + 1, 3.0, grid)
    graph = norse_to_nir(model, torch.zeros(N_IN))  # Norse's defaults: dt = 1e-3
    return _import(graph, preset="norse")


# ----------------------------------------------------------------------------- sinabs
def _sinabs_net(case: str, seed: int = 0, grid: bool = True) -> Any:
    import sinabs.layers as sl
    import torch
    from sinabs.nir import to_nir as sinabs_to_nir

    torch.manual_seed(seed)
    if case == "iaf":
        hidden = sl.IAFSqueeze(batch_size=1, spike_threshold=1.0)
    else:
        hidden = sl.LIFSqueeze(tau_mem=torch.full((N_HIDDEN,), 8.0), batch_size=1,
                               spike_threshold=torch.ones(N_HIDDEN), norm_input=True)
    model = torch.nn.Sequential(torch.nn.Linear(N_IN, N_HIDDEN, bias=False), hidden,
                                torch.nn.Linear(N_HIDDEN, N_OUT, bias=False),
                                sl.IAFSqueeze(batch_size=1, spike_threshold=1.0))
    _set_weights(model[0], seed, 1.2 if case == "lif" else 0.6 * (1 + seed), grid)
    _set_weights(model[2], seed + 1, 0.6, grid)
    graph = sinabs_to_nir(model, torch.zeros(1, N_IN))
    return _import(graph, preset="sinabs")


# ----------------------------------------------------------------------------- Rockpool
def _rockpool_net(case: str, seed: int = 0, grid: bool = True) -> Any:
    import torch
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir as rockpool_to_nir

    torch.manual_seed(seed)
    if case == "taus":  # per-neuron time constants and thresholds
        hidden = LIFTorch(N_HIDDEN, tau_mem=torch.tensor([0.02, 0.008] * (N_HIDDEN // 2)),
                          tau_syn=torch.tensor([0.004, 0.01] * (N_HIDDEN // 2)),
                          threshold=torch.linspace(0.75, 1.25, N_HIDDEN))
    else:
        hidden = LIFTorch(N_HIDDEN, tau_mem=0.02, tau_syn=0.005, threshold=1.0)
    model = Sequential(LinearTorch((N_IN, N_HIDDEN)), hidden, LinearTorch((N_HIDDEN, N_OUT)),
                       LIFTorch(N_OUT, tau_mem=0.01, tau_syn=0.004, threshold=0.75))
    g = torch.Generator().manual_seed(seed)  # Rockpool's parameters() is a dict of names
    with torch.no_grad():
        for lin in (model[0], model[2]):
            w = torch.randn(lin.weight.shape, generator=g) * 0.6
            lin.weight.copy_(torch.round(w * 16) / 16 if grid else w)
    graph = rockpool_to_nir(model)  # LIFTorch's default dt = 1e-3 s
    return _import(graph, preset="rockpool")


# ----------------------------------------------------------------------------- the list
def corpus_cases(*, grid: bool = True, seeds: tuple[int, ...] = (0,)) -> list[CorpusCase]:
    """The corpus cases whose framework is installed, in a fixed order.

    ``grid``: weights on a 1/16 grid (the test suite's, exact in float32) or ordinary
    float weights (what a trained network has; docs/fidelity.md uses these). ``seeds``:
    one network per seed and kind (weights and, for sinabs IF, their spread).
    """
    out: list[CorpusCase] = []
    sfx = [(s, "" if len(seeds) == 1 else f"#{s}") for s in seeds]
    if _have("torch", "nir", "snntorch"):
        for (seed, tag), kind, reset, delay in itertools.product(
                sfx, ["leaky", "synaptic"], ["subtract", "zero"], [True, False]):
            name = f"snntorch/{kind}/{reset}{'' if delay else '/no-delay'}{tag}"
            out.append(CorpusCase(
                name=name, framework="snntorch", integrate_and_fire=False,
                build=lambda k=kind, r=reset, d=delay, s=seed: _snntorch_net(
                    k, r, d, False, s, grid)))
        for seed, tag in sfx:
            out.append(CorpusCase(
                name=f"snntorch/leaky/subtract/learn-threshold{tag}", framework="snntorch",
                integrate_and_fire=False,
                build=lambda s=seed: _snntorch_net("leaky", "subtract", True, True, s, grid)))
            out.append(CorpusCase(
                name=f"snntorch/rleaky/zero{tag}", framework="snntorch",
                integrate_and_fire=False,
                build=lambda s=seed: _snntorch_net("rleaky", "zero", True, False, s, grid)))
    if _have("torch", "nir", "norse"):
        for (seed, tag), case in itertools.product(sfx, ("lifbox", "lifcell", "lifcell_taus")):
            out.append(CorpusCase(name=f"norse/{case}{tag}", framework="norse",
                                  integrate_and_fire=False,
                                  build=lambda c=case, s=seed: _norse_net(c, s, grid)))
    if _have("torch", "nir", "sinabs"):
        for (seed, tag), case in itertools.product(sfx, ("iaf", "lif")):
            out.append(CorpusCase(name=f"sinabs/{case}{tag}", framework="sinabs",
                                  integrate_and_fire=case != "lif",
                                  build=lambda c=case, s=seed: _sinabs_net(c, s, grid)))
    if _have("torch", "nir", "nirtorch", "rockpool"):
        for (seed, tag), case in itertools.product(sfx, ("lif", "taus")):
            out.append(CorpusCase(name=f"rockpool/{case}{tag}", framework="rockpool",
                                  integrate_and_fire=False,
                                  build=lambda c=case, s=seed: _rockpool_net(c, s, grid)))
    return out


def build_case(name: str, *, grid: bool = True) -> Any:
    """The imported network of the corpus case ``name``."""
    for c in corpus_cases(grid=grid, seeds=tuple(range(8))) + corpus_cases(grid=grid):
        if c.name == name:
            return c.build()
    raise KeyError(name)


def corpus_inputs(net: Any, steps: int, rate: float = 0.35, seed: int = 3
                  ) -> dict[str, np.ndarray]:
    """Bernoulli input spikes ``(steps, n)`` per input of ``net`` (the corpus' rate)."""
    rng = np.random.default_rng(seed)
    return {name: (rng.random((steps, inp.size)) < rate).astype(np.float64)
            for name, inp in net.inputs.items()}
