"""The Dockerfiles and .dockerignore: what each image copies exists and reaches the build context, the final
stage runs as a non-root user, the two torch images share their torch layer, and the command is a real module."""

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.helpers import SERVICES, DockerIgnore, copy_sources, dockerignore, parse_dockerfile
from tests.processes import REPO_ROOT

TORCH_SERVICES = ("trainer", "inference")


def stages(name: str):
    return parse_dockerfile(REPO_ROOT / "services" / name / "Dockerfile")


def context_files(source: Path) -> list[Path]:
    return [source] if source.is_file() else sorted(path for path in source.rglob("*") if path.is_file())


@pytest.mark.parametrize("name", SERVICES)
def test_every_copied_path_exists_and_is_in_the_build_context(name):
    ignore = dockerignore()
    copies = [(stage, instruction) for stage in stages(name) for instruction in stage.all("COPY") + stage.all("ADD")]
    assert copies, "the image copies nothing"
    for _stage, instruction in copies:
        sources, _destination, flags = copy_sources(instruction)
        if "from" in flags:
            continue  # copied from another stage, not from the context
        for source in sources:
            path = REPO_ROOT / source
            assert path.exists(), f"{name}: COPY {source}: no such file in the repository"
            relative = path.relative_to(REPO_ROOT).as_posix()
            assert not ignore.excluded(relative), f"{name}: COPY {source} is excluded by .dockerignore"
            # Every file under it reaches the image, except Python's caches.
            dropped = [relative for file in context_files(path)
                       if ignore.excluded(relative := file.relative_to(REPO_ROOT).as_posix())
                       and "__pycache__" not in file.parts and file.suffix != ".pyc"]
            assert dropped == [], f"{name}: .dockerignore drops files that COPY {source} needs"


@pytest.mark.parametrize("name", SERVICES)
def test_image_holds_shared_code_its_service_and_the_module_it_runs(name):
    final = stages(name)[-1]
    copied = {source.rstrip("/") for instruction in final.all("COPY")
              for source in copy_sources(instruction)[0] if "from" not in copy_sources(instruction)[2]}
    assert {"shared", "services/__init__.py", f"services/{name}"} <= copied
    command = final.all("CMD")[-1].words()
    assert command == ["python", "-m", f"services.{name}"]
    main = REPO_ROOT / "services" / name / "__main__.py"
    assert main.is_file(), f"{command} needs {main}"
    assert not dockerignore().excluded(main.relative_to(REPO_ROOT).as_posix())
    env = " ".join(instruction.arguments for instruction in final.all("ENV"))
    assert "PYTHONPATH=/app" in env and "/opt/venv/bin" in env
    assert final.all("WORKDIR")[-1].arguments == "/app"


@pytest.mark.parametrize("name", SERVICES)
def test_multi_stage_build_leaves_only_the_venv_and_runs_as_non_root(name):
    all_stages = stages(name)
    final = all_stages[-1]
    assert [stage.name for stage in all_stages[:-1]] == (["torch", "builder"] if name in TORCH_SERVICES
                                                         else ["builder"])
    text = (REPO_ROOT / "services" / name / "Dockerfile").read_text()
    assert "\nARG PYTHON_IMAGE=python:3.11-slim" in text
    assert {stage.base for stage in all_stages} <= {"${PYTHON_IMAGE}", "torch"}, "every stage on the slim base"
    venv_copies = [copy_sources(i) for i in final.all("COPY") if "from" in copy_sources(i)[2]]
    if name in TORCH_SERVICES:  # on the shared torch stage: only the service's own packages come from the builder
        assert final.base == "torch"
        assert venv_copies == [(["/opt/service/"], "/", {"from": "builder"})]
    else:
        assert final.base == "${PYTHON_IMAGE}"
        assert venv_copies == [(["/opt/venv"], "/opt/venv", {"from": "builder"})]
    for instruction in final.all("RUN"):
        assert "pip install" not in instruction.arguments and "apt-get" not in instruction.arguments, \
            "no installing (and no build tools) in the final stage"
    user = final.all("USER")[-1].arguments.split(":")[0]
    assert user not in ("root", "0"), "the container must not run as root"
    # USER comes after the last COPY/RUN that needs root, and before the command.
    keywords = [instruction.keyword for instruction in final.instructions]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in ("RUN", "COPY"))


def test_torch_images_build_the_same_torch_layer_and_share_it():
    """Identical instructions on the same base give the same layers: the second image reuses the first's torch."""
    torch_stages = [stages(name)[0] for name in TORCH_SERVICES]
    assert torch_stages[0] == torch_stages[1], "the torch stages must be identical, instruction for instruction"
    torch_stage = torch_stages[0]
    assert [copy_sources(i)[0] for i in torch_stage.all("COPY")] == [["services/requirements-torch.txt"]]
    assert [i.arguments for i in torch_stage.all("ARG")] == ["TORCH_INDEX_URL="], "no package index named here"
    for name in TORCH_SERVICES:
        builder, final = stages(name)[1:]
        assert builder.base == final.base == "torch", "the builder and the image both start from the torch stage"


def torch_install(index_url: str) -> list[str]:
    """The torch stage's pip command line as /bin/sh expands it with this TORCH_INDEX_URL (pip itself not run)."""
    command = stages("trainer")[0].all("RUN")[-1].arguments
    assert command.startswith("pip install ")
    shown = subprocess.run(["/bin/sh", "-c", "printf '%s\\n' " + command], capture_output=True, text=True,
                           env={"TORCH_INDEX_URL": index_url}, check=True)
    return shown.stdout.splitlines()


