"""The evaluation run: index the corpus through the product path, rank with every system,
answer as `newsqa ask` would, and score retrieval, answer support, short answers (SQuAD
EM/F1, support on their own span), refusals and, with the ablation, each answerer variant and
the confidence curve.

`run_eval` indexes the selected articles into their own cached store, answers every question
with until=question_date and question_date (with `time_words=True`, time words such as "this
week" also narrow the dates, counted from the question_date), then asks an unanswerable
variant of it (its gold articles and every article containing the answer left out) and builds
an `EvalReport`.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index import build
from index.embedding import Embedder, get_embedder, model_path
from index.records import ArticleMeta, short_hash
from index.settings import Settings
from qa.api import NewsQA
from qa.errors import EvalError
from qa.eval.ablation import Asker, Variant
from qa.eval.data import (
    DISTRACTORS_PER_QUESTION,
    CorpusDoc,
    EvalQuestion,
    corpus_fingerprint,
    load_corpus,
    load_queries,
    select,
    write_shards,
)
from qa.eval.machine import environment
from qa.eval.metrics import (
    contains_answer,
    distinct_in_order,
    gold_rank,
    holders_of_answer,
    padded,
    percentile_ms,
    squad_em,
    squad_f1,
)
from qa.eval.peers import RandomRanker, RankingSystem, RetrieverRanker, StageProgress, TextbookRAG
from qa.eval.report import (
    EVAL_VERSION,
    REFUSAL_CHECK,
    AblationRow,
    Calibration,
    EvalReport,
    QuestionResult,
    RefusalScores,
    ShortAnswerScores,
    SystemScores,
    hand_check_summary,
    load_hand_check,
    write_report,
)
from qa.records import Answer

DEPTH = 10
DEFAULT_SYSTEMS: tuple[str, ...] = ("newsqa", "textbook", "bm25")
BUILT_IN_SYSTEMS: tuple[str, ...] = (*DEFAULT_SYSTEMS, "random")


# --- caches ----------------------------------------------------------------------------------


def newsqa_cache_dir(settings: Settings, docs: Sequence[CorpusDoc]) -> Path:
    """The eval store of newsqa: corpus content + model + chunk settings decide its name."""
    key = json.dumps({"corpus": corpus_fingerprint(docs), "model": settings.embedding_model,
                      "chunk_tokens": settings.chunk_tokens,
                      "chunk_overlap": settings.chunk_overlap, "eval": EVAL_VERSION})
    return settings.data_dir / "eval" / f"newsqa-{short_hash(key)}"


def eval_store_settings(settings: Settings, docs: Sequence[CorpusDoc]) -> Settings:
    """Settings of the eval's own embedded store (never the user's store or a Chroma server)."""
    return settings.replace(data_dir=newsqa_cache_dir(settings, docs), chroma_url="",
                            seeds_dir=settings.data_dir / "eval" / "no-seeds")


def textbook_cache_dir(settings: Settings, docs: Sequence[CorpusDoc]) -> Path:
    """The textbook recipe's own Chroma dir: corpus content + model decide its name."""
    key = json.dumps({"corpus": corpus_fingerprint(docs), "model": settings.embedding_model,
                      "chunk_size": 1000, "chunk_overlap": 200, "eval": EVAL_VERSION})
    return settings.data_dir / "eval" / f"textbook-{short_hash(key)}"


# --- corpus doc ids <-> stored article ids -----------------------------------------------


