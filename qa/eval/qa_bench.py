"""Answering measurements on a RealTime QA subset: retrieval per configuration, refusal
calibration and latency.

A subset (questions spread over the set, their gold articles plus distractors) is indexed into
a scratch data folder once; `evaluate_retrieval`, `calibrate_refusal` and `run_qa_benchmark`
then run over it. Questions are `qa.eval.data.EvalQuestion` with `gold` mapped to store ids.
"""

from __future__ import annotations

import dataclasses
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from index import keyword
from index.chunking import chunk_article, embedding_text
from index.embedding import Embedder
from index.records import Article
from index.settings import OFFLINE_ENV, Settings
from index.sources import record_article
from index.store import Store
from qa.api import NewsQA
from qa.errors import EvalError
from qa.eval.data import EvalQuestion, load_corpus, load_queries
from qa.eval.metrics import (
    contains_answer,
    distinct_in_order,
    gold_rank,
    hit_rate,
    holders_of_answer,
    mean_reciprocal_rank,
    padded,
    percentile,
)
from qa.retriever import Filters, RetrievalConfig, Retriever
from qa.text import content_stems

DEFAULT_BARS: tuple[float, ...] = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45)


@dataclass(frozen=True)
class EvalSubset:
    """Questions (gold = store article ids), the articles indexed for them."""

    questions: tuple[EvalQuestion, ...]
    articles: tuple[Article, ...]

    def answer_articles(self, question: EvalQuestion) -> set[str]:
        """Gold articles plus every article containing the normalised answer (the eval's
        rule for what an unanswerable variant leaves out)."""
        bodies = {a.id: padded(a.body) for a in self.articles}
        return set(question.gold) | holders_of_answer(question.answer, bodies)


