"""Indexing benchmark: full build, bare-encode floor, no-change re-run, one new article.

Each timed step runs in a fresh child process (as the CLI would), so its peak RSS is its own.
Usage: `python -m qa.eval.index_bench [--limit N] [--corpus FILE] [--seeds DIR]` prints JSON;
`--title-ablation` instead measures whether embedding the title with each chunk helps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from index.chunking import chunk_article, embedding_text
from index.records import Article
from index.settings import Settings, apply_offline_env
from qa.eval.machine import in_child, peak_rss_mb
from qa.eval.metrics import distinct_in_order, hit_at_k

#: The eval corpus next to a checkout, relative to the working directory (the CLI's default).
DEFAULT_CORPUS = Path("../shared/eval/realtimeqa/corpus.jsonl")
NEW_ARTICLE = ("Harbour authority approves night shipping\n\nThe harbour authority on Thursday "
               "approved night-time container traffic for a six-month trial, citing congestion "
               "after the dock strike. Residents' groups said they would appeal the decision.\n")


def _child_update(settings: Settings, paths: list[str], warm: bool, queue: Any) -> None:
    """Child process: (optionally load the model, then) run update and report timings."""
    apply_offline_env()
    started = time.perf_counter()
    from index.build import update
    from index.embedding import get_embedder

    embedder = get_embedder(settings.embedding_model)
    load_seconds = 0.0
    if warm:
        t = time.perf_counter()
        embedder.warm_up()
        load_seconds = time.perf_counter() - t
    embed_seconds = [0.0]

    def timed(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(texts: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return real(texts, **kwargs)
            finally:
                embed_seconds[0] += time.perf_counter() - t
        return call

    # the encoder pass, whether it keeps token states for the quote tagger or not
    embedder.embed_documents = timed(embedder.embed_documents)  # type: ignore[method-assign]
    embedder.embed_documents_with_states = timed(  # type: ignore[method-assign]
        embedder.embed_documents_with_states)
    t = time.perf_counter()
    report = update(paths, settings, embedder=embedder)
    queue.put({"update_seconds": round(time.perf_counter() - t, 3),
               "embed_seconds": round(embed_seconds[0], 3),
               "model_load_seconds": round(load_seconds, 3),
               "child_seconds": round(time.perf_counter() - started, 3),
               "peak_rss_mb": round(peak_rss_mb(), 1),
               "report": report.to_dict()})


def _child_floor(settings: Settings, texts: list[str], batch_size: int, queue: Any) -> None:
    """Child process: a bare SentenceTransformer.encode of the same texts (the floor)."""
    apply_offline_env()
    from sentence_transformers import SentenceTransformer

    from index.embedding import model_path

    model = SentenceTransformer(model_path(settings.embedding_model), device="cpu",
                                local_files_only=True)
    t = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                 convert_to_numpy=True, show_progress_bar=False)
    queue.put({"encode_seconds": round(time.perf_counter() - t, 3),
               "peak_rss_mb": round(peak_rss_mb(), 1)})


def _timed_child(target: Callable[..., None], *args: Any) -> dict[str, Any]:
    """`in_child`, plus the child's whole wall time as `process_seconds`."""
    started = time.perf_counter()
    result = in_child(target, *args)
    result["process_seconds"] = round(time.perf_counter() - started, 3)
    return result


def _embedded_texts(settings: Settings) -> list[str]:
    """The exact texts the build embedded, read back from the store."""
    from index.embedding import Embedder
    from index.store import Store

    embedder = Embedder(settings.embedding_model)  # tokenizer only, for the title budget
    store = Store(settings, model_name=settings.embedding_model)
    titles = {meta.id: meta.title for meta, _ in store.list_articles()}
    return [embedding_text(Article(title=titles.get(c.article_id, ""), body=c.text), c,
                           embedder) for c in store.iter_chunks()]


def _cut_corpus(corpus: Path, limit: int | None, out: Path) -> int:
    """The first `limit` lines of a JSONL corpus into `out`; the number of lines written."""
    written = 0
    with open(corpus, encoding="utf-8") as source, open(out, "w", encoding="utf-8") as target:
        for number, line in enumerate(source):
            if limit is not None and number >= limit:
                break
            target.write(line)
            written += 1
    return written


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def _build_figures(build: dict[str, Any], texts: Sequence[str]) -> dict[str, Any]:
    update, embed = build["update_seconds"], build["embed_seconds"]
    quotes = build["report"].get("quote_seconds", 0.0)
    return {"wall_seconds": build["wall_seconds"], "update_seconds": update,
            "model_load_seconds": build["model_load_seconds"], "embed_seconds": embed,
            "quote_seconds": quotes, "quotes_extracted": build["report"].get("quotes_extracted"),
            "update_without_quotes_seconds": round(update - quotes, 3),
            "other_seconds": round(update - embed - quotes, 3),
            "other_over_embed": _ratio(update - embed - quotes, embed),
            "peak_rss_mb": build["peak_rss_mb"],
            "chunks_per_second": round(len(texts) / update, 2) if update else None}


