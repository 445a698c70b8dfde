"""ANN-to-SNN conversion: a trained ReLU network becomes an integrate-and-fire network.

Follows Rueckauer, Lungu, Hu, Pfeiffer & Liu (2017), "Conversion of continuous-valued deep
networks to efficient event-driven networks for image classification" (Front. Neurosci.
11:682), itself building on Diehl et al. (2015):

* every ReLU unit becomes a non-leaky integrate-and-fire neuron (:class:`nmcompiler.ir.IF`) with
  **reset by subtraction** (``Reset.SOFT``, section 2.2), so that its firing rate over
  ``T`` steps approximates the ReLU activation with an error of ``O(1 / T)``;
* **data-based normalisation** (section 2.3): the calibration data are run through the
  ANN and ``lambda_l``, the ``percentile``-th percentile of the positive activations of
  layer ``l`` (99.9 by default, their robust choice), rescales weights and biases,
  ``W_l <- W_l lambda_{l-1} / lambda_l`` and ``b_l <- b_l / lambda_l``, so that every
  threshold is 1 and rates stay below one spike per step. (Scaling the weights is the
  same as balancing the thresholds, ``theta_l = lambda_l``; weights are scaled here so
  that later quantisation sees unit thresholds.)
* ``reset="hard"`` instead resets to zero (Diehl et al. 2015; SpiNNaker and Loihi 1 have
  no reset by subtraction), optionally with ``threshold_balancing`` (Sengupta et al. 2019;
  docs/ann2snn.md, "Hard reset");
* biases become a constant per-step neuron bias (section 2.2.1);
* the input is **direct** by default: the analog input is the input current of the first
  layer every step (section 2.4); ``input_encoding="rate"`` instead expects Bernoulli
  spike trains of rate ``x / input_scale`` (:func:`nmcompiler.encoding.rate`).
* average pooling is a layer of IF neurons fed by an :class:`nmcompiler.ir.AvgPool2d` projection
  with unit threshold: its rate is the average of its inputs' rates, so its scale is the
  previous layer's (no normalisation needed); convolutions stay :class:`nmcompiler.ir.Conv2d`
  (docs/architecture.md#connectivity-kinds), their bias repeated over each channel's positions.

Departures from the paper: the output layer is by default a non-leaky, non-spiking readout
(``output="li"``: :class:`~nmcompiler.ir.LI` with ``lam = 1``; its voltage after ``t`` steps
is the running sum of its input and its argmax is the class, which avoids the output layer's
spike-count ties and its loss of negative logits); ``output="spikes"`` gives the paper's IF
output layer decoded by spike counts. Projections have ``delay=0`` by default (same-step
feed-forward, docs/architecture.md#delays), so a spike crosses every layer in one step; the
compiler's lower pass retimes them for chips that need ``delay >= 1``. Membranes start at 0
(the IR has no initial state), not at ``theta / 2``. Max pooling, batch norm and softmax
layers are not converted (fold batch norm into the previous layer first; softmax does not
change the argmax).

Inputs: a list of ``(weight, bias)`` pairs (an MLP, ``weight`` of shape ``(out, in)`` as
``torch.nn.Linear``, ReLU after every layer but the last), or a ``torch.nn.Sequential`` of
``Linear`` / ``Conv2d`` / ``ReLU`` / ``AvgPool2d`` / ``Flatten`` (``Dropout`` and
``Identity`` are skipped). torch is imported only when a torch model is given.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from nmcompiler import encoding as encoders
from nmcompiler import ir
from nmcompiler.ir.errors import ImportFormatError, InputError, UsageError

__all__ = [
    "Layer",
    "convert",
    "layers_from_torch",
    "layers_from_arrays",
    "ann_forward",
    "encode",
    "run",
    "predict",
]

INPUT = "input"
OUTPUT = "output"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Layer:
    """One layer of a ReLU network, in a framework-free form.

    Attributes:
        kind: "linear", "conv", "avgpool" or "flatten".
        name: the population name it becomes (unused for "flatten").
        weight: ``(out, in)`` (linear) or OIHW (conv); None otherwise.
        bias: ``(out,)`` per output unit / channel; None for none.
        relu: whether a ReLU follows (every layer but the output has one).
        stride, padding, dilation, groups: conv geometry (PyTorch conventions).
        kernel: pooling window; pooling stride defaults to the kernel.
    """

    kind: str
    name: str = ""
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    relu: bool = False
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    kernel: tuple[int, int] = (1, 1)

    @property
    def weights(self) -> np.ndarray:
        """The weight of a linear or conv layer (set for every such layer)."""
        if self.weight is None:
            raise ValueError(f"layer '{self.name}' ({self.kind}) has no weight")
        return self.weight

    @property
    def biases(self) -> np.ndarray:
        """The bias of a linear or conv layer (set for every such layer)."""
        if self.bias is None:
            raise ValueError(f"layer '{self.name}' ({self.kind}) has no bias")
        return self.bias


# ---------------------------------------------------------------------------- parsing
def _pair(x: Any) -> tuple[int, int]:
    if isinstance(x, (tuple, list)):
        return (int(x[0]), int(x[1]))
    return (int(x), int(x))


def _np(x: Any) -> np.ndarray:
    """A numpy float64 copy of an array or a torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.array(x, dtype=np.float64)


