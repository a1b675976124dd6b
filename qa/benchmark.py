"""Measurements on the RealTime QA eval data: retrieval quality, refusal calibration, latency.

A subset (gold articles of some questions plus distractors) is indexed into a scratch data
folder once; `evaluate_retrieval`, `calibrate_refusal` and `run_qa_benchmark` then run over it.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.records import Article
from index.settings import Settings
from qa.evaluation import percentile


@dataclass(frozen=True)
class EvalQuestion:
    """One eval question with the article ids (in our store) that hold its answer."""

    id: str
    query: str
    answer: str
    gold: tuple[str, ...]


@dataclass(frozen=True)
class EvalSubset:
    """Questions, the articles indexed for them, and which articles contain each answer."""

    questions: tuple[EvalQuestion, ...]
    articles: tuple[Article, ...]

    def answer_articles(self, question: EvalQuestion) -> set[str]:
        """Gold articles plus every article whose body contains the answer string."""
        needle = _norm(question.answer)
        found = set(question.gold)
        if len(needle) >= 3:
            found |= {a.id for a in self.articles if needle in _norm(a.body)}
        return found


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def load_subset(eval_dir: Path, *, questions: int = 60, distractors: int = 300,
                seed: int = 0) -> EvalSubset:
    """A deterministic subset: `questions` spread over the set, their gold articles, and
    `distractors` other articles drawn at random."""
    from index.sources import record_article

    corpus_path, queries_path = eval_dir / "corpus.jsonl", eval_dir / "queries_dev.jsonl"
    records = {}
    for line in corpus_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["id"]] = record
    queries = [json.loads(line) for line in queries_path.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    step = max(1, len(queries) // questions)
    chosen = queries[::step][:questions]
    gold_ids = {e["doc_id"] for q in chosen for e in q["evidence"]}
    rest = sorted(set(records) - gold_ids)
    random.Random(seed).shuffle(rest)
    doc_ids = sorted(gold_ids) + rest[:distractors]
    articles: dict[str, Article] = {}
    id_of: dict[str, str] = {}
    for doc_id in doc_ids:
        record = dict(records[doc_id])
        record["eval_id"] = record.pop("id")
        article = record_article(record, str(corpus_path), doc_id)
        articles.setdefault(article.id, article)
        id_of[doc_id] = article.id
    out = tuple(EvalQuestion(q["id"], q["query"], q["answer"],
                             tuple(id_of[e["doc_id"]] for e in q["evidence"]))
                for q in chosen)
    return EvalSubset(out, tuple(articles.values()))


def index_subset(subset: EvalSubset, settings: Settings, embedder: Any, store: Any,
                 progress: Callable[[int, int], None] | None = None) -> None:
    """Index the subset's articles (skipping those already stored) and the keyword index."""
    from index import keyword
    from index.chunking import chunk_article, embedding_text

    present = {meta.id for meta, _ in store.list_articles()}
    todo = [a for a in subset.articles if a.id not in present]
    for done, article in enumerate(todo, 1):
        chunks = chunk_article(article, embedder, settings)
        vectors = embedder.embed_documents([embedding_text(article, c) for c in chunks])
        store.upsert_article(article, chunks, vectors)
        if progress:
            progress(done, len(todo))
    keyword.load_or_build(settings, store)