@dataclass(frozen=True)
class DocMapping:
    """Corpus doc ids <-> stored article ids (by URL, else by the article id rule).

    `to_doc` names each stored article by its first doc; `canon` maps every doc to that name
    (two docs with the same body are one article); `to_article` maps docs to stored ids.
    """

    to_doc: dict[str, str]
    canon: dict[str, str]
    to_article: dict[str, str]
    unmapped: list[str]

    @classmethod
    def build(cls, docs: Sequence[CorpusDoc], stored: Sequence[ArticleMeta]) -> DocMapping:
        by_url = {meta.url: meta.id for meta in stored if meta.url}
        stored_ids = {meta.id for meta in stored}
        to_doc: dict[str, str] = {}
        to_article: dict[str, str] = {}
        unmapped = []
        for doc in sorted(docs, key=lambda d: d.id):
            article = by_url.get(doc.url.strip()) if doc.url.strip() else None
            if article is None:
                article = doc.article_id if doc.article_id in stored_ids else None
            if article is None:
                unmapped.append(doc.id)
                continue
            to_article[doc.id] = article
            to_doc.setdefault(article, doc.id)
        canon = {doc_id: to_doc[article] for doc_id, article in to_article.items()}
        return cls(to_doc=to_doc, canon=canon, to_article=to_article, unmapped=unmapped)

    def gold(self, question: EvalQuestion) -> set[str]:
        """The question's gold docs under their canonical names."""
        return {self.canon.get(g, g) for g in question.gold}

    def cited_doc(self, article_id: str) -> str:
        """The canonical doc name of a cited stored article ("" when unknown)."""
        return self.canon.get(self.to_doc.get(article_id, ""), "")


# --- the run -----------------------------------------------------------------------------------


@dataclass
class _Tally:
    """What the answering step saw: latencies, each answer judged, each variant judged."""

    latencies: list[float] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)
    excluded_sizes: list[int] = field(default_factory=list)
    readers: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class AnswerScores:
    """The answering step's figures: support and latency (SystemScores' answer fields), the
    refusals (None without unanswerable variants) and the short answers."""

    figures: dict[str, Any]
    refusal: RefusalScores | None
    short: ShortAnswerScores
    answerable: tuple[tuple[float, bool], ...] = ()
    unanswerable: tuple[tuple[float, bool], ...] = ()

    def calibration(self, source: str, threshold: float | None) -> Calibration:
        """These answers' confidence levels against support (see report.Calibration)."""
        return Calibration(source=source, answerable=self.answerable,
                           unanswerable=self.unanswerable, threshold=threshold)


