"""Split article bodies into overlapping chunks measured in the embedding model's word pieces.

The body is tokenized once with offsets; chunk boundaries are chosen between tokens, preferring
paragraph breaks, then line breaks, then sentence ends, then any white space (never inside a
word unless a single "word" is longer than a whole chunk). Every chunk is an exact body span
(`chunk.text == body[chunk.start:chunk.end]`) and never exceeds the model's input limit.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING

from index.records import Article, Chunk
from index.settings import Settings

if TYPE_CHECKING:
    from index.embedding import Embedder

#: Break priorities between two tokens (higher is a better place to end a chunk).
PARAGRAPH, LINE, SENTENCE, CLAUSE, WORD, PUNCT, NONE = 6, 5, 4, 3, 2, 1, 0

_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_CLAUSE_END = re.compile(r"[;:,—–-][\"'”’)\]]*$")

#: Whether the embedded text starts with the article title (see `embedding_text`).
TITLE_PREFIX = True


@dataclass(frozen=True)
class ChunkPlan:
    """Sizes used to chunk: tokens per chunk and overlap (already capped to the model limit)."""

    max_tokens: int
    overlap: int

    @classmethod
    def for_model(cls, settings: Settings, model_limit: int) -> ChunkPlan:
        size = max(8, min(settings.chunk_tokens, model_limit - 2))
        return cls(max_tokens=size, overlap=min(settings.chunk_overlap, size // 2))


def _break_priority(body: str, prev_end: int, next_start: int) -> int:
    """How good a chunk boundary between a token ending at prev_end and one at next_start is."""
    gap = body[prev_end:next_start]
    if not gap:
        return PUNCT if not (body[prev_end - 1].isalnum() and body[next_start].isalnum()) \
            else NONE
    if not gap.isspace():
        return WORD  # dropped characters (control / zero width) between tokens
    if gap.count("\n") >= 2:
        return PARAGRAPH
    if "\n" in gap:
        return LINE
    tail = body[max(0, prev_end - 4):prev_end]
    if _SENTENCE_END.search(tail):
        return SENTENCE
    if _CLAUSE_END.search(tail):
        return CLAUSE
    return WORD


def token_spans(body: str, embedder: Embedder) -> list[tuple[int, int]]:
    """(start, end) character offsets of every word piece of `body`, in order."""
    encoding = embedder.tokenizer.encode(body, add_special_tokens=False)
    spans: list[tuple[int, int]] = []
    for start, end in encoding.offsets:
        if end <= start:
            continue
        if spans and start < spans[-1][1]:
            # several pieces of one character (rare unicode): merge into the previous span
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            continue
        spans.append((start, end))
    return spans


def plan_spans(body: str, spans: list[tuple[int, int]], plan: ChunkPlan) -> list[tuple[int, int]]:
    """Token index ranges [first, last) for each chunk, overlapping by about plan.overlap."""
    n = len(spans)
    if n == 0:
        return []
    size, overlap = plan.max_tokens, plan.overlap
    # priority of the boundary *before* token i (i in 1..n-1)
    prio = [NONE] * (n + 1)
    prio[n] = PARAGRAPH
    for i in range(1, n):
        prio[i] = _break_priority(body, spans[i - 1][1], spans[i][0])
    ranges: list[tuple[int, int]] = []
    first = 0
    while first < n:
        limit = first + size
        if limit >= n:
            ranges.append((first, n))
            break
        # best break in the second half of the window, latest among the best priority
        low = first + max(1, size // 2)
        best, best_at = -1, limit
        for i in range(limit, low - 1, -1):
            if prio[i] > best:
                best, best_at = prio[i], i
                if best == PARAGRAPH:
                    break
        if best <= PUNCT:
            # no white space in the second half: take any word boundary in the whole window
            for i in range(limit, first, -1):
                if prio[i] >= WORD:
                    best, best_at = prio[i], i
                    break
        if best == NONE:
            for i in range(limit, first, -1):
                if prio[i] >= PUNCT:
                    best_at = i
                    break
        last = best_at
        ranges.append((first, last))
        if overlap <= 0:
            first = last
            continue
        # next chunk starts at a word boundary about `overlap` tokens back; prefer a sentence
        target = max(first + 1, last - overlap)
        nxt = None
        for i in range(target, last):
            if prio[i] >= SENTENCE and last - i >= overlap // 2:
                nxt = i
                break
        if nxt is None:
            for i in range(target, last):
                if prio[i] >= WORD:
                    nxt = i
                    break
        first = nxt if nxt is not None else last
    return ranges


def chunk_body(body: str, embedder: Embedder, settings: Settings,
               article_id: str) -> list[Chunk]:
    """Chunks of one body (see `chunk_article`)."""
    plan = ChunkPlan.for_model(settings, embedder.max_tokens)
    spans = token_spans(body, embedder)
    chunks = []
    for ordinal, (first, last) in enumerate(plan_spans(body, spans, plan)):
        start, end = spans[first][0], spans[last - 1][1]
        chunks.append(Chunk(article_id=article_id, ordinal=ordinal, start=start, end=end,
                            text=body[start:end]))
    return chunks


def chunk_article(article: Article, embedder: Embedder, settings: Settings) -> list[Chunk]:
    """Overlapping chunks of `article.body`, each an exact body span within the model limit."""
    return chunk_body(article.body, embedder, settings, article.id)


def embedding_text(article: Article, chunk: Chunk) -> str:
    """The text that is embedded for a chunk: its title line, then the chunk text.

    The stored chunk text stays the exact body span; only the vector sees the title, which helps
    chunks that never name the article's subject (measured on the eval queries, see benchmark).
    """
    if not TITLE_PREFIX or not article.title:
        return chunk.text
    title = article.title.strip()
    if len(title) > 200:
        title = title[:200].rsplit(" ", 1)[0]
    return f"{title}\n{chunk.text}"
