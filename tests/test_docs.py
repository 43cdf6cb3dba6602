"""The documentation stays true to the code: the generated settings reference is current, every relative link and
anchor in the README and docs/ leads somewhere, and the README stays a front door."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.frontend.app.config import Settings as FrontendSettings
from services.inference.app.config import Settings as InferenceSettings
from services.trainer.config import TrainSettings
from tests.processes import REPO_ROOT

GENERATOR = REPO_ROOT / "scripts" / "settings_reference.py"
REFERENCE = REPO_ROOT / "docs" / "configuration.md"
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def run_check(output: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GENERATOR), "--check", "--output", str(output)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_settings_reference_is_current():
    result = run_check(REFERENCE)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\ndocs/configuration.md is stale: run `make docs`"


def test_the_check_says_what_differs(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text(REFERENCE.read_text().replace("`MAX_BATCH_SIZE`", "`OLD_BATCH_SIZE`"))
    result = run_check(stale)
    assert result.returncode == 1
    assert "-| `OLD_BATCH_SIZE`" in result.stdout and "+| `MAX_BATCH_SIZE`" in result.stdout
    assert "make docs" in result.stdout


@pytest.mark.parametrize("settings", [TrainSettings, InferenceSettings, FrontendSettings], ids=lambda s: s.__module__)
def test_every_setting_says_what_it_does(settings):
    undescribed = [name for name, field in settings.model_fields.items() if not (field.description or "").strip()]
    assert undescribed == [], f"{settings.__module__}: give these a Field(description=...), then `make docs`"


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower-cased, punctuation dropped, spaces turned into hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: dict[str, int] = {}
    for line in FENCE.sub("", page.read_text()).splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            slug = github_anchor(match.group(1))
            found[slug] = found.get(slug, -1) + 1
    return {slug if count == 0 else f"{slug}-{count}" for slug, total in found.items() for count in range(total + 1)}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_leads_somewhere(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no such heading in {destination.name}")
    assert broken == []


def test_the_readme_stays_a_front_door():
    lines = (REPO_ROOT / "README.md").read_text().count("\n")
    assert lines <= 200, f"README.md has {lines} lines: move the details to a page in docs/ and link it"
