"""The Dockerfiles and .dockerignore: what each image copies exists and reaches the build context, the final
stage runs as a non-root user without pip, every package comes from a hashed lock, the CPU inference image has no
torch, the two torch images share their torch layer, and the command is a real module."""

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.deploy.helpers import BASE_FILE, DockerIgnore, compose_config, copy_sources, dockerignore, parse_dockerfile
from tests.processes import REPO_ROOT, free_port

# image -> (Dockerfile, the service it runs)
IMAGES = {
    "trainer": ("services/trainer/Dockerfile", "trainer"),
    "inference": ("services/inference/Dockerfile", "inference"),  # the CPU image: ONNX Runtime, no torch
    "inference-torch": ("services/inference/Dockerfile.torch", "inference"),  # the GPU overlay's
    "frontend": ("services/frontend/Dockerfile", "frontend"),
}
TORCH_IMAGES = ("trainer", "inference-torch")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def stages(image: str):
    return parse_dockerfile(REPO_ROOT / IMAGES[image][0])


def context_files(source: Path) -> list[Path]:
    return [source] if source.is_file() else sorted(path for path in source.rglob("*") if path.is_file())


def runs(image: str) -> str:
    return " ".join(instruction.arguments for stage in stages(image) for instruction in stage.all("RUN"))


@pytest.mark.parametrize("image", IMAGES)
def test_every_copied_path_exists_and_is_in_the_build_context(image):
    ignore = dockerignore()
    copies = [(stage, instruction) for stage in stages(image) for instruction in stage.all("COPY") + stage.all("ADD")]
    assert copies, "the image copies nothing"
    for _stage, instruction in copies:
        sources, _destination, flags = copy_sources(instruction)
        if "from" in flags:
            continue  # copied from another stage, not from the context
        for source in sources:
            path = REPO_ROOT / source
            assert path.exists(), f"{image}: COPY {source}: no such file in the repository"
            relative = path.relative_to(REPO_ROOT).as_posix()
            assert not ignore.excluded(relative), f"{image}: COPY {source} is excluded by .dockerignore"
            # Every file under it reaches the image, except Python's caches.
            dropped = [relative for file in context_files(path)
                       if ignore.excluded(relative := file.relative_to(REPO_ROOT).as_posix())
                       and "__pycache__" not in file.parts and file.suffix != ".pyc"]
            assert dropped == [], f"{image}: .dockerignore drops files that COPY {source} needs"


@pytest.mark.parametrize("image", IMAGES)
def test_image_holds_shared_code_its_service_and_the_module_it_runs(image):
    service = IMAGES[image][1]
    final = stages(image)[-1]
    copied = {source.rstrip("/") for instruction in final.all("COPY")
              for source in copy_sources(instruction)[0] if "from" not in copy_sources(instruction)[2]}
    assert {"shared", "services/__init__.py", f"services/{service}"} <= copied
    command = final.all("CMD")[-1].words()
    assert command == ["python", "-m", f"services.{service}"]
    main = REPO_ROOT / "services" / service / "__main__.py"
    assert main.is_file(), f"{command} needs {main}"
    assert not dockerignore().excluded(main.relative_to(REPO_ROOT).as_posix())
    env = " ".join(instruction.arguments for instruction in final.all("ENV"))
    assert "PYTHONPATH=/app" in env and "/opt/venv/bin" in env
    assert final.all("WORKDIR")[-1].arguments == "/app"


