"""What the LLM path does with a real chat model: `newsqa eval-llm` (docs/llm.md).

Each question is asked twice, with the chat model and with the offline answerer: the seed
questions over the seed folder (indexed into a scratch store) and a fixed-seed sample of
answerable RealTime QA dev questions over a copy of the eval store. Reported per set: sentences
generated, dropped by reason, answers that kept a sentence, answers that fell back, answer
support (the eval's rule, `qa.eval.run.judge_answer`) beside the offline answerer's, latency
p50/p95 and the machine's load. Every generated sentence is written out with the passages the
model was shown, the material of the hand labels (tests/fixtures/llm_labels.jsonl).
"""

from __future__ import annotations

import inspect
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.records import ArticleMeta
from index.settings import Settings
from qa.api import NewsQA
from qa.errors import EvalError
from qa.eval.data import CorpusDoc, EvalQuestion, load_corpus, load_queries, write_jsonl
from qa.eval.machine import machine_info
from qa.eval.metrics import contains_answer, percentile_ms
from qa.eval.run import DocMapping, judge_answer
from qa.llm import FALLBACK_ANSWERER
from qa.markers import cited_numbers
from qa.records import Answer, Passage
from qa.sentences import SentenceCheck, split_sentences
from qa.support import SupportChecker

#: The seed-article questions of tests/qa/test_answers.py with the span each answer must hold.
SEED_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("What did Trenta say about armed intervention in Libya?", "the option does not exist"),
    ("Who did Conte meet in Benghazi?", "Haftar"),
    ("What did Conte say about France?", "no reason to think that France"),
    ("Which newspaper interviewed Trenta?", "Corriere della Sera"),
    ("Which newspaper did Conte talk to?", "Il Fatto Quotidiano"),
    ("What did the defense minister say about France?", "France is our partner and friend"),
    ("Which German leader did Conte speak with?", "Angela Merkel"),
    ("How much money did Italy allocate for migrant detention camps?", "six million euros"),
    ("Who leads the forces that launched the offensive on Tripoli?", "Khalifa Haftar"),
)
DEV_SAMPLE = 30
DEFAULT_MAX_NEW_TOKENS = 96
_DROPPED = re.compile(r"^sentence dropped \((?P<reason>[^)]*)\)")
KEPT = "kept"
#: The verdict of a sentence the model left uncited that the support check cited.
KEPT_BY_CHECK = "kept, cited by the check"


