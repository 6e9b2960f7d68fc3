"""execution-environment.yml must be a valid ansible-builder definition that names the collection's dependencies."""
from __future__ import annotations

from pathlib import Path

import yaml
from ansible_builder.ee_schema import validate_schema

REPO = Path(__file__).resolve().parents[2]


def load() -> dict:
    return yaml.safe_load((REPO / "execution-environment.yml").read_text())


def test_definition_passes_ansible_builders_schema():
    validate_schema(load())  # raises DefinitionError with the offending key on failure


def test_python_and_system_dependencies_are_the_collections():
    ee = load()
    deps = ee["dependencies"]
    requirements = (REPO / deps["python"]).read_text().split()
    assert {"requests", "cryptography"} <= {line.split(">")[0].split("=")[0] for line in requirements}
    assert (REPO / deps["system"]).exists()
    assert "2.19" in deps["ansible_core"]["package_pip"]


def test_the_definition_rejects_what_builder_rejects():
    """Guards the test itself: a broken definition really fails the schema check."""
    import pytest
    from ansible_builder.exceptions import DefinitionError

    bad = load()
    bad["version"] = 3
    bad["dependencies"]["unknown_key"] = True
    with pytest.raises(DefinitionError):
        validate_schema(bad)