@pytest.mark.parametrize("image", IMAGES)
def test_multi_stage_build_leaves_only_the_packages_no_pip_and_runs_as_non_root(image):
    all_stages = stages(image)
    final = all_stages[-1]
    torch = image in TORCH_IMAGES
    assert [stage.name for stage in all_stages[:-1]] == (["torch", "builder"] if torch else ["builder"])
    text = (REPO_ROOT / IMAGES[image][0]).read_text()
    assert "\nARG PYTHON_IMAGE=python:3.11-slim" in text
    assert {stage.base for stage in all_stages} <= {"${PYTHON_IMAGE}", "torch"}, "every stage on the slim base"
    venv_copies = [copy_sources(i) for i in final.all("COPY") if "from" in copy_sources(i)[2]]
    if torch:  # on the shared torch stage (pip removed there): only the service's own packages from the builder
        assert final.base == "torch"
        assert venv_copies == [(["/opt/service/"], "/", {"from": "builder"})]
        assert "pip uninstall --yes --quiet pip" in " ".join(i.arguments for i in all_stages[0].all("RUN"))
    else:  # the venv, from which the builder removed pip
        assert final.base == "${PYTHON_IMAGE}"
        assert venv_copies == [(["/opt/venv"], "/opt/venv", {"from": "builder"})]
        assert all_stages[0].all("RUN")[-1].arguments.endswith("pip uninstall --yes --quiet pip setuptools")
    for instruction in final.all("RUN"):
        assert "pip" not in instruction.arguments and "apt-get" not in instruction.arguments, \
            "no installing (and no build tools) in the final stage"
    user = final.all("USER")[-1].arguments.split(":")[0]
    assert user not in ("root", "0"), "the container must not run as root"
    # USER comes after the last COPY/RUN that needs root, and before the command.
    keywords = [instruction.keyword for instruction in final.instructions]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in ("RUN", "COPY"))


@pytest.mark.parametrize("image", IMAGES)
def test_every_package_comes_from_a_hashed_lock(image):
    """Each `pip install` names --require-hashes and a lock file the image copied (the torch stage's goes through
    services/install-torch.sh, tested below); the lock is the service's own."""
    service = IMAGES[image][1]
    installs = [part.strip() for part in runs(image).split("&&") if "pip install" in part]
    for command in installs:
        assert "--require-hashes" in command and "-r /tmp/requirements.lock" in command, command
    copied = [copy_sources(i)[0] for stage in stages(image) for i in stage.all("COPY") if "from" not in
              copy_sources(i)[2]]
    assert [f"services/{service}/requirements.lock"] in copied
    if image in TORCH_IMAGES:
        assert "sh /tmp/torch/install-torch.sh \"$TORCH_INDEX_URL\"" in runs(image)


def test_torch_images_build_the_same_torch_layer_and_share_it():
    """Identical instructions on the same base give the same layers: the second image reuses the first's torch."""
    torch_stages = [stages(image)[0] for image in TORCH_IMAGES]
    assert torch_stages[0] == torch_stages[1], "the torch stages must be identical, instruction for instruction"
    torch_stage = torch_stages[0]
    assert [copy_sources(i)[0] for i in torch_stage.all("COPY")] == [[
        "services/install-torch.sh", "services/requirements-torch.txt", "services/requirements-torch.lock",
        "services/requirements-torch-cpu.lock"]]
    assert [i.arguments for i in torch_stage.all("ARG")] == [f"TORCH_INDEX_URL={CPU_INDEX}"], \
        "PyTorch's CPU-only wheels unless the build says otherwise"
    for image in TORCH_IMAGES:
        builder, final = stages(image)[1:]
        assert builder.base == final.base == "torch", "the builder and the image both start from the torch stage"


def test_the_cpu_inference_image_has_no_torch_and_no_scipy():
    """What the issue asked of the CPU image: ONNX Runtime, numpy, Pillow and the API (scipy is 140 MB)."""
    lock = (REPO_ROOT / "services" / "inference" / "requirements.lock").read_text()
    packages = {line.split("==")[0] for line in lock.splitlines() if "==" in line and not line.startswith(" ")}
    assert {"onnxruntime", "numpy", "pillow", "fastapi", "uvicorn"} <= packages
    assert not packages & {"torch", "torchvision", "scipy", "triton"}
    assert not any(name.startswith("nvidia-") for name in packages)
    assert "torch" not in " ".join(i.arguments for stage in stages("inference") for i in stage.instructions)
    assert "BACKEND=onnx" in " ".join(i.arguments for i in stages("inference")[-1].all("ENV"))