def layers_from_arrays(pairs: Sequence[Any]) -> list[Layer]:
    """An MLP from ``[(W1, b1), (W2, b2), ...]``; ReLU after every layer but the last."""
    if isinstance(pairs, np.ndarray) or not isinstance(pairs, Sequence) or not pairs:
        raise UsageError(
            "ann2snn: the numpy network must be a non-empty list of (weight, bias) pairs",
            obj="ann2snn",
            rule="layer list",
            hint="pass [(W1, b1), (W2, b2)] with W of shape (out, in), as torch.nn.Linear",
        )
    layers = []
    n_prev = None
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise UsageError(
                f"ann2snn: layer {i} is a {type(pair).__name__}, expected a (weight, bias) pair",
                obj=f"layer {i}",
                rule="layer list",
                hint="use bias=None for a layer without bias",
            )
        w = _np(pair[0])
        b = np.zeros(w.shape[0]) if pair[1] is None else _np(pair[1])
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise UsageError(
                f"ann2snn: layer {i} has weight {w.shape} and bias {b.shape}, expected "
                "(out, in) and (out,)",
                obj=f"layer {i}",
                rule="layer shapes",
                hint="weights are (out, in), as torch.nn.Linear.weight",
            )
        if n_prev is not None and w.shape[1] != n_prev:
            raise UsageError(
                f"ann2snn: layer {i} takes {w.shape[1]} inputs but layer {i - 1} has "
                f"{n_prev} outputs",
                obj=f"layer {i}",
                rule="consecutive sizes",
                need=n_prev,
                limit=w.shape[1],
                hint="check the order and orientation (out, in) of the weights",
            )
        n_prev = w.shape[0]
        last = i == len(pairs) - 1
        layers.append(
            Layer(kind="linear", name=OUTPUT if last else f"fc{i}", weight=w, bias=b,
                  relu=not last)
        )
    return layers


