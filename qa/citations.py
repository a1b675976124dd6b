"""Citation checking shared by both answerers, and the "not found" answer.

Every [n] must resolve to a citation (or a numbered passage); invalid markers are removed and
reported. Text in quotation marks must occur verbatim (white space and quote style aside) in a
cited passage, else it is flagged. An answer left without any valid citation becomes the
"not found" answer: nothing unverifiable is presented as found.

LLM answers are checked before this, sentence by sentence (`qa.sentences`, `qa.support`):
unsupported sentences are dropped there; `check_answer` without citations (passage-numbered
markers, quotes only flagged) is the lenient resolver and no longer the LLM path.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.records import ArticleMeta
from qa.markers import (
    MARKER,
    cited_numbers,
    format_marker,
    iter_markers,
    marker_numbers,
    strip_markers,
)
from qa.records import Answer, Citation, Passage
from qa.text import comparable, content_stems, segment, words

_BULLET_QUOTE = re.compile(r"^\s*-\s*“(?P<q>.+)”\s*(?:\[\d+\]\s*)+$")
_QUOTE = re.compile(r"“(?P<a>[^“”]{1,2000})”|\"(?P<b>[^\"]{1,2000})\"|‘(?P<c>[^‘’]{1,2000})’"
                    r"|(?<!\w)'(?P<d>[^'\n]{1,2000})'(?!\w)|«\s?(?P<e>[^«»]{1,2000})\s?»")
_SENTENCE_OR_LINE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class QuoteSpan:
    """A quoted phrase in an answer and where it sits in the text."""

    text: str
    start: int
    end: int


def find_quotes(text: str) -> list[QuoteSpan]:
    """Phrases in quotation marks (straight, typographic, guillemets) in an answer."""
    found: list[QuoteSpan] = []
    offset = 0
    for line in text.split("\n"):
        bullet = _BULLET_QUOTE.match(line)
        if bullet:
            found.append(QuoteSpan(bullet.group("q"), offset + bullet.start("q"),
                                   offset + bullet.end("q")))
        else:
            for match in _QUOTE.finditer(line):
                name = next(k for k, v in match.groupdict().items() if v is not None)
                found.append(QuoteSpan(match.group(name), offset + match.start(name),
                                       offset + match.end(name)))
        offset += len(line) + 1
    return found


def _unit_bounds(text: str, position: int) -> tuple[int, int]:
    """The sentence or line of `text` around `position`."""
    start, end = 0, len(text)
    for match in _SENTENCE_OR_LINE.finditer(text):
        if match.end() <= position:
            start = match.end()
        elif match.start() >= position:
            end = match.start()
            break
    return start, end


def best_span(passage: Passage, claims: Sequence[str]) -> tuple[int, int]:
    """The span of a passage (chunk offsets) that best supports the claims citing it."""
    text = passage.chunk.text
    spans = segment(text) or [(0, len(text))]
    claim_stems = set()
    quoted = []
    for claim in claims:
        claim_stems.update(content_stems(claim))
        quoted.extend(comparable(q.text) for q in find_quotes(claim))
    best, best_score = (0, len(text)), 0.0
    for start, end in spans:
        piece = text[start:end]
        piece_cmp = comparable(piece)
        score = len(claim_stems & set(content_stems(piece))) / (1 + len(claim_stems))
        score += sum(2.0 for q in quoted if q and q in piece_cmp)
        if score > best_score:
            best, best_score = (start, end), score
    return best


def _renumber(text: str, mapping: dict[int, int]) -> str:
    def replace(match: re.Match[str]) -> str:
        kept = [mapping[n] for n in marker_numbers(match) if n in mapping]
        return "".join(format_marker(n) for n in dict.fromkeys(kept))

    cleaned = MARKER.sub(replace, text)
    return re.sub(r"[ \t]+(?=[.,;:!?]|\n|$)", "", cleaned).strip()


@dataclass(frozen=True)
class _Resolved:
    """Markers resolved: old number -> new number, the kept citations, their passages."""

    mapping: dict[int, int]
    citations: list[Citation]
    sources: dict[int, Passage]


def _quote_in_passage(citation: Citation, by_chunk: dict[str, Passage]) -> bool:
    """Whether a given citation's quote is the text at its offsets in the chunk it names."""
    passage = by_chunk.get(citation.chunk_id)
    if passage is None:
        return False
    chunk = passage.chunk
    return (chunk.start <= citation.start and citation.end <= chunk.end
            and chunk.text[citation.start - chunk.start:citation.end - chunk.start]
            == citation.quote)


def _resolve_given(used: list[int], citations: Sequence[Citation],
                   by_chunk: dict[str, Passage], notes: list[str]) -> _Resolved:
    """[n] refers to the given citations (extractive): keep those whose quote checks out."""
    valid: dict[int, Citation] = {}
    for citation in citations:
        if not _quote_in_passage(citation, by_chunk):
            notes.append(f"citation [{citation.number}] removed: its quote is not in the "
                         "passage it names")
            continue
        valid[citation.number] = citation
    mapping: dict[int, int] = {}
    for number in dict.fromkeys(used):
        if number in valid:
            mapping[number] = len(mapping) + 1
        else:
            notes.append(f"citation [{number}] removed: there is no source [{number}]")
    checked = [dataclasses.replace(c, number=mapping[n])  # keeps the short answer's offsets
               for n, c in valid.items() if n in mapping]
    sources = {mapping[n]: by_chunk[c.chunk_id] for n, c in valid.items() if n in mapping}
    return _Resolved(mapping, checked, sources)