class RecordingChatModel:
    """A chat model that remembers every reply it gave (the text before any check)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.replies: list[str] = []

    def invoke(self, messages: Any, **kwargs: Any) -> Any:
        reply = self.model.invoke(messages, **kwargs)
        self.replies.append(str(reply.content))
        return reply

    def stream(self, messages: Any, **kwargs: Any) -> Iterator[Any]:
        pieces = []
        for chunk in self.model.stream(messages, **kwargs):
            pieces.append(str(chunk.content))
            yield chunk
        self.replies.append("".join(pieces))


@dataclass(frozen=True)
class SentenceRecord:
    """One generated sentence, its verdict and the passages it cites (or, uncited, all the
    passages the model was shown)."""

    question_set: str
    question: str
    sentence: str
    cited: tuple[int, ...]
    verdict: str
    detail: str
    chunk_ids: tuple[str, ...]
    passages: tuple[str, ...]
    #: the passage number (1-based, of those shown) the check cited an uncited sentence to
    assigned: int | None = None


@dataclass(frozen=True)
class Asked:
    """One question answered both ways."""

    question: str
    llm: Answer
    offline: Answer
    llm_seconds: float
    offline_seconds: float
    reply: str | None
    supported_llm: bool
    supported_offline: bool


@dataclass
class SetFigures:
    """The figures of one question set."""

    name: str
    questions: int = 0
    model_called: int = 0
    sentences: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    kept_answers: int = 0
    check_cited_answers: int = 0
    fallback_answers: int = 0
    not_found_answers: int = 0
    replay_mismatches: int = 0
    supported_llm: int = 0
    supported_offline: int = 0
    llm_latencies: list[float] = field(default_factory=list)
    offline_latencies: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        n = self.questions or 1
        return {"name": self.name, "questions": self.questions,
                "model_called": self.model_called, "sentences": self.sentences,
                "kept_sentences": self.verdicts.get(KEPT, 0),
                "kept_by_check": self.verdicts.get(KEPT_BY_CHECK, 0),
                "dropped": {k: v for k, v in sorted(self.verdicts.items())
                            if k not in (KEPT, KEPT_BY_CHECK)},
                "answers_kept_a_sentence": self.kept_answers,
                "answers_with_a_check_citation": self.check_cited_answers,
                "answers_fell_back": self.fallback_answers,
                "answers_not_found": self.not_found_answers,
                "replay_mismatches": self.replay_mismatches,
                "support_llm": self.supported_llm / n,
                "support_offline": self.supported_offline / n,
                "llm_p50_ms": percentile_ms(self.llm_latencies, 50),
                "llm_p95_ms": percentile_ms(self.llm_latencies, 95),
                "offline_p50_ms": percentile_ms(self.offline_latencies, 50),
                "offline_p95_ms": percentile_ms(self.offline_latencies, 95)}


def replay(reply: str, passages: Sequence[Passage], checker: SupportChecker, question: str,
           *, cite_uncited: bool = False) -> tuple[list[tuple[str, str, str, int | None]], str]:
    """Each sentence of the model's reply with its verdict (KEPT, KEPT_BY_CHECK or the drop
    reason), detail and the passage the check cited it to, and the kept text: the same check,
    in the same order, as the answerer ran."""
    check = SentenceCheck(passages, checker, question=question, cite_uncited=cite_uncited)
    verdicts: list[tuple[str, str, str, int | None]] = []
    for sentence, gap in split_sentences(reply):
        before = len(check.notes)
        shown = check.add(sentence, gap)
        new = [m for note in check.notes[before:] if (m := _DROPPED.match(note))]
        if shown:
            verdict = KEPT if check.last_assigned is None else KEPT_BY_CHECK
            detail = check.notes[-1] if check.last_assigned else ""
            verdicts.append((sentence, verdict, detail, check.last_assigned))
        else:
            reason = new[-1].group("reason") if new else "dropped"
            verdicts.append((sentence, reason, check.notes[-1] if check.notes else "", None))
    return verdicts, "".join(check.emitted)


def sentence_records(set_name: str, asked: Asked, checker: SupportChecker, *,
                     cite_uncited: bool = False) -> tuple[list[SentenceRecord], bool]:
    """The generated sentences of one answer, and whether the replay matched the answer."""
    if asked.reply is None:
        return [], True
    passages = list(asked.llm.passages)
    verdicts, kept_text = replay(asked.reply, passages, checker, asked.question,
                                 cite_uncited=cite_uncited)
    matched = kept_text == asked.llm.text if asked.llm.answerer == "llm" else not kept_text
    records = []
    for sentence, verdict, detail, assigned in verdicts:
        numbers = [n for n in dict.fromkeys(cited_numbers(sentence))
                   if 1 <= n <= len(passages)]
        shown = [passages[n - 1] for n in numbers] or passages
        records.append(SentenceRecord(
            question_set=set_name, question=asked.question, sentence=sentence,
            cited=tuple(numbers), verdict=verdict, detail=detail,
            chunk_ids=tuple(p.chunk.id for p in shown),
            passages=tuple(p.chunk.text for p in shown), assigned=assigned))
    return records, matched


def accepts_question_date() -> bool:
    """Whether NewsQA.ask takes the question's date (helper work in progress elsewhere)."""
    return "question_date" in inspect.signature(NewsQA.ask).parameters


def ask_both(llm_qa: NewsQA, offline_qa: NewsQA, model: RecordingChatModel, question: str,
             date: str | None) -> tuple[Answer, Answer, float, float, str | None]:
    """The question asked with the chat model and offline (until=date, as the eval does)."""
    options: dict[str, Any] = {"until": date} if date else {}
    if date and accepts_question_date():
        options["question_date"] = date
    replies = len(model.replies)
    begin = time.perf_counter()
    llm = llm_qa.ask(question, **options)
    middle = time.perf_counter()
    offline = offline_qa.ask(question, **options)
    end = time.perf_counter()
    reply = model.replies[-1] if len(model.replies) > replies else None
    return llm, offline, middle - begin, end - middle, reply


def tally(figures: SetFigures, asked: Asked, records: Sequence[SentenceRecord],
          matched: bool) -> None:
    """Add one question's outcome to its set's figures."""
    figures.questions += 1
    figures.model_called += asked.reply is not None
    figures.sentences += len(records)
    figures.verdicts.update(r.verdict for r in records)
    figures.kept_answers += asked.llm.answerer == "llm" and asked.llm.found
    figures.check_cited_answers += any(r.verdict == KEPT_BY_CHECK for r in records)
    figures.fallback_answers += asked.llm.answerer == FALLBACK_ANSWERER
    figures.not_found_answers += not asked.llm.found
    figures.replay_mismatches += not matched
    figures.supported_llm += asked.supported_llm
    figures.supported_offline += asked.supported_offline
    figures.llm_latencies.append(asked.llm_seconds)
    figures.offline_latencies.append(asked.offline_seconds)