def test_torch_index_is_passed_to_pip_only_when_one_is_set():
    requirements = "/tmp/requirements/services/requirements-torch.txt"
    assert torch_install("") == ["pip", "install", "-r", requirements]
    assert torch_install("https://wheels.example/cpu") == ["pip", "install", "--index-url",
                                                           "https://wheels.example/cpu", "-r", requirements]


@pytest.mark.parametrize("name", TORCH_SERVICES)
def test_service_requirements_resolve_the_torch_file_where_the_image_copies_them(name):
    """The builder installs services/<name>/requirements.txt, whose `-r ../requirements-torch.txt` must find the
    file the torch stage copied, at the same relative place."""
    torch_stage, builder = stages(name)[:2]
    copied = dict(reversed(copy_sources(i)[:2]) for i in torch_stage.all("COPY") + builder.all("COPY"))
    service_file = next(path for path, source in copied.items() if source == [f"services/{name}/requirements.txt"])
    includes = re.findall(r"^-r\s+(\S+)$", (REPO_ROOT / copied[service_file][0]).read_text(), flags=re.M)
    assert includes == ["../requirements-torch.txt"]
    assert copied[str(Path(service_file).parent.parent / "requirements-torch.txt")] == \
        ["services/requirements-torch.txt"]
    assert f"-r {service_file}" in " ".join(builder.all("RUN")[-1].words())


def test_pins_agree_across_requirement_files():
    """A package pinned in several requirement files (the frontend pins pillow too) has one version."""
    pins: dict[str, set[str]] = {}
    for path in REPO_ROOT.glob("**/requirements*.txt"):
        if ".venv" in path.parts:
            continue
        for line in path.read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                package, version = line.split("==")
                pins.setdefault(re.sub(r"\[.*\]", "", package).strip().lower(), set()).add(version.strip())
    assert pins["torch"] and {name: versions for name, versions in pins.items() if len(versions) > 1} == {}
    for name in TORCH_SERVICES:
        text = (REPO_ROOT / "services" / name / "requirements.txt").read_text()
        assert "torch==" not in text, "torch is pinned once, in services/requirements-torch.txt"


def test_frontend_image_has_no_torch():
    dockerfile = (REPO_ROOT / "services" / "frontend" / "Dockerfile").read_text()
    requirements = (REPO_ROOT / "services" / "frontend" / "requirements.txt").read_text()
    assert "torch" not in requirements and "TORCH_INDEX_URL" not in dockerfile


@pytest.mark.parametrize("name", SERVICES)
def test_no_health_check_in_the_image_compose_defines_it(name):
    """One definition per service, in docker-compose.yml (tests/deploy/test_compose.py checks it there)."""
    assert all(stage.all("HEALTHCHECK") == [] for stage in stages(name))
    assert not dockerignore().excluded("shared/healthcheck.py"), "the check's module ships in every image"


@pytest.mark.parametrize("name", TORCH_SERVICES)
def test_volume_mount_points_are_created_owned_by_the_app_user(name):
    """A fresh named volume copies the ownership of the image's directory it is mounted on."""
    final = stages(name)[-1]
    setup = " ".join(instruction.arguments for instruction in final.all("RUN"))
    assert "mkdir -p /app/data /app/artifacts" in setup
    assert "chown app:app /app/data /app/artifacts" in setup
    assert final.all("USER")[-1].arguments == "app"


def test_inference_image_ships_the_default_model():
    final = stages("inference")[-1]
    copies = [copy_sources(instruction) for instruction in final.all("COPY")]
    assert (["models/default/"], "/app/models/default/", {}) in copies
    assert "DEFAULT_MODEL_DIR=/app/models/default" in " ".join(i.arguments for i in final.all("ENV"))
    ignore = dockerignore()
    model_files = context_files(REPO_ROOT / "models" / "default")
    assert any(path.suffix == ".pt" for path in model_files)
    for path in model_files:
        assert not ignore.excluded(path.relative_to(REPO_ROOT).as_posix()), path


def test_dockerignore_keeps_local_state_out_of_the_context():
    ignore = dockerignore()
    for path in (".git/config", ".venv/bin/python", "data/FashionMNIST/raw/t10k-images-idx3-ubyte",
                 "artifacts/latest.json", ".run/inference.pid", "bench/results/x.json", "tests/conftest.py",
                 "shared/__pycache__/model.cpython-311.pyc", ".pytest_cache/v/x", ".ruff_cache/x", ".env",
                 "models/experiment/latest.json"):
        assert ignore.excluded(path), path
    for path in ("shared/model.py", "services/inference/__main__.py", "services/frontend/app/views.py",
                 "models/default/latest.json"):
        assert not ignore.excluded(path), path


def test_dockerignore_rules_follow_docker():
    """The matcher itself, on Docker's documented examples: ``*`` stays in one directory, ``**`` crosses them,
    a directory match covers its contents, and the last matching line wins."""
    ignore = DockerIgnore("*/temp*\n*/*/temp*\ntemp?\n**/*.go\nbuild\n!build/keep.txt\n")
    assert ignore.excluded("somedir/temporary.txt") and ignore.excluded("somedir/subdir/temp")
    assert not ignore.excluded("a/b/c/temp.txt") and ignore.excluded("tempa")
    assert ignore.excluded("x/y/z.go") and ignore.excluded("z.go")
    assert ignore.excluded("build/out.o") and not ignore.excluded("build/keep.txt")
