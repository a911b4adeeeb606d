"""Synthetic-variant dataset for bench/search.py (generated once into a cache directory).

Families: every shared-corpus file between 4 KB and 256 KB is a family root (its first 48 KB).
Members are random walks: each new member mutates a random earlier member (byte edits, an
inserted random block, a deleted block, appended data), so near and far relatives exist at
realistic distances. For every member we keep real digests of its bytes: sha256, md5, sha1,
size, ssdeep, TLSH - never the bytes. Output: ``variants-<n>.jsonl`` with one line per file
``[sha256, md5, sha1, size, ssdeep, tlsh, family_index, generation]``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from multiprocessing import Pool
from pathlib import Path

CORPUS = Path("/work/shared/corpus")
WINDOW = 48 * 1024


def roots() -> list[tuple[str, str]]:
    out = []
    for line in (CORPUS / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        path = CORPUS / "files" / entry["sha256"]
        if path.exists() and 4096 <= path.stat().st_size <= 262144:
            out.append((entry["sha256"], entry["kind"]))
    return sorted(out)


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        if op < 0.45:  # scattered byte edits
            for _ in range(rng.randint(1, 40)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op < 0.7:  # inserted block
            at = rng.randrange(len(buf))
            buf[at:at] = rng.randbytes(rng.randint(16, 2048))
        elif op < 0.85 and len(buf) > 8192:  # deleted block
            at = rng.randrange(len(buf) - 4096)
            del buf[at : at + rng.randint(16, 2048)]
        else:  # appended data (overlay)
            buf += rng.randbytes(rng.randint(64, 4096))
    return bytes(buf[: 2 * WINDOW])


def family(args: tuple[int, str, int, int]) -> list[list[object]]:
    import pydeep
    import tlsh

    index, sha256, members, seed = args
    rng = random.Random(seed * 1_000_003 + index)
    root = (CORPUS / "files" / sha256).read_bytes()[:WINDOW]
    datas = [root]
    out = []
    generation = [0]
    for i in range(members):
        if i == 0:
            data = root
        else:
            parent = (
                max(0, len(datas) - 1 - int(rng.expovariate(1 / 8)))
                if rng.random() < 0.7
                else rng.randrange(len(datas))
            )
            data = mutate(datas[parent], rng)
            datas.append(data)
            generation.append(generation[parent] + 1)
        th = tlsh.hash(data)
        out.append(
            [
                hashlib.sha256(data).hexdigest(),
                hashlib.md5(data).hexdigest(),
                hashlib.sha1(data).hexdigest(),
                len(data),
                pydeep.hash_buf(data).decode(),
                th if th and th != "TNULL" else None,
                index,
                generation[i],
            ]
        )
    return out


def generate(cache: Path, total: int, jobs: int = 2, seed: int = 42) -> Path:
    target = cache / f"variants-{total}.jsonl"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    bases = roots()
    per = max(1, total // len(bases))
    tasks = [
        (i, sha, per + (1 if i < total - per * len(bases) else 0), seed) for i, (sha, _k) in enumerate(bases)
    ]
    started = time.monotonic()
    tmp = target.with_suffix(".tmp")
    done = 0
    with tmp.open("w") as fh, Pool(jobs) as pool:
        for rows in pool.imap_unordered(family, tasks, chunksize=1):
            for row in rows:
                fh.write(json.dumps(row) + "\n")
            done += len(rows)
            if done % 50_000 < len(rows):
                print(f"  generated {done}/{total} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    tmp.replace(target)
    return target


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 2)
