"""Store scale test: build time, size on disk, query latency and memory from 1k to 100k chunks.

Vectors are inserted directly (re-used real embeddings, perturbed, or random unit vectors), so
this measures the STORE, not the embedding model. Each build and each serving test runs in a
fresh child process (`qa.eval.machine.in_child`), so memory peaks are its own. Writes go
through the Store's public methods only.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.embedding import Embedder
from index.errors import NewsQAError
from index.records import Article, Chunk, short_hash
from index.settings import Settings, apply_offline_env
from index.store import Store, build_where
from qa.errors import EvalError
from qa.eval.machine import dir_bytes, in_child, memory
from qa.eval.metrics import percentile_ms
from qa.eval.peers import StageProgress

SCALE_SIZES: tuple[int, ...] = (1_000, 10_000, 30_000, 100_000)
SCALE_CHUNKS_PER_ARTICLE = 10
SCALE_QUERIES = 100
SCALE_BATCH = 5000
SCALE_K = 40
_SCALE_REPEATS_UNDER = 20_000  # sizes below this are built 3 times (median reported)
_DIM_FALLBACK = 384
_VOCABULARY = ["news", "minister", "said", "government", "market", "court", "city",
               "police", "election", "report", "company", "people", "week", "year"]

# --- material ----------------------------------------------------------------------------------


def _eval_store_material(settings: Settings) -> tuple[np.ndarray, list[str]] | None:
    """Real chunk embeddings and texts of the largest cached eval store (None: no usable one)."""
    stores = sorted((settings.data_dir / "eval").glob("newsqa-*"), key=dir_bytes, reverse=True)
    if not stores:
        return None
    store = Store(settings.replace(data_dir=stores[0], chroma_url=""),
                  model_name=settings.embedding_model)
    try:
        texts, vectors = store.sample_chunks(20_000)
    except NewsQAError:
        return None
    if len(texts) < 500:
        return None
    return vectors, texts


def _synthetic_material(eval_dir: Path | None) -> tuple[np.ndarray, list[str]]:
    """Random unit vectors and texts made of corpus words (or a small fixed vocabulary)."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5000, _DIM_FALLBACK)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vocabulary = _VOCABULARY
    corpus = eval_dir / "corpus.jsonl" if eval_dir else None
    if corpus and corpus.is_file():
        with corpus.open(encoding="utf-8") as handle:
            first = [json.loads(next(handle))["body"] for _ in range(50)]
        vocabulary = sorted({w for body in first for w in body.split()})[:20_000]
    word_rng = random.Random(0)
    texts = [" ".join(word_rng.choice(vocabulary) for _ in range(150)) for _ in range(5000)]
    return vectors, texts


