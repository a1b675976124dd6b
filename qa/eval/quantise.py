"""int8 dynamic quantisation of the encoder, measured against fp32 (issue 15).

Measurement only: never imported by product code. `run_int8_benchmark` loads the encoder
twice in one process (fp32, and a copy whose Linear layers are quantised to int8 with torch's
dynamic quantisation on the fbgemm engine), encodes the same RealTime QA chunk texts with each
in alternating rounds (so a busy shared CPU hits both alike), and reports chunks/s, their
ratio and the cosine between the two vectors of each text. `run_int8_retrieval` re-embeds the
chunks of a copy of the dev eval store with int8 and compares dense hit@5 with the store's
fp32 vectors (exact search, `until=question_date`, as the eval applies it).
Usage: `python -m qa.eval.quantise [--chunks N] [--rounds N] [--store DIR]` prints JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.chunking import chunk_article, embedding_text
from index.dates import day_number
from index.embedding import Embedder, quantise_int8, torch_threads
from index.records import Article
from index.settings import Settings
from qa.eval.data import load_corpus, load_queries
from qa.eval.machine import machine_info
from qa.eval.metrics import distinct_in_order, gold_rank

DEFAULT_EVAL_DIR = Path("../shared/eval/realtimeqa")
BATCH_SIZE = 64


def quantised_copy(model: Any) -> Any:
    """A copy of a SentenceTransformer whose nn.Linear layers run int8 (dynamic quantisation,
    fbgemm kernels); the fp32 model is left as it was."""
    return quantise_int8(copy.deepcopy(model))


def corpus_chunk_texts(corpus: Path, settings: Settings, embedder: Embedder,
                       limit: int) -> list[str]:
    """The embedded texts of the first `limit` chunks of a corpus, chunked as newsqa chunks."""
    texts: list[str] = []
    for doc in load_corpus(corpus):
        article = Article(title=doc.title, body=doc.body)
        texts += [embedding_text(article, chunk, embedder)
                  for chunk in chunk_article(article, embedder, settings)]
        if len(texts) >= limit:
            break
    return texts[:limit]


def encode(model: Any, texts: Sequence[str]) -> np.ndarray:
    """Unit-length vectors, as Embedder.embed_documents computes them."""
    return np.asarray(model.encode(list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False),
                      dtype=np.float32)


def alternating_rounds(models: dict[str, Any], texts: Sequence[str],
                       rounds: int) -> dict[str, list[float]]:
    """Seconds per encode of all `texts`, each model once per round in turn."""
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for number in range(rounds):
        order = list(models) if number % 2 == 0 else list(reversed(models))
        for name in order:
            mark = time.perf_counter()
            encode(models[name], texts)
            seconds[name].append(time.perf_counter() - mark)
    return seconds


def cosine_figures(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Mean and min cosine between row pairs of two unit-length matrices."""
    cosines = np.sum(reference * other, axis=1)
    return {"mean": round(float(cosines.mean()), 5), "min": round(float(cosines.min()), 5)}


def _speed(seconds: list[float], count: int) -> dict[str, Any]:
    median = float(np.median(seconds))
    return {"seconds": [round(s, 3) for s in seconds], "median_s": round(median, 3),
            "chunks_per_s": round(count / median, 1)}


def run_int8_benchmark(settings: Settings, *, eval_dir: Path = DEFAULT_EVAL_DIR,
                       chunks: int = 300, rounds: int = 3, threads: int = 1) -> dict[str, Any]:
    """fp32 vs int8 encoder speed (alternating rounds, one process, `threads` torch threads)
    and the cosine between their vectors, on `chunks` RealTime QA chunk texts."""
    embedder = Embedder(settings.embedding_model)
    texts = corpus_chunk_texts(eval_dir / "corpus.jsonl", settings, embedder, chunks)
    models = {"fp32": embedder.model, "int8": quantised_copy(embedder.model)}
    load_before = os.getloadavg()
    with torch_threads(threads):
        encode(models["fp32"], texts[:BATCH_SIZE])  # warm both before timing
        encode(models["int8"], texts[:BATCH_SIZE])
        seconds = alternating_rounds(models, texts, rounds)
        vectors = {name: encode(model, texts) for name, model in models.items()}
    fp32, int8 = (_speed(seconds[name], len(texts)) for name in ("fp32", "int8"))
    return {"machine": machine_info(settings), "chunks": len(texts), "rounds": rounds,
            "torch_threads": threads, "batch_size": BATCH_SIZE,
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "fp32": fp32, "int8": int8,
            "speedup_int8_over_fp32": round(fp32["median_s"] / int8["median_s"], 3),
            "round_ratios": [round(f / i, 3) for f, i
                             in zip(seconds["fp32"], seconds["int8"], strict=True)],
            "cosine_fp32_int8": cosine_figures(vectors["fp32"], vectors["int8"])}