def layers_from_torch(model: Any) -> list[Layer]:
    """The layers of a ``torch.nn.Sequential`` (nested Sequentials are flattened)."""
    import torch.nn as nn  # lazily: torch is optional

    def walk(mod: Any, prefix: str) -> list[tuple[str, Any]]:
        out = []
        for key, sub in mod.named_children():
            if isinstance(sub, nn.Sequential):
                out.extend(walk(sub, f"{prefix}{key}_"))
            else:
                out.append((f"{prefix}{key}", sub))
        return out

    if not isinstance(model, nn.Sequential):
        raise ImportFormatError(
            f"ann2snn: a {type(model).__name__} is not a torch.nn.Sequential",
            obj=type(model).__name__,
            rule="torch.nn.Sequential",
            hint="wrap the layers in nn.Sequential(...) (Linear, Conv2d, ReLU, AvgPool2d, "
            "Flatten)",
        )
    layers: list[Layer] = []
    rectified = True  # whether the current activations are >= 0 (input: checked later)
    for key, m in walk(model, ""):
        where = f"module '{key}' ({type(m).__name__})"
        if isinstance(m, nn.Linear):
            w = _np(m.weight)
            b = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0])
            layers.append(Layer(kind="linear", name=f"fc{key}", weight=w, bias=b))
            rectified = False
        elif isinstance(m, nn.Conv2d):
            pad = m.padding
            if isinstance(pad, str):
                if pad != "valid":
                    raise ImportFormatError(
                        f"ann2snn: {where} has padding='{pad}'",
                        obj=key,
                        rule="numeric padding",
                        hint="give the padding as integers (padding='same' = (k-1)//2 for "
                        "odd kernels)",
                    )
                pad = (0, 0)
            if m.padding_mode != "zeros":
                raise ImportFormatError(
                    f"ann2snn: {where} has padding_mode='{m.padding_mode}', only 'zeros' "
                    "converts",
                    obj=key,
                    rule="zero padding",
                    hint="retrain with padding_mode='zeros'",
                )
            w = _np(m.weight)
            b = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0])
            layers.append(
                Layer(kind="conv", name=f"conv{key}", weight=w, bias=b,
                      stride=_pair(m.stride), padding=_pair(pad), dilation=_pair(m.dilation),
                      groups=int(m.groups))
            )
            rectified = False
        elif isinstance(m, nn.ReLU):
            if rectified:
                continue  # a ReLU of non-negative values changes nothing
            last = layers[-1]
            if last.kind not in ("linear", "conv"):
                raise ImportFormatError(
                    f"ann2snn: {where} follows a {last.kind} layer of values that may be "
                    "negative",
                    obj=key,
                    rule="ReLU after Linear or Conv2d",
                    hint="put the ReLU directly after the Linear / Conv2d (before pooling)",
                )
            layers[-1] = Layer(**{**_fields(last), "relu": True})
            rectified = True
        elif isinstance(m, nn.AvgPool2d):
            if not rectified:
                raise ImportFormatError(
                    f"ann2snn: {where} pools values that are not rectified",
                    obj=key,
                    rule="pool after ReLU",
                    hint="put a ReLU before the pooling: Conv2d -> ReLU -> AvgPool2d",
                )
            if m.ceil_mode or m.divisor_override is not None or (
                not m.count_include_pad and any(_pair(m.padding))
            ):
                raise ImportFormatError(
                    f"ann2snn: {where} uses ceil_mode, divisor_override or "
                    "count_include_pad=False",
                    obj=key,
                    rule="plain average pooling",
                    hint="use the defaults (floor mode, padding counted)",
                )
            stride = m.stride if m.stride is not None else m.kernel_size
            layers.append(
                Layer(kind="avgpool", name=f"pool{key}", kernel=_pair(m.kernel_size),
                      stride=_pair(stride), padding=_pair(m.padding))
            )
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ImportFormatError(
                    f"ann2snn: {where} flattens dims {m.start_dim}..{m.end_dim}",
                    obj=key,
                    rule="Flatten(1, -1)",
                    hint="use nn.Flatten() (start_dim=1)",
                )
            layers.append(Layer(kind="flatten", name=f"flat{key}"))
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        else:
            raise ImportFormatError(
                f"ann2snn: {where} cannot be converted",
                obj=key,
                rule="supported layer",
                hint="supported: Linear, Conv2d, ReLU, AvgPool2d, Flatten, Dropout, Identity "
                "(fold BatchNorm into the previous layer; replace MaxPool2d by AvgPool2d)",
            )
    return _finish(layers)


def _fields(layer: Layer) -> dict[str, Any]:
    return {k: getattr(layer, k) for k in Layer.__slots__}