def _claims_by_number(text: str, mapping: dict[int, int]) -> dict[int, list[str]]:
    """The sentences (markers removed) that cite each kept passage number."""
    claims: dict[int, list[str]] = {}
    for match, numbers in iter_markers(text):
        lo, hi = _unit_bounds(text, match.start())
        for n in numbers:
            if n in mapping:
                claims.setdefault(n, []).append(strip_markers(text[lo:hi]))
    return claims


def _resolve_passages(text: str, used: list[int], passages: Sequence[Passage],
                      notes: list[str]) -> _Resolved:
    """[n] refers to the n-th passage (LLM): cite the span that best supports its claims."""
    mapping: dict[int, int] = {}
    for number in dict.fromkeys(used):
        if 1 <= number <= len(passages):
            mapping[number] = len(mapping) + 1
        else:
            notes.append(f"citation [{number}] removed: there is no passage [{number}] "
                         f"(only {len(passages)} were given)")
    claims = _claims_by_number(text, mapping)
    checked: list[Citation] = []
    sources: dict[int, Passage] = {}
    for old, new in mapping.items():
        passage = passages[old - 1]
        start, end = best_span(passage, claims.get(old, []))
        chunk = passage.chunk
        checked.append(Citation(number=new, article=passage.article,
                                quote=chunk.text[start:end], start=chunk.start + start,
                                end=chunk.start + end, chunk_id=chunk.id))
        sources[new] = passage
    return _Resolved(mapping, checked, sources)


def check_answer(question: str, text: str, passages: Sequence[Passage], *,
                 citations: Sequence[Citation] | None = None, answerer: str = "extractive",
                 timings: dict[str, float] | None = None, standalone_question: str = "",
                 warnings: Sequence[str] = ()) -> Answer:
    """Verify an answer's citations and quotes; return the checked Answer.

    With `citations` (extractive), [n] refers to those; without (LLM), [n] refers to the n-th
    passage and citations are built from the passages, renumbered in order of appearance.
    """
    notes = list(warnings)
    timings = dict(timings or {})
    used = cited_numbers(text)
    if citations is not None:
        resolved = _resolve_given(used, citations, {p.chunk.id: p for p in passages}, notes)
    else:
        resolved = _resolve_passages(text, used, passages, notes)
    checked = sorted(resolved.citations, key=lambda c: c.number)
    final_text = _renumber(text, resolved.mapping)
    if not checked:
        notes.append("the answer cites no valid passage, so it is not presented as found")
        return not_found(question, passages, "no statement could be tied to a passage",
                         answerer=answerer, timings=timings, warnings=notes,
                         standalone_question=standalone_question)
    notes.extend(check_quotes(final_text, resolved.sources, passages))
    return Answer(question=question, text=final_text, found=True, citations=tuple(checked),
                  passages=tuple(passages), warnings=tuple(notes),
                  standalone_question=standalone_question, answerer=answerer, timings=timings)


def check_quotes(text: str, sources: dict[int, Passage],
                 passages: Sequence[Passage]) -> list[str]:
    """Warnings for quoted phrases not found verbatim in the passage(s) their sentence cites."""
    notes = []
    for quote in find_quotes(text):
        wanted = comparable(quote.text)
        if len(words(wanted)) < 2:
            continue
        lo, hi = _unit_bounds(text, quote.start)
        hi = max(hi, _unit_bounds(text, quote.end)[1])
        cited = cited_numbers(text[lo:hi])
        cited_texts = [comparable(sources[n].chunk.text) for n in cited if n in sources]
        if any(wanted in t for t in cited_texts):
            continue
        short = quote.text if len(quote.text) <= 80 else quote.text[:77] + "..."
        elsewhere = [i for i, p in enumerate(passages, 1) if wanted in comparable(p.chunk.text)]
        where = "not in the passage it cites" if cited_texts else "it cites no passage"
        if elsewhere:
            notes.append(f"quote “{short}” unverified: {where} (it does occur in a retrieved "
                         "passage)")
        else:
            notes.append(f"quote “{short}” unverified: {where} and it occurs in no retrieved "
                         "passage")
    return notes


def article_heading(article: ArticleMeta) -> str:
    """"Title (Source, date)" for an article, with fallbacks for missing fields."""
    title = article.title or article.source or article.id
    extra = ", ".join(x for x in (article.source if article.title else "",
                                  article.published[:10]) if x)
    return f"{title} ({extra})" if extra else title


def not_found(question: str, passages: Sequence[Passage], reason: str, *,
              answerer: str = "extractive", timings: dict[str, float] | None = None,
              warnings: Sequence[str] = (), standalone_question: str = "",
              see_also: int = 3) -> Answer:
    """The plain "the indexed articles do not cover this" answer, with the closest passages."""
    lines = [f"The indexed articles do not cover this ({reason})."]
    shown: list[Passage] = []
    for passage in passages:
        if all(p.article.id != passage.article.id for p in shown):
            shown.append(passage)
        if len(shown) >= see_also:
            break
    if shown:
        lines += ["", "See also (closest passages, which do not answer the question):"]
        for passage in shown:
            tokens = words(passage.chunk.text)[:25]
            excerpt = passage.chunk.text[tokens[0].start:tokens[-1].end] if tokens else ""
            lines.append(f"- {article_heading(passage.article)}: {excerpt}…")
    return Answer(question=question, text="\n".join(lines), found=False, citations=(),
                  passages=tuple(passages), warnings=tuple(warnings),
                  standalone_question=standalone_question, answerer=answerer,
                  timings=dict(timings or {}))
