"""Evaluation data: the corpus and question files, the selection a run uses, held-out weeks.

One `EvalQuestion` and one `CorpusDoc` serve the eval, the benchmarks and the quality floor.
Dates are checked by `index.dates`; the article id of a corpus doc is `index.records.article_id`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.dates import is_iso
from index.records import article_id
from qa.errors import EvalError

DISTRACTORS_PER_QUESTION = 5

#: Quiz weeks of `../shared/eval/realtimeqa-train/` that no reader training may use: the first
#: quiz week of every calendar quarter of 2023 and 2024 (rule: `held_out_weeks`). The quality
#: floor (`qa.eval.floor`) measures on them; the 2022 dev set is never used for either.
HELD_OUT_WEEKS: tuple[str, ...] = ("20230106", "20230407", "20230707", "20231006",
                                   "20240105", "20240405", "20240705", "20241004")


@dataclass(frozen=True)
class CorpusDoc:
    """One article of an evaluation corpus (JSONL: id, title, source, published_at, url,
    authors, body)."""

    id: str
    title: str
    source: str
    published: str
    url: str
    authors: tuple[str, ...]
    body: str

    @property
    def article_id(self) -> str:
        """The id newsqa gives the article made from this doc (the one rule of index.records)."""
        return article_id(self.body)

    def to_record(self) -> dict[str, Any]:
        """The JSON record handed to the product indexer (same field names as the input)."""
        return {"id": self.id, "title": self.title, "source": self.source,
                "published_at": self.published, "url": self.url,
                "authors": list(self.authors), "body": self.body}


@dataclass(frozen=True)
class EvalQuestion:
    """One question (JSONL: id, query, answer, question_date, evidence[{doc_id}]); `gold` are
    the ids of its evidence articles (corpus doc ids, or store article ids once mapped)."""

    id: str
    query: str
    answer: str
    question_date: str
    gold: tuple[str, ...]

    @property
    def week(self) -> str:
        """The quiz week (YYYYMMDD) of a RealTime QA question id `YYYYMMDD_n`."""
        return self.id.split("_", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- reading -------------------------------------------------------------------------------


def read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line; EvalError names file and line otherwise."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise EvalError(f"{path}: not UTF-8 text: {exc.reason}") from exc
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines: keeps U+2028
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise EvalError(f"{path}:{number}: expected a JSON object per line")
        yield number, record


def _text(record: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> str:
    value = record.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise EvalError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise EvalError(f"{where}: field {name!r} is missing or empty")
    return value


def _iso_date(record: Mapping[str, Any], name: str, where: str) -> str:
    """An optional ISO date field, checked by index.dates; EvalError names line and field."""
    value = _text(record, name, where)
    if value and not is_iso(value):
        raise EvalError(f"{where}: field {name!r} is not an ISO date: {value!r}")
    return value


def _authors(record: Mapping[str, Any], where: str) -> tuple[str, ...]:
    authors = record.get("authors") or []
    if isinstance(authors, str):
        authors = [authors]
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        raise EvalError(f"{where}: field 'authors' must be a list of strings")
    return tuple(authors)


def load_corpus(path: Path) -> list[CorpusDoc]:
    """Articles of an evaluation corpus, validated (clear errors name file, line and field)."""
    docs: list[CorpusDoc] = []
    seen: set[str] = set()
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        doc_id = _text(record, "id", where, required=True)
        if doc_id in seen:
            raise EvalError(f"{where}: duplicate id {doc_id!r}")
        seen.add(doc_id)
        authors = _authors(record, where)
        published = _iso_date(record, "published_at", where)
        docs.append(CorpusDoc(id=doc_id, title=_text(record, "title", where),
                              source=_text(record, "source", where), published=published,
                              url=_text(record, "url", where), authors=authors,
                              body=_text(record, "body", where, required=True)))
    if not docs:
        raise EvalError(f"{path}: no articles")
    return docs


def _evidence(record: Mapping[str, Any], where: str, corpus_ids: set[str] | None
              ) -> tuple[str, ...]:
    evidence = record.get("evidence")
    if not isinstance(evidence, list) or not evidence:
        raise EvalError(f"{where}: field 'evidence' must be a non-empty list of "
                        f"{{doc_id}} objects")
    gold = []
    for item in evidence:
        if not isinstance(item, dict) or not isinstance(item.get("doc_id"), str):
            raise EvalError(f"{where}: every 'evidence' item needs a string 'doc_id'")
        if corpus_ids is not None and item["doc_id"] not in corpus_ids:
            raise EvalError(f"{where}: evidence doc_id {item['doc_id']!r} is not in "
                            f"the corpus")
        gold.append(item["doc_id"])
    return tuple(dict.fromkeys(gold))


def load_queries(path: Path, corpus_ids: set[str] | None = None) -> list[EvalQuestion]:
    """Questions of an evaluation set; every evidence doc_id must be in the corpus."""
    questions: list[EvalQuestion] = []
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        gold = _evidence(record, where, corpus_ids)
        question_date = _iso_date(record, "question_date", where)
        questions.append(EvalQuestion(
            id=_text(record, "id", where, required=True),
            query=_text(record, "query", where, required=True),
            answer=_text(record, "answer", where, required=True),
            question_date=question_date[:10], gold=gold))
    if not questions:
        raise EvalError(f"{path}: no questions")
    return questions


# --- choosing what a run uses --------------------------------------------------------------


def select(questions: Sequence[EvalQuestion], corpus: Sequence[CorpusDoc], *,
           sample: int | None = None, limit: int | None = None, seed: int = 0,
           distractors: int = DISTRACTORS_PER_QUESTION
           ) -> tuple[list[EvalQuestion], list[CorpusDoc]]:
    """The questions and articles a run uses.

    `limit` keeps the first N questions (whole corpus); `sample` draws N questions with `seed`
    and keeps only their gold articles plus `distractors` seeded random others per question.
    """
    chosen = list(questions)
    docs = list(corpus)
    if limit is not None:
        if limit < 1:
            raise EvalError("limit must be at least 1")
        chosen = chosen[:limit]
    if sample is not None:
        if sample < 1:
            raise EvalError("sample must be at least 1")
        rng = random.Random(seed)
        chosen = sorted(rng.sample(chosen, min(sample, len(chosen))), key=lambda q: q.id)
        gold = {doc_id for q in chosen for doc_id in q.gold}
        others = sorted(d.id for d in docs if d.id not in gold)
        extra = set(rng.sample(others, min(len(others), distractors * len(chosen))))
        docs = [d for d in docs if d.id in gold or d.id in extra]
    return chosen, docs


def held_out_weeks(weeks: Iterable[str]) -> tuple[str, ...]:
    """The rule behind HELD_OUT_WEEKS: the first quiz week (YYYYMMDD) of each calendar quarter."""
    first: dict[tuple[str, int], str] = {}
    for week in sorted(set(weeks)):
        first.setdefault((week[:4], (int(week[4:6]) - 1) // 3), week)
    return tuple(first.values())


def corpus_fingerprint(docs: Sequence[CorpusDoc]) -> str:
    """A hash of the articles' content (order-independent): names the eval caches."""
    digest = hashlib.sha256()
    for doc in sorted(docs, key=lambda d: d.id):
        digest.update(json.dumps(doc.to_record(), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def write_jsonl(records: Iterable[Mapping[str, Any]], path: Path) -> Path:
    """JSON Lines, rewritten only when the content changed (keeps the indexer's stat cache)."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def write_shards(docs: Sequence[CorpusDoc], folder: Path, per_file: int = 200) -> list[Path]:
    """The selected articles as JSONL shards (each well under the upload size limit)."""
    folder.mkdir(parents=True, exist_ok=True)
    ordered = sorted(docs, key=lambda d: d.id)
    return [write_jsonl((d.to_record() for d in ordered[begin:begin + per_file]),
                        folder / f"corpus-{number:04d}.jsonl")
            for number, begin in enumerate(range(0, len(ordered), per_file))]