def _finish(layers: list[Layer]) -> list[Layer]:
    """Check the ReLU structure and name the output layer."""
    weighted = [i for i, lay in enumerate(layers) if lay.kind in ("linear", "conv")]
    if not weighted:
        raise ImportFormatError(
            "ann2snn: the network has no Linear or Conv2d layer",
            obj="network",
            rule="weighted layer",
            hint="convert a network with at least one Linear or Conv2d",
        )
    last = weighted[-1]
    for i in weighted[:-1]:
        if not layers[i].relu:
            raise ImportFormatError(
                f"ann2snn: hidden layer '{layers[i].name}' has no ReLU after it",
                obj=layers[i].name,
                rule="ReLU after every hidden layer",
                hint="spiking neurons cannot carry negative values: add a ReLU, or merge the "
                "two linear layers",
            )
    if any(lay.kind == "avgpool" for lay in layers[last + 1:]):
        raise ImportFormatError(
            "ann2snn: pooling after the output layer",
            obj=layers[last].name,
            rule="weighted output layer",
            hint="end the network with a Linear or Conv2d layer",
        )
    layers = layers[: last + 1]
    layers[last] = Layer(**{**_fields(layers[last]), "name": OUTPUT})
    return layers


def _as_layers(model_or_layers: Any) -> list[Layer]:
    if isinstance(model_or_layers, (list, tuple)) and model_or_layers and all(
        isinstance(x, Layer) for x in model_or_layers
    ):
        return _finish(list(model_or_layers))
    if type(model_or_layers).__module__.startswith("torch"):
        return layers_from_torch(model_or_layers)
    return layers_from_arrays(model_or_layers)


# ---------------------------------------------------------------------------- ANN
def _conv(x: np.ndarray, lay: Layer) -> np.ndarray:
    ph, pw = lay.padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    w = lay.weights
    c_out, c_in_g, kh, kw = w.shape
    (sh, sw), (dh, dw) = lay.stride, lay.dilation
    win = np.lib.stride_tricks.sliding_window_view(
        x, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3)
    )[:, :, ::sh, ::sw, ::dh, ::dw]
    g, o_g = lay.groups, c_out // lay.groups
    outs = [
        np.einsum("bchwij,ocij->bohw", win[:, k * c_in_g:(k + 1) * c_in_g],
                  w[k * o_g:(k + 1) * o_g], optimize=True)
        for k in range(g)
    ]
    return np.concatenate(outs, axis=1)


def _pool(x: np.ndarray, lay: Layer) -> np.ndarray:
    ph, pw = lay.padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = lay.kernel
    sh, sw = lay.stride
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return win.mean(axis=(-1, -2))


def _forward(layers: list[Layer], x: np.ndarray) -> list[np.ndarray]:
    acts = []
    for lay in layers:
        if lay.kind == "linear":
            x = x.reshape(x.shape[0], -1) @ lay.weights.T + lay.biases
        elif lay.kind == "conv":
            x = _conv(x, lay) + lay.biases[None, :, None, None]
        elif lay.kind == "avgpool":
            x = _pool(x, lay)
        else:
            x = x.reshape(x.shape[0], -1)
        if lay.relu:
            x = np.maximum(x, 0.0)
        acts.append(x)
    return acts


def ann_forward(model_or_layers: Any, x: Any) -> np.ndarray:
    """The ANN's output (logits) for ``x`` of shape ``(N, *input_shape)``, in numpy."""
    layers = _as_layers(model_or_layers)
    return _forward(layers, _calibration(x, layers))[-1]


def _calibration(x: Any, layers: list[Layer]) -> np.ndarray:
    arr = _np(x)
    if arr.ndim < 2 or arr.shape[0] < 1:
        raise InputError(
            f"ann2snn: calibration data of shape {arr.shape}, expected (N, *input_shape)",
            obj="calibration_data",
            rule="(N, ...)",
            hint="pass a batch of training inputs, e.g. x_train[:500]",
        )
    if not np.all(np.isfinite(arr)):
        raise InputError(
            "ann2snn: calibration data contain NaN or infinite values",
            obj="calibration_data",
            rule="finite values",
            hint="clean the data",
        )
    first = next(lay for lay in layers if lay.kind != "flatten")
    if first.kind == "linear" and int(np.prod(arr.shape[1:])) != first.weights.shape[1]:
        raise InputError(
            f"ann2snn: calibration data have {int(np.prod(arr.shape[1:]))} features per "
            f"sample, layer '{first.name}' takes {first.weights.shape[1]}",
            obj="calibration_data",
            rule="input size",
            need=first.weights.shape[1],
            limit=arr.shape[1:],
            hint="pass samples along the first axis",
        )
    if first.kind in ("conv", "avgpool"):
        if arr.ndim != 4:
            raise InputError(
                f"ann2snn: calibration data of shape {arr.shape}; layer '{first.name}' needs "
                "(N, C, H, W)",
                obj="calibration_data",
                rule="NCHW",
                hint="add the channel axis, e.g. x[:, None]",
            )
        if first.kind == "conv" and arr.shape[1] != first.weights.shape[1] * first.groups:
            raise InputError(
                f"ann2snn: calibration data have {arr.shape[1]} channels, layer "
                f"'{first.name}' takes {first.weights.shape[1] * first.groups}",
                obj="calibration_data",
                rule="channels",
                hint="check the channel axis (NCHW)",
            )
    return arr


