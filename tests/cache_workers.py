"""Two processes filling one embedding cache at once: the worker script and the start-together handshake;
and one cache call (store or vectors) run in a fresh process.

Each worker encodes ``texts[start:stop]`` with a deterministic fake encoder (a text's sha256 seeds its vector),
saves the array it got back and prints how many texts it encoded and read from the cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

WORKER = textwrap.dedent(
    """
    import hashlib, json, sys, time
    from pathlib import Path
    import numpy as np
    from embedbench.engine.cache import EmbeddingCache

    root, out, go, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

    def encode(texts):
        time.sleep(spec["sleep"])  # slow enough that the two runs overlap
        rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little"))
                .standard_normal(8).astype(np.float32) for t in texts]
        return np.stack(rows)

    Path(out + ".ready").touch()
    deadline = time.time() + 30
    while not Path(go).exists():
        if time.time() > deadline:
            sys.exit("no go signal")
        time.sleep(0.002)
    cache = EmbeddingCache(Path(root))
    arr = cache.get_or_encode(spec["settings"], "document", spec["texts"], encode, chunk_size=spec["chunk"])
    np.save(out, arr)
    print(cache.stats["encoded"], cache.stats["hits"])
    """
)


def run_two_workers(tmp_path: Path, root: Path, settings: dict, texts: list[list[str]], chunk: int,
                    sleep: float) -> list[tuple[int, int]]:
    """Start one worker per text list, release them together; (encoded, hits) per worker, outputs in out{i}.npy."""
    script, go = tmp_path / "worker.py", tmp_path / "go"
    script.write_text(WORKER)
    procs = [subprocess.Popen(
        [sys.executable, str(script), str(root), str(tmp_path / f"out{i}.npy"), str(go),
         json.dumps({"settings": settings, "texts": t, "chunk": chunk, "sleep": sleep})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i, t in enumerate(texts)]
    deadline = time.time() + 60
    while not all((tmp_path / f"out{i}.npy.ready").exists() for i in range(len(procs))):
        assert time.time() < deadline, [p.poll() for p in procs]
        time.sleep(0.01)
    go.touch()
    counts = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
        encoded, hits = stdout.split()[-2:]
        counts.append((int(encoded), int(hits)))
    return counts


CALL = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from embedbench.engine.cache import EmbeddingCache

    root, spec = sys.argv[1], json.loads(sys.argv[2])
    cache = EmbeddingCache(root)
    if spec["call"] == "store":
        cache.store(spec["settings"], spec["role"], spec["texts"], np.asarray(spec["vectors"], dtype=np.float32))
    else:
        np.save(spec["out"], cache.vectors(spec["settings"], spec["role"], cache.text_keys(spec["texts"])))
    print(json.dumps(cache.stats))
    """
)


def call_in_subprocess(root: Path, spec: dict) -> dict[str, int]:
    """One ``store`` (spec: call, settings, role, texts, vectors) or ``vectors`` (spec: ..., texts, out: a .npy
    path for the rows) call on a fresh EmbeddingCache in a new process; returns its stats. The timeout only
    guards against a hang (a store that waited for a lock the caller holds)."""
    done = subprocess.run([sys.executable, "-c", CALL, str(root), json.dumps(spec)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])
