"""The repository names no package registry: pip's own configuration decides where packages come from (a mirror,
a proxy, PyPI), and a wheel index is chosen with TORCH_INDEX_URL / TORCH_CUDA_INDEX_URL at build time. One index
is named, in the few files that make it the trainer's default: PyTorch's CPU-only wheels (the product's default
for a user with internet; the build falls back to pip's default index where it cannot be reached)."""

import re
import subprocess

from tests.processes import REPO_ROOT

REGISTRY_HOSTS = re.compile(r"download\.pytorch\.org|pypi\.(?:python\.)?org|pythonhosted\.org|anaconda\.(?:org|com)",
                            re.IGNORECASE)
CPU_INDEX = "download.pytorch.org/whl/cpu"
# The files that name PyTorch's CPU index as the trainer's default, and the tests and docs that check or explain it.
CPU_INDEX_FILES = {"docker-compose.yml", ".env.example", "services/trainer/Dockerfile",
                   "services/inference/Dockerfile.torch", "tests/deploy/test_dockerfiles.py",
                   "tests/deploy/test_compose.py", "docs/docker.md"}


def repository_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]


def test_no_file_names_a_package_registry_host():
    found = []
    for name in repository_files():
        if name == "tests/deploy/test_registry_hosts.py":  # this file spells them out to look for them
            continue
        text = (REPO_ROOT / name).read_bytes().decode("utf-8", errors="ignore")
        found += [f"{name}: {match.group(0)}" for match in REGISTRY_HOSTS.finditer(text)
                  if not (name in CPU_INDEX_FILES and text.startswith(CPU_INDEX, match.start()))]
    assert found == []


def test_the_pattern_finds_what_it_looks_for():
    for host in ("https://download.pytorch.org/whl/cpu", "https://pypi.org/simple", "files.pythonhosted.org",
                 "https://pypi.python.org/simple"):
        assert REGISTRY_HOSTS.search(host), host
    assert not REGISTRY_HOSTS.search("pytorch.org/get-started")
