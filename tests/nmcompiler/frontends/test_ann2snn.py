"""ANN-to-SNN conversion (Rueckauer et al. 2017): structure, rates, accuracy, torch, errors."""

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.examples import digits_classifier
from nmcompiler.frontends import ann2snn
from nmcompiler.ir.errors import ImportFormatError, InputError, UsageError


def _mlp(seed=0, sizes=(6, 8, 3)):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(0, 1 / np.sqrt(a), (b, a)), rng.normal(0, 0.1, b))
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def test_structure_soft_reset_scaled_weights():
    layers = _mlp()
    x = np.random.default_rng(1).random((200, 6))
    net = ann2snn.convert(layers, x, percentile=100)
    ir.verify(net)
    assert list(net.populations) == ["fc0", "output"]
    hid = net.populations["fc0"].model
    assert isinstance(hid, ir.IF) and hid.reset is ir.Reset.SOFT and hid.theta == 1.0
    assert isinstance(net.populations["output"].model, ir.LI)
    assert all(p.delay == 0 for p in net.projections.values())
    lam1, lam2 = net.metadata["ann2snn"]["scales"]
    h = np.maximum(x @ layers[0][0].T + layers[0][1], 0)
    assert lam1 == pytest.approx(h.max())  # percentile 100 = max-norm
    w1 = net.projections["input->fc0"].conn.weight
    np.testing.assert_allclose(w1, layers[0][0] / lam1)
    np.testing.assert_allclose(hid.bias, layers[0][1] / lam1)
    w2 = net.projections["fc0->output"].conn.weight
    np.testing.assert_allclose(w2, layers[1][0] * lam1 / lam2)


def test_if_rates_approximate_normalised_relu():
    # soft reset: count = floor(sum of input) up to 1, so |rate - a / lambda| <= ~1/T
    layers = _mlp(2, (6, 20, 3))
    x = np.random.default_rng(3).random((50, 6))
    net = ann2snn.convert(layers, x, percentile=100)
    steps = 400
    res = ir.simulate(net, {"input": ann2snn.encode(net, x, steps)}, steps,
                      probes=("fc0.spikes",))
    rate = res.probes["fc0.spikes"].mean(axis=0)
    lam1 = net.metadata["ann2snn"]["scales"][0]
    expect = np.maximum(x @ layers[0][0].T + layers[0][1], 0) / lam1
    assert np.max(np.abs(rate - expect)) <= 1.0 / steps + 1e-9
    # the LI readout converges to logits / lambda_out
    scores = ann2snn.run(net, x, steps)
    logits = ann2snn.ann_forward(layers, x) / net.metadata["ann2snn"]["scales"][1]
    assert np.max(np.abs(scores - logits)) < 0.05


def test_digits_snn_within_one_point_of_ann():
    ex = digits_classifier(seed=0, steps=100)
    snn = ann2snn.predict(ex.network, ex.x_test, ex.steps)
    acc = float(np.mean(snn == ex.y_test))
    assert ex.ann_accuracy > 0.95
    assert acc >= ex.ann_accuracy - 0.01, (acc, ex.ann_accuracy)
    # the example's ready-made inputs run the same network
    res = ir.simulate(ex.network, ex.inputs)
    np.testing.assert_array_equal(np.argmax(res.outputs["output"][-1], axis=1), snn)


def test_spiking_output_and_rate_input_options():
    layers = _mlp(4, (6, 16, 3))
    x = np.random.default_rng(5).random((100, 6))
    ann = np.argmax(ann2snn.ann_forward(layers, x), axis=1)
    net = ann2snn.convert(layers, x, output="spikes", input_encoding="rate", delay=1)
    assert isinstance(net.populations["output"].model, ir.IF)
    assert all(p.delay == 1 for p in net.projections.values())
    curve = ann2snn.run(net, x, 300, every_step=True, seed=1)
    assert curve.shape == (300, 100, 3)
    agree = np.mean(np.argmax(curve[-1], axis=1) == ann)
    assert agree > 0.8


def test_torch_sequential_conv_pool_flatten():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3, stride=1, padding=1, bias=False), nn.ReLU(), nn.Dropout(0.1),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 5),
    ).eval()
    x = torch.rand(40, 1, 8, 8)
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(ann2snn.ann_forward(model, x), ref, atol=1e-5)
    net = ann2snn.convert(model, x, percentile=100)
    ir.verify(net)
    shapes = {n: p.shape for n, p in net.populations.items()}
    assert shapes == {"conv0": (4, 8, 8), "pool2": (4, 4, 4), "conv3": (6, 4, 4),
                      "output": (5,)}
    kinds = [type(p.conn).__name__ for p in net.projections.values()]
    assert kinds == ["Conv2d", "AvgPool2d", "Conv2d", "Dense"]
    scores = ann2snn.run(net, x.numpy(), 300)
    logits = ref / net.metadata["ann2snn"]["scales"][-1]
    assert np.corrcoef(scores.ravel(), logits.ravel())[0, 1] > 0.98