def run_index_benchmark(settings: Settings, paths: Sequence[str | os.PathLike[str]], *,
                        limit: int | None = None, corpus: Path | None = None,
                        work_dir: Path | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Measure a full build, its bare-encode floor, a no-change re-run and one new article.

    `corpus` (JSON Lines) is cut to its first `limit` articles into a temporary file and
    indexed together with `paths`; the store lives in a fresh data folder under `work_dir`.
    """
    apply_offline_env()
    work = Path(work_dir or tempfile.mkdtemp(prefix="newsqa-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    settings = settings.replace(data_dir=work / "data")
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # a full build, not an update
    inputs = [os.fspath(p) for p in paths]
    articles_in_corpus = 0
    if corpus is not None:
        articles_in_corpus = _cut_corpus(corpus, limit, work / "corpus.jsonl")
        inputs.append(str(work / "corpus.jsonl"))
    started = time.perf_counter()
    build = _timed_child(_child_update, settings, inputs, True)
    build["wall_seconds"] = round(time.perf_counter() - started, 3)
    texts = _embedded_texts(settings)
    floor = _timed_child(_child_floor, settings, texts, batch_size)
    rerun = _timed_child(_child_update, settings, inputs, False)
    new_file = work / "new" / "harbour.txt"
    new_file.parent.mkdir(parents=True, exist_ok=True)
    new_file.write_text(NEW_ARTICLE, encoding="utf-8")
    added = _timed_child(_child_update, settings, [*inputs, str(new_file.parent)], True)
    encode = floor["encode_seconds"]
    return {
        "inputs": inputs, "corpus_articles": articles_in_corpus,
        "articles": build["report"]["articles"], "chunks": build["report"]["chunks"],
        "chunk_words": sum(len(t.split()) for t in texts),
        "errors": len(build["report"]["errors"]),
        "build": _build_figures(build, texts),
        "floor": {"encode_seconds": encode,
                  "chunks_per_second": round(len(texts) / encode, 2) if encode else None,
                  "peak_rss_mb": floor["peak_rss_mb"]},
        "build_over_floor": _ratio(build["update_seconds"], encode),
        "build_without_quotes_over_floor": _ratio(
            build["update_seconds"] - build["report"].get("quote_seconds", 0.0), encode),
        **_rerun_figures(rerun, added),
        "settings": {"chunk_tokens": settings.chunk_tokens,
                     "chunk_overlap": settings.chunk_overlap,
                     "model": settings.embedding_model, "batch_size": batch_size},
        "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "work_dir": str(work),
    }


def _rerun_figures(rerun: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """The no-change re-run and the one-new-article run, as reported."""
    return {"no_change_rerun": {"update_seconds": rerun["update_seconds"],
                                "process_seconds": rerun["process_seconds"],
                                "model_loaded": rerun["report"]["model_loaded"],
                                "peak_rss_mb": rerun["peak_rss_mb"]},
            "add_one_article": {"update_seconds": added["update_seconds"],
                                "process_seconds": added["process_seconds"],
                                "indexed": added["report"]["indexed"],
                                "chunks_added": added["report"]["chunks_added"]}}


# --- title ablation ------------------------------------------------------------------------


def _ablation_sample(corpus: Path, queries: Path, n_queries: int, distractors: int, seed: int
                     ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], list[str]]:
    """(questions, corpus records by id, chosen doc ids): questions with evidence in the
    corpus, their evidence articles and seeded random distractors."""
    import random

    rng = random.Random(seed)
    with open(corpus, encoding="utf-8") as handle:
        records = {r["id"]: r for r in map(json.loads, handle)}
    with open(queries, encoding="utf-8") as handle:
        asked = [json.loads(line) for line in handle]
    asked = [q for q in asked if any(e["doc_id"] in records for e in q["evidence"])]
    rng.shuffle(asked)
    asked = asked[:n_queries]
    chosen = {e["doc_id"] for q in asked for e in q["evidence"] if e["doc_id"] in records}
    others = sorted(set(records) - chosen)
    rng.shuffle(others)
    return asked, records, sorted(chosen | set(others[:distractors]))


def run_title_ablation(settings: Settings, corpus: Path, queries: Path, *, n_queries: int = 60,
                       distractors: int = 120, seed: int = 7) -> dict[str, Any]:
    """Article hit@1/@5 of dense retrieval with and without the title prefix in embedded text.

    A sample of questions, their evidence articles and random distractors: small enough to run
    in a few minutes on a CPU; used to decide whether chunks embed their article's title.
    """
    import numpy as np

    from index.embedding import get_embedder

    asked, records, doc_ids = _ablation_sample(corpus, queries, n_queries, distractors, seed)
    embedder = get_embedder(settings.embedding_model)
    rows: list[tuple[str, str, str]] = []  # (doc id, chunk text, title)
    for doc_id in doc_ids:
        article = Article(title=records[doc_id].get("title") or "", body=records[doc_id]["body"])
        rows += [(doc_id, c.text, article.title)
                 for c in chunk_article(article, embedder, settings)]
    question_vectors = embedder.embed_documents([q["query"] for q in asked])
    result: dict[str, Any] = {"questions": len(asked), "chunks": len(rows),
                              "articles": len(doc_ids)}
    for name, texts in (("plain", [t for _, t, _ in rows]),
                        ("title", [f"{title}\n{t}" if title else t for _, t, title in rows])):
        matrix = embedder.embed_documents(texts)
        rankings = [distinct_in_order(rows[j][0] for j in np.argsort(-(matrix @ vector)))
                    for vector in question_vectors]
        for k in (1, 5):
            hits = sum(hit_at_k(ranked, {e["doc_id"] for e in q["evidence"]}, k)
                       for q, ranked in zip(asked, rankings, strict=True))
            result[f"{name}_hit@{k}"] = round(hits / len(asked), 3)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                        help="eval corpus, JSONL (default: %(default)s, from the working dir)")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--seeds", type=Path, default=Path("seeds"))
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--title-ablation", action="store_true",
                        help="measure the title prefix of embedded text instead")
    args = parser.parse_args(argv)
    apply_offline_env()
    if args.title_ablation:
        result = run_title_ablation(Settings(), args.corpus,
                                    args.corpus.with_name("queries_dev.jsonl"))
    else:
        result = run_index_benchmark(Settings(), [args.seeds], limit=args.limit,
                                     corpus=args.corpus if args.corpus.exists() else None,
                                     work_dir=args.work_dir)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --- one article added to an index of any size (in-process, model warm) ----------------------


def drop_records(corpus: Path, count: int, skip: int = 0) -> list[dict[str, Any]]:
    """`count` real articles of the eval corpus (after the first `skip`), as JSON records a
    newsroom would drop into its folder: typical lengths, real text."""
    records = []
    with corpus.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number < skip:
                continue
            record = json.loads(line)
            records.append({"title": record.get("title") or "", "body": record["body"],
                            "source": record.get("source") or "",
                            "published": record.get("published_at") or ""})
            if len(records) == count:
                break
    return records


def add_one_article(settings: Settings, embedder: Any, folder: Path, record: dict[str, Any],
                    name: str, quotes: Any = None) -> dict[str, Any]:
    """Drop one article into `folder` and index that folder with `update` in this process
    (model warm); its time, quote extraction time, and its floor: a bare encode of the same
    chunk texts with the same warm model. Then the file is deleted and the folder indexed
    again (the article pruned, also timed), so the index is as before and the same article
    can be added at another size."""
    from index.build import update
    from index.sources import read_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    started = time.perf_counter()
    report = update([folder], settings, embedder=embedder, quotes=quotes)
    seconds = time.perf_counter() - started
    article = read_file(str(path), settings).articles[0]
    texts = [embedding_text(article, chunk, embedder)
             for chunk in chunk_article(article, embedder, settings)]
    mark = time.perf_counter()
    embedder.embed_documents(texts)
    encode = time.perf_counter() - mark
    path.unlink()
    mark = time.perf_counter()
    pruned = update([folder], settings, embedder=embedder, quotes=quotes)
    return {"update_seconds": seconds, "encode_seconds": encode,
            "over_encode": _ratio(seconds, encode), "chunks_added": report.chunks_added,
            "indexed": report.indexed, "quote_seconds": report.quote_seconds,
            "index_chunks": report.chunks, "prune_seconds": time.perf_counter() - mark,
            "articles_deleted": pruned.articles_deleted,
            "store_write_seconds": report.store_write_seconds}


def add_one_figures(settings: Settings, embedder: Any, folder: Path,
                    records: Sequence[dict[str, Any]], tag: str, quotes: Any = None
                    ) -> dict[str, Any]:
    """`add_one_article` for each record in turn (each a separate run); the medians."""
    import statistics

    runs = [add_one_article(settings, embedder, folder, record, f"{tag}-{number}", quotes)
            for number, record in enumerate(records)]
    return {"runs": len(runs), "index_chunks": runs[-1]["index_chunks"],
            **{key: statistics.median(run[key] for run in runs)
               for key in ("update_seconds", "encode_seconds", "quote_seconds",
                           "chunks_added", "prune_seconds", "articles_deleted",
                           "store_write_seconds")},
            "over_encode": _ratio(statistics.median(r["update_seconds"] for r in runs),
                                  statistics.median(r["encode_seconds"] for r in runs)),
            "all_update_seconds": [round(r["update_seconds"], 3) for r in runs]}
