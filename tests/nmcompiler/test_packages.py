"""Rules of the frontend, exporter, model, encoding and example packages
(docs/architecture.md#import-rules)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "nmcompiler"


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by one file (relative imports resolved)."""
    mod = path.relative_to(ROOT.parent).with_suffix("").parts
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = mod[: len(mod) - node.level]  # "__init__" counts as a module part
                base = ".".join(pkg + ((base,) if base else ()))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def test_library_never_imports_the_examples():
    bad = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
           if "examples" not in p.relative_to(ROOT).parts
           and any(m.startswith("nmcompiler.examples") for m in _imports(p))]
    assert not bad, f"the examples sit apart from the library: {bad}"


def test_nir_importer_does_not_import_the_exporter():
    bad = [str(p.relative_to(ROOT)) for p in (ROOT / "frontends").rglob("*.py")
           if any(m.startswith("nmcompiler.exporters") for m in _imports(p))]
    assert not bad, f"frontends and exporters share options, not each other: {bad}"


def test_front_packages_have_no_file_over_800_lines():
    rooms = ("frontends", "exporters", "encoding", "models", "examples")
    big = {str(p.relative_to(ROOT)): n for r in rooms for p in (ROOT / r).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 800}
    assert not big, f"split these files: {big}"


def test_cli_import_loads_no_nir_toolchain():
    code = ("import sys, nmcompiler.cli\n"
            "print(','.join(m for m in ('nir', 'h5py', 'torch') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "", f"importing the CLI loaded {out.stdout.strip()}"


def test_cli_choices_are_the_frontends_enums():
    from nmcompiler import cli
    from nmcompiler.frontends.nir import Integration, Preset, ResetMode

    annotations = cli.compile.__annotations__
    assert "Preset" in str(annotations["preset"]) and Preset.NORSE.value == "norse"
    assert "Integration" in str(annotations["integration"])
    assert "ResetMode" in str(annotations["reset"])
    assert not hasattr(cli, "PresetChoice") and not hasattr(cli, "ResetChoice")
    assert {m.value for m in Integration} == {"euler", "exact"}
    assert {m.value for m in ResetMode} == {"zero", "subtract", "none"}