def scale_material(settings: Settings, folder: Path, eval_dir: Path | None) -> dict[str, Any]:
    """Seed vectors and texts for the scale test, written to `folder` (generated at run time,
    never committed): from a cached eval store when one exists, else synthetic."""
    folder.mkdir(parents=True, exist_ok=True)
    real = _eval_store_material(settings)
    if real is not None:
        vectors, texts = real
        origin = (f"{len(texts)} real chunk embeddings and texts of the eval store, "
                  f"re-used with random perturbation")
    else:
        vectors, texts = _synthetic_material(eval_dir)
        origin = "random unit vectors, synthetic text"
    np.save(folder / "vectors.npy", vectors)
    (folder / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    return {"origin": origin, "seed_vectors": len(vectors), "dimension": int(vectors.shape[1])}


def _perturbed(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(max(1, len(words) // 10)):  # swap ~10% of the words
        i, j = rng.randrange(len(words)), rng.randrange(len(words))
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def scale_items(folder: Path, n: int, seed: int
                ) -> Iterable[tuple[Article, list[Chunk], np.ndarray]]:
    """(Article, chunks, embeddings) for n chunks, SCALE_CHUNKS_PER_ARTICLE per article."""
    vectors = np.load(folder / "vectors.npy")
    texts = json.loads((folder / "texts.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(seed)
    words_rng = random.Random(seed)
    sources = ["Wire A", "Wire B", "Daily C", "Weekly D", "Radio E"]
    per = SCALE_CHUNKS_PER_ARTICLE
    for number in range(0, n, per):
        picks = rng.integers(0, len(texts), size=min(per, n - number))
        pieces = [_perturbed(texts[int(pick)], words_rng) for pick in picks]
        head = f"Synthetic article {seed}-{number}."
        article = Article(title=f"Synthetic {number}", body=head + "\n\n" + "\n\n".join(pieces),
                          source=sources[number // per % len(sources)],
                          published=f"2022-{1 + number // per % 12:02d}-"
                                    f"{1 + number // per % 28:02d}",
                          url=f"https://scale.invalid/{seed}/{number}")
        chunks, offset = [], len(head) + 2
        for ordinal, piece in enumerate(pieces):
            chunks.append(Chunk(article_id=article.id, ordinal=ordinal, start=offset,
                                end=offset + len(piece), text=piece))
            offset += len(piece) + 2
        base = vectors[picks]
        noisy = base + rng.normal(0.0, 0.05, size=base.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        yield article, chunks, noisy.astype(np.float32)


# --- child processes -----------------------------------------------------------------------------


def _scale_build_child(folder: str, data_dir: str, n: int, seed: int, model: str,
                       product_path: bool, queue: Any) -> None:
    """Child process: write n chunks into the product's store, either in batches of about
    SCALE_BATCH chunks (`Store.upsert_articles`, what a bulk load costs) or article by
    article (`Store.upsert_article`, the indexer's write path with its per-article checks)."""
    apply_offline_env()
    store = Store(Settings(data_dir=Path(data_dir)), model_name=model)
    before = memory()
    seconds = 0.0  # only store writes are timed, not the generation of the material
    pending: list[tuple[Article, list[Chunk], np.ndarray]] = []
    items = scale_items(Path(folder), n, seed)
    for item in items:
        pending.append(item)
        if product_path or sum(len(c) for _, c, _ in pending) >= SCALE_BATCH:
            mark = time.perf_counter()
            store.upsert_articles(pending)
            seconds += time.perf_counter() - mark
            pending = []
    mark = time.perf_counter()
    store.upsert_articles(pending)
    seconds += time.perf_counter() - mark
    store.reopen()
    articles, chunks_stored = store.count()
    queue.put({"seconds": seconds, "chunks": chunks_stored, "articles": articles,
               "rss_before": before["rss"], **{f"build_{k}": v for k, v in memory().items()}})


def _scale_serve_child(folder: str, data_dir: str, model: str, queries: int,
                       queue: Any) -> None:
    """Child process: open the store cold, run queries as the retriever does (k=40)."""
    apply_offline_env()
    vectors = np.load(Path(folder) / "vectors.npy")
    rng = np.random.default_rng(99)
    probes = vectors[rng.integers(0, len(vectors), size=queries + 1)]
    probes = probes + rng.normal(0.0, 0.05, size=probes.shape).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    base = memory()
    started = time.perf_counter()
    store = Store(Settings(data_dir=Path(data_dir)), model_name=model)
    store.query(probes[0], SCALE_K)
    first = time.perf_counter() - started
    plain, dated = [], []
    where = build_where(until="2022-06-30")
    for probe in probes[1:]:
        mark = time.perf_counter()
        store.query(probe, SCALE_K)
        plain.append(time.perf_counter() - mark)
        mark = time.perf_counter()
        store.query(probe, SCALE_K, where)
        dated.append(time.perf_counter() - mark)
    now = memory()
    queue.put({"open_first_query_s": first, "query_p50_ms": percentile_ms(plain, 50),
               "query_p95_ms": percentile_ms(plain, 95),
               "filtered_query_p50_ms": percentile_ms(dated, 50),
               "filtered_query_p95_ms": percentile_ms(dated, 95), "serve_rss": now["rss"],
               "serve_peak": now["peak"], "serve_rss_before_open": base["rss"]})


# --- the benchmark -------------------------------------------------------------------------------


def _measure_size(root: Path, n: int, model: str) -> dict[str, Any]:
    """Build n chunks (3 times below _SCALE_REPEATS_UNDER), then serve queries from the last."""
    material = str(root / "material")
    repeats = 3 if n < _SCALE_REPEATS_UNDER else 1
    builds = []
    for repeat in range(repeats):
        data_dir = root / f"n{n}-r{repeat}"
        builds.append(in_child(_scale_build_child, material, str(data_dir), n, repeat, model,
                               False))
        if repeat < repeats - 1:
            shutil.rmtree(data_dir)
    data_dir = root / f"n{n}-r{repeats - 1}"
    disk = dir_bytes(data_dir)
    serve = in_child(_scale_serve_child, material, str(data_dir), model, SCALE_QUERIES)
    shutil.rmtree(data_dir)
    seconds = [b["seconds"] for b in builds]
    return {"chunks": n, "articles": builds[-1]["articles"],
            "stored_chunks": builds[-1]["chunks"], "build_runs": repeats,
            "build_s_median": statistics.median(seconds), "build_s_all": seconds,
            "chunks_per_s": n / statistics.median(seconds), "disk_bytes": disk,
            "build_peak_rss": max(b["build_peak"] for b in builds), **serve}


def run_scale_benchmark(settings: Settings, *, sizes: Sequence[int] = SCALE_SIZES,
                        eval_dir: Path | None = None,
                        progress: StageProgress | None = None) -> dict[str, Any]:
    """Store build time, size on disk, query latency and RAM from 1k to 100k chunks, plus the
    indexer's own write path at the smallest size; scratch data under data_dir/bench/scale."""
    root = settings.data_dir / "bench" / "scale"
    if root.exists():
        shutil.rmtree(root)
    material = scale_material(settings, root / "material", eval_dir)
    rows = []
    for step, n in enumerate(sizes):
        rows.append(_measure_size(root, n, settings.embedding_model))
        if progress:
            progress("scale", step + 1, len(sizes))
    product = None
    if sizes:
        n = min(sizes)
        product = in_child(_scale_build_child, str(root / "material"),
                           str(root / "product-path"), n, 7, settings.embedding_model, True)
        product["chunks_per_s"] = n / product["seconds"]
    shutil.rmtree(root, ignore_errors=True)
    return {"material": material, "rows": rows, "queries_per_size": SCALE_QUERIES,
            "k": SCALE_K, "chunks_per_article": SCALE_CHUNKS_PER_ARTICLE,
            "batch": SCALE_BATCH, "product_path": product, "capacity": capacity(rows)}


def capacity(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the measured sizes mean for one 24 GiB machine: memory per chunk (slope between the
    smallest and largest size), and where date-filtered queries pass 1 s at p95 (linear fit)."""
    if len(rows) < 2:
        return {}
    low, high = rows[0], rows[-1]
    span = high["chunks"] - low["chunks"]
    ram_per_chunk = max(0.0, (high["serve_rss"] - low["serve_rss"]) / span)
    build_per_chunk = max(0.0, (high["build_peak_rss"] - low["build_peak_rss"]) / span)
    disk_per_chunk = max(0.0, (high["disk_bytes"] - low["disk_bytes"]) / span)
    budget = 24 * 2**30 * 0.5 - 2 * 2**30  # half the RAM, less ~2 GiB for model and app
    per = max(ram_per_chunk, build_per_chunk) or 1.0
    xs = [float(r["chunks"]) for r in rows]
    ys = [float(r["filtered_query_p95_ms"]) for r in rows]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
             / (sum((x - mean_x) ** 2 for x in xs) or 1.0))
    intercept = mean_y - slope * mean_x
    by_latency = int((1000.0 - intercept) / slope) if slope > 0 else None
    by_memory = int(budget / per)
    return {"serve_rss_bytes_per_chunk": ram_per_chunk,
            "build_rss_bytes_per_chunk": build_per_chunk,
            "disk_bytes_per_chunk": disk_per_chunk,
            "memory_budget_bytes": budget,
            "chunks_in_budget": by_memory,
            "filtered_p95_ms_per_1k_chunks": slope * 1000.0,
            "chunks_filtered_p95_under_1s": by_latency,
            "comfortable_chunks": min(by_memory, by_latency) if by_latency else by_memory}


# --- a synthetic newsroom index, built through the indexer (for add-1 and 100k retrieval) ---

SYNTHETIC_SOURCES = ("Wire A", "Wire B", "Daily C", "Weekly D", "Radio E")
#: Material chunk texts per synthetic article (the chunker then cuts its own chunks).
PIECES_PER_ARTICLE = 8


class MaterialEmbedder(Embedder):
    """The real tokenizer (chunking as the product does) with vectors drawn from real chunk
    embeddings instead of running the model: each text gets a material vector chosen by its
    hash, slightly perturbed. For building large indexes to measure the store and the
    indexer's own costs; never for quality."""

    def __init__(self, model: str, vectors: np.ndarray) -> None:
        super().__init__(model)
        self.vectors = np.asarray(vectors, dtype=np.float32)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def embed_documents(self, texts: Sequence[str], *,
                        progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        rows = [int(short_hash(text, 8), 16) for text in texts]
        rng = np.random.default_rng(rows[0] if rows else 0)
        base = self.vectors[[row % len(self.vectors) for row in rows]]
        noisy = base + rng.normal(0.0, 0.05, size=base.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        if progress:
            progress(len(texts), len(texts))
        return noisy.astype(np.float32)


def synthetic_records(texts: Sequence[str], articles: int, seed: int
                      ) -> Iterator[dict[str, str]]:
    """JSON records of `articles` synthetic articles made of perturbed material texts, dated
    across 2022 and spread over SYNTHETIC_SOURCES (so date and source filters bite)."""
    rng = random.Random(seed)
    for number in range(articles):
        pieces = [_perturbed(texts[rng.randrange(len(texts))], rng)
                  for _ in range(PIECES_PER_ARTICLE)]
        yield {"title": f"Synthetic report {seed}-{number}", "body": "\n\n".join(pieces),
               "source": SYNTHETIC_SOURCES[number % len(SYNTHETIC_SOURCES)],
               "published": f"2022-{1 + number % 12:02d}-{1 + number % 28:02d}",
               "url": f"https://synthetic.invalid/{seed}/{number}"}


#: Synthetic articles per JSON Lines file: keeps each file far below the upload size limit.
ARTICLES_PER_FILE = 500


def grow_index(settings: Settings, folder: Path, embedder: MaterialEmbedder,
               texts: Sequence[str], target_chunks: int, step: int) -> dict[str, Any]:
    """Index synthetic articles with `update` (rules quotes, material vectors) until the
    index holds about `target_chunks` chunks; returns the run's report figures. The
    articles of each step are JSON Lines files in `folder` (ARTICLES_PER_FILE each);
    EvalError when the indexer reports an error (an index smaller than asked for is no
    measurement)."""
    from index.build import stats, update
    from index.quotes import rules_extractor

    have = stats(settings)["chunks"] if settings.data_dir.exists() else 0
    per_article = _chunks_per_article(settings, embedder, texts)
    articles = max(1, round((target_chunks - have) / per_article))
    paths = _write_synthetic(folder, step, synthetic_records(texts, articles, seed=step))
    started = time.perf_counter()
    report = update(paths, settings, embedder=embedder, quotes=rules_extractor(),
                    prune=False)
    if report.errors:
        raise EvalError(f"growing the synthetic index to {target_chunks} chunks failed for "
                        f"{len(report.errors)} input(s), first: {report.errors[0]}")
    return {"target_chunks": target_chunks, "articles_added": articles,
            "chunks": report.chunks, "articles": report.articles,
            "seconds": time.perf_counter() - started}


def _write_synthetic(folder: Path, step: int, records: Iterator[dict[str, str]]) -> list[Path]:
    """The records as JSON Lines files synthetic-STEP-K.jsonl of ARTICLES_PER_FILE each."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    while batch := list(itertools.islice(records, ARTICLES_PER_FILE)):
        paths.append(folder / f"synthetic-{step}-{len(paths)}.jsonl")
        paths[-1].write_text("".join(json.dumps(r) + "\n" for r in batch), encoding="utf-8")
    return paths


def _chunks_per_article(settings: Settings, embedder: Embedder, texts: Sequence[str]) -> float:
    """Chunks the chunker cuts from a synthetic article, on average over a small sample."""
    from index.chunking import chunk_article
    from index.sources import record_article

    sample = list(synthetic_records(texts, 20, seed=999))
    counts = [len(chunk_article(record_article(r, "sample.jsonl", str(n)), embedder, settings))
              for n, r in enumerate(sample)]
    return max(1.0, statistics.fmean(counts))