def test_frontend_image_has_no_torch():
    dockerfile = (REPO_ROOT / "services" / "frontend" / "Dockerfile").read_text()
    requirements = (REPO_ROOT / "services" / "frontend" / "requirements.txt").read_text()
    assert "torch" not in requirements and "TORCH_INDEX_URL" not in dockerfile


@pytest.fixture
def fake_pip(tmp_path) -> tuple[dict[str, str], Path]:
    """A `pip` on PATH that only records its arguments (the real python answers the script's own questions)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "pip.log"
    bin_dir.mkdir()
    (bin_dir / "pip").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (bin_dir / "pip").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}, log


def install_torch(env: dict[str, str], index: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(REPO_ROOT / "services" / "install-torch.sh"), index], env=env,
                          capture_output=True, text=True, timeout=60)


def test_install_torch_from_the_default_index_is_the_hashed_lock(fake_pip):
    env, log = fake_pip
    done = install_torch(env, "")
    assert done.returncode == 0, done.stderr
    lock = REPO_ROOT / "services" / "requirements-torch.lock"
    assert log.read_text().splitlines() == [f"install --require-hashes --no-deps -r {lock}", "check"]


def test_install_torch_from_a_reachable_index_takes_torch_from_it_and_the_rest_hashed(fake_pip, tmp_path):
    env, log = fake_pip
    (tmp_path / "index" / "torch").mkdir(parents=True)
    (tmp_path / "index" / "torch" / "index.html").write_text("<html></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "index"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    index = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        done = install_torch(env, index)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    cpu_lock = REPO_ROOT / "services" / "requirements-torch-cpu.lock"
    pins = "torch==2.14.1 torchvision==0.29.1"
    assert log.read_text().splitlines() == [f"install --no-deps --index-url {index} {pins}",
                                            f"install --require-hashes --no-deps -r {cpu_lock}",
                                            f"install --index-url {index} {pins}", "check"]


def test_install_torch_falls_back_to_the_default_index_when_the_index_cannot_be_reached(fake_pip):
    env, log = fake_pip
    index = f"http://127.0.0.1:{free_port()}/whl/cpu"  # nothing listens there
    done = install_torch(env, index)
    assert done.returncode == 0, done.stderr
    assert f"{index} cannot be reached" in done.stderr and "falling back to pip's default index" in done.stderr
    lock = REPO_ROOT / "services" / "requirements-torch.lock"
    assert log.read_text().splitlines() == [f"install --require-hashes --no-deps -r {lock}", "check"]


def test_requirements_pins_agree_and_torch_is_pinned_once():
    """A package pinned in several requirement files (the frontend pins pillow too) has one version."""
    import re

    pins: dict[str, set[str]] = {}
    for path in REPO_ROOT.glob("**/requirements*.txt"):
        if ".venv" in path.parts:
            continue
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                package, version = line.split("==")
                pins.setdefault(re.sub(r"\[.*\]", "", package).strip().lower(), set()).add(version.strip())
    assert pins["torch"] and {name: versions for name, versions in pins.items() if len(versions) > 1} == {}
    for service in ("trainer", "inference"):
        text = (REPO_ROOT / "services" / service / "requirements.txt").read_text()
        assert "torch==" not in text, "torch is pinned once, in services/requirements-torch.txt"


def test_every_lock_is_up_to_date_with_its_requirements():
    """`make lock` regenerates them; a requirements change without it fails here (offline: recorded digests)."""
    done = subprocess.run([sys.executable, "scripts/lock.py", "--check"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_lock_check_notices_a_changed_requirements_file(tmp_path):
    copy = tmp_path / "repo"
    inputs = [*REPO_ROOT.glob("services/**/requirements*"), *REPO_ROOT.glob("services/requirements-torch*")]
    for relative in ["scripts/lock.py", *(str(path.relative_to(REPO_ROOT)) for path in inputs)]:
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_bytes((REPO_ROOT / relative).read_bytes())
    with (copy / "services" / "frontend" / "requirements.txt").open("a") as handle:
        handle.write("rich==15.0.0\n")
    done = subprocess.run([sys.executable, "scripts/lock.py", "--check"], cwd=copy, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 1
    assert "services/frontend/requirements.lock is out of date" in done.stderr


@pytest.mark.parametrize("image", ["trainer", "inference", "inference-torch"])
def test_every_volume_mount_point_is_created_owned_by_the_app_user(image):
    """Docker gives a fresh named volume the ownership of the image's directory it is mounted on; a directory the
    image lacks becomes root's, and the non-root service cannot write there (Podman hides this)."""
    service = compose_config(BASE_FILE)["services"][IMAGES[image][1]]
    targets = [entry.split(":")[1] for entry in service["volumes"]]
    final = stages(image)[-1]
    setup = " ".join(instruction.arguments for instruction in final.all("RUN")).split("&&")
    made = next(command.split()[2:] for command in setup if command.strip().startswith("mkdir -p"))
    owned = next(command.split()[2:] for command in setup if command.strip().startswith("chown app:app"))
    assert set(targets) <= set(made) and set(targets) <= set(owned), (targets, made, owned)
    assert final.all("USER")[-1].arguments == "app"


