"""Check --device / --dtype on a GPU machine: the same model and suite at CPU fp32 and on the GPU in each dtype.

Not a test (CI has no GPU). Prints, per run, the dtype asked for, the compute dtype the result records,
nDCG@10 and its difference from CPU fp32, and how many texts the run encoded: all runs share one fresh
embedding cache, so a run that encoded nothing would have been served another dtype's vectors. Exits 1
when a GPU number strays from CPU fp32 by more than the tolerance (fp32: rounding only; bf16/fp16: a
little more), or a run in a new (device, compute dtype) was served vectors it did not compute.
Example: python scripts/gpu_check.py --model minilm-l6 --suite vaswani --device cuda
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import embedbench

TOLERANCE = {"fp32": 1e-3, "auto": 1e-2, "bf16": 1e-2, "fp16": 1e-2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--suite", default="vaswani", help="vaswani or xquad-r (read from --data-dir)")
    parser.add_argument("--data-dir", default=None, help="default: $EMBEDBENCH_DATA_DIR")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or mps")
    parser.add_argument("--dtypes", default="fp32,bf16,auto", help="GPU dtypes to run, besides CPU fp32")
    args = parser.parse_args(argv)
    runs = [("cpu", "fp32")] + [(args.device, d) for d in args.dtypes.split(",")]
    failed, base, seen = False, {}, set()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        print(f"{'device':8} {'--dtype':7} {'computed in':11} {'task':24} {'nDCG@10':>8} {'vs cpu':>8} {'encoded':>8}")
        for device, dtype in runs:
            results = embedbench.evaluate(args.model, suite=args.suite, data_dir=args.data_dir, device=device,
                                          dtype=dtype, results_dir=Path(tmp) / "results", cache_dir=Path(tmp) / "cache")
            for r in results:
                task, score, computed = f"{r.task}/{r.language}", r.metrics["ndcg_at_10"], r.provenance.dtype
                off = score - base.setdefault(task, score)
                # A (device, compute dtype) met before may reuse its vectors (e.g. auto = fp32); a new one may not.
                reused = r.provenance.texts_encoded == 0 and (device.partition(":")[0], computed, task) not in seen
                seen.add((device.partition(":")[0], computed, task))
                bad = abs(off) > TOLERANCE[dtype] or reused
                failed |= bad
                print(f"{device:8} {dtype:7} {computed:11} {task[:24]:24} {score:8.4f} {off:+8.4f} "
                      f"{r.provenance.texts_encoded:8d}{'  <-- check' if bad else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