def store_material(settings: Settings, embedder: Embedder
                   ) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Every visible chunk of a store: its article id, embedded text (title line + chunk, as
    the build embeds it), published day and stored fp32 vector (matched by chunk text)."""
    from index.store import Store

    store = Store(settings, model_name=settings.embedding_model)
    stored_texts, stored_vectors = store.sample_chunks(store.count()[1])
    row_of = {text: row for row, text in enumerate(stored_texts)}
    metas = {meta.id: meta for meta, _ in store.list_articles()}
    days = {row.id: row.day for row in store.article_rows()}
    articles, texts, rows, chunk_days = [], [], [], []
    for chunk in store.iter_chunks():
        meta = metas[chunk.article_id]
        articles.append(chunk.article_id)
        texts.append(embedding_text(Article(title=meta.title, body=chunk.text), chunk, embedder))
        rows.append(row_of[chunk.text])
        chunk_days.append(days.get(chunk.article_id, 0))
    return articles, texts, stored_vectors[rows], np.asarray(chunk_days)


def dense_hits(questions: Sequence[Any], query_vectors: np.ndarray, chunk_vectors: np.ndarray,
               chunk_articles: Sequence[str], chunk_days: np.ndarray, mapping: Any,
               k: int = 5) -> list[bool]:
    """Per question: is a gold article among the first k distinct articles of an exact dense
    search over the chunks published up to its question_date (the eval's date rule)?"""
    hits = []
    for question, vector in zip(questions, query_vectors, strict=True):
        scores = chunk_vectors @ vector
        limit = day_number(question.question_date or None)
        if limit is not None:
            scores = np.where(chunk_days <= limit, scores, -np.inf)
        order = [j for j in np.argsort(-scores)[:400] if np.isfinite(scores[j])]
        ranked = distinct_in_order(mapping.to_doc.get(chunk_articles[j], chunk_articles[j])
                                   for j in order)[:k]
        hits.append(gold_rank(ranked, mapping.gold(question)) is not None)
    return hits


def run_int8_retrieval(settings: Settings, store_dir: Path, *,
                       eval_dir: Path = DEFAULT_EVAL_DIR, threads: int = 1) -> dict[str, Any]:
    """Dense hit@5 of the dev questions: the store's fp32 vectors with fp32 query vectors vs
    every chunk re-embedded with the int8 encoder and int8 query vectors. `store_dir` is a COPY
    of the eval store (its data dir); it is only read."""
    from qa.eval.run import DocMapping

    store_settings = settings.replace(data_dir=store_dir, chroma_url="")
    embedder = Embedder(settings.embedding_model)
    articles, texts, fp32_chunks, days = store_material(store_settings, embedder)
    docs = load_corpus(eval_dir / "corpus.jsonl")
    questions = load_queries(eval_dir / "queries_dev.jsonl", {d.id for d in docs})
    from index.store import Store

    stored = [meta for meta, _ in Store(store_settings, model_name=settings.embedding_model)
              .list_articles()]
    mapping = DocMapping.build(docs, stored)
    int8_model = quantised_copy(embedder.model)
    mark = time.perf_counter()
    with torch_threads(threads):
        int8_chunks = encode(int8_model, texts)
        seconds = time.perf_counter() - mark
        np.save(store_dir.parent / "int8_chunk_vectors.npy", int8_chunks)  # for the hybrid run
        queries = [q.query for q in questions]
        fp32_queries, int8_queries = encode(embedder.model, queries), encode(int8_model, queries)
        check = cosine_figures(fp32_chunks[:BATCH_SIZE], encode(embedder.model,
                                                                texts[:BATCH_SIZE]))
    fp32_hits = dense_hits(questions, fp32_queries, fp32_chunks, articles, days, mapping)
    int8_hits = dense_hits(questions, int8_queries, int8_chunks, articles, days, mapping)
    return {"questions": len(questions), "chunks": len(texts),
            "int8_embed_seconds": round(seconds, 1), "torch_threads": threads,
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "dense_hit@5_fp32": round(sum(fp32_hits) / len(questions), 4),
            "dense_hit@5_int8": round(sum(int8_hits) / len(questions), 4),
            "questions_lost": sum(f and not i for f, i in zip(fp32_hits, int8_hits, strict=True)),
            "questions_gained": sum(i and not f for f, i
                                    in zip(fp32_hits, int8_hits, strict=True)),
            "cosine_fp32_int8": cosine_figures(fp32_chunks, int8_chunks),
            "stored_vs_reembedded_fp32_cosine": check}


class QueryEncoder:
    """The query side of an embedder for a Retriever: any SentenceTransformer-like model."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def warm_up(self) -> None:
        """Already loaded."""

    def embed_query(self, text: str) -> np.ndarray:
        with torch_threads(1):
            return encode(self.model, [text])[0]


def hybrid_hits(settings: Settings, query_encoder: Any, questions: Sequence[Any],
                mapping: Any, k: int = 5) -> list[bool]:
    """Per question: a gold article within the first k of the product retriever's article
    ranking (as the eval's "newsqa" system ranks, until=question_date)."""
    from index.store import Store
    from qa.eval.peers import RetrieverRanker
    from qa.eval.run import DEPTH
    from qa.retriever import Retriever

    store = Store(settings, model_name=settings.embedding_model)
    ranker = RetrieverRanker("newsqa", Retriever(settings, embedder=query_encoder, store=store),
                             mapping.to_doc.get)
    return [gold_rank(ranker.rank(q.query, DEPTH, q.question_date or None)[:k],
                      mapping.gold(q)) is not None for q in questions]


def replace_vectors(settings: Settings, vectors: np.ndarray) -> int:
    """Rewrite every visible chunk of a (COPIED) store with new vectors, rows in
    `Store.iter_chunks` order; the number of chunks rewritten."""
    from index.store import Store

    store = Store(settings, model_name=settings.embedding_model)
    chunks = list(store.iter_chunks())
    if len(chunks) != len(vectors):
        raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        rows.setdefault(chunk.article_id, []).append(row)
    articles = store.get_articles(sorted(rows))
    for begin in range(0, len(articles), 200):
        store.upsert_articles([(article, [chunks[r] for r in rows[article.id]],
                                vectors[rows[article.id]])
                               for article in articles[begin:begin + 200]])
    return len(chunks)


def run_int8_hybrid(settings: Settings, store_dir: Path, vectors: Path, *,
                    eval_dir: Path = DEFAULT_EVAL_DIR) -> dict[str, Any]:
    """Hybrid (product retriever) hit@5 of the dev questions with the store's fp32 vectors
    and fp32 queries, then with the int8 chunk vectors (`run_int8_retrieval` saved them)
    written into the store COPY and int8 queries. The copy is changed: use a throw-away one."""
    from qa.eval.run import DocMapping

    store_settings = settings.replace(data_dir=store_dir, chroma_url="")
    embedder = Embedder(settings.embedding_model)
    docs = load_corpus(eval_dir / "corpus.jsonl")
    questions = load_queries(eval_dir / "queries_dev.jsonl", {d.id for d in docs})
    from index.store import Store

    stored = [meta for meta, _ in Store(store_settings, model_name=settings.embedding_model)
              .list_articles()]
    mapping = DocMapping.build(docs, stored)
    fp32_hits = hybrid_hits(store_settings, QueryEncoder(embedder.model), questions, mapping)
    rewritten = replace_vectors(store_settings, np.load(vectors))
    int8 = QueryEncoder(quantised_copy(embedder.model))
    int8_hits = hybrid_hits(store_settings, int8, questions, mapping)
    return {"questions": len(questions), "chunks_rewritten": rewritten,
            "hybrid_hit@5_fp32": round(sum(fp32_hits) / len(questions), 4),
            "hybrid_hit@5_int8": round(sum(int8_hits) / len(questions), 4),
            "questions_lost": sum(f and not i for f, i in zip(fp32_hits, int8_hits, strict=True)),
            "questions_gained": sum(i and not f for f, i
                                    in zip(fp32_hits, int8_hits, strict=True))}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR)
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--store", type=Path, default=None,
                        help="A COPY of the dev eval store: measure dense hit@5 instead.")
    parser.add_argument("--hybrid-vectors", type=Path, default=None,
                        help="With --store (a throw-away copy): hybrid hit@5 with these "
                             "int8 chunk vectors written into it.")
    args = parser.parse_args(argv)
    if args.store is not None and args.hybrid_vectors is not None:
        figures = run_int8_hybrid(Settings.from_env(), args.store, args.hybrid_vectors,
                                  eval_dir=args.eval_dir)
    elif args.store is not None:
        figures = run_int8_retrieval(Settings.from_env(), args.store, eval_dir=args.eval_dir,
                                     threads=args.threads)
    else:
        figures = run_int8_benchmark(Settings.from_env(), eval_dir=args.eval_dir,
                                     chunks=args.chunks, rounds=args.rounds,
                                     threads=args.threads)
    print(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
