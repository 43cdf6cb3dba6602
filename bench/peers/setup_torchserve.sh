#!/usr/bin/env bash
# TorchServe 0.12 in its own virtual environment (bench/peers/.torchserve-venv, git-ignored), for
# `python -m bench serving_peers`. TorchServe's Java frontend needs a JRE 11+ (apt-get install -y
# openjdk-17-jre-headless). torch itself is not installed again: a .pth file puts the project's own venv
# (.venv) after this venv's packages, so both servers run the same torch build on the same weights.
# Exits 0 with a message when Java or the packages cannot be installed (the benchmark then skips TorchServe).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.torchserve-venv"
project_python="${PROJECT_PYTHON:-$repo/.venv/bin/python}"

if ! command -v java >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq openjdk-17-jre-headless >/dev/null 2>&1 || true
  fi
fi
if ! command -v java >/dev/null 2>&1; then
  echo "SKIP TorchServe: no java (apt-get install -y openjdk-17-jre-headless)"; exit 0
fi
if [ ! -x "$venv/bin/torchserve" ]; then
  python3 -m venv "$venv" || { echo "SKIP TorchServe: cannot create $venv"; exit 0; }
  "$venv/bin/pip" install --quiet torchserve==0.12.0 torch-model-archiver==0.12.0 \
    || { echo "SKIP TorchServe: pip install torchserve==0.12.0 failed"; rm -rf "$venv"; exit 0; }
fi
site="$("$project_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
  || { echo "SKIP TorchServe: no project venv at $project_python"; exit 0; }
own="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$site" > "$own/zz-project-venv.pth"
"$venv/bin/python" -c 'import ts, torch; print("TorchServe ready: torch", torch.__version__)' \
  || { echo "SKIP TorchServe: the venv cannot import ts and torch"; exit 0; }
