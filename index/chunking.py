"""Split article bodies into overlapping chunks measured in the embedding model's word pieces.

The body is tokenized once with offsets; chunk boundaries are chosen between tokens, preferring
paragraph breaks, then line breaks, then sentence ends, then any white space (never inside a
word unless a single "word" is longer than a whole chunk). Every chunk is an exact body span
(`chunk.text == body[chunk.start:chunk.end]`) and never exceeds the model's input limit.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

from index.records import Article, Chunk
from index.settings import Settings

if TYPE_CHECKING:
    from index.embedding import Embedder, WordPieceCounter

#: Break priorities between two tokens (higher is a better place to end a chunk).
PARAGRAPH, LINE, SENTENCE, CLAUSE, WORD, PUNCT, NONE = 6, 5, 4, 3, 2, 1, 0

#: Bump when chunking or the embedded text changes: stored chunks then need a rebuild.
CHUNKER_VERSION = "1"


@dataclass(frozen=True)
class ChunkingConfig:
    """What decides the stored chunks and their vectors; recorded with the index it built.

    `title_prefix`: the embedded text starts with the article title (see `embedding_text`).
    """

    model: str
    tokens: int
    overlap: int
    title_prefix: bool = True
    version: str = CHUNKER_VERSION

    @classmethod
    def from_settings(cls, settings: Settings) -> ChunkingConfig:
        return cls(model=settings.embedding_model, tokens=settings.chunk_tokens,
                   overlap=settings.chunk_overlap)

    def signature(self) -> str:
        """A stable JSON text of this config: an index built with another one is stale."""
        return json.dumps({"model": self.model, "tokens": self.tokens,
                           "overlap": self.overlap, "title": self.title_prefix,
                           "version": self.version}, sort_keys=True)

    @staticmethod
    def describe_change(recorded: str, current: str) -> str:
        """Which fields differ between two signatures, e.g. "tokens 200 -> 120"."""
        try:
            old = json.loads(recorded)
        except ValueError:
            old = {}
        new = json.loads(current)
        if not isinstance(old, dict):
            old = {}
        changed = [f"{name} {old.get(name, '(unknown)')} -> {new[name]}"
                   for name in sorted(new) if old.get(name) != new[name]]
        return ", ".join(changed) or "unknown settings"


@dataclass(frozen=True)
class ChunkPlan:
    """Sizes used to chunk: tokens per chunk and overlap (already capped to the model limit)."""

    max_tokens: int
    overlap: int

    @classmethod
    def for_model(cls, settings: Settings, model_limit: int) -> ChunkPlan:
        size = max(8, min(settings.chunk_tokens, model_limit - 2))
        return cls(max_tokens=size, overlap=min(settings.chunk_overlap, size // 2))


_GAPS = (  # (pattern ending at the start of the next word, priority), lowest first
    (re.compile(r"[;:,—–-][\"'”’)\]]*\s+(?=\S)"), CLAUSE),
    (re.compile(r"[.!?…][\"'”’)\]]*\s+(?=\S)"), SENTENCE),
    (re.compile(r"\n\s*(?=\S)"), LINE),
    (re.compile(r"\n\s*\n\s*(?=\S)"), PARAGRAPH),
)


def _gap_priorities(body: str) -> dict[int, int]:
    """Start offset of a word -> priority of the white space before it (absent: plain WORD)."""
    priorities: dict[int, int] = {}
    for pattern, priority in _GAPS:
        for match in pattern.finditer(body):
            priorities[match.end()] = priority
    return priorities


_WORD = re.compile(r"\S+")


def _units(body: str, counter: WordPieceCounter,
           size: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """Units to chunk on: words (or pieces of over-long words) as starts, ends, tokens, priority.

    priority[i] rates the boundary before unit i.
    """
    spans = [m.span() for m in _WORD.finditer(body)]
    counts = counter.counts([body[s:e] for s, e in spans])
    gaps = _gap_priorities(body)
    starts = [s for s, _ in spans]
    ends = [e for _, e in spans]
    prio = [gaps.get(s, WORD) for s in starts]
    if prio:
        prio[0] = PARAGRAPH
    if not counts or max(counts) <= size:
        return starts, ends, counts, prio
    # some "word" is longer than a chunk (a URL, a table row): split it between word pieces
    out: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    for i, (start, end) in enumerate(spans):
        if counts[i] <= size:
            for column, value in zip(out, (start, end, counts[i], prio[i]), strict=True):
                column.append(value)
            continue
        for j, (ps, pe) in enumerate(counter.pieces(body[start:end])):
            if j == 0:
                before = prio[i]
            else:
                alnum = body[start + ps - 1].isalnum() and body[start + ps].isalnum()
                before = NONE if alnum else PUNCT
            for column, value in zip(out, (start + ps, start + pe, 1, before), strict=True):
                column.append(value)
    return out


def plan_units(tokens: list[int], prio: list[int], plan: ChunkPlan) -> list[tuple[int, int]]:
    """Unit index ranges [first, last) for each chunk, overlapping by about plan.overlap tokens."""
    n = len(tokens)
    if n == 0:
        return []
    size, overlap = plan.max_tokens, plan.overlap
    cum = [0] * (n + 1)
    total = 0
    for i, count in enumerate(tokens):
        total += count
        cum[i + 1] = total
    prio = [*prio, PARAGRAPH]  # the end of the body is the best boundary
    ranges: list[tuple[int, int]] = []
    first = previous_last = 0
    while first < n:
        # furthest end whose chunk fits in `size` tokens
        limit = bisect_right(cum, cum[first] + size) - 1
        if limit >= n:
            ranges.append((first, n))
            break
        limit = max(limit, first + 1)
        low = max(first + 1, bisect_left(cum, cum[first] + size // 2))
        best, last = -1, limit
        for i in range(limit, low - 1, -1):
            if prio[i] > best:
                best, last = prio[i], i
                if best == PARAGRAPH:
                    break
        if best <= PUNCT:  # no white space in the second half: an earlier new word boundary
            for i in range(low - 1, max(first, previous_last), -1):
                if prio[i] >= WORD:
                    last = i
                    break
        ranges.append((first, last))
        previous_last = last
        if overlap <= 0:
            first = last
            continue
        # the next chunk starts about `overlap` tokens back, at a sentence start if one is near
        target = max(first + 1, bisect_left(cum, cum[last] - overlap))
        nxt = None
        for i in range(target, last):
            if cum[last] - cum[i] < overlap // 2:
                break
            if prio[i] >= SENTENCE:
                nxt = i
                break
        if nxt is None:
            nxt = next((i for i in range(target, last) if prio[i] >= WORD), last)
        first = nxt
    return ranges


def chunk_body(body: str, embedder: Embedder, settings: Settings,
               article_id: str) -> list[Chunk]:
    """Chunks of one body (see `chunk_article`)."""
    plan = ChunkPlan.for_model(settings, embedder.max_tokens)
    starts, ends, tokens, prio = _units(body, embedder.word_pieces, plan.max_tokens)
    chunks = []
    for ordinal, (first, last) in enumerate(plan_units(tokens, prio, plan)):
        start, end = starts[first], ends[last - 1]
        chunks.append(Chunk(article_id=article_id, ordinal=ordinal, start=start, end=end,
                            text=body[start:end]))
    return chunks


def chunk_article(article: Article, embedder: Embedder, settings: Settings) -> list[Chunk]:
    """Overlapping chunks of `article.body`, each an exact body span within the model limit."""
    return chunk_body(article.body, embedder, settings, article.id)


def embedding_text(article: Article, chunk: Chunk, embedder: Embedder | None = None, *,
                   title_prefix: bool = True) -> str:
    """The text that is embedded for a chunk: its title line, then the chunk text.

    The stored chunk text stays the exact body span; only the vector sees the title (on 60 eval
    questions it raised article hit@1 from 0.77 to 0.82 and hit@5 from 0.95 to 0.97). With an
    `embedder`, the title is shortened so that title + chunk fit the model without truncation.
    `title_prefix=False` embeds the chunk text alone (`ChunkingConfig.title_prefix`).
    """
    if not title_prefix or not article.title.strip():
        return chunk.text
    words = article.title.split()[:24]
    if embedder is not None:
        counter = embedder.word_pieces
        room = embedder.max_tokens - 2 - sum(counter.counts(chunk.text.split()))
        counts = counter.counts(words)
        while words and sum(counts) > room:
            words, counts = words[:-1], counts[:-1]
    if not words:
        return chunk.text
    return " ".join(words) + "\n" + chunk.text