# ---------------------------------------------------------------------------- convert
def _percentile_scale(a: np.ndarray, percentile: float) -> float:
    pos = a[a > 0]
    if pos.size == 0:
        return 1.0
    return float(np.percentile(pos, percentile))


def convert(
    model_or_layers: Any,
    calibration_data: Any,
    *,
    percentile: float = 99.9,
    input_encoding: str = "direct",
    output: str = "li",
    delay: int = 0,
    name: str = "ann2snn",
    reset: str = "soft",
    threshold_balancing: bool = False,
    balance_steps: int = 100,
    balance_samples: int = 200,
) -> ir.Network:
    """Convert a trained ReLU network to an IF network (Rueckauer et al. 2017).

    Args:
        model_or_layers: a ``torch.nn.Sequential``, a list of ``(weight, bias)`` pairs, or
            a list of :class:`Layer`.
        calibration_data: ``(N, *input_shape)`` samples (numpy or torch) used to find the
            activation scales ``lambda_l``; a few hundred training samples suffice.
        percentile: the percentile of positive activations taken as a layer's maximum
            (100 = the maximum, Diehl et al. 2015; 99.9 is robust to outliers).
        input_encoding: "direct" (analog current into the first layer, section 2.4) or
            "rate" (Bernoulli spike trains of rate ``x / input_scale``).
        output: "li" (non-spiking integrating readout, the default) or "spikes" (IF
            output neurons; decode by spike counts).
        delay: delay of every projection (0 = same-step feed-forward).
        name: network name.
        reset: "soft" (reset by subtraction, Rueckauer et al. 2017, the default) or "hard"
            (reset to zero, Diehl et al. 2015: what SpiNNaker's and Loihi 1's neurons
            do; the charge above threshold is lost, so rates run below the activation).
        threshold_balancing: set every spiking layer's threshold, layer by layer, to the
            ``percentile``-th percentile of the positive per-step input it receives in the
            converted network on the calibration data (Sengupta, Ye, Wang, Liu & Roy
            2019, "Going deeper in spiking neural networks: VGG and residual
            architectures", Front. Neurosci. 13:95, Algorithm 1, with the robust
            percentile of Rueckauer et al. instead of the maximum); the next layer's
            weights are multiplied by that threshold so its input keeps its units.
        balance_steps: steps of each threshold-balancing simulation.
        balance_samples: calibration samples used for threshold balancing (the first).

    Returns:
        An :class:`nmcompiler.ir.Network` with input ``"input"`` and output ``"output"``; its
        ``metadata["ann2snn"]`` records the encoding, the input scale and the ``lambda_l``.
        Run it with :func:`run` / :func:`predict`.
    """
    if input_encoding not in ("direct", "rate"):
        raise UsageError(
            f"ann2snn: input_encoding='{input_encoding}' is unknown",
            obj="input_encoding",
            rule="known encoding",
            hint="use 'direct' or 'rate'",
        )
    if output not in ("li", "spikes"):
        raise UsageError(
            f"ann2snn: output='{output}' is unknown",
            obj="output",
            rule="known output",
            hint="use 'li' (integrating readout) or 'spikes' (IF output layer)",
        )
    if not isinstance(percentile, numbers.Real) or not 0 < percentile <= 100:
        raise UsageError(
            f"ann2snn: percentile={percentile!r} is outside (0, 100]",
            obj="percentile",
            rule="0 < percentile <= 100",
            hint="99.9 (Rueckauer et al. 2017) or 100 (max-norm)",
        )
    if not isinstance(delay, numbers.Integral) or delay < 0:
        raise UsageError(
            f"ann2snn: delay={delay!r}, expected an integer >= 0",
            obj="delay",
            rule="delay >= 0",
            hint="0 for same-step feed-forward, 1 for chip-like timing",
        )
    if reset not in ("soft", "hard"):
        raise UsageError(
            f"ann2snn: reset='{reset}' is unknown", obj="reset", rule="known reset",
            hint="use 'soft' (reset by subtraction) or 'hard' (reset to zero)")
    layers = _as_layers(model_or_layers)
    x = _calibration(calibration_data, layers)
    in_shape = tuple(int(d) for d in x.shape[1:])
    if layers[0].kind == "linear":
        in_shape = (int(np.prod(in_shape)),) if len(in_shape) != 3 else in_shape
    acts = _forward(layers, x)

    if input_encoding == "rate":
        if x.min() < 0:
            raise InputError(
                f"ann2snn: rate-coded input needs values >= 0, calibration data reach "
                f"{x.min():.4g}",
                obj="calibration_data",
                rule="x >= 0",
                hint="use input_encoding='direct' for signed inputs",
            )
        input_scale = float(x.max()) if x.max() > 0 else 1.0
    else:
        input_scale = 1.0

    def build(thetas: dict[str, float]) -> tuple[ir.Network, list[float]]:
        """The network for per-layer thresholds ``thetas`` (absent: 1)."""
        net = ir.Network(name=name)
        net.input(INPUT, shape=in_shape)
        prev, prev_shape, lam_prev, theta_prev = INPUT, in_shape, input_scale, 1.0
        scales = []
        for lay, a in zip(layers, acts, strict=True):
            if lay.kind == "flatten":
                continue
            is_out = lay.name == OUTPUT
            theta = float(thetas.get(lay.name, 1.0))
            if lay.kind == "avgpool":
                lam = lam_prev  # rates are averaged: no rescaling (module docstring)
                conn: Any = ir.AvgPool2d(kernel=lay.kernel, stride=lay.stride,
                                         padding=lay.padding)
                theta = 1.0  # unit threshold: a pool's rate is its inputs' mean rate
                shape = ir.pool_output_shape(prev_shape, conn)  # type: ignore[arg-type]
                bias: float | np.ndarray = 0.0
            else:
                lam = _percentile_scale(a, percentile)
                w = lay.weight * (lam_prev / lam) * theta_prev
                if lay.kind == "linear":
                    conn = ir.Dense(weight=w)
                    shape = (w.shape[0],)
                    bias = lay.bias / lam
                else:
                    conn = ir.Conv2d(weight=w, stride=lay.stride, padding=lay.padding,
                                     dilation=lay.dilation, groups=lay.groups)
                    shape = ir.conv_output_shape(prev_shape, conn)  # type: ignore[arg-type]
                    bias = np.repeat(lay.bias / lam, shape[1] * shape[2])
            if is_out and output == "li":
                model: Any = ir.LI(lam=1.0, bias=bias)
            else:
                model = ir.IF(theta=theta, bias=bias,
                              reset=ir.Reset.SOFT if reset == "soft" else ir.Reset.HARD)
            net.population(lay.name, model=model, shape=shape)
            net.connect(prev, lay.name, conn, delay=int(delay))
            scales.append(float(lam))
            prev, prev_shape, lam_prev = lay.name, shape, lam
            if lay.kind != "avgpool":  # a pool passes its input's units on
                theta_prev = theta
        net.output(OUTPUT)
        net.metadata["ann2snn"] = {"input_encoding": input_encoding,
                                   "input_scale": input_scale, "output": output}
        return net, scales

    thetas: dict[str, float] = {}
    if threshold_balancing:
        thetas = _balance_thresholds(build, layers, x[:int(balance_samples)],
                                     int(balance_steps), percentile, output)
    net, scales = build(thetas)
    net.metadata["ann2snn"] = {
        "paper": "Rueckauer et al. 2017",
        "input_encoding": input_encoding,
        "input_scale": input_scale,
        "output": output,
        "percentile": float(percentile),
        "scales": scales,
        "populations": [p for p in net.populations],
        "delay": int(delay),
        "reset": reset,
        "threshold_balancing": bool(threshold_balancing),
        "thresholds": {k: float(v) for k, v in thetas.items()},
    }
    net.metadata["frontend"] = "ann2snn"
    ir.verify(net)
    return net