@dataclass
class Measurement:
    """The whole run: figures per set, every generated sentence, the machine."""

    settings: dict[str, Any]
    machine: dict[str, Any]
    sets: list[SetFigures] = field(default_factory=list)
    sentences: list[SentenceRecord] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "machine": self.machine,
                "sets": [s.to_dict() for s in self.sets], "answers": self.answers}


def engines(settings: Settings, model: RecordingChatModel, embedder: Any
            ) -> tuple[NewsQA, NewsQA]:
    """A NewsQA with the chat model and an offline one sharing its store."""
    llm_qa = NewsQA(settings.replace(llm=""), embedder=embedder, llm=model)
    offline_qa = NewsQA(settings.replace(llm=""), embedder=embedder, store=llm_qa.store)
    return llm_qa, offline_qa


def measure_set(name: str, run: Measurement, llm_qa: NewsQA, offline_qa: NewsQA,
                model: RecordingChatModel, items: Sequence[tuple[EvalQuestion, Any]],
                progress: Any = None) -> None:
    """Ask every (question, judge) of one set both ways and record what happened; `judge`
    maps an answer to whether it is supported."""
    figures = SetFigures(name)
    checker = SupportChecker(llm_qa.embedder)
    for number, (question, judge) in enumerate(items, 1):
        llm, offline, llm_s, offline_s, reply = ask_both(
            llm_qa, offline_qa, model, question.query, question.question_date or None)
        asked = Asked(question.query, llm, offline, llm_s, offline_s, reply,
                      judge(llm), judge(offline))
        records, matched = sentence_records(
            name, asked, checker, cite_uncited=llm_qa.settings.llm_cite_uncited)
        tally(figures, asked, records, matched)
        run.sentences.extend(records)
        run.answers.append({"set": name, "id": question.id, "question": question.query,
                            "gold_answer": question.answer, "reply": reply,
                            "answerer": llm.answerer, "llm_text": llm.text,
                            "offline_text": offline.text, "supported_llm": asked.supported_llm,
                            "supported_offline": asked.supported_offline,
                            "llm_ms": 1000 * llm_s, "offline_ms": 1000 * offline_s})
        if progress:
            progress(f"eval-llm: {name}", number, len(items))
    run.sets.append(figures)


def seed_items(qa: NewsQA) -> list[tuple[EvalQuestion, Any]]:
    """The seed questions; an answer is supported when a quote holds the expected span and
    the first citation is from the seed folder's articles."""
    gold = {meta.id for meta, _ in qa.articles()}

    def judge_for(expected: str) -> Any:
        def judge(answer: Answer) -> bool:
            quotes = [c.quote for c in answer.citations]
            return bool(answer.found and answer.citations
                        and answer.citations[0].article.id in gold
                        and any(contains_answer(expected, q) for q in quotes))
        return judge

    return [(EvalQuestion(id=f"seed-{n}", query=q, answer=a, question_date="", gold=()),
             judge_for(a)) for n, (q, a) in enumerate(SEED_QUESTIONS)]


def answerable(question: EvalQuestion, bodies: dict[str, str]) -> bool:
    """A dev question whose gold answer occurs in one of its gold articles."""
    return any(contains_answer(question.answer, bodies.get(g, "")) for g in question.gold)


def dev_items(qa: NewsQA, corpus: Path, queries: Path, sample: int, seed: int
              ) -> list[tuple[EvalQuestion, Any]]:
    """A fixed-seed sample of answerable dev questions, judged by the eval's rule."""
    docs: list[CorpusDoc] = load_corpus(corpus)
    bodies = {d.id: d.body for d in docs}
    questions = [q for q in load_queries(queries, set(bodies)) if answerable(q, bodies)]
    chosen = random.Random(seed).sample(questions, min(sample, len(questions)))
    stored: list[ArticleMeta] = [meta for meta, _ in qa.store.list_articles()]
    mapping = DocMapping.build(docs, stored)
    if not mapping.to_article:
        raise EvalError("the eval store holds none of the corpus articles: pass a copy of "
                        "the store `newsqa eval` built from this corpus")

    def judge_for(question: EvalQuestion) -> Any:
        return lambda answer: bool(judge_answer(answer, question, mapping)["supported"])

    return [(q, judge_for(q)) for q in chosen]


def chat_model(spec: str, settings: Settings, max_new_tokens: int) -> Any:
    """The chat model of `spec`; a local model gets the reply cap."""
    if spec.startswith("local:"):
        from qa.local_llm import LocalChatModel

        return LocalChatModel.from_spec(spec.partition(":")[2], max_new_tokens=max_new_tokens)
    from qa.llm import make_chat_model

    return make_chat_model(spec, settings)


