"""Images in columns at scale: peak client memory and batches cut by bytes.

Generates ``--gb`` (default 2.0) GB of distinct noise PNG files of about ``--mb`` (default 3.6)
MB each under /tmp (uncompressed PNG of random pixels: every byte counts, nothing dedups;
under the API's 5 MB of base64 per image), then runs
``df.claude.batch("Describe {p:image}")`` over them in a fresh child process against the
simulator in another process, and prints:

1. the client's peak RSS (``ru_maxrss`` of the child; target < 1 GB whatever the total size —
   files are hashed in pieces to key them, and each batch body is built, base64-encoded and
   written to the store one at a time);
2. how the job was cut: batches, requests and bytes per batch (each ≤ 256 MB: the total is
   over 256 MB, so the job is split by bytes, not by the 100,000-request limit);
3. wall time, split into planning (hash + header read) and the whole run.

The files are deleted at the end (``--keep`` keeps them).

Usage: ``python bench/bench_media.py [--gb 2.0] [--mb 3.6] [--keep]``
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_files(folder: Path, total_bytes: float, file_bytes: float) -> list[str]:
    import numpy as np
    from PIL import Image

    side = int(math.sqrt(file_bytes / 3))
    rng = np.random.default_rng(15)
    paths: list[str] = []
    written = 0
    while written < total_bytes:
        path = folder / f"noise_{len(paths):05d}.png"
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path, compress_level=0)
        written += path.stat().st_size
        paths.append(str(path))
    return paths


def child(base_url: str, folder: str, store: str) -> None:
    import anthropic
    import pandas as pd

    import batchkit  # noqa: F401  (registers df.claude)
    from batchkit.engine import calls
    from batchkit.stores.store import Store

    client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-bench")
    df = pd.DataFrame({"p": sorted(str(p) for p in Path(folder).glob("*.png"))})
    t0 = time.perf_counter()
    call = calls.prepare(
        df, "Describe {p:image}", output="response", model="claude-haiku-4-5", max_tokens=64, client=client, store=store
    )
    planned = time.perf_counter() - t0
    rss_after_plan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = df.claude.batch(
        "Describe {p:image}",
        model="claude-haiku-4-5",
        max_tokens=64,
        client=client,
        store=store,
        poll_interval=0.2,
        progress=False,
    )
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = Store.resolve(store)
    batches = s.batches()
    sizes = [s.query("SELECT length(body) FROM batch_requests WHERE batch_id = ?", (b["id"],))[0][0] for b in batches]
    print(
        json.dumps(
            {
                "rows": len(df),
                "answered": int(out["response"].notna().sum()),
                "unique_requests": len(call.plan.lines),
                "batches": len(batches),
                "requests_per_batch": [b["n_requests"] for b in batches],
                "batch_mb": [round(n / 1e6, 1) for n in sizes],
                "plan_seconds": round(planned, 1),
                "wall_seconds": round(wall, 1),
                "peak_rss_mb_after_plan": round(rss_after_plan),
                "peak_rss_mb": round(peak),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--mb", type=float, default=3.6)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from batchkit.simulator import Processing, spawn

    folder = Path(tempfile.mkdtemp(prefix="bench_media_", dir="/tmp"))
    try:
        t0 = time.perf_counter()
        paths = make_files(folder, args.gb * 1e9, args.mb * 1e6)
        total = sum(Path(p).stat().st_size for p in paths)
        print(
            f"generated {len(paths)} noise PNGs, {total / 1e9:.2f} GB, in {time.perf_counter() - t0:.0f} s ({folder})",
            flush=True,
        )
        with spawn(processing=Processing.instant()) as proc:
            done = subprocess.run(
                [sys.executable, __file__, "--child", proc.base_url, str(folder), str(folder / "jobs.sqlite3")],
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
            )
        if done.returncode:
            print(done.stdout, done.stderr, file=sys.stderr)
            raise SystemExit(done.returncode)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(result, indent=1))
        print(
            f"\nclient peak RSS {result['peak_rss_mb']:,} MB for {total / 1e9:.2f} GB of images "
            f"(target < 1,024 MB): {'OK' if result['peak_rss_mb'] < 1024 else 'OVER'}"
        )
        print(f"{result['batches']} batches cut by bytes, largest {max(result['batch_mb'])} MB (limit 256 MB)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
