"""Run a network described in plain integer arrays on Lava's bit-accurate CPU models.

This script runs INSIDE the Python 3.10 Lava environment (``.venv-lava``); the main
environment calls it through :func:`backends.loihi.harness.run_on_lava`. It imports
nothing of nmcompiler, so it also works when only lava-nc is installed::

    .venv-lava/bin/python backends/loihi/lava_runner.py IN.npz OUT.npz

Input ``.npz`` (written by ``harness.write_spec``):

- ``meta``: a JSON string ``{"steps": T, "populations": [{"name", "n", "model",
  "reset_interval", "reset_offset"}], "connections": [{"pre", "post", "weight_exp",
  "num_message_bits", "num_weight_bits", "sign_mode", "sparse", "delays"}],
  "inputs": [{"name", "n"}]}`` (``delays`` is true when ``conn{j}.delays`` exists);
- ``pop{i}.{du,dv,vth,bias_mant,bias_exp,u0,v0}``: int64 arrays of shape (n,);
- ``conn{j}.weights`` (n_post, n_pre) int64 and optionally ``conn{j}.delays`` (same shape);
- ``in{k}``: int64 (T, n) spikes (0/1) or graded payloads per step.

Lava processes: inputs are ``lava.proc.io.source.RingBuffer`` (fixed_pt: int32),
connections ``Dense`` / ``Sparse`` / ``DelayDense`` / ``DelaySparse``, populations ``LIF`` or
``LIFReset``; every population's ``s_out``, ``u`` and ``v`` is recorded by one
``lava.proc.monitor.process.Monitor`` each (a Monitor probes one Var or port only). The run
uses ``Loihi2SimCfg(select_tag="fixed_pt")`` and ``RunSteps(T)``.

Output ``.npz``: ``{name}/s``, ``{name}/u``, ``{name}/v`` int32 (T, n) per population (the
state after each step), and ``lava_seconds`` (wall time of build + run).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def _scalar_or_array(x: np.ndarray):
    """A Python int when all neurons share the value (Lava's documented form), else the
    int64 array (Lava's int-typed Vars accept it and broadcast per neuron)."""
    x = np.asarray(x, dtype=np.int64)
    if x.size and np.all(x == x.flat[0]):
        return int(x.flat[0])
    return x


def _components(names: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    parent = {n: n for n in names}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


def run(in_path: str, out_path: str) -> None:
    t0 = time.perf_counter()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF, LIFReset
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode
    from scipy.sparse import csr_matrix

    z = np.load(in_path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    steps = int(meta["steps"])
    if steps < 1:
        raise ValueError("steps must be >= 1")

    procs = {}  # name -> (process, n)
    for k, inp in enumerate(meta["inputs"]):
        data = np.asarray(z[f"in{k}"], dtype=np.int64)
        if data.shape != (steps, inp["n"]):
            raise ValueError(f"input {inp['name']!r}: shape {data.shape} != {(steps, inp['n'])}")
        procs[inp["name"]] = (RingBuffer(data=data.T.astype(np.int32).copy()), inp["n"])

    pop_names = []
    for i, p in enumerate(meta["populations"]):
        n = int(p["n"])
        kw = dict(
            shape=(n,),
            u=np.asarray(z[f"pop{i}.u0"], dtype=np.int64),
            v=np.asarray(z[f"pop{i}.v0"], dtype=np.int64),
            du=_scalar_or_array(z[f"pop{i}.du"]),
            dv=_scalar_or_array(z[f"pop{i}.dv"]),
            vth=_scalar_or_array(z[f"pop{i}.vth"]),
            bias_mant=np.asarray(z[f"pop{i}.bias_mant"], dtype=np.int64),
            bias_exp=np.asarray(z[f"pop{i}.bias_exp"], dtype=np.int64),
            name=f"pop_{p['name']}",
        )
        model = p.get("model", "lif")
        if model == "lif":
            proc = LIF(**kw)
        elif model == "lif_reset":
            proc = LIFReset(
                reset_interval=int(p.get("reset_interval", 1)),
                reset_offset=int(p.get("reset_offset", 0)),
                **kw,
            )
        else:
            raise ValueError(f"population {p['name']!r}: unknown model {model!r}")
        procs[p["name"]] = (proc, n)
        pop_names.append(p["name"])

    modes = {
        "mixed": SignMode.MIXED,
        "excitatory": SignMode.EXCITATORY,
        "inhibitory": SignMode.INHIBITORY,
    }
    edges = []
    for j, c in enumerate(meta["connections"]):
        w = np.asarray(z[f"conn{j}.weights"], dtype=np.int64)
        kw = dict(
            weight_exp=int(c.get("weight_exp", 0)),
            num_message_bits=int(c.get("num_message_bits", 0)),
            num_weight_bits=int(c.get("num_weight_bits", 8)),
        )
        if c.get("sign_mode"):
            kw["sign_mode"] = modes[c["sign_mode"]]
        sparse = bool(c.get("sparse", False))
        if c.get("delays"):
            d = np.asarray(z[f"conn{j}.delays"], dtype=int)
            if sparse:
                # delays need the weights' sparsity pattern; zero delays are implicit
                conn = DelaySparse(weights=csr_matrix(w), delays=csr_matrix(d * (w != 0)), **kw)
            else:
                conn = DelayDense(weights=w, delays=d, **kw)
        elif sparse:
            conn = Sparse(weights=csr_matrix(w), **kw)
        else:
            conn = Dense(weights=w, **kw)
        pre, _ = procs[c["pre"]]
        post, _ = procs[c["post"]]
        pre.s_out.connect(conn.s_in)
        conn.a_out.connect(post.a_in)
        edges.append((c["pre"], c["post"]))

    monitors = {}
    for name in pop_names:
        proc, _ = procs[name]
        ms = []
        for var in (proc.s_out, proc.u, proc.v):
            m = Monitor()
            m.probe(var, steps)
            ms.append(m)
        monitors[name] = ms

    # Lava compiles only what is connected to the process run() is called on: link the
    # components of the graph with all-zero Dense connections (they add 0 to a_in).
    comps = _components(list(procs), edges)
    anchors = [
        next(n for n in comp if n in pop_names) for comp in comps if set(comp) & set(pop_names)
    ]
    for a, b in zip(anchors[:-1], anchors[1:], strict=True):
        (pa, na), (pb, nb) = procs[a], procs[b]
        link = Dense(weights=np.zeros((nb, na), dtype=np.int64))
        pa.s_out.connect(link.s_in)
        link.a_out.connect(pb.a_in)

    if not pop_names:
        raise ValueError("the network has no population")
    root = procs[pop_names[0]][0]
    root.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    out = {}
    try:
        for name in pop_names:
            proc, n = procs[name]
            for key, m, var in zip("suv", monitors[name], ("s_out", "u", "v"), strict=True):
                arr = np.asarray(m.get_data()[proc.name][var], dtype=np.float64)
                out[f"{name}/{key}"] = np.rint(arr).astype(np.int64).astype(np.int32)
    finally:
        root.stop()
    out["lava_seconds"] = np.array(time.perf_counter() - t0)
    np.savez(out_path, **out)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: lava_runner.py IN.npz OUT.npz", file=sys.stderr)
        return 2
    run(argv[1], argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