def seed_store_settings(settings: Settings, work_dir: Path) -> Settings:
    """A scratch store for the seed folder (never the user's store)."""
    return settings.replace(data_dir=work_dir / "seed-store", chroma_url="")


def eval_store_settings(store: Path, *, cite_uncited: bool = False) -> Settings:
    """Settings opening a built eval store (a copy: asking may write lock files)."""
    if not (store / "chroma").is_dir():
        raise EvalError(f"{store} is not a newsqa store (no chroma folder inside)")
    return Settings(data_dir=store, chroma_url="", seeds_dir=store / "no-seeds",
                    llm_cite_uncited=cite_uncited)


def run_llm_measure(settings: Settings, *, spec: str = "local:smollm2",
                    eval_store: Path | None = None, corpus: Path | None = None,
                    queries: Path | None = None, sample: int = DEV_SAMPLE, seed: int = 0,
                    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, work_dir: Path,
                    progress: Any = None) -> Measurement:
    """Measure the chat model on the seed questions and, given an eval store, the dev
    sample; see the module docstring."""
    from index.embedding import get_embedder

    embedder = get_embedder(settings.embedding_model)
    model = RecordingChatModel(chat_model(spec, settings, max_new_tokens))
    run = Measurement(settings={"llm": spec, "max_new_tokens": max_new_tokens,
                                "sample": sample, "seed": seed,
                                "cite_uncited": settings.llm_cite_uncited,
                                "question_date_passed": accepts_question_date()},
                      machine=machine_info(settings))
    seeds = seed_store_settings(settings, work_dir)
    llm_qa, offline_qa = engines(seeds, model, embedder)
    llm_qa.add([settings.seeds_dir])
    llm_qa.warm_up()
    offline_qa.warm_up()
    measure_set("seed", run, llm_qa, offline_qa, model, seed_items(llm_qa), progress)
    if eval_store is not None and corpus is not None and queries is not None:
        llm_qa, offline_qa = engines(
            eval_store_settings(eval_store, cite_uncited=settings.llm_cite_uncited), model,
            embedder)
        items = dev_items(llm_qa, corpus, queries, sample, seed)
        measure_set("dev", run, llm_qa, offline_qa, model, items, progress)
    run.machine["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    return run


def write_outputs(run: Measurement, out: Path) -> tuple[Path, Path]:
    """The figures (JSON) and every generated sentence (JSONL) under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    figures = out / "llm-measure.json"
    figures.write_text(json.dumps(run.to_dict(), indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    sentences = write_jsonl((asdict(r) for r in run.sentences), out / "llm-sentences.jsonl")
    return figures, sentences


def render_table(run: Measurement) -> str:
    """The figures as a Markdown table, one column per question set."""
    rows = [s.to_dict() for s in run.sets]
    reasons = sorted({reason for row in rows for reason in row["dropped"]})
    lines = ["| | " + " | ".join(row["name"] for row in rows) + " |",
             "|---|" + "---:|" * len(rows)]

    def line(label: str, values: Sequence[Any]) -> None:
        lines.append(f"| {label} | " + " | ".join(str(v) for v in values) + " |")

    line("questions", [r["questions"] for r in rows])
    line("model called (gate admitted)", [r["model_called"] for r in rows])
    line("sentences generated", [r["sentences"] for r in rows])
    line("sentences kept, cited by the model", [r["kept_sentences"] for r in rows])
    line("sentences kept, uncited, cited by the check", [r["kept_by_check"] for r in rows])
    for reason in reasons:
        line(f"dropped: {reason}", [r["dropped"].get(reason, 0) for r in rows])
    line("answers that kept >= 1 sentence", [r["answers_kept_a_sentence"] for r in rows])
    line("... of them with a citation by the check",
         [r["answers_with_a_check_citation"] for r in rows])
    line("answers that fell back (offline answer)", [r["answers_fell_back"] for r in rows])
    line("answers not found", [r["answers_not_found"] for r in rows])
    line("answer support, LLM path", [f"{100 * r['support_llm']:.1f}%" for r in rows])
    line("answer support, offline answerer", [f"{100 * r['support_offline']:.1f}%"
                                              for r in rows])
    line("latency p50 / p95, LLM path", [f"{r['llm_p50_ms'] / 1000:.1f} s / "
                                         f"{r['llm_p95_ms'] / 1000:.1f} s" for r in rows])
    line("latency p50 / p95, offline", [f"{r['offline_p50_ms']:.0f} ms / "
                                        f"{r['offline_p95_ms']:.0f} ms" for r in rows])
    return "\n".join(lines)
