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


# Runs the measured command as its own child and writes that child's peak RSS. A process forked from a
# large parent (pytest, a bench driver) starts with the parent's pages in its ru_maxrss, which exec keeps;
# a child of this small trampoline starts small, so the figure is the command's own.
_TRAMPOLINE = ("import resource, subprocess, sys\n"
               "rc = subprocess.call(sys.argv[2:])\n"
               "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
               "sys.exit(rc if rc >= 0 else 128 - rc)\n")


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | str = REPO,
                 timeout: float | None = None, log_dir: Path | None = None) -> dict[str, Any]:
    """Run ``cmd`` as a child process; its wall seconds and its own peak RSS.

    The peak is the ``ru_maxrss`` a small trampoline process gets for ``cmd`` as its child (the figure
    ``/usr/bin/time -v`` prints as "Maximum resident set size": the command's peak, or that of a
    descendant it waited for, if larger), so children run one after another each get their own figure
    and none inherits the caller's size. stdout / stderr go to files (in
    ``log_dir`` when given, kept; else temporary), never pipes, so a chatty child cannot block.
    On timeout the child's whole process group is killed and ``timed_out`` is True.
    Returns ``{"rc", "wall_s", "peak_rss_bytes", "peak_rss_mib", "user_s", "sys_s", "timed_out",
    "stdout", "stderr_tail"}``.
    """
    import os
    import signal
    import tempfile
    import time

    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        logs = Path(log_dir) if log_dir is not None else Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        out_path, err_path = logs / "stdout.txt", logs / "stderr.txt"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            t0 = time.perf_counter()
            rss_path = Path(tmp) / "maxrss"
            proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(rss_path), *cmd], cwd=cwd, env=env,
                                    stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
            timed_out = False
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if timeout is not None and time.perf_counter() - t0 > timeout:
                    timed_out = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    _, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.01)
            wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout = out_path.read_text(encoding="utf-8", errors="replace")
        stderr = err_path.read_text(encoding="utf-8", errors="replace")
        peak_kib = int(rss_path.read_text()) if rss_path.exists() else usage.ru_maxrss
    tail = [ln for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()][-5:]
    peak = peak_kib * 1024  # KiB on Linux
    return {"rc": proc.returncode, "wall_s": wall, "peak_rss_bytes": peak, "peak_rss_mib": peak / MIB,
            "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "timed_out": timed_out, "stdout": stdout,
            "stderr_tail": "\n".join(tail)}


def embedbench_cmd(*args: str) -> list[str]:
    """The `embedbench` command of this interpreter's environment (its console script, else -m)."""
    script = Path(sys.executable).with_name("embedbench")
    return [str(script), *args] if script.is_file() else [sys.executable, "-m", "embedbench.cli", *args]