@pytest.mark.parametrize("image", ["inference", "inference-torch"])
def test_inference_images_ship_the_default_model_with_its_graph_and_card(image):
    final = stages(image)[-1]
    copies = [copy_sources(instruction) for instruction in final.all("COPY")]
    assert (["models/default/"], "/app/models/default/", {}) in copies
    assert "DEFAULT_MODEL_DIR=/app/models/default" in " ".join(i.arguments for i in final.all("ENV"))
    ignore = dockerignore()
    model_files = context_files(REPO_ROOT / "models" / "default")
    assert {path.name.split(".", 1)[1] for path in model_files if path.parent.name == "models"} == {
        "pt", "onnx", "graph.json", "metrics.json"}
    for path in model_files:
        assert not ignore.excluded(path.relative_to(REPO_ROOT).as_posix()), path


def test_dockerignore_keeps_local_state_out_of_the_context():
    ignore = dockerignore()
    for path in (".git/config", ".venv/bin/python", "data/FashionMNIST/raw/t10k-images-idx3-ubyte",
                 "artifacts/latest.json", ".run/inference.pid", "bench/results/x.json", "tests/conftest.py",
                 "shared/__pycache__/model.cpython-311.pyc", ".pytest_cache/v/x", ".ruff_cache/x", ".env",
                 "models/experiment/latest.json", "scripts/lock.py"):
        assert ignore.excluded(path), path
    for path in ("shared/model.py", "services/inference/__main__.py", "services/frontend/app/routes.py",
                 "models/default/latest.json", "services/install-torch.sh"):
        assert not ignore.excluded(path), path


def test_dockerignore_rules_follow_docker():
    """The matcher itself, on Docker's documented examples: ``*`` stays in one directory, ``**`` crosses them,
    a directory match covers its contents, and the last matching line wins."""
    ignore = DockerIgnore("*/temp*\n*/*/temp*\ntemp?\n**/*.go\nbuild\n!build/keep.txt\n")
    assert ignore.excluded("somedir/temporary.txt") and ignore.excluded("somedir/subdir/temp")
    assert not ignore.excluded("a/b/c/temp.txt") and ignore.excluded("tempa")
    assert ignore.excluded("x/y/z.go") and ignore.excluded("z.go")
    assert ignore.excluded("build/out.o") and not ignore.excluded("build/keep.txt")


@pytest.mark.parametrize("image", IMAGES)
def test_no_health_check_in_the_image_compose_defines_it(image):
    """One definition per service, in docker-compose.yml (tests/deploy/test_compose.py checks it there)."""
    assert all(stage.all("HEALTHCHECK") == [] for stage in stages(image))
    assert not dockerignore().excluded("shared/healthcheck.py"), "the check's module ships in every image"
