"""Hard- against soft-reset ANN->SNN conversion on the digits example (docs/ann2snn.md).

Trains the digits MLP of ``nmcompiler.examples.digits_classifier`` (64-64-64-10 ReLU,
seed 0), converts it with ``ann2snn.convert`` four ways and prints the test accuracy of
the converted network (``ir.simulate``, direct input, LI readout) after 10, 25, 50 and 100
steps:

* soft reset (reset by subtraction), robust normalisation at the 99.9th percentile
  (Rueckauer et al. 2017; the default);
* hard reset (reset to zero), the same normalisation;
* hard reset, max normalisation (percentile 100, Diehl et al. 2015);
* hard reset with threshold balancing (Sengupta et al. 2019, at the 99.9th percentile).

Run: ``.venv/bin/python bench/ann2snn_reset.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmcompiler import examples  # noqa: E402
from nmcompiler.frontends import ann2snn  # noqa: E402

STEPS = (10, 25, 50, 100)
VARIANTS = (
    ("soft reset, robust normalisation (p99.9)", "soft", False, 99.9),
    ("hard reset, robust normalisation (p99.9)", "hard", False, 99.9),
    ("hard reset, max normalisation (p100)", "hard", False, 100.0),
    ("hard reset, threshold balancing (p99.9)", "hard", True, 99.9),
)


def main() -> None:
    ex = examples.digits_classifier(seed=0)
    x_tr = examples.digits_data(0)[0]
    rows = [f"| conversion | {' | '.join(f'T = {t}' for t in STEPS)} | convert s |",
            "|---|" + "---:|" * (len(STEPS) + 1)]
    for label, reset, balance, pc in VARIANTS:
        t0 = time.perf_counter()
        net = ann2snn.convert(ex.layers, x_tr, percentile=pc, reset=reset,
                              threshold_balancing=balance, name="digits_mlp")
        dt = time.perf_counter() - t0
        scores = ann2snn.run(net, ex.x_test, max(STEPS), every_step=True)
        acc = [float(np.mean(np.argmax(scores[t - 1], axis=-1) == ex.y_test)) for t in STEPS]
        rows.append(f"| {label} | " + " | ".join(f"{100 * a:.1f} %" for a in acc)
                    + f" | {dt:.1f} |")
    print(f"ANN accuracy: {100 * ex.ann_accuracy:.1f} % ({ex.y_test.size} test digits)")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
