"""The project's example networks, built in code (no downloads), each in a few seconds.

Used by ``make demo`` and by the benchmarks:

* :func:`lsm_example` -- a Liquid State Machine (Maass et al. 2002) and its delayed-recall
  task (docs/lsm.md);
* :func:`digits_classifier` -- a small ReLU MLP trained on scikit-learn's bundled digits
  data set and converted to an IF network (Rueckauer et al. 2017; docs/ann2snn.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler import ir

__all__ = [
    "LSMExample",
    "DigitsExample",
    "lsm_example",
    "digits_classifier",
    "digits_data",
    "train_mlp",
    "interop_dir",
]


def interop_dir() -> Path | None:
    """The folder of NIR files exported by other frameworks (docs/nir.md#interop-files):
    ``$NMC_INTEROP``, else ``interop/`` in a ``shared/`` folder inside or beside the
    checkout; None where there is none (the examples that need it are skipped)."""
    env = os.environ.get("NMC_INTEROP")
    if env:
        return Path(env) if Path(env).is_dir() else None
    repo = Path(__file__).resolve().parents[2]
    for cand in (repo / "shared" / "interop", repo.parent / "shared" / "interop"):
        if cand.is_dir():
            return cand
    return None


# ---------------------------------------------------------------------------- LSM
@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LSMExample:
    """A liquid state machine with its task.

    Attributes:
        network: the reservoir as an :class:`nmcompiler.ir.Network` (``lsm.network``).
        lsm: the :class:`nmcompiler.models.lsm.LSM` (builder output: positions, E/I
            mask, input / state names).
        task: the :class:`nmcompiler.models.lsm.RecallTask` (input stream, symbols,
            sample times, targets for any delay).
    """

    network: ir.Network
    lsm: Any
    task: Any


def lsm_example(seed: int = 0, *, n_segments: int = 1200) -> LSMExample:
    """The LSM of docs/lsm.md: 540 LIF neurons on a 12x9x5 grid, 4-symbol delayed recall.

    Building takes milliseconds; running the reservoir on the task (``lsm.run(
    task.inputs)``, 6000 steps) about a second.
    """
    from nmcompiler.models import lsm as lsm_mod

    task = lsm_mod.recall_task(n_segments=n_segments, seed=seed + 1)
    lsm = lsm_mod.build_lsm(
        grid=(12, 9, 5), n_inputs=task.n_symbols, seed=seed, **lsm_mod.EXAMPLE_PARAMS
    )
    return LSMExample(network=lsm.network, lsm=lsm, task=task)


# ---------------------------------------------------------------------------- digits
@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DigitsExample:
    """A converted digits classifier.

    Attributes:
        network: the IF network (input ``"input"``, 64 channels; output ``"output"``).
        layers: the trained ANN as ``[(W, b), ...]``.
        x_test, y_test: held-out samples (values in [0, 1]) and labels.
        ann_accuracy: the ANN's accuracy on the test set.
        steps: the number of steps the SNN is meant to run.
        inputs: ``{"input": (steps, B, 64)}`` direct-encoded test inputs for ir.simulate.
    """

    network: ir.Network
    layers: list
    x_test: np.ndarray
    y_test: np.ndarray
    ann_accuracy: float
    steps: int
    inputs: dict


def digits_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1], split 75 / 25 (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data.astype(np.float64) / 16.0
    return tuple(  # type: ignore[return-value]
        train_test_split(x, d.target, test_size=0.25, random_state=seed, stratify=d.target)
    )


def train_mlp(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: tuple[int, ...] = (64,),
    epochs: int = 60,
    lr: float = 3e-3,
    batch: int = 32,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A ReLU MLP trained with Adam on softmax cross-entropy, in numpy (seeded).

    Returns ``[(W, b), ...]`` with ``W`` of shape ``(out, in)`` (torch.nn.Linear layout).
    """
    rng = np.random.default_rng(seed)
    sizes = (x.shape[1],) + tuple(hidden) + (int(y.max()) + 1,)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        params.append(rng.normal(0, np.sqrt(2.0 / n_in), (n_out, n_in)))
        params.append(np.zeros(n_out))
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    onehot = np.eye(sizes[-1])[y]
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            acts = [x[idx]]
            for i in range(0, len(params), 2):
                z = acts[-1] @ params[i].T + params[i + 1]
                acts.append(np.maximum(z, 0) if i + 2 < len(params) else z)
            z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            delta = (p - onehot[idx]) / len(idx)
            grads = [None] * len(params)
            for i in range(len(params) - 2, -1, -2):
                grads[i] = delta.T @ acts[i // 2] + weight_decay * params[i]
                grads[i + 1] = delta.sum(axis=0)
                if i:
                    delta = (delta @ params[i]) * (acts[i // 2] > 0)
            step += 1
            for k, g in enumerate(grads):
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                mh = m[k] / (1 - b1**step)
                vh = v[k] / (1 - b2**step)
                params[k] = params[k] - lr * mh / (np.sqrt(vh) + eps)
    return [(params[i], params[i + 1]) for i in range(0, len(params), 2)]


def digits_classifier(
    seed: int = 0,
    steps: int = 100,
    *,
    hidden: tuple[int, ...] = (64, 64),
    percentile: float = 99.9,
    output: str = "li",
) -> DigitsExample:
    """Train a 64-64-64-10 ReLU MLP on digits (numpy, ~1 s) and convert it to an IF network.

    ``output`` is the converted network's output layer ("li" readout or "spikes"); the
    SNN's accuracy: ``ann2snn.predict(ex.network, ex.x_test, ex.steps)``.
    """
    from nmcompiler import encoding as encoders
    from nmcompiler.frontends import ann2snn

    x_tr, x_te, y_tr, y_te = digits_data(seed)
    layers = train_mlp(x_tr, y_tr, hidden=hidden, seed=seed)
    ann_acc = float(np.mean(np.argmax(ann2snn.ann_forward(layers, x_te), axis=1) == y_te))
    net = ann2snn.convert(layers, x_tr, percentile=percentile, output=output,
                          name="digits_mlp")
    return DigitsExample(
        network=net,
        layers=layers,
        x_test=x_te,
        y_test=y_te,
        ann_accuracy=ann_acc,
        steps=int(steps),
        inputs={"input": encoders.direct(x_te, steps)},
    )