class EvalRun:
    """One evaluation: the selected data, the eval store, the systems and what they did."""

    def __init__(self, settings: Settings, questions: Sequence[EvalQuestion],
                 docs: Sequence[CorpusDoc], *, progress: StageProgress | None,
                 time_words: bool = False) -> None:
        self.settings = settings
        self.time_words = time_words
        self.questions = list(questions)
        self.docs = list(docs)
        self.progress = progress
        self.store_settings = eval_store_settings(settings, docs)
        self.timings: dict[str, float] = {}
        self.cache: dict[str, Any] = {"newsqa_dir": str(self.store_settings.data_dir)}
        self.per_question: list[dict[str, Any]] = [{} for _ in questions]
        self.textbook: TextbookRAG | None = None
        self.embedder: Embedder | None = None
        self.qa: NewsQA | None = None
        self.mapping: DocMapping | None = None
        self.readers: set[str] = set()

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        mark = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - mark

    def _report(self, stage: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(stage, done, total)

    def index_newsqa(self) -> NewsQA:
        """Index the selected articles through the product path (index.build.update over
        JSONL shards) and open newsqa on them; map corpus docs to stored articles."""
        self.embedder = get_embedder(self.settings.embedding_model)
        shards = write_shards(self.docs, self.store_settings.data_dir / "input")

        def relay(stage: str, done: int, total: int) -> None:
            self._report(f"newsqa: {stage}", done, total)

        with self.timed("index_newsqa_s"):
            report = build.update([str(p) for p in shards], self.store_settings,
                                  embedder=self.embedder,
                                  progress=relay if self.progress else None)
        if report.errors:
            raise EvalError(f"indexing the eval corpus failed for {len(report.errors)} "
                            f"input(s), first: {report.errors[0]}")
        summary = report.to_dict()
        self.cache["newsqa_reused"] = summary.get("chunks_added", 0) == 0
        self.cache["newsqa_index"] = summary
        self.qa = NewsQA(self.store_settings, embedder=self.embedder)
        self.mapping = DocMapping.build(self.docs,
                                        [meta for meta, _ in self.qa.store.list_articles()])
        if self.mapping.unmapped:
            raise EvalError(f"{len(self.mapping.unmapped)} corpus articles are not in the eval "
                            f"store (first: {self.mapping.unmapped[0]}); was the corpus read "
                            f"correctly?")
        return self.qa

    def runner(self, item: str | RankingSystem, seed: int) -> RankingSystem:
        """The ranking system for a built-in name, or a given system prepared on the docs."""
        assert self.qa is not None and self.mapping is not None
        if not isinstance(item, str):
            if hasattr(item, "prepare"):
                item.prepare(self.docs)
            return item
        if item in ("newsqa", "bm25"):
            return RetrieverRanker(item, self.qa.retriever_engine, self.mapping.to_doc.get,
                                   mode="keyword" if item == "bm25" else None)
        if item == "random":
            ranker = RandomRanker(seed)
            ranker.prepare(self.docs)
            return ranker
        return self.build_textbook()

    def build_textbook(self) -> TextbookRAG:
        """The textbook recipe's store over the same docs (cached by content and model)."""
        with self.timed("index_textbook_s"):
            textbook = TextbookRAG(textbook_cache_dir(self.settings, self.docs),
                                   model_path=model_path(self.settings.embedding_model))
            textbook.build(self.docs, progress=self.progress)
        self.cache["textbook_dir"] = str(textbook.directory)
        self.cache["textbook_reused"] = textbook.reused
        self.cache["textbook_first_build_s"] = textbook.build_seconds or 0.0
        self.textbook = textbook
        return textbook

    def warm_up(self, runners: dict[str, RankingSystem]) -> None:
        """Call every system once so that first-call costs do not count as latency."""
        assert self.qa is not None
        first = self.questions[0]
        with self.timed("warm_up_s"):
            self.qa.warm_up()
            for runner in runners.values():
                runner.rank(first.query, DEPTH, first.question_date or None)

    def rank_all(self, runners: dict[str, RankingSystem]
                 ) -> tuple[dict[str, list[int | None]], dict[str, list[float]]]:
        """Each system's gold rank and retrieval time for every question."""
        assert self.mapping is not None
        ranks: dict[str, list[int | None]] = {name: [] for name in runners}
        latencies: dict[str, list[float]] = {name: [] for name in runners}
        total, step = len(self.questions) * len(runners), 0
        with self.timed("ranking_s"):
            for name, runner in runners.items():
                for number, question in enumerate(self.questions):
                    begin = time.perf_counter()
                    ranked = runner.rank(question.query, DEPTH, question.question_date or None)
                    latencies[name].append(time.perf_counter() - begin)
                    canonical = [self.mapping.canon.get(d, d) for d in ranked]
                    rank = gold_rank(distinct_in_order(canonical)[:DEPTH],
                                     self.mapping.gold(question))
                    ranks[name].append(rank)
                    self.per_question[number].setdefault("ranks", {})[name] = rank
                    step += 1
                    self._report("ranking", step, total)
        return ranks, latencies

    def answer_all(self, *, refusal: bool, ask: Asker | None = None, record: bool = True,
                   stage: str = "answering") -> AnswerScores:
        """Ask every question as `newsqa ask` would (until=question_date), then its
        unanswerable variant (gold articles and every article containing the answer left
        out). `ask` replaces NewsQA.ask (an ablation variant); `record=False` keeps the
        per-question results of the report untouched; `stage` names the timing and progress."""
        assert self.qa is not None
        asker = ask or self.qa.ask
        bodies = {d.id: padded(d.body) for d in self.docs} if refusal else {}
        rows = self.per_question if record else [{} for _ in self.questions]
        tally = _Tally()
        total, step = len(self.questions) * (2 if refusal else 1), 0
        with self.timed(f"{stage}_s"):
            for row, question in zip(rows, self.questions, strict=True):
                self.ask_answerable(asker, row, question, tally)
                step += 1
                self._report(stage, step, total)
                if refusal:
                    self.ask_unanswerable(asker, row, question, bodies, tally)
                    step += 1
                    self._report(stage, step, total)
        if record:
            self.readers |= tally.readers
        return _answer_scores(tally, len(self.questions), refusal=refusal)

    def ask_answerable(self, ask: Asker, row: dict[str, Any], question: EvalQuestion,
                       tally: _Tally) -> None:
        """Ask the question over every article; judge the answer's support."""
        assert self.mapping is not None
        begin = time.perf_counter()
        answer = ask(question.query, **self.dates(question))
        tally.latencies.append(time.perf_counter() - begin)
        judged = {**judge_answer(answer, question, self.mapping),
                  **judge_short_answer(answer, question, self.mapping)}
        tally.answers.append(judged)
        tally.readers.add(answer.reader)
        row.update(judged, reply=answer.text[:300], latency_ms=1000 * tally.latencies[-1])

    def ask_unanswerable(self, ask: Asker, row: dict[str, Any], question: EvalQuestion,
                         bodies: dict[str, str], tally: _Tally) -> None:
        """Ask again with the gold articles and every article holding the answer filtered
        out; a refusal is the right reply."""
        assert self.mapping is not None
        left_out = answer_articles(question, bodies, self.mapping)
        allowed = [a for a in sorted(self.mapping.to_doc) if a not in left_out]
        tally.excluded_sizes.append(len(left_out))
        row["excluded"] = len(left_out)
        if not allowed:
            return
        variant = ask(question.query, article_ids=allowed, **self.dates(question))
        judged = judge_answer(variant, question, self.mapping)
        tally.variants.append({**judged, "confidence": variant.confidence})
        row.update(refused_unanswerable=not variant.found,
                   variant_confidence=variant.confidence,
                   variant_first_citation=judged["first_citation"],
                   variant_reply=variant.text[:300], variant_short_answer=variant.short_answer,
                   variant_quotes=tuple(c.quote for c in variant.citations))

    def answerer_identity(self) -> dict[str, str]:
        """The answerer the product path used and its reader weights' sha256 ("" for none)."""
        assert self.qa is not None
        readers = sorted({r for r in self.readers if r})
        return {"answerer": self.qa.pipeline.answerer.name, "reader": ", ".join(readers)}

    def dates(self, question: EvalQuestion) -> dict[str, Any]:
        """The date arguments of ask for `question`: until and question_date are its
        question_date, and time words count from it (when the run reads them)."""
        day = question.question_date or None
        return {"until": day, "question_date": day, "time_words": self.time_words}

    def results(self) -> tuple[QuestionResult, ...]:
        return tuple(
            QuestionResult(id=q.id, query=q.query, answer=q.answer, gold=q.gold,
                           ranks=self.per_question[i].get("ranks", {}),
                           **{k: v for k, v in self.per_question[i].items() if k != "ranks"})
            for i, q in enumerate(self.questions))


def answer_articles(question: EvalQuestion, padded_bodies: dict[str, str],
                    mapping: DocMapping) -> set[str]:
    """Stored ids of the question's gold articles and of every article containing its
    normalised answer: what its unanswerable variant leaves out."""
    docs = set(question.gold) | holders_of_answer(question.answer, padded_bodies)
    return {mapping.to_article[d] for d in docs if d in mapping.to_article}


def judge_answer(answer: Answer, question: EvalQuestion, mapping: DocMapping
                 ) -> dict[str, Any]:
    """found, supported (a quote holds the answer and the first citation is gold), contained
    (the answer anywhere in the reply or its quotes), the first cited doc, and
    span_supported (supported with the refusal left out: what confidence is judged on)."""
    first = mapping.cited_doc(answer.citations[0].article.id) if answer.citations else ""
    quotes = [c.quote for c in answer.citations]
    in_quotes = any(contains_answer(question.answer, q) for q in quotes)
    span_supported = bool(first in mapping.gold(question) and in_quotes)
    contained = bool(answer.found and (contains_answer(question.answer, answer.text)
                                       or in_quotes))
    return {"found": answer.found, "supported": bool(answer.found and span_supported),
            "contained": contained, "first_citation": first, "span_supported": span_supported}


def judge_short_answer(answer: Answer, question: EvalQuestion, mapping: DocMapping
                       ) -> dict[str, Any]:
    """The short answer scored: SQuAD EM/F1 (0 for a refusal or no short answer), the first
    quote's F1 for context, and short_supported (the short answer holds the normalised gold
    answer and the citation carrying it is from a gold article); plus the confidence."""
    carrier = next((c for c in answer.citations if c.answer), None) if answer.found else None
    short = carrier.answer if carrier else ""
    first_quote = answer.citations[0].quote if answer.found and answer.citations else ""
    supported = bool(carrier and contains_answer(question.answer, short)
                     and mapping.cited_doc(carrier.article.id) in mapping.gold(question))
    return {"short_answer": short,
            "short_em": squad_em(short, question.answer) if short else 0.0,
            "short_f1": squad_f1(short, question.answer) if short else 0.0,
            "first_quote_f1": squad_f1(first_quote, question.answer) if first_quote else 0.0,
            "short_supported": supported, "confidence": answer.confidence}


def _answer_scores(tally: _Tally, questions: int, *, refusal: bool) -> AnswerScores:
    n = questions or 1
    answers = tally.answers
    figures = {"answer_support": sum(a["supported"] for a in answers) / n,
               "answer_contained": sum(a["contained"] for a in answers) / n,
               "answer_p50_ms": percentile_ms(tally.latencies, 50),
               "answer_p95_ms": percentile_ms(tally.latencies, 95)}
    refusals = RefusalScores(
        unanswerable=len(tally.variants), refused=sum(not v["found"] for v in tally.variants),
        answerable=questions, false_refusals=sum(not a["found"] for a in answers),
        excluded_articles_mean=statistics.fmean(tally.excluded_sizes)
        if tally.excluded_sizes else 0.0) if refusal else None
    return AnswerScores(figures=figures, refusal=refusals, short=_short_scores(tally, n),
                        answerable=_levels(answers), unanswerable=_levels(tally.variants))


def _short_scores(tally: _Tally, n: int) -> ShortAnswerScores:
    """Short-answer EM/F1 and support over all questions (0 for a refusal)."""
    answers = tally.answers

    def mean(key: str) -> float:
        return sum(float(a[key]) for a in answers) / n

    return ShortAnswerScores(
        questions=len(answers), exact_match=mean("short_em"), f1=mean("short_f1"),
        first_quote_f1=mean("first_quote_f1"), support=mean("short_supported"),
        with_short_answer=sum(bool(a["short_answer"]) for a in answers) / n)


def _levels(judged: Sequence[dict[str, Any]]) -> tuple[tuple[float, bool], ...]:
    """(confidence level, span_supported) per answer: its confidence, +inf when found without
    one, -inf when refused (see report.Calibration)."""
    def level(j: dict[str, Any]) -> float:
        if not j["found"]:
            return -math.inf
        return math.inf if j.get("confidence") is None else float(j["confidence"])

    return tuple((level(j), bool(j["span_supported"])) for j in judged)


def run_ablation(run: EvalRun, variants: Sequence[Variant], product: AnswerScores
                 ) -> tuple[tuple[AblationRow, ...], Calibration | None]:
    """Each variant through the same answering loop (the product's row from `product`, the
    answers already measured); the report's per-question results stay the product's. The
    calibrating variant's answers give the confidence curve."""
    assert run.qa is not None
    threshold = run.qa.reader.threshold if run.qa.reader is not None else None
    rows, calibration = [], None
    for variant in variants:
        ask = variant.build(run.qa)
        scores = product if ask is None else run.answer_all(
            refusal=True, ask=ask, record=False, stage=f"ablation {variant.name}")
        rows.append(_ablation_row(variant, scores))
        if variant.calibrates:
            calibration = scores.calibration(f"the '{variant.name}' variant", threshold)
    return tuple(rows), calibration


def _ablation_row(variant: Variant, scores: AnswerScores) -> AblationRow:
    refusal = scores.refusal
    return AblationRow(name=variant.name, description=variant.description,
                       answer_support=scores.figures["answer_support"],
                       short_answer_f1=scores.short.f1,
                       refusal_rate=refusal.refusal_rate if refusal else math.nan,
                       false_refusal_rate=refusal.false_refusal_rate if refusal else math.nan,
                       answer_p50_ms=scores.figures["answer_p50_ms"])


def _hand_check(path: Path | None, results: Sequence[QuestionResult]) -> dict[str, Any]:
    """The hand check's summary for this run's answered variants ({} without a file)."""
    return hand_check_summary(load_hand_check(path), results) if path else {}


def _check_systems(systems: Sequence[str | RankingSystem]) -> list[str]:
    """The systems' names; EvalError for an unknown built-in or a name given twice."""
    for item in systems:
        if isinstance(item, str) and item not in BUILT_IN_SYSTEMS:
            raise EvalError(f"unknown system {item!r}; use newsqa, textbook, bm25 or random")
    names = [s if isinstance(s, str) else s.name for s in systems]
    if len(set(names)) != len(names):
        raise EvalError(f"systems named twice: {names}")
    return names


def _counts(run: EvalRun, all_questions: int, all_docs: int) -> dict[str, int]:
    assert run.qa is not None
    articles, chunks = run.qa.store.count()
    counts = {"questions": len(run.questions), "articles": len(run.docs),
              "stored_articles": articles, "chunks": chunks,
              "gold_articles": len({g for q in run.questions for g in q.gold}),
              "questions_total": all_questions, "corpus_total": all_docs}
    if run.textbook is not None:
        counts["textbook_chunks"] = run.textbook.chunk_count
    return counts


def run_eval(corpus: Path, queries: Path, settings: Settings, *, sample: int | None = None,
             limit: int | None = None, seed: int = 0,
             systems: Sequence[str | RankingSystem] = DEFAULT_SYSTEMS, refusal: bool = True,
             progress: StageProgress | None = None, report_dir: Path | None = None,
             distractors: int = DISTRACTORS_PER_QUESTION, time_words: bool = False,
             ablation: Sequence[Variant] = (), hand_check: Path | None = REFUSAL_CHECK
             ) -> EvalReport:
    """Evaluate newsqa and its peers on a QA set; see the module docstring.

    `systems` names built-in systems ("newsqa", "textbook", "bm25", "random") or passes
    RankingSystem objects (scored on retrieval only). Writes the Markdown report to
    `report_dir` when given. `time_words=True` lets the questions' time words narrow the
    dates (off by default: the training weeks' distant-supervision evidence is often older
    than the question's week, so the quality floor would measure the data, not the answers).
    `ablation` answers the questions again with each variant (qa.eval.ablation); the
    `hand_check` file's verdicts on answered unanswerable variants are summarised.
    """
    wall = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    corpus, queries = Path(corpus), Path(queries)
    all_docs = load_corpus(corpus)
    all_questions = load_queries(queries, {d.id for d in all_docs})
    questions, docs = select(all_questions, all_docs, sample=sample, limit=limit, seed=seed,
                             distractors=distractors)
    names = _check_systems(systems)
    run = EvalRun(settings, questions, docs, progress=progress, time_words=time_words)
    run.index_newsqa()
    runners = {name: run.runner(item, seed) for name, item in zip(names, systems, strict=True)}
    run.warm_up(runners)
    ranks, latencies = run.rank_all(runners)
    answered = run.answer_all(refusal=refusal) if "newsqa" in runners else None
    figures = answered.figures if answered else {}
    scores = {name: SystemScores.from_ranks(name, ranks[name], latencies[name],
                                            **(figures if name == "newsqa" else {}))
              for name in runners}
    rows, calibration = run_ablation(run, ablation, answered) if answered and ablation \
        else ((), None)
    results = run.results()
    run.timings["total_s"] = time.perf_counter() - wall
    report = EvalReport(
        corpus=str(corpus), queries=str(queries),
        selection={"sample": sample, "limit": limit, "seed": seed,
                   "distractors_per_question": distractors if sample else None,
                   "depth": DEPTH, "date_rule": "until=question_date for every system",
                   "systems": names, "refusal": refusal, "time_words": time_words,
                   **run.answerer_identity()},
        counts=_counts(run, len(all_questions), len(all_docs)), systems=scores,
        refusal=answered.refusal if answered else None, timings=run.timings, cache=run.cache,
        settings=run.store_settings.to_dict(), environment=environment(settings),
        started_at=started_at, questions=results,
        short_answers=answered.short if answered else None, calibration=calibration,
        ablation=rows, hand_check=_hand_check(hand_check, results))
    if report_dir is not None:
        write_report(report, report_dir)
    return report
