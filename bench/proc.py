"""Child-process plumbing for the memory-measured benches: run a config in a fresh interpreter, read its JSON.

Peak memory is the child's peak resident set (VmHWM, which also counts torch / faiss / BLAS buffers that
tracemalloc misses), reset after the random input vectors are generated, so it is the working memory
of the measured step plus the inputs still alive (reported separately as `input_mib`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import REPO

MIB = 1 << 20


def _status_kib(field: str) -> int | None:
    try:
        m = re.search(rf"^{field}:\s+(\d+)\s+kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux /proc/self/clear_refs); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_mib() -> float | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mib() -> float | None:
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return kib / 1024


def random_unit(rng: Any, rows: int, dim: int) -> Any:
    """float32 Gaussian rows scaled to unit length, in place (no float64 temporaries)."""
    import numpy as np

    x = rng.standard_normal((rows, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def run_child(module: str, config: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """`python -m module --child JSON` from the repo root; its last stdout line is the JSON result."""
    proc = subprocess.run([sys.executable, "-m", module, "--child", json.dumps(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {tail[0]}"}
    return json.loads(lines[-1])


def child_main(handler: Any) -> None:
    """Entry of a child: parse `--child JSON`, call handler(config), print its JSON result."""
    if len(sys.argv) != 3 or sys.argv[1] != "--child":
        raise SystemExit(f"usage: python -m {sys.argv[0]} --child JSON")
    from bench.common import quiet

    quiet()
    print(json.dumps(handler(json.loads(sys.argv[2]))), flush=True)
