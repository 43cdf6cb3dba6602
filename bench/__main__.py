"""``make bench``: run every benchmark in turn (or those named: ``python -m bench training_throughput``)."""

import importlib
import sys

BENCHMARKS = ("training_throughput", "training_accuracy", "inference_throughput", "frontend_cache", "photos",
              "calibration", "explain", "onnx_parity", "serving_peers", "distributed_training", "replicas",
              "stalled_uploads", "swap_memory")


def main(names: list[str]) -> int:
    for name in names or BENCHMARKS:
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