def _balance_thresholds(build: Any, layers: Sequence[Layer], x: np.ndarray, steps: int,
                        percentile: float, output: str) -> dict[str, float]:
    """Per-layer thresholds by threshold balancing (Sengupta et al. 2019, Algorithm 1):
    layer by layer, simulate the converted network (earlier layers already balanced) on
    ``x`` with direct input and take the ``percentile``-th percentile of the positive
    per-step input ``u + bias`` of the layer as its threshold."""
    thetas: dict[str, float] = {}
    for lay in layers:
        if lay.kind in ("flatten", "avgpool") or (lay.name == OUTPUT and output == "li"):
            continue
        net, _ = build(thetas)
        net.probe(lay.name, "u")
        res = ir.simulate(net, {INPUT: encode(net, x, steps)}, steps)
        u = res.probes[f"{lay.name}.u"]
        bias = np.real(np.asarray(net.populations[lay.name].model.bias, dtype=np.float64))
        drive = (u + bias).ravel()
        pos = drive[drive > 0]
        thetas[lay.name] = float(np.percentile(pos, percentile)) if pos.size else 1.0
    return thetas


# ---------------------------------------------------------------------------- run
def _info(net: ir.Network) -> dict[str, Any]:
    info = net.metadata.get("ann2snn")
    if not isinstance(info, dict):
        raise UsageError(
            f"network '{net.name}' was not made by ann2snn.convert",
            obj=net.name,
            rule="converted network",
            hint="convert a model with ann2snn.convert first, or use ir.simulate directly",
        )
    return info


