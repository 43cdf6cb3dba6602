#!/bin/sh
# The torch layer of the trainer and torch inference images: torch and torchvision into /opt/venv, hash-checked.
#
#   sh services/install-torch.sh [INDEX_URL]        (the Dockerfiles' torch stage runs it; pip is /opt/venv's)
#
# INDEX_URL empty (or pip's default index): requirements-torch.lock, every file hash-checked (on Linux that torch
# is the CUDA build, with its nvidia-* libraries: the GPU images).
# INDEX_URL another wheel index (by default PyTorch's CPU-only one): torch and torchvision, at the versions
# requirements-torch.txt pins, from that index; everything else they need from requirements-torch-cpu.lock,
# hash-checked; whatever that index's torch needs beyond it (a CUDA index: its libraries) from that index.
# Those wheels are pinned by version, not by hash: that index cannot be locked from where the locks are made.
# INDEX_URL that cannot be reached within 10 s (no internet, or a machine that reaches only pip's own index and
# mirrors): a line says so and the default index's lock is installed instead, so the build still works.
set -eu
here="$(dirname "$0")"
index="${1:-}"
default_index="$(python -c 'from pip._internal.models.index import PyPI; print(PyPI.simple_url)')"
pins="$(grep -E '^(torch|torchvision)==' "$here/requirements-torch.txt" | cut -d' ' -f1)"

reachable() {
    python - "$1" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=10).close()
except Exception as error:
    print(f"install-torch: {sys.argv[1]} cannot be reached: {error}", file=sys.stderr)
    sys.exit(1)
PY
}

if [ -n "$index" ] && [ "${index%/}" != "${default_index%/}" ] && ! reachable "$index"; then
    echo "install-torch: falling back to pip's default index (requirements-torch.lock: on Linux the CUDA build)" >&2
    index=""
fi
if [ -z "$index" ] || [ "${index%/}" = "${default_index%/}" ]; then
    echo "install-torch: requirements-torch.lock from pip's default index" >&2
    pip install --require-hashes --no-deps -r "$here/requirements-torch.lock"
else
    echo "install-torch: $(echo $pins) from $index" >&2
    # shellcheck disable=SC2086  # one word per pin
    pip install --no-deps --index-url "$index" $pins
    pip install --require-hashes --no-deps -r "$here/requirements-torch-cpu.lock"
    # shellcheck disable=SC2086
    pip install --index-url "$index" $pins  # only what that index's torch needs beyond the lock (a CPU build: none)
fi
pip check
