"""Write the Docker Swarm stack file (`make swarm-stack`), from the compose files as `docker compose config` reads them.

    python scripts/swarm_stack.py [--out .swarm/stack.yml] [--secrets-dir .swarm/secrets] [--gpu] [-f extra.yml]...
    docker stack deploy -c .swarm/stack.yml fashion                                       (make swarm-deploy)

Why a written file: `docker stack deploy` validates each file it is given against the older 3.x schema, which
refuses what docker-compose.yml needs for Compose (`depends_on` conditions, `pull_policy`), so `-c
docker-compose.yml -c docker-compose.swarm.yml` fails before any merge. Compose itself merges and interpolates
the files (docker-compose.yml, docker-compose.swarm.yml, docker-compose.gpu.yml with --gpu, then any -f), and this
script turns that one configuration into what Swarm takes:

- keys Swarm does not have are left out and named in the file's header (build: images come from a registry, or
  are loaded on each node; restart: deploy.restart_policy instead; depends_on: Swarm has no start order, and the
  page and the edge wait for the API by themselves; pull_policy, security_opt, ...);
- `tmpfs` becomes a tmpfs mount; ports are published in `mode: host` (no IPVS, so no routing mesh; no host
  address either: a host-mode port listens on every address of the node);
- a bind mount of a folder of this repository (the edge's deploy/nginx/) becomes one Swarm config per file, named
  after its content, so every node gets the files and a changed file rolls the service on the next deploy;
- each secret setting (SECRETS below) whose file exists in --secrets-dir becomes a Swarm secret, mounted at
  /run/secrets/<name> for the app user only, and the service gets X_FILE=/run/secrets/<name>; the plain X is
  never in the stack's environment, so never in `docker inspect`;
- volume options left empty (docker-compose.swarm.yml's ARTIFACTS_VOLUME_* / SERVING_VOLUME_*) are left out;
- with --registry (IMAGE_REGISTRY, e.g. registry.example.com:5000/), the project's images are named in that
  registry, which every node pulls from;
- a GPU reservation (docker-compose.gpu.yml's `devices`, which Swarm does not have) becomes one NVIDIA-GPU generic
  resource per task: Swarm then places the task on a node that advertises a free GPU (docs/swarm.md).
"""

import argparse
import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE_FILES = ("docker-compose.yml", "docker-compose.swarm.yml")
GPU_FILE = "docker-compose.gpu.yml"
STACK_VERSION = "3.9"

# The secret settings of each service (the SecretStr fields of its Settings class; tests/deploy/
# test_swarm_stack.py checks this table against them). A file of that name in --secrets-dir becomes a secret.
SECRETS = {"inference": ("admin_token", "api_keys"), "frontend": ("secret_key", "inference_api_key")}
APP_USER = "10001"  # the services' user in their images (Dockerfiles): only it may read the secrets
PROJECT_IMAGES = "fashion-mnist-"  # the images this project builds (docker-compose.yml)
GPU_RESOURCE = "NVIDIA-GPU"  # the generic resource a GPU node advertises (docs/swarm.md)

# What `docker stack deploy` takes for a service (Compose file format 3.x); everything else is dropped.
SWARM_KEYS = ("image", "command", "entrypoint", "environment", "user", "working_dir", "healthcheck", "deploy",
              "ports", "volumes", "configs", "secrets", "networks", "read_only", "cap_add", "cap_drop", "init",
              "stop_grace_period", "stop_signal", "sysctls", "ulimits", "labels", "logging", "hostname",
              "extra_hosts", "dns", "dns_search", "tty", "stdin_open")
CONVERTED_KEYS = ("tmpfs",)  # kept, in another form
MOUNT_KEYS = ("type", "source", "target", "read_only")


class StackError(Exception):
    """The compose files cannot be made into a stack as they are set."""


def compose_command() -> list[str]:
    """COMPOSE (e.g. "docker-compose"), else Compose v2 (`docker compose`) when the docker CLI has it, else v1."""
    if os.environ.get("COMPOSE"):
        return shlex.split(os.environ["COMPOSE"])
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
    return ["docker", "compose"] if probe.returncode == 0 else ["docker-compose"]