def encode(net: ir.Network, x: Any, steps: int, *, seed: int = 0) -> np.ndarray:
    """The ``(T, B, *input_shape)`` input of a converted network for samples ``x``."""
    info = _info(net)
    arr = _np(x)
    shape = net.inputs[INPUT].shape
    if arr.ndim < 2 or int(np.prod(arr.shape[1:])) != int(np.prod(shape)):
        raise InputError(
            f"ann2snn: samples of shape {arr.shape}, network '{net.name}' takes (B, *{shape})",
            obj=INPUT,
            rule="input shape",
            hint="pass a batch of samples along the first axis",
        )
    arr = arr.reshape((arr.shape[0],) + shape)
    if info["input_encoding"] == "rate":
        return encoders.rate(np.clip(arr / info["input_scale"], 0, 1), steps, seed=seed)
    return encoders.direct(arr, steps)


def run(
    net: ir.Network,
    x: Any,
    steps: int,
    *,
    seed: int = 0,
    every_step: bool = False,
) -> np.ndarray:
    """Simulate a converted network on samples ``x`` and decode its output.

    Returns:
        ``(B, n_out)`` scores after ``steps`` steps -- the readout voltage divided by
        the steps (``output="li"``) or the spike rate (``output="spikes"``); both estimate
        ``ANN logits / lambda_out``. With ``every_step=True``, ``(T, B, n_out)``: the
        scores after each number of steps ``1..T`` (one simulation gives the whole
        accuracy-versus-steps curve).
    """
    info = _info(net)
    res = ir.simulate(net, {INPUT: encode(net, x, steps, seed=seed)}, steps)
    out = res.outputs[OUTPUT]
    t = np.arange(1, steps + 1, dtype=np.float64)[:, None, None]
    scores = (np.cumsum(out, axis=0) if info["output"] == "spikes" else out) / t
    return scores if every_step else scores[-1]


def predict(net: ir.Network, x: Any, steps: int, *, seed: int = 0) -> np.ndarray:
    """Class predictions ``(B,)``: argmax of :func:`run`'s scores."""
    return np.argmax(run(net, x, steps, seed=seed), axis=-1)