def test_torch_unsupported_layers_raise():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(ImportFormatError, match="MaxPool2d") as info:
        ann2snn.convert(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2)), x)
    assert "AvgPool2d" in info.value.hint
    with pytest.raises(ImportFormatError, match="no ReLU"):
        ann2snn.convert(nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.Linear(4, 2)), x)
    with pytest.raises(ImportFormatError, match="not rectified"):
        ann2snn.convert(nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.ReLU()), x)
    with pytest.raises(ImportFormatError, match="Sequential"):
        ann2snn.convert(nn.Linear(3, 2), x)


@pytest.mark.parametrize(
    "kwargs, err, words",
    [
        ({"layers": [(np.ones((3, 4)), np.ones(2))]}, UsageError, "bias"),
        ({"layers": [(np.ones((3, 4)), None), (np.ones((2, 5)), None)]}, UsageError,
         "takes 5 inputs"),
        ({"layers": "nope"}, UsageError, "(weight, bias)"),
        ({"x": np.ones((10, 5))}, InputError, "features"),
        ({"x": np.full((10, 4), np.nan)}, InputError, "NaN"),
        ({"input_encoding": "phase"}, UsageError, "input_encoding"),
        ({"output": "softmax"}, UsageError, "output"),
        ({"percentile": 0}, UsageError, "percentile"),
        ({"delay": -1}, UsageError, "delay"),
        ({"x": -np.ones((10, 4)), "input_encoding": "rate"}, InputError, ">= 0"),
    ],
)
def test_conversion_errors(kwargs, err, words):
    layers = kwargs.pop("layers", [(np.ones((3, 4)), None), (np.ones((2, 3)), None)])
    x = kwargs.pop("x", np.ones((10, 4)))
    with pytest.raises(err) as info:
        ann2snn.convert(layers, x, **kwargs)
    assert words in str(info.value)
    assert info.value.hint


def test_run_needs_a_converted_network():
    net = ir.Network("plain")
    net.input("input", 2)
    with pytest.raises(UsageError, match="ann2snn.convert"):
        ann2snn.run(net, np.ones((1, 2)), 5)


def test_hard_reset_conversion_and_threshold_balancing():
    """Reset to zero (docs/ann2snn.md, "Hard reset"): IF neurons with Reset.HARD; threshold
    balancing sets each hidden threshold to the percentile of its per-step input and
    multiplies the next layer's weights by it."""
    layers = _mlp(5, (6, 12, 10, 3))
    x = np.random.default_rng(6).random((100, 6))
    soft = ann2snn.convert(layers, x, percentile=100)
    hard = ann2snn.convert(layers, x, percentile=100, reset="hard")
    assert all(p.model.reset is ir.Reset.HARD for p in hard.populations.values()
               if isinstance(p.model, ir.IF))
    np.testing.assert_array_equal(hard.projections["fc0->fc1"].conn.weight,
                                  soft.projections["fc0->fc1"].conn.weight)
    bal = ann2snn.convert(layers, x, percentile=100, reset="hard", threshold_balancing=True,
                          balance_steps=30, balance_samples=50)
    th = bal.metadata["ann2snn"]["thresholds"]
    assert set(th) == {"fc0", "fc1"} and all(v > 0 for v in th.values())
    assert bal.populations["fc0"].model.theta == pytest.approx(th["fc0"])
    # the first layer's input with direct encoding is x W + b: its max over the data
    drive = x[:50] @ bal.projections["input->fc0"].conn.weight.T + \
        bal.populations["fc0"].model.bias
    assert th["fc0"] == pytest.approx(drive[drive > 0].max())
    np.testing.assert_allclose(bal.projections["fc0->fc1"].conn.weight,
                               soft.projections["fc0->fc1"].conn.weight * th["fc0"])
    with pytest.raises(UsageError, match="reset"):
        ann2snn.convert(layers, x, reset="sideways")


def test_hard_reset_digits_close_to_ann():
    ex = digits_classifier(seed=0, steps=100)
    from nmcompiler.examples import digits_data

    net = ann2snn.convert(ex.layers, digits_data(0)[0], percentile=100, reset="hard")
    acc = float(np.mean(ann2snn.predict(net, ex.x_test, 100) == ex.y_test))
    assert acc >= ex.ann_accuracy - 0.015, (acc, ex.ann_accuracy)
