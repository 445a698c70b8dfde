"""The hardware-in-the-loop plugin, used as a user would (and on itself)."""

from __future__ import annotations

import numpy as np

from nmcompiler.ir import IF, LIF, Dense, Network, Reset, Sparse
from nmcompiler.testing import first_divergence, format_divergence

pytest_plugins = ["pytester"]


def exact_network(seed: int = 0) -> Network:
    """Integer weights and thresholds, no leak: exactly representable on every target."""
    rng = np.random.default_rng(seed)
    net = Network("exact")
    net.input("in", 12)
    net.population("h", 40, IF(theta=3.0, reset=Reset.SOFT))
    net.population("o", 5, LIF(theta=4.0, lam=1.0))
    net.connect("in", "h", Dense(weight=rng.integers(-2, 4, size=(40, 12)).astype(float)),
                delay=1)
    w = rng.integers(-1, 3, size=(40, 40)) * (rng.random((40, 40)) < 0.1)
    net.connect("h", "h", Sparse.from_dense(w.astype(float)), delay=2)
    net.connect("h", "o", Dense(weight=rng.integers(0, 3, size=(5, 40)).astype(float)),
                delay=1)
    net.output("o")
    net.probe("h", "spikes")
    net.probe("h", "v")
    return net


def test_emulator_matches_reference_through_the_fixtures(nmc_compile, nmc_deploy,
                                                         nmc_reference, nmc_assert_same):
    compiled = nmc_compile(exact_network(), "emulator", seed=3)
    rng = np.random.default_rng(1)
    x = (rng.random((60, 12)) < 0.3).astype(float)
    result = nmc_deploy(compiled).run({"in": x}, 60)
    assert result.counters.sops is not None and result.counters.sops.sum() > 0
    nmc_assert_same(nmc_reference(compiled, {"in": x}, 60), result, compiled=compiled)


def test_divergence_names_step_neuron_and_core(nmc_compile):
    compiled = nmc_compile(exact_network(), "emulator", seed=0)
    t, n = 30, compiled.network.size_of("h")
    a = np.zeros((t, n))
    b = a.copy()
    b[17, 9] = 1.0
    b[20, 3] = 1.0
    d = first_divergence({"h.spikes": a}, {"h.spikes": b}, compiled=compiled)
    assert (d.step, d.neuron, d.population, d.n_differences) == (17, 9, "h", 2)
    assert d.core == int(compiled.partition.cores_of("h")[9])
    text = format_divergence(d)
    assert "first divergence at step 17 in 'h.spikes', neuron 9 of population 'h' on " \
           "logical core" in text
    assert ">17" in text.replace(" ", "")


def test_plugin_failure_reads_well(pytester):
    pytester.makepyfile(
        """
        import numpy as np
        from nmcompiler.ir import IF, Network, OneToOne

        def test_relay(nmc_compile, nmc_deploy, nmc_assert_same):
            net = Network("relay")
            net.input("x", 3)
            net.population("r", 3, IF(theta=0.5))
            net.connect("x", "r", OneToOne(weight=1.0), delay=1)
            net.output("r")
            compiled = nmc_compile(net, "emulator")
            x = np.eye(3)[[0, 1, 2, 0, 1]]
            got = nmc_deploy(compiled).run({"x": x}, 5)
            wrong = {"r": x[:, None, :]}          # forgets the one-step delay
            nmc_assert_same(wrong, got, compiled=compiled)
        """
    )
    res = pytester.runpytest("-p", "no:cacheprovider")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*first divergence at step 0 in 'r', neuron 0 of population "
                              "'r' on logical core 0 (physical core *)*"])


def test_recorded_expectations(pytester):
    pytester.makepyfile(
        """
        import numpy as np
        from nmcompiler.ir import IF, Network, OneToOne

        def test_rec(nmc_compile, nmc_deploy, nmc_expect):
            net = Network("relay")
            net.input("x", 2)
            net.population("r", 2, IF(theta=0.5))
            net.connect("x", "r", OneToOne(weight=1.0), delay=2)
            net.output("r")
            compiled = nmc_compile(net, "emulator")
            got = nmc_deploy(compiled).run({"x": np.eye(2)[[0, 1, 0, 0]]}, 4)
            nmc_expect(got, "relay", compiled=compiled)
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(failed=1)  # nothing recorded
    pytester.runpytest("-p", "no:cacheprovider", "--nmc-record").assert_outcomes(passed=1)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
