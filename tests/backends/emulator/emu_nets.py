"""Seeded random networks, target files and mappings shared by the emulator tests (a
plainly named module: a test importing from `conftest` gets whichever conftest was
imported first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmcompiler import ir
from nmcompiler.mapping import Placement

REPO = Path(__file__).resolve().parents[3]


def random_network(seed: int, *, n_pops: int = 3, size: tuple[int, int] = (5, 30),
                   graded: bool = True, zero_delay: bool = True) -> tuple[ir.Network, dict]:
    """A seeded random recurrent network with integer weights and dyadic decays.

    Mixes LIF / IF / LI, hard, soft and no reset, graded spikes, refractory periods,
    biases, projection delays 0..3 and per-synapse delays; returns the network and inputs.
    Values stay exact in float64 (integers, decays 1, 1/2, 3/4), so every arithmetic
    order gives the same numbers.
    """
    rng = np.random.default_rng(seed)
    net = ir.Network(f"rand{seed}")
    n_in = int(rng.integers(3, 12))
    net.input("in", n_in)
    names = []
    resets = [ir.Reset.HARD, ir.Reset.SOFT, ir.Reset.NONE]
    for k in range(n_pops):
        n = int(rng.integers(*size))
        lam = float(rng.choice([1.0, 0.5, 0.75]))
        alpha = float(rng.choice([0.0, 0.5]))
        reset = resets[(seed + k) % 3]
        theta = float(rng.integers(2, 6))
        model = ir.LIF(
            alpha_u=alpha, lam=lam, theta=theta, bias=float(rng.integers(-1, 2)),
            v_reset=float(rng.integers(-1, 1)) if reset is ir.Reset.HARD else 0.0,
            reset=reset, refractory=int(rng.integers(0, 3)),
            graded=graded and k % 2 == 1, graded_max=3,
            fire_at_threshold=bool(rng.integers(0, 2)),
        )
        name = f"p{k}"
        net.population(name, n, model)
        names.append(name)
    net.population("readout", 4, ir.LI(lam=0.5))
    # input -> first population (dense), others sparse
    net.connect("in", names[0], ir.Dense(
        weight=rng.integers(0, 4, (net.size_of(names[0]), n_in)).astype(float)), delay=1)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if rng.random() < 0.6 or i == j:
                na, nb = net.size_of(a), net.size_of(b)
                mask = rng.random((nb, na)) < 0.3
                w = np.where(mask, rng.integers(-3, 4, (nb, na)), 0).astype(float)
                sparse = ir.Sparse.from_dense(w)
                d = 0 if (zero_delay and j > i and rng.random() < 0.5) else int(
                    rng.integers(1, 4))
                if rng.random() < 0.5 and d > 0:
                    sparse = ir.Sparse(indptr=sparse.indptr, indices=sparse.indices,
                                       weight=sparse.weight, n_post=sparse.n_post,
                                       delays=rng.integers(0, 3, sparse.weight.shape[0]))
                net.connect(a, b, sparse, delay=d)
    net.connect(names[-1], "readout", ir.Dense(
        weight=rng.integers(-2, 3, (4, net.size_of(names[-1]))).astype(float)), delay=1)
    for name in names:
        net.probe(name, "v")
        net.probe(name, "u")
        net.output(name)
    net.output("readout")
    steps = 40
    x = (rng.random((steps, n_in)) < 0.4).astype(float)
    return ir.verify(net), {"in": x}


def target_file(tmp_path: Path, name: str, neurons: int, base: str = "emulator") -> Path:
    """A copy of a bundled target with another per-core neuron budget (and huge axons)."""
    text = (REPO / "nmcompiler" / "hw_configs" / f"{base}.toml").read_text()
    import re

    text = re.sub(r"^neurons = \{ value = \d+", f"neurons = {{ value = {neurons}", text,
                  flags=re.M)
    for key in ("input_axons", "output_axons"):
        text = re.sub(rf"^{key} = \{{ value = \d+", f"{key} = {{ value = 100000000", text,
                      flags=re.M)
    text = re.sub(r'^name = "[^"]+"', f'name = "{name}"', text, flags=re.M)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def placement(target, n_cores: int, seed: int) -> Placement:
    """A random valid placement (distinct physical cores), built directly."""
    rng = np.random.default_rng(seed)
    core = np.sort(rng.choice(target.total_cores, n_cores, replace=False)) if seed else \
        np.arange(n_cores)
    if seed % 2:
        core = rng.permutation(core)
    core = core.astype(np.int64)
    return Placement(target=target.name, core=core, coords=target.core_coords()[core], cost=0,
                     messages=0, mean_hops=0.0, max_link_load=0, method="random",
                     optimal=False, lower_bound=None, seed=seed)