def load_subset(eval_dir: Path, *, questions: int = 60, distractors: int = 300,
                seed: int = 0) -> EvalSubset:
    """A deterministic subset: `questions` spread over the set, their gold articles, and
    `distractors` other articles drawn at random."""
    corpus_path = eval_dir / "corpus.jsonl"
    docs = {d.id: d for d in load_corpus(corpus_path)}
    asked = load_queries(eval_dir / "queries_dev.jsonl", set(docs))
    chosen = asked[::max(1, len(asked) // questions)][:questions]
    gold_ids = {g for q in chosen for g in q.gold}
    rest = sorted(set(docs) - gold_ids)
    random.Random(seed).shuffle(rest)
    articles: dict[str, Article] = {}
    id_of: dict[str, str] = {}
    for doc_id in sorted(gold_ids) + rest[:distractors]:
        record = docs[doc_id].to_record()
        record["eval_id"] = record.pop("id")
        article = record_article(record, str(corpus_path), doc_id)
        articles.setdefault(article.id, article)
        id_of[doc_id] = article.id
    mapped = tuple(dataclasses.replace(q, gold=tuple(id_of[g] for g in q.gold)) for q in chosen)
    return EvalSubset(mapped, tuple(articles.values()))


def index_subset(subset: EvalSubset, settings: Settings, embedder: Embedder, store: Store,
                 progress: Callable[[int, int], None] | None = None) -> None:
    """Index the subset's articles (skipping those already stored) and the keyword index."""
    present = {meta.id for meta, _ in store.list_articles()}
    todo = [a for a in subset.articles if a.id not in present]
    for done, article in enumerate(todo, 1):
        chunks = chunk_article(article, embedder, settings)
        vectors = embedder.embed_documents([embedding_text(article, c) for c in chunks])
        store.upsert_article(article, chunks, vectors)
        if progress:
            progress(done, len(todo))
    keyword.load_or_build(settings, store)


def evaluate_retrieval(retriever: Retriever, subset: EvalSubset,
                       configs: Mapping[str, RetrievalConfig]) -> dict[str, dict[str, float]]:
    """Article-level hit@1/5/10 and MRR@10 per retrieval configuration."""
    results: dict[str, dict[str, float]] = {}
    vectors = {q.id: retriever.embedder.embed_query(q.query) for q in subset.questions}
    for name, config in configs.items():
        ranks: list[int | None] = []
        took: list[float] = []
        for question in subset.questions:
            started = time.perf_counter()
            passages = retriever.retrieve(question.query, k=10,
                                          config=dataclasses.replace(config, per_article=1),
                                          query_embedding=vectors[question.id])
            took.append(time.perf_counter() - started)
            ranking = distinct_in_order(p.article.id for p in passages)
            ranks.append(gold_rank(ranking, question.gold))
        results[name] = {**{f"hit@{k}": hit_rate(ranks, k) if ranks else 0.0
                            for k in (1, 5, 10)},
                         "mrr@10": mean_reciprocal_rank(ranks, 10) if ranks else 0.0,
                         "p50_ms": 1000 * percentile(took, 50)}
    return results


def _refusal_row(qa: NewsQA, question: EvalQuestion, filters: Filters, answerable: bool
                 ) -> dict[str, Any]:
    """What the gate saw and decided for one question under `filters`."""
    passages = qa.retriever_engine.retrieve(question.query, filters=filters)
    analysis = qa.extractive.analyse(question.query, passages)
    coverage = analysis.coverage
    chosen = qa.extractive.select(analysis, passages) if analysis.spans else []
    pool: set[str] = set()
    for passage in passages:
        pool.update(content_stems(passage.chunk.text))
    stems = analysis.question.stems
    top = analysis.spans[0] if analysis.spans else None
    return {"answerable": answerable, "refused": not coverage.found,
            "best": coverage.best_semantic,
            "names_missing": "not mentioned" in coverage.reason,
            "answer_in_quotes": any(contains_answer(question.answer, s.text) for s in chosen),
            "top_score": top.score if top else 0.0, "top_keyword": top.keyword if top else 0.0,
            "stem_coverage": sum(s in pool for s in stems) / len(stems) if stems else 1.0}


def _share(rows: Sequence[Mapping[str, Any]], flag: Callable[[Mapping[str, Any]], bool]
           ) -> float:
    return sum(map(flag, rows)) / max(len(rows), 1)


def calibrate_refusal(qa: NewsQA, subset: EvalSubset,
                      bars: Sequence[float] = DEFAULT_BARS) -> dict[str, Any]:
    """Refusal rate on unanswerable questions (answer articles filtered out) and false
    refusals on answerable ones, for several relevance bars."""
    all_ids = {a.id for a in subset.articles}
    rows = []
    for question in subset.questions:
        rows.append(_refusal_row(qa, question, Filters(), True))
        allowed = sorted(all_ids - subset.answer_articles(question))
        rows.append(_refusal_row(qa, question, Filters(article_ids=tuple(allowed)), False))
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    by_bar = {}
    for bar in bars:
        def refused(row: Mapping[str, Any], bar: float = bar) -> bool:
            return row["names_missing"] or row["best"] < bar

        by_bar[str(bar)] = {"false_refusal": _share(answerable, refused),
                            "refusal_unanswerable": _share(unanswerable, refused)}
    return {"questions": len(subset.questions), "bars": by_bar,
            "names_gate_false_refusal": _share(answerable, lambda r: r["names_missing"]),
            "names_gate_refusal_unanswerable": _share(unanswerable,
                                                      lambda r: r["names_missing"]),
            "default_gate": {"false_refusal": _share(answerable, lambda r: r["refused"]),
                             "refusal_unanswerable": _share(unanswerable,
                                                            lambda r: r["refused"])},
            "rows": rows,
            "answer_in_quotes": _share(answerable, lambda r: r["answer_in_quotes"])}


def _prepared(qa: NewsQA | None, subset: EvalSubset | None, settings: Settings | None,
              eval_dir: Path | None, questions: int, distractors: int
              ) -> tuple[NewsQA, EvalSubset]:
    if qa is None:
        if settings is None:
            raise ValueError("give a NewsQA or the settings of an indexed store")
        qa = NewsQA(settings)
    if subset is None:
        if eval_dir is None:
            raise ValueError("give an eval subset or eval_dir")
        subset = load_subset(eval_dir, questions=questions, distractors=distractors)
        index_subset(subset, qa.settings, qa.embedder, qa.store)
        qa.retriever_engine.refresh_keyword()
    return qa, subset


def run_qa_benchmark(qa: NewsQA | None = None, subset: EvalSubset | None = None, *,
                     settings: Settings | None = None, eval_dir: Path | None = None,
                     questions: int = 40, distractors: int = 200) -> dict[str, Any]:
    """p50/p95 latency of retrieval and of a full default answer, model warm."""
    qa, subset = _prepared(qa, subset, settings, eval_dir, questions, distractors)
    qa.warm_up()
    qa.ask(subset.questions[0].query)  # first call pays one-off costs
    qa.extractive.clear_cache()  # span embeddings are measured cold, as for a new question
    retrieval, retrieval_cpu, answer, answer_cpu, found = [], [], [], [], 0
    stages: dict[str, list[float]] = {}
    for question in subset.questions:
        started, cpu = time.perf_counter(), time.process_time()
        qa.retriever_engine.retrieve(question.query)
        retrieval.append(time.perf_counter() - started)
        retrieval_cpu.append(time.process_time() - cpu)
    for question in subset.questions:
        started, cpu = time.perf_counter(), time.process_time()
        result = qa.ask(question.query)
        answer.append(time.perf_counter() - started)
        answer_cpu.append(time.process_time() - cpu)
        found += result.found
        for stage, seconds in result.timings.items():
            stages.setdefault(stage, []).append(seconds)
    articles, chunks = qa.store.count()
    return {"questions": len(subset.questions), "articles": articles, "chunks": chunks,
            "retrieval_p50_ms": 1000 * statistics.median(retrieval),
            "retrieval_p95_ms": 1000 * percentile(retrieval, 95),
            "retrieval_cpu_p50_ms": 1000 * statistics.median(retrieval_cpu),
            "answer_p50_ms": 1000 * statistics.median(answer),
            "answer_p95_ms": 1000 * percentile(answer, 95),
            "answer_cpu_p50_ms": 1000 * statistics.median(answer_cpu),
            "stage_p50_ms": {k: 1000 * statistics.median(v) for k, v in stages.items()},
            "found_rate": found / max(len(subset.questions), 1)}


# --- retrieval against its floor (the figures of `make bench`) -------------------------------

#: Candidates the floor's bare searches return: the retriever's default candidate depth.
FLOOR_DEPTH = RetrievalConfig().depth
#: Article depth of the eval's rankings (qa.eval.run's DEPTH), for the three systems' latencies.
EVAL_DEPTH = 10


def dev_questions(eval_dir: Path) -> list[EvalQuestion]:
    """The RealTime QA dev questions (query and question date), in file order."""
    return load_queries(eval_dir / "queries_dev.jsonl")


def open_retriever(data_dir: Path, settings: Settings, embedder: Embedder) -> Retriever:
    """The product's retriever over the index in `data_dir` (embedded store), warm."""
    local = settings.replace(data_dir=data_dir, chroma_url="")
    retriever = Retriever(local, embedder=embedder,
                          store=Store(local, model_name=local.encoder_signature))
    retriever.warm_up()
    return retriever


def _seconds(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _summary(seconds: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": 1000 * percentile(seconds, 50), "p95_ms": 1000 * percentile(seconds, 95),
            "n": len(seconds)}


def floor_blocks(retriever: Retriever, queries: Sequence[str], vectors: np.ndarray
                 ) -> dict[str, list[float]]:
    """The floor of each query, part by part: its embedding; a bare search of the same
    vectors, the faster of an exact numpy search (top FLOOR_DEPTH) and the store's own HNSW
    query unfiltered (`Store.query`, top FLOOR_DEPTH, which also fetches the hits' texts: no
    bare HNSW handle exists outside index/store.py); a bare BM25 search of the same keyword
    index (unfiltered, top FLOOR_DEPTH); and their per-query sum. Each part runs as its own
    block over all queries: a numpy search leaves BLAS threads spinning that would tax the
    next query's embedding on a 2-core machine."""
    depth = min(FLOOR_DEPTH, len(vectors) - 1)
    embeddings, embed = [], []
    for query in queries:
        started = time.perf_counter()
        embeddings.append(retriever.embedder.embed_query(query))
        embed.append(time.perf_counter() - started)
    exact = [_seconds(lambda e=e: np.argpartition(-(vectors @ e), depth)[:depth])
             for e in embeddings]
    hnsw = [_seconds(lambda e=e: retriever.store.query(e, FLOOR_DEPTH)) for e in embeddings]
    searched = [min(pair) for pair in zip(exact, hnsw, strict=True)]
    bm25 = [_seconds(lambda q=q: retriever.keyword.search(q, FLOOR_DEPTH)) for q in queries]
    return {"embed": embed, "vectors": searched, "vectors_exact": exact,
            "vectors_store_hnsw": hnsw, "bm25": bm25,
            "floor": [sum(parts) for parts in zip(embed, searched, bm25, strict=True)]}


def block_timings(retriever: Retriever, questions: Sequence[EvalQuestion],
                  vectors: np.ndarray, rounds: int = 2) -> dict[str, list[float]]:
    """The floor's blocks (`floor_blocks`), then every question's `Retriever.retrieve` with
    `until=question_date` (as the eval asks), then unfiltered (query embedding included,
    default k and depth); all `rounds` times, so that load on a shared machine falls on
    all alike."""
    out: dict[str, list[float]] = {"embed": [], "vectors": [], "vectors_exact": [],
                                   "vectors_store_hnsw": [], "bm25": [], "floor": [],
                                   "filtered": [], "unfiltered": []}
    for _ in range(rounds):
        for name, values in floor_blocks(retriever, [q.query for q in questions],
                                         vectors).items():
            out[name] += values
        for question in questions:
            until = Filters.make(until=question.question_date)
            out["filtered"].append(_seconds(lambda q=question.query, f=until:
                                            retriever.retrieve(q, filters=f)))
        out["unfiltered"] += [_seconds(lambda q=q.query: retriever.retrieve(q))
                              for q in questions]
    return out


def system_timings(retriever: Retriever, questions: Sequence[EvalQuestion],
                   textbook_dir: Path | None) -> dict[str, dict[str, float]]:
    """The eval's three systems' ranking latency (`qa.eval.run`'s rank step: depth 10,
    until=question_date), re-measured here: newsqa, BM25 alone, and the textbook LangChain
    recipe over the eval's cached textbook store when `textbook_dir` is given."""
    from index.embedding import model_path
    from qa.eval.peers import RetrieverRanker, TextbookRAG

    runners: dict[str, Any] = {
        "newsqa": RetrieverRanker("newsqa", retriever, lambda article_id: article_id),
        "bm25": RetrieverRanker("bm25", retriever, lambda article_id: article_id,
                                mode="keyword")}
    if textbook_dir is not None:
        textbook = TextbookRAG(textbook_dir,
                               model_path=model_path(retriever.settings.embedding_model))
        textbook.build(())  # the eval's cache, complete: opened, nothing embedded
        runners["textbook"] = textbook
    out = {}
    for name, runner in runners.items():
        first = questions[0]
        runner.rank(first.query, EVAL_DEPTH, first.question_date or None)  # first-call costs
        out[name] = _summary([_seconds(lambda r=runner, q=q: r.rank(
            q.query, EVAL_DEPTH, q.question_date or None)) for q in questions])
    return out


#: A narrow filter per question: the week up to its date (a few % of the dev chunks).
NARROW_DAYS = 7


def question_filters(question: EvalQuestion) -> dict[str, Filters]:
    """The filters the equality check runs per question: `until` its date (as the eval
    asks) and the week up to it (narrow)."""
    until = Filters.make(until=question.question_date)
    if not question.question_date:
        return {"until": until}
    day = date.fromisoformat(question.question_date[:10])
    return {"until": until, "week": Filters.make(since=day - timedelta(days=NARROW_DAYS - 1),
                                                 until=day)}


@dataclass(frozen=True)
class StoredVectors:
    """Every stored chunk's id, article (as a code into `articles`) and embedding (float64),
    read from the store apart from the product's catalog."""

    ids: np.ndarray  # chunk id per row (object)
    codes: np.ndarray  # article code per row
    articles: np.ndarray  # distinct article ids (object)
    vectors: np.ndarray  # (rows, dimension) float64

    @classmethod
    def read(cls, store: Store) -> StoredVectors:
        rows = store.chunk_articles()
        found = store.chunk_vectors([cid for cid, _ in rows])
        articles, codes = np.unique(np.array([aid for _, aid in rows], dtype=object),
                                    return_inverse=True)
        return cls(ids=np.array([cid for cid, _ in rows], dtype=object), codes=codes,
                   articles=articles,
                   vectors=np.stack([found[cid] for cid, _ in rows]).astype(np.float64))

    def nearest(self, allowed: set[str], embedding: np.ndarray, depth: int) -> list[str]:
        """The exact restricted search: float64 cosine over every chunk whose article is in
        `allowed` (as Chroma's `where` decided), best first, ties by chunk id."""
        keep = np.fromiter((aid in allowed for aid in self.articles), dtype=bool,
                           count=len(self.articles))
        rows = np.flatnonzero(keep[self.codes])
        if not len(rows):
            return []
        scores = (self.vectors @ np.asarray(embedding, dtype=np.float64))[rows]
        top = np.argpartition(-scores, min(depth, len(rows)) - 1)[:depth]
        order = sorted(top, key=lambda j: (-scores[j], self.ids[rows[j]]))
        return [str(self.ids[rows[j]]) for j in order]


def path_figures(retriever: Retriever, questions: Sequence[EvalQuestion],
                 depth: int = FLOOR_DEPTH) -> dict[str, Any]:
    """The dense search's two paths (the catalog's exact in-memory search, Chroma's HNSW
    restricted to the allowed chunk ids) per filter: p50 time, and how many top-`depth`
    lists differ from the exact restricted search computed apart (`StoredVectors`: all
    stored vectors read again, the filter evaluated by Chroma's `where`)."""
    store = retriever.store
    stored = StoredVectors.read(store)
    embeddings = [retriever.embedder.embed_query(q.query) for q in questions]
    out: dict[str, Any] = {"depth": depth, "questions": len(questions),
                           "chunks": len(stored.ids)}
    where_cache: dict[str, set[str]] = {}

    def chroma_allowed(filters: Filters) -> set[str]:
        key = repr(filters.where())
        if key not in where_cache:
            where_cache[key] = {m.id for m, _ in store.list_articles(where=filters.where())}
        return where_cache[key]

    for name in ("until", "week"):
        times: dict[str, list[float]] = {"memory": [], "store": []}
        differ = {"memory": 0, "store": 0}
        shares = []
        for question, embedding in zip(questions, embeddings, strict=True):
            filters = question_filters(question).get(name)
            if filters is None:
                continue
            allowed = chroma_allowed(filters)
            exact = stored.nearest(allowed, embedding, depth)
            shares.append(int(retriever.allowed(filters).rows.sum()) / max(len(stored.ids), 1))
            for path in times:
                started = time.perf_counter()
                hits = retriever.dense_search(embedding, depth, filters, vector_search=path)
                times[path].append(time.perf_counter() - started)
                differ[path] += [cid for cid, _ in hits.scored] != exact
        out[name] = {"filters": len(shares), "kept_share_median": statistics.median(shares),
                     **{f"{path}_p50_ms": 1000 * percentile(t, 50) for path, t in times.items()},
                     **{f"{path}_lists_differing": n for path, n in differ.items()}}
    return out


def retrieval_figures(retriever: Retriever, questions: Sequence[EvalQuestion], *,
                      textbook_dir: Path | None = None, systems: bool = True,
                      warm_questions: int = 5) -> dict[str, Any]:
    """Filtered and unfiltered retrieval and their floor, in one process over the same
    vectors and keyword index (`block_timings`, after `warm_questions` untimed questions),
    and optionally the eval's three systems. Ratios are p50 over the floor's p50."""
    _, vectors = retriever.store.sample_chunks(retriever.store.count()[1])
    articles, chunks = retriever.store.count()
    block_timings(retriever, questions[:warm_questions], vectors, rounds=1)
    timings = block_timings(retriever, questions, vectors)
    figures: dict[str, Any] = {"articles": articles, "chunks": chunks,
                               "questions": len(questions), "vector_rows": len(vectors),
                               **{name: _summary(v) for name, v in timings.items()}}
    floor = figures["floor"]["p50_ms"]
    for name in ("filtered", "unfiltered"):
        figures[name]["over_floor"] = figures[name]["p50_ms"] / floor if floor else None
    figures["paths"] = path_figures(retriever, questions)
    if systems:
        figures["systems"] = system_timings(retriever, questions, textbook_dir)
    return figures


# --- `newsqa serve` to its first page ----------------------------------------------------------

SERVE_TIMEOUT_S = 180.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _page_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # loopback only
            return reply.status == 200 and b"<html" in reply.read(4096).lower()
    except OSError:
        return False


def serve_seconds(data_dir: Path) -> float:
    """Seconds from starting `newsqa serve` (a fresh process, embedded store in `data_dir`)
    until its page answers on loopback; the process is stopped afterwards."""
    port = _free_port()
    newsqa = Path(sys.executable).with_name("newsqa")
    env = {**os.environ, **OFFLINE_ENV, "NEWSQA_DATA_DIR": str(data_dir),
           "NEWSQA_CHROMA_URL": ""}
    started = time.perf_counter()
    server = subprocess.Popen([str(newsqa), "serve", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while not _page_up(f"http://127.0.0.1:{port}/"):
            if server.poll() is not None or time.perf_counter() - started > SERVE_TIMEOUT_S:
                raise EvalError(f"newsqa serve did not serve its page (exit code "
                                f"{server.poll()})")
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def import_seconds() -> float:
    """The floor of serving: a fresh interpreter importing the web app (`import ui.app`:
    Gradio and the app's modules), no model, no store, no server."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import ui.app"], check=True,
                   env={**os.environ, **OFFLINE_ENV})
    return time.perf_counter() - started


def serve_figures(data_dir: Path, runs: int = 3) -> dict[str, Any]:
    """`newsqa serve` to first page with an existing index, `runs` times, and its floor."""
    served = [serve_seconds(data_dir) for _ in range(runs)]
    imports = [import_seconds() for _ in range(runs)]
    first, floor = statistics.median(served), statistics.median(imports)
    return {"runs": runs, "first_page_seconds": first, "all_seconds": served,
            "import_floor_seconds": floor, "over_floor": first / floor if floor else None}
