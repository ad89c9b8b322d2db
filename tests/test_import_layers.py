"""The import-linter contracts in pyproject.toml hold today and break on a wrong import.

Each case copies the apps into a temporary folder, adds one import the layering forbids,
and runs `lint-imports` there: it must fail naming the broken contract."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("leadflow", "scoring", "handoff", "sla", "integrations", "privacy")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _copy(tmp_path: Path) -> Path:
    for app in APPS:
        shutil.copytree(
            ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        # The copies, not this checkout's (editable) install, are the packages looked at.
        env={"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_contracts_hold_for_the_code_as_it_is(tmp_path):
    result = _lint(_copy(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken." in result.stdout


def _core_imports_an_app(tree: Path) -> None:
    _append(tree / "leadflow" / "models.py", "import handoff.selectors  # noqa")


def _lower_app_imports_a_higher_one(tree: Path) -> None:
    _append(tree / "scoring" / "services.py", "import sla.kpis  # noqa")


def _siblings_import_each_other(tree: Path) -> None:
    _append(tree / "sla" / "services.py", "import integrations.services  # noqa")


def _an_app_imports_privacy(tree: Path) -> None:
    # privacy calls the apps' erasure and export; none of them may call back into it.
    _append(tree / "integrations" / "services.py", "import privacy.participants  # noqa")


def _vendor_imports_a_vendor(tree: Path) -> None:
    _append(tree / "integrations" / "mautic" / "inbound.py", "import integrations.hubspot  # noqa")


def _connector_imports_another_vendor(tree: Path) -> None:
    # Across directions too: Salesforce's connector may not borrow the webhook's signing.
    _append(
        tree / "integrations" / "salesforce" / "outbound.py",
        "import integrations.webhook.outbound  # noqa",
    )


def _app_imports_a_private_module(tree: Path) -> None:
    # sla may import handoff (it is above it), but not a private module of it.
    (tree / "handoff" / "_order.py").write_text("KEY = None\n", encoding="utf-8")
    _append(tree / "sla" / "selectors.py", "import handoff._order  # noqa")


def _reaction_called_directly(tree: Path) -> None:
    # integrations may import handoff (it is above it), but not call handoff's reaction to
    # a change itself: the order would no longer be the one listed in leadflow.reactions.
    _append(tree / "integrations" / "services.py", "import handoff.reactions  # noqa")


def _claims_reaction_called_directly(tree: Path) -> None:
    # The claim window's reactions are handoff.reactions', covered like every other.
    _append(
        tree / "sla" / "services.py",
        "from handoff.reactions import on_handoff_assigned  # noqa",
    )


def _app_config_registers_into_another_app(tree: Path) -> None:
    # A registration at startup hides what handoff asks of sla; it is named in
    # leadflow.reactions instead.
    _append(tree / "sla" / "apps.py", "from handoff.hours import working_hours  # noqa")


@pytest.mark.parametrize(
    ("break_it", "contract", "culprit"),
    [
        (
            _core_imports_an_app,
            "The core (leadflow) imports no other app",
            "leadflow.models -> handoff.selectors",
        ),
        (
            _lower_app_imports_a_higher_one,
            "Apps import only the apps below them",
            "scoring.services -> sla.kpis",
        ),
        (
            _siblings_import_each_other,
            "Apps import only the apps below them",
            "sla.services -> integrations.services",
        ),
        (
            _an_app_imports_privacy,
            "Apps import only the apps below them",
            "integrations.services -> privacy.participants",
        ),
        (
            _vendor_imports_a_vendor,
            "No vendor package imports another",
            "integrations.mautic.inbound -> integrations.hubspot",
        ),
        (
            _connector_imports_another_vendor,
            "No vendor package imports another",
            "integrations.salesforce.outbound -> integrations.webhook.outbound",
        ),
        (
            _app_imports_a_private_module,
            "No app imports another app's private",
            "sla.selectors -> handoff._order",
        ),
        (
            _reaction_called_directly,
            "Reactions run only through leadflow.reactions",
            "integrations.services -> handoff.reactions",
        ),
        (
            _claims_reaction_called_directly,
            "Reactions run only through leadflow.reactions",
            "sla.services -> handoff.reactions",
        ),
        (
            _app_config_registers_into_another_app,
            "No AppConfig wires apps together",
            "sla.apps -> handoff.hours",
        ),
    ],
)
def test_a_wrong_import_breaks_its_contract(tmp_path, break_it, contract, culprit):
    tree = _copy(tmp_path)
    break_it(tree)

    result = _lint(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    # The core is also the lowest layer: importing an app breaks both of their contracts.
    broken_count = 2 if break_it is _core_imports_an_app else 1
    assert f"Contracts: {6 - broken_count} kept, {broken_count} broken." in result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    assert culprit in broken.replace("\n", " ").replace("  ", " ")