def merged_config(files: list[Path], compose: list[str], env_file: Path | None,
                  env: dict[str, str] | None = None) -> dict:
    """`compose config` of the files, in this process's environment unless ``env`` is given."""
    argv = [*compose, "--project-directory", str(REPO_ROOT), "-p", "fashion"]
    if env_file:
        argv += ["--env-file", str(env_file)]
    for path in files:
        argv += ["-f", str(path)]
    result = subprocess.run([*argv, "config"], cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise StackError(f"{shlex.join(argv)} config failed:\n{result.stderr.strip()}")
    return yaml.safe_load(result.stdout)


def short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def byte_size(text: str) -> int:
    """A tmpfs size such as 128m or 64k, in bytes (the long mount syntax wants bytes)."""
    match = re.fullmatch(r"(\d+)([kmg]?)b?", text.strip().lower())
    if not match:
        raise StackError(f"tmpfs size {text!r}: expected a number with an optional k, m or g")
    return int(match.group(1)) * 1024 ** " kmg".index(match.group(2) or " ")


def tmpfs_mount(entry: str) -> dict:
    target, _, options = entry.partition(":")
    mount = {"type": "tmpfs", "target": target, "tmpfs": {}}
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        if key == "size":
            mount["tmpfs"]["size"] = byte_size(value)
        elif key == "mode":
            mount["tmpfs"]["mode"] = int(value, 8)
        else:
            raise StackError(f"tmpfs option {option!r} of {entry!r}: Swarm takes size and mode only")
    return mount


def long_mount(entry: str | dict) -> dict:
    """A volume entry in the long syntax, whichever form compose printed (v1: "src:target:mode", v2: a mapping)."""
    if isinstance(entry, dict):
        mount = {key: entry[key] for key in MOUNT_KEYS if key in entry}
    else:
        source, target, *mode = entry.split(":")
        mount = {"type": "bind" if source.startswith(("/", ".")) else "volume", "source": source, "target": target}
        if mode and "ro" in mode[0].split(","):
            mount["read_only"] = True
    if not mount.get("read_only"):
        mount.pop("read_only", None)
    return mount


def host_port(entry: str | dict) -> dict:
    """A published port in the long syntax, `mode: host`, without a host address (Swarm has none)."""
    if isinstance(entry, dict):
        published, target, protocol = entry.get("published"), entry["target"], entry.get("protocol", "tcp")
    else:
        spec, _, protocol = entry.partition("/")
        parts = spec.split(":")
        target, published = parts[-1], (parts[-2] if len(parts) > 1 else None)
    port = {"target": int(target), "protocol": protocol or "tcp", "mode": "host"}
    if published not in (None, ""):
        port["published"] = int(published)
    return port


class StackWriter:
    """Turns the merged compose configuration into a stack, recording what it left out."""

    def __init__(self, config: dict, secrets_dir: Path | None, registry: str = "") -> None:
        self.config = config
        self.secrets_dir = secrets_dir
        self.registry = registry
        self.configs: dict[str, dict] = {}
        self.secrets: dict[str, dict] = {}
        self.dropped: dict[str, list[str]] = {}
        self.notes: list[str] = []

    def stack(self) -> dict:
        services = {name: self.service(name, service) for name, service in sorted(self.config["services"].items())}
        stack = {"version": STACK_VERSION, "services": services, "networks": self.networks(),
                 "volumes": self.volumes()}
        if self.configs:
            stack["configs"] = dict(sorted(self.configs.items()))
        if self.secrets:
            stack["secrets"] = dict(sorted(self.secrets.items()))
        return stack

    def service(self, name: str, service: dict) -> dict:
        dropped = sorted(key for key in service if key not in SWARM_KEYS + CONVERTED_KEYS)
        if dropped:
            self.dropped[name] = dropped
        out = {key: service[key] for key in SWARM_KEYS if key in service}
        if self.registry and out.get("image", "").startswith(PROJECT_IMAGES):
            out["image"] = self.registry + out["image"]
        mounts = [long_mount(entry) for entry in service.get("volumes", [])]
        mounts += [tmpfs_mount(entry) for entry in service.get("tmpfs", [])]
        out["volumes"] = [mount for mount in mounts if not self.as_configs(name, mount, out)]
        if not out["volumes"]:
            del out["volumes"]
        if "ports" in service:
            if any(isinstance(p, str) and p.count(":") == 2 or isinstance(p, dict) and p.get("host_ip")
                   for p in service["ports"]):
                self.notes.append(f"{name}: published on every address of its node (Swarm binds no host address)")
            out["ports"] = [host_port(entry) for entry in service["ports"]]
        out["environment"] = {key: str(value) for key, value in (service.get("environment") or {}).items()
                              if value is not None}
        self.attach_secrets(name, out)
        if not out["environment"]:
            del out["environment"]
        if "deploy" in out:
            out["deploy"] = self.deploy(name, out["deploy"])
        out.pop("networks", None)  # every service is on the stack's default overlay network
        return out

    def as_configs(self, name: str, mount: dict, out: dict) -> bool:
        """A bind mount of this repository's files becomes configs; returns whether it did."""
        if mount["type"] != "bind":
            return False
        source = Path(mount["source"])
        source = source if source.is_absolute() else (REPO_ROOT / source)
        if not source.resolve().is_relative_to(REPO_ROOT):
            return False  # data from elsewhere on the node (the offline data set): stays a bind mount
        files = sorted(path for path in source.rglob("*") if path.is_file()) if source.is_dir() else [source]
        for path in files:
            relative = path.relative_to(source).as_posix() if source.is_dir() else path.name
            key = f"{name}-{relative.replace('/', '-')}-{short_hash(path.read_bytes())}"
            self.configs[key] = {"file": str(path)}
            target = f"{mount['target']}/{relative}" if source.is_dir() else mount["target"]
            out.setdefault("configs", []).append({"source": key, "target": target})
        return True

    def attach_secrets(self, name: str, out: dict) -> None:
        environment = out["environment"]
        for secret in SECRETS.get(name, ()):
            variable = secret.upper()
            if environment.pop(variable, ""):
                self.notes.append(f"{name}: {variable} from the environment is not passed to the stack: put it in "
                                  f"the secrets folder as {secret}")
            path = self.secrets_dir / secret if self.secrets_dir else None
            if path is None or not path.is_file():
                continue
            data = path.read_bytes()
            if not data.rstrip(b"\r\n"):
                self.notes.append(f"{name}: {path} is empty: {variable} stays unset")
                continue
            key = f"{secret}-{short_hash(data)}"
            self.secrets[key] = {"file": str(path.resolve())}
            out.setdefault("secrets", []).append({"source": key, "target": secret, "uid": APP_USER,
                                                  "gid": APP_USER, "mode": 0o400})
            environment[f"{variable}_FILE"] = f"/run/secrets/{secret}"

    def deploy(self, name: str, deploy: dict) -> dict:
        resources = deploy.get("resources", {})
        for kind in ("limits", "reservations"):
            for key in ("cpus", "memory"):
                if key in resources.get(kind, {}):
                    resources[kind][key] = str(resources[kind][key])
        devices = resources.get("reservations", {}).pop("devices", None)
        if devices:
            if not all("gpu" in device.get("capabilities", []) for device in devices):
                raise StackError(f"{name}: Swarm has no device reservations; only GPUs are translated")
            resources["reservations"]["generic_resources"] = [
                {"discrete_resource_spec": {"kind": GPU_RESOURCE, "value": 1}}]
            self.notes.append(f"{name}: one {GPU_RESOURCE} generic resource per task (docs/swarm.md, GPU nodes)")
        return deploy

    def networks(self) -> dict:
        networks = {}
        for name, network in (self.config.get("networks") or {"default": {}}).items():
            network = {key: value for key, value in (network or {}).items() if key != "name"}
            network.setdefault("driver", "overlay")
            networks[name] = network
        return networks

    def volumes(self) -> dict:
        volumes = {}
        for name, volume in sorted((self.config.get("volumes") or {}).items()):
            volume = {key: value for key, value in (volume or {}).items() if key != "name"}
            options = {key: value for key, value in (volume.pop("driver_opts", None) or {}).items() if value}
            if options:
                if not {"type", "device"} <= set(options):
                    raise StackError(f"volume {name}: options {sorted(options)} set, but the local driver needs "
                                     "at least a type and a device (e.g. ARTIFACTS_VOLUME_TYPE and "
                                     "ARTIFACTS_VOLUME_DEVICE)")
                volume["driver_opts"] = options
            volumes[name] = volume
        return volumes

    def header(self, files: list[Path]) -> str:
        lines = ["# Written by scripts/swarm_stack.py (make swarm-stack); edit the compose files, not this file.",
                 f"# From: {' + '.join(path.name for path in files)}",
                 "#   docker stack deploy -c <this file> fashion     (make swarm-deploy)"]
        if self.dropped:
            lines.append("# Left out (docker stack deploy does not take them):")
            lines += [f"#   {name}: {', '.join(keys)}" for name, keys in sorted(self.dropped.items())]
        lines += [f"# Note: {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def write_stack(out: Path, files: list[Path], compose: list[str], secrets_dir: Path | None,
                env_file: Path | None = None, registry: str = "", env: dict[str, str] | None = None) -> dict:
    writer = StackWriter(merged_config(files, compose, env_file, env), secrets_dir, registry)
    stack = writer.stack()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(writer.header(files) + yaml.safe_dump(stack, sort_keys=False, width=120), encoding="utf-8")
    return stack


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".swarm" / "stack.yml")
    parser.add_argument("--secrets-dir", type=Path, default=REPO_ROOT / ".swarm" / "secrets",
                        help="files named after the secret settings (admin_token, api_keys, secret_key, "
                             "inference_api_key)")
    parser.add_argument("--gpu", action="store_true", help=f"add {GPU_FILE} (CUDA images, a GPU per task)")
    parser.add_argument("--registry", default=os.environ.get("IMAGE_REGISTRY", ""),
                        help="prefix of the project's images in a registry, e.g. registry.example.com:5000/")
    parser.add_argument("--env-file", type=Path, help="passed to compose (default: its own, .env)")
    parser.add_argument("-f", "--file", dest="extra", type=Path, action="append", default=[],
                        help="another compose file to merge last (e.g. docker-compose.offline.yml)")
    args = parser.parse_args(argv)
    files = [REPO_ROOT / name for name in BASE_FILES] + ([REPO_ROOT / GPU_FILE] if args.gpu else [])
    files += [path.resolve() for path in args.extra]
    try:
        stack = write_stack(args.out, files, compose_command(), args.secrets_dir, args.env_file, args.registry)
    except StackError as error:
        print(f"swarm_stack: {error}", file=sys.stderr)
        return 1
    secrets = sorted(stack.get("secrets", {}))
    print(f"swarm_stack: wrote {args.out} ({len(stack['services'])} services, secrets: {', '.join(secrets) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
