"""What the deployment tests read: compose files through `docker-compose config`, Dockerfiles and .dockerignore.

There is no Docker engine on the test machine, so the files are checked the way Docker would read them:
compose files by the real compose implementation (Debian's docker-compose v1, which validates against the
compose schema and interpolates variables), Dockerfiles and .dockerignore by a small parser that follows
Docker's documented rules.
"""

import copy
import hashlib
import json
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.processes import REPO_ROOT

DOCKER_COMPOSE = "/usr/bin/docker-compose"
BASE_FILE = REPO_ROOT / "docker-compose.yml"
GPU_FILE = REPO_ROOT / "docker-compose.gpu.yml"
OFFLINE_FILE = REPO_ROOT / "docker-compose.offline.yml"
SCALE_FILE = REPO_ROOT / "docker-compose.scale.yml"
SWARM_FILE = REPO_ROOT / "docker-compose.swarm.yml"
SERVICES = ("trainer", "inference", "frontend")


def run_compose_config(*files: Path, env: dict[str, str] | None = None,
                       env_file: Path | None = None) -> subprocess.CompletedProcess:
    """``docker-compose -f FILE... config``, seeing only PATH plus ``env``, and an empty env file unless
    ``env_file`` is given, so neither a developer's shell nor a local .env can change what the test sees."""
    with tempfile.TemporaryDirectory() as home:
        empty_env = Path(home) / "empty.env"
        empty_env.write_text("")
        argv = [DOCKER_COMPOSE, "--project-directory", str(REPO_ROOT), "--env-file", str(env_file or empty_env)]
        for path in files:
            argv += ["-f", str(path)]
        return subprocess.run(
            [*argv, "config"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, **(env or {})},
        )


_configs: dict[str, dict] = {}  # one `docker-compose config` run per distinct input, for the whole test session


def _inputs_digest(files: tuple[Path, ...], env: dict[str, str] | None, env_file: Path | None) -> str:
    """What decides the output: the files' paths and contents, the environment and the env file's content."""
    digest = hashlib.sha256(json.dumps(sorted((env or {}).items())).encode())
    for path in (*files, *([env_file] if env_file else [])):
        digest.update(str(path).encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()


def compose_config(*files: Path, env: dict[str, str] | None = None, env_file: Path | None = None) -> dict:
    """The merged, interpolated configuration, as `docker-compose config` prints it. The same inputs give the same
    output, so it is computed once per session (each run of the v1 client costs about a second) and copied."""
    key = _inputs_digest(files, env, env_file)
    if key not in _configs:
        result = run_compose_config(*files, env=env, env_file=env_file)
        assert result.returncode == 0, f"docker-compose config failed for {files}:\n{result.stderr}"
        _configs[key] = yaml.safe_load(result.stdout)
    return copy.deepcopy(_configs[key])


def compose_variables(path: Path) -> set[str]:
    """Names of the variables a compose file interpolates, found in its YAML values (comments do not count;
    ``$$`` is a literal dollar sign, not a variable)."""
    names: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            text = node.replace("$$", "")
            names.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
            names.update(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text))

    walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return names


def env_example_variables(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not a NAME=value line in {path}: {line!r}"
            values[name.strip()] = value.strip()
    return values


# --- Dockerfiles ---------------------------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, COPY, ...
    arguments: str  # the rest of the (joined) line

    def words(self) -> list[str]:
        """The arguments as a list: JSON (exec) form when it is a JSON array, else shell words."""
        text = self.arguments.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                pass
        return shlex.split(text)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages in order; continuation lines joined, comments dropped, ``FROM image AS name`` understood."""
    lines, current = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    stages: list[Stage] = []
    for line in lines:
        keyword, _, arguments = line.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            words = instruction.words()
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append(Stage(words[0], name))
        elif instruction.keyword == "ARG" and not stages:
            continue  # an ARG before the first FROM only parameterises FROM lines
        else:
            assert stages, f"{path}: {line!r} comes before the first FROM"
            stages[-1].instructions.append(instruction)
    return stages


def copy_sources(instruction: Instruction) -> tuple[list[str], str, dict[str, str]]:
    """(sources, destination, --flags) of a COPY/ADD instruction."""
    words = instruction.words()
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return words[:-1], words[-1], flags


# --- .dockerignore -------------------------------------------------------------------------------------------------


class DockerIgnore:
    """Docker's .dockerignore rules: Go filepath.Match patterns plus ``**``, ``!`` exceptions, the last matching
    line wins, and a pattern that matches a directory also matches everything inside it."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((exclude, re.compile(self._regex(pattern))))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + "[" + pattern[i + 1:end].replace("!", "^", 1) + "]", end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return f"^{out}$"

    def excluded(self, relative_path: str) -> bool:
        """Whether a path (relative to the context, ``/``-separated) is left out of the build context."""
        parts = Path(relative_path).parts
        candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        result = False
        for exclude, regex in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                result = exclude
        return result


def dockerignore() -> DockerIgnore:
    return DockerIgnore((REPO_ROOT / ".dockerignore").read_text(encoding="utf-8"))
