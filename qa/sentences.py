"""An LLM answer checked sentence by sentence, for `ask` and `stream` alike.

The model's text is cut into sentences as it arrives (`SentenceBuffer`); each complete
sentence must cite an existing passage and be supported by what it cites (`qa.support`), else
it is dropped and reported. A sentence the model left without any [n] is judged against each
passage it was shown: the best one that supports it alone becomes its citation (said in the
warnings), else it is dropped; wrong citations are never reassigned. Kept sentences are
emitted at once with their citation numbers renumbered in order of first appearance, so a
number never changes once shown and the final Answer's text is exactly the concatenation of
what was emitted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from index.text import wordset
from qa.citations import best_span
from qa.markers import MARKER, cited_numbers, format_marker, marker_numbers, strip_markers
from qa.records import Answer, Citation, Passage
from qa.support import INVENTED_QUOTE, MISSING_PASSAGE, NO_CITATION, verify_quotes
from qa.text import content_stems

#: A sentence ends at . ! ? or … (closing quotes/brackets and citation markers stay with it)
#: when white space and the start of a new sentence follow; a line break always ends one.
_END = re.compile(r"[.!?…]+[\"”’')\]]*(?:\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\])*"
                  r"(?P<gap>[ \t]+)(?=[\"“‘(\[]?[A-Z0-9À-Ý])|(?P<lines>[ \t]*\n\s*)")
_ABBREVIATIONS = wordset("mr mrs ms dr st gen sen rep prof jr sr no vs u.s u.n e.g i.e lt col "
                         "capt gov")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+(?=[.,;:!?]|$)")
_FINAL_STOP = re.compile(r"[.!?…]+$")


def with_marker(sentence: str, number: int) -> str:
    """The sentence with the citation [number] before its final stop ("Paris is nice [1].")."""
    stop = _FINAL_STOP.search(sentence)
    if stop is None:
        return f"{sentence} {format_marker(number)}"
    return f"{sentence[:stop.start()].rstrip()} {format_marker(number)}{stop.group()}"


def _inside_quote(text: str) -> bool:
    """Whether `text` ends inside an open quotation (so a full stop there ends no sentence)."""
    return text.count("“") > text.count("”") or text.count('"') % 2 == 1


def _abbreviation_before(text: str) -> bool:
    """Whether the full stop ending `text` belongs to an abbreviation or an initial."""
    last = text.rstrip(".").rsplit(None, 1)[-1] if text.strip(". ") else ""
    return last.lower() in _ABBREVIATIONS or (len(last) == 1 and last.isupper())


def split_complete(text: str) -> tuple[list[tuple[str, str]], str]:
    """The complete sentences at the start of `text` as (sentence, white space after it),
    and the unfinished rest."""
    found: list[tuple[str, str]] = []
    begin = 0
    for match in _END.finditer(text):
        gap = match.group("gap") or match.group("lines") or ""
        end = match.end() - len(gap)
        sentence = text[begin:end]
        if match.group("gap") is not None and (_inside_quote(sentence)
                                              or _abbreviation_before(sentence)):
            continue
        if sentence.strip():
            found.append((sentence.strip(), gap))
        begin = match.end()
    return found, text[begin:]


def split_sentences(text: str) -> list[tuple[str, str]]:
    """Every sentence of a finished text, as (sentence, white space after it)."""
    found, rest = split_complete(text)
    return [*found, (rest.strip(), "")] if rest.strip() else found


def on_topic(question: str, passage: Passage) -> bool:
    """Whether the passage (text or title) shares a content word with the question (True for a
    question without any): the check never cites an uncited sentence to an off-topic passage,
    such as one that carries instructions aimed at the model."""
    wanted = set(content_stems(question))
    if not wanted:
        return True
    return bool(wanted & set(content_stems(f"{passage.article.title}\n{passage.chunk.text}")))


class SentenceBuffer:
    """Collects streamed pieces and hands out each sentence once it is complete."""

    def __init__(self) -> None:
        self.pending = ""

    def feed(self, piece: str) -> list[tuple[str, str]]:
        """The sentences that `piece` completes."""
        found, self.pending = split_complete(self.pending + piece)
        return found

    def flush(self) -> list[tuple[str, str]]:
        """The last, unterminated sentence (if any)."""
        rest, self.pending = self.pending.strip(), ""
        return [(rest, "")] if rest else []


def _separator(gap: str) -> str:
    """The white space shown between two kept sentences."""
    if "\n\n" in gap:
        return "\n\n"
    return "\n" if "\n" in gap else " "


class SentenceCheck:
    """Judges sentences one by one and accumulates what was kept, renumbered."""

    def __init__(self, passages: Sequence[Passage], checker: Any, *, question: str = "",
                 cite_uncited: bool = False) -> None:
        self.passages = list(passages)
        self.checker = checker
        #: an uncited sentence is cited only to a passage on the question's topic
        self.topical = [on_topic(question, p) for p in self.passages]
        #: False: a sentence without [n] is dropped unread (the rule before the check cited;
        #: kept for the measurements of qa.eval)
        self.cite_uncited = cite_uncited
        #: the passage number the check gave the last sentence added (None: it gave none)
        self.last_assigned: int | None = None
        self.mapping: dict[int, int] = {}
        self.claims: dict[int, list[str]] = {}
        self.notes: list[str] = []
        self.emitted: list[str] = []
        self.gap = ""

    def _drop(self, sentence: str, reason: str, detail: str) -> str:
        short = sentence if len(sentence) <= 160 else sentence[:157] + "..."
        self.notes.append(f"sentence dropped ({reason}): “{short}” ({detail})")
        return ""

    def _valid_numbers(self, sentence: str) -> list[int]:
        """The passage numbers the sentence cites that exist; the others are reported."""
        valid = []
        for number in dict.fromkeys(cited_numbers(sentence)):
            if 1 <= number <= len(self.passages):
                valid.append(number)
            else:
                self.notes.append(f"citation [{number}] removed: there is no passage "
                                  f"[{number}] (only {len(self.passages)} were given)")
        return valid

    def add(self, sentence: str, gap_after: str) -> str:
        """The text to show for one model sentence ("" when it is dropped)."""
        gap, self.gap = self.gap, gap_after
        self.last_assigned = None
        if not cited_numbers(sentence):
            return self._cite_uncited(sentence, gap)
        valid = self._valid_numbers(sentence)
        if not valid:
            return self._drop(sentence, MISSING_PASSAGE, "none of its passage numbers exists")
        cited = [self.passages[n - 1] for n in valid]
        fixed, detail = verify_quotes(sentence, cited)
        if detail:
            return self._drop(sentence, INVENTED_QUOTE, detail)
        claim = _SPACE_BEFORE_PUNCT.sub("", strip_markers(fixed)).strip()
        verdict = self.checker.judge(claim, cited)
        if not verdict.supported:
            return self._drop(sentence, verdict.reason, verdict.detail)
        return self._keep(fixed, claim, valid, gap)

    def _cite_uncited(self, sentence: str, gap: str) -> str:
        """An uncited sentence kept with the passage that best supports it alone (the same
        rules as a cited one), saying so in the warnings; else dropped."""
        claim = _SPACE_BEFORE_PUNCT.sub("", sentence).strip()
        eligible = [i for i, topical in enumerate(self.topical) if topical]
        found = (self.checker.best_support(claim, [self.passages[i] for i in eligible])
                 if self.cite_uncited else None)
        if found is None:
            why = (f"it cites no passage, and none of the {len(eligible)} passages on the "
                   "question's topic supports it" if self.cite_uncited
                   else "it cites no passage")
            return self._drop(sentence, NO_CITATION, why)
        index, verdict = eligible[found[0]], found[1]
        self.last_assigned = index + 1
        piece = self._keep(with_marker(verdict.text, index + 1), verdict.text, [index + 1], gap)
        short = verdict.text if len(verdict.text) <= 160 else verdict.text[:157] + "..."
        self.notes.append(f"sentence {len(self.emitted)} had no citation from the model; "
                          f"cited to {format_marker(self.mapping[index + 1])} by the support "
                          f"check: “{short}”")
        return piece

    def _keep(self, sentence: str, claim: str, valid: list[int], gap: str) -> str:
        for number in valid:
            self.mapping.setdefault(number, len(self.mapping) + 1)
            self.claims.setdefault(number, []).append(claim)

        def renumber(match: re.Match[str]) -> str:
            kept = [self.mapping[n] for n in marker_numbers(match) if n in self.mapping]
            return "".join(format_marker(n) for n in dict.fromkeys(kept))

        text = _SPACE_BEFORE_PUNCT.sub("", MARKER.sub(renumber, sentence)).strip()
        piece = (_separator(gap) if self.emitted else "") + text
        self.emitted.append(piece)
        return piece

    def citations(self) -> list[Citation]:
        """One citation per kept passage number: the span that best supports its sentences."""
        out = []
        for old, new in sorted(self.mapping.items(), key=lambda item: item[1]):
            passage = self.passages[old - 1]
            start, end = best_span(passage, self.claims.get(old, []))
            chunk = passage.chunk
            out.append(Citation(number=new, article=passage.article,
                                quote=chunk.text[start:end], start=chunk.start + start,
                                end=chunk.start + end, chunk_id=chunk.id))
        return out

    def answer(self, question: str, *, answerer: str,
               timings: dict[str, float]) -> Answer | None:
        """The Answer made of the kept sentences (None when none was kept)."""
        if not self.emitted:
            return None
        return Answer(question=question, text="".join(self.emitted), found=True,
                      citations=tuple(self.citations()), passages=tuple(self.passages),
                      warnings=tuple(self.notes), answerer=answerer, timings=dict(timings))