def evaluate_retrieval(retriever: Any, subset: EvalSubset,
                       configs: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Article-level hit@1/5/10 and MRR@10 per retrieval configuration."""
    from dataclasses import replace

    results: dict[str, dict[str, float]] = {}
    vectors = {q.id: retriever.embedder.embed_query(q.query) for q in subset.questions}
    for name, config in configs.items():
        hits = {1: 0, 5: 0, 10: 0}
        mrr = 0.0
        took: list[float] = []
        for question in subset.questions:
            started = time.perf_counter()
            passages = retriever.retrieve(question.query, k=10,
                                          config=replace(config, per_article=1),
                                          query_embedding=vectors[question.id])
            took.append(time.perf_counter() - started)
            ranking = list(dict.fromkeys(p.article.id for p in passages))
            rank = next((i for i, a in enumerate(ranking) if a in question.gold), None)
            if rank is not None:
                for k in hits:
                    hits[k] += rank < k
                mrr += 1.0 / (rank + 1)
        n = len(subset.questions) or 1
        results[name] = {"hit@1": hits[1] / n, "hit@5": hits[5] / n, "hit@10": hits[10] / n,
                         "mrr@10": mrr / n, "p50_ms": 1000 * percentile(took, 50)}
    return results


def calibrate_refusal(qa: Any, subset: EvalSubset,
                      bars: Sequence[float] = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
                      ) -> dict[str, Any]:
    """Refusal rate on unanswerable questions (answer articles filtered out) and false
    refusals on answerable ones, for several relevance bars."""
    from qa.retriever import Filters
    from qa.text import content_stems

    all_ids = {a.id for a in subset.articles}
    rows = []
    for question in subset.questions:
        for answerable in (True, False):
            if answerable:
                filters = Filters()
            else:
                allowed = sorted(all_ids - subset.answer_articles(question))
                filters = Filters(article_ids=tuple(allowed))
            passages = qa.retriever_engine.retrieve(question.query, filters=filters)
            analysis = qa.extractive.analyse(question.query, passages)
            coverage = analysis.coverage
            names_missing = "not mentioned" in coverage.reason
            chosen = qa.extractive.select(analysis, passages) if analysis.spans else []
            contains = any(_norm(question.answer) in _norm(s.text) for s in chosen)
            pool = set()
            for passage in passages:
                pool.update(content_stems(passage.chunk.text))
            stems = analysis.question.stems
            rows.append({"answerable": answerable, "refused": not coverage.found,
                         "best": coverage.best_semantic,
                         "names_missing": names_missing, "answer_in_quotes": contains,
                         "top_score": analysis.spans[0].score if analysis.spans else 0.0,
                         "top_keyword": analysis.spans[0].keyword if analysis.spans else 0.0,
                         "stem_coverage": (sum(s in pool for s in stems) / len(stems)
                                           if stems else 1.0)})
    out: dict[str, Any] = {"questions": len(subset.questions), "bars": {}}
    for bar in bars:
        def refused(row: dict[str, Any], bar: float = bar) -> bool:
            return row["names_missing"] or row["best"] < bar

        answerable = [r for r in rows if r["answerable"]]
        unanswerable = [r for r in rows if not r["answerable"]]
        out["bars"][str(bar)] = {
            "false_refusal": sum(map(refused, answerable)) / max(len(answerable), 1),
            "refusal_unanswerable": sum(map(refused, unanswerable)) / max(len(unanswerable), 1),
        }
    answerable = [r for r in rows if r["answerable"]]
    out["names_gate_false_refusal"] = (sum(r["names_missing"] for r in answerable)
                                       / max(len(answerable), 1))
    out["names_gate_refusal_unanswerable"] = (
        sum(r["names_missing"] for r in rows if not r["answerable"])
        / max(len(rows) - len(answerable), 1))
    unanswerable = [r for r in rows if not r["answerable"]]
    out["default_gate"] = {
        "false_refusal": sum(r["refused"] for r in answerable) / max(len(answerable), 1),
        "refusal_unanswerable": (sum(r["refused"] for r in unanswerable)
                                 / max(len(unanswerable), 1))}
    out["rows"] = rows
    out["answer_in_quotes"] = (sum(r["answer_in_quotes"] for r in answerable)
                               / max(len(answerable), 1))
    return out


def run_qa_benchmark(qa: Any = None, subset: EvalSubset | None = None, *,
                     settings: Settings | None = None, eval_dir: Path | None = None,
                     questions: int = 40, distractors: int = 200) -> dict[str, Any]:
    """p50/p95 latency of retrieval and of a full default answer, model warm."""
    from qa.api import NewsQA

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
