"""Precision and recall of the LLM sentence check on hand-labelled sentences.

`python -m qa.eval.llm_check CASES.jsonl`: each line is {"sentence", "passages" (the cited
passage texts), "label": "supported" | "unsupported"}. A dropped sentence is a positive:
precision = dropped sentences that were unsupported / dropped; recall = unsupported sentences
dropped / unsupported. Three variants are measured: content-word overlap alone, embedding
similarity alone, and the product rule (similarity, or overlap with a looser similarity); the
name/number, quotation, negation and speaker rules apply in all three. A fourth row measures
the answerer as it runs: a sentence the model left uncited ("cited": false) is kept when the
check finds a passage on the question's topic that supports it alone (`qa.sentences`); with
`--shown llm-sentences.jsonl` (written by `newsqa eval-llm`) it is judged against every passage
the model was shown, not only the labelled one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from index.records import Article, Chunk
from qa.errors import EvalError
from qa.eval.data import read_jsonl
from qa.markers import strip_markers
from qa.records import Passage
from qa.sentences import SentenceCheck
from qa.support import SupportChecker


@dataclass(frozen=True)
class Case:
    """One labelled sentence and the texts of the passages it cites."""

    sentence: str
    passages: tuple[str, ...]
    supported: bool
    question: str = ""
    #: whether the model gave the sentence a [n] (cases without the field count as cited)
    cited: bool = True


@dataclass(frozen=True)
class Score:
    """The confusion counts of one variant (positive = dropped)."""

    name: str
    true_drops: int
    false_drops: int
    missed: int
    kept: int
    wrong: tuple[str, ...]

    @property
    def precision(self) -> float:
        dropped = self.true_drops + self.false_drops
        return self.true_drops / dropped if dropped else 1.0

    @property
    def recall(self) -> float:
        unsupported = self.true_drops + self.missed
        return self.true_drops / unsupported if unsupported else 1.0


def load_cases(path: Path) -> list[Case]:
    """The labelled cases of a JSONL file (sentence, passages, label); EvalError names the
    file and line of a malformed one."""
    cases = []
    for number, row in read_jsonl(path):
        try:
            cases.append(Case(str(row["sentence"]), tuple(row["passages"]),
                              row["label"] == "supported", str(row.get("question", "")),
                              bool(row.get("cited", True))))
        except (KeyError, TypeError) as exc:
            raise EvalError(f"{path}:{number}: expected sentence, passages and label") from exc
    return cases


def as_passages(texts: Sequence[str]) -> list[Passage]:
    """Passages made from bare texts (one article each)."""
    out = []
    for text in texts:
        article = Article(title="", body=text, source="eval")
        chunk = Chunk(article_id=article.id, ordinal=0, start=0, end=len(text), text=text)
        out.append(Passage(chunk=chunk, article=article.meta, score=1.0))
    return out


def load_shown(path: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    """(question, sentence) -> every passage text the model was shown, for the uncited
    sentences of an `newsqa eval-llm` llm-sentences.jsonl."""
    shown = {}
    for number, row in read_jsonl(path):
        try:
            if not row["cited"]:
                shown[(str(row["question"]), str(row["sentence"]))] = tuple(row["passages"])
        except (KeyError, TypeError) as exc:
            raise EvalError(f"{path}:{number}: expected question, sentence, cited and "
                            "passages") from exc
    return shown


def with_shown(cases: Sequence[Case], shown: dict[tuple[str, str], tuple[str, ...]]
               ) -> list[Case]:
    """The cases with each uncited one's passages replaced by all those the model was shown;
    EvalError names a case the file does not hold."""
    out = []
    for case in cases:
        if not case.cited:
            passages = shown.get((case.question, case.sentence))
            if passages is None:
                raise EvalError(f"no shown passages for {case.sentence[:60]!r}")
            case = replace(case, passages=passages)
        out.append(case)
    return out


def kept_by_answerer(checker: SupportChecker, case: Case) -> tuple[bool, str]:
    """(kept, why not) as the answerer decides with `llm_cite_uncited` on: an uncited
    sentence through SentenceCheck (cited by the check or dropped), a cited one judged
    against its cited passages."""
    passages = as_passages(case.passages)
    if case.cited:
        verdict = checker.judge(strip_markers(case.sentence).strip(), passages)
        return verdict.supported, verdict.detail
    check = SentenceCheck(passages, checker, question=case.question, cite_uncited=True)
    shown = check.add(case.sentence, "")
    return bool(shown), "" if shown else check.notes[-1]


def score(name: str, checker: SupportChecker, cases: Sequence[Case], *,
          cite_uncited: bool = False) -> Score:
    """Run the checker over the cases and count its drops; `cite_uncited`: decide uncited
    cases as the answerer does (`kept_by_answerer`)."""
    true_drops = false_drops = missed = kept = 0
    wrong = []
    for case in cases:
        if cite_uncited:
            supported, detail = kept_by_answerer(checker, case)
        else:
            # the answerer judges a sentence without its [n] markers (qa.sentences)
            verdict = checker.judge(strip_markers(case.sentence).strip(),
                                    as_passages(case.passages))
            supported, detail = verdict.supported, verdict.detail
        dropped = not supported
        if dropped and not case.supported:
            true_drops += 1
        elif dropped:
            false_drops += 1
            wrong.append(f"dropped a supported sentence: {case.sentence} ({detail})")
        elif not case.supported:
            missed += 1
            wrong.append(f"kept an unsupported sentence: {case.sentence}")
        else:
            kept += 1
    return Score(name, true_drops, false_drops, missed, kept, tuple(wrong))


def variants(embedder: Any) -> list[tuple[str, SupportChecker]]:
    """The content rules compared: overlap alone, similarity alone, the product rule."""
    return [("overlap only", SupportChecker(None)),
            ("similarity only", SupportChecker(embedder, min_overlap=2.0)),
            ("product rule", SupportChecker(embedder))]


def sweep(embedder: Any, cases: Sequence[Case]) -> list[str]:
    """The product rule's precision and recall over a grid of its three thresholds."""
    rows = []
    for similarity in (0.6, 0.7, 0.8):
        for overlap in (0.5, 0.6, 0.67):
            for loose in (0.35, 0.45, 0.5):
                checker = SupportChecker(embedder, min_similarity=similarity,
                                         min_overlap=overlap, loose_similarity=loose)
                result = score("sweep", checker, cases)
                rows.append(f"similarity >= {similarity:.2f} or (overlap >= {overlap:.2f} and "
                            f"similarity >= {loose:.2f}): precision {result.precision:.2f} "
                            f"recall {result.recall:.2f}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.eval.llm_check", description=__doc__)
    parser.add_argument("cases", type=Path)
    parser.add_argument("--show", action="store_true", help="list the wrong verdicts")
    parser.add_argument("--sweep", action="store_true", help="also sweep the thresholds")
    parser.add_argument("--shown", type=Path, help="llm-sentences.jsonl of `newsqa eval-llm`: "
                        "judge each uncited case against every passage the model was shown")
    args = parser.parse_args(argv)
    from index.embedding import get_embedder
    from index.settings import apply_offline_env

    apply_offline_env()
    cases = load_cases(args.cases)
    shown_cases = with_shown(cases, load_shown(args.shown)) if args.shown else cases
    embedder = get_embedder()
    print(f"{len(cases)} cases, {sum(not c.supported for c in cases)} unsupported")
    rows = [(name, checker, cases, False) for name, checker in variants(embedder)]
    rows.append(("answerer (check cites uncited)", SupportChecker(embedder), shown_cases, True))
    for name, checker, chosen, cite_uncited in rows:
        result = score(name, checker, chosen, cite_uncited=cite_uncited)
        print(f"{name:16} precision {result.precision:.2f}  recall {result.recall:.2f}  "
              f"(dropped {result.true_drops}+{result.false_drops} wrongly, "
              f"missed {result.missed})")
        if args.show:
            for line in result.wrong:
                print(f"    {line}")
    if args.sweep:
        print("\n".join(sweep(embedder, cases)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
