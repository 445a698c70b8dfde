"""Reproducible environments (README.md, "Environments"): every environment the Makefile
builds installs through its own constraints file, and each file pins what it must."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]

#: environment folder (Makefile variable) -> its constraints file
ENVIRONMENTS = {
    "VENV": "constraints.txt",
    "LAVA": "constraints-lava.txt",
    "SPYNN": "constraints-spynnaker.txt",
    "BRIAN": "constraints-brian2.txt",
}


def makefile_variables(text: str) -> dict[str, str]:
    """``NAME := value`` assignments of the Makefile (the simple ones the recipes use)."""
    return {m[1]: m[2].strip() for m in re.finditer(r"^([A-Z_]+)\s*:=\s*(.*)$", text, re.M)}


def expand(line: str, variables: dict[str, str]) -> str:
    """The recipe line with ``$(NAME)`` references replaced, recursively."""
    for _ in range(10):
        new = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables.get(m[1], m[0]), line)
        if new == line:
            return new
        line = new
    raise AssertionError(f"recursive Makefile variable in {line!r}")


def pip_install_lines() -> list[str]:
    """Every Makefile recipe line that runs ``pip install``, variables expanded."""
    text = (REPO / "Makefile").read_text()
    variables = makefile_variables(text)
    lines = [expand(raw.strip(), variables) for raw in text.splitlines()
             if raw.startswith("\t") and not raw.strip().startswith("#")]
    return [ln for ln in lines if "pip install" in ln]


def read_pins(name: str) -> dict[str, str]:
    """{canonical package name: pinned version} of a constraints file; every line must pin."""
    pins: dict[str, str] = {}
    for n, raw in enumerate((REPO / name).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==", \
            f"{name}:{n}: '{line}' must pin one exact version (name==version)"
        key = canonicalize_name(req.name)
        assert key not in pins, f"{name}:{n}: {req.name} pinned twice"
        pins[key] = spec[0].version
    return pins


def test_every_makefile_install_uses_its_environments_constraints_file():
    variables = makefile_variables((REPO / "Makefile").read_text())
    lines = pip_install_lines()
    assert lines, "no pip install line found in the Makefile"
    seen = set()
    for line in lines:
        owners = [v for v in ENVIRONMENTS if line.startswith(variables[v] + "/bin/pip ")]
        assert len(owners) == 1, f"pip install line of no known environment: {line!r}"
        env = owners[0]
        seen.add(env)
        files = re.findall(r"(?:-c|--constraint)\s+(\S+)", line)
        assert files == [ENVIRONMENTS[env]], \
            f"{line!r} must install with -c {ENVIRONMENTS[env]} (found {files})"
    assert seen == set(ENVIRONMENTS), f"environments never installed: {set(ENVIRONMENTS) - seen}"


@pytest.mark.parametrize("name", sorted(set(ENVIRONMENTS.values())))
def test_constraints_files_pin_exact_versions_and_pip(name):
    pins = read_pins(name)
    assert "pip" in pins, f"{name} must pin pip (its resolver decides the rest)"
    assert len(pins) >= 5, f"{name} pins only {sorted(pins)}"


def test_constraints_pin_the_toolchains_each_environment_is_for():
    main = read_pins("constraints.txt")
    assert main["torch"] == "2.13.0", "torch must stay the local CPU wheel 2.13.0"
    assert main["nir"] == "1.0.8"
    for pkg in ("sinabs", "norse", "pynn", "nest-simulator", "dask", "distributed", "build",
                "hypothesis"):
        assert pkg in main, f"constraints.txt does not pin {pkg}"
    lava = read_pins("constraints-lava.txt")
    assert lava["lava-nc"] == "0.10.0"
    # lava-nc 0.10 declares numpy>=1.24.4,<2 and networkx<=2.8.7
    assert Version("1.24.4") <= Version(lava["numpy"]) < Version("2"), lava["numpy"]
    assert Version(lava["networkx"]) <= Version("2.8.7")
    assert read_pins("constraints-spynnaker.txt")["spynnaker"] == "1!7.4.1"
    brian = read_pins("constraints-brian2.txt")
    assert Version(brian["brian2"]).release[:2] == (2, 9)
    assert Version(brian["numpy"]) < Version("2.4"), "Brian2 2.9 needs numpy < 2.4"


@pytest.mark.parametrize(("name", "python", "extras"), [
    ("constraints.txt", "3.11", ("nir", "speck", "spinnaker", "scale", "frameworks", "bench",
                                 "dev")),
    ("constraints-lava.txt", "3.10", ("loihi",)),
])
def test_pins_satisfy_what_pyproject_requires(name, python, extras):
    """A pin that contradicts pyproject's own requirement would make the install fail."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    pins = read_pins(name)
    env = {"python_version": python, "python_full_version": f"{python}.0", "extra": ""}
    checked = 0
    for raw in reqs:
        req = Requirement(raw)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        key = canonicalize_name(req.name)
        if key == "nmcompiler" or key not in pins:
            continue
        assert req.specifier.contains(pins[key], prereleases=True), \
            f"{name} pins {req.name}=={pins[key]} but pyproject requires '{raw}'"
        checked += 1
    assert checked >= len(extras), f"{name}: too few of pyproject's requirements pinned"


def test_loihi_extra_fails_off_python_310_through_lavas_own_declaration():
    """pip refuses [loihi] on 3.11+ because lava-nc 0.10 declares Requires-Python <3.11;
    a python_version marker on it would make the extra install nothing instead."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    loihi = [Requirement(r) for r in project["optional-dependencies"]["loihi"]]
    lava = [r for r in loihi if canonicalize_name(r.name) == "lava-nc"]
    assert lava and lava[0].marker is None and str(lava[0].specifier) == "==0.10.0"
