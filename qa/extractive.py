"""The offline answerer: verbatim spans of the retrieved passages, cited, most relevant first.

Candidate spans are sentences (or pseudo-sentences when the text has no punctuation) of the
articles the passages come from, restricted to the retrieved chunks. They are scored by
embedding similarity to the question, keyword overlap, names of the question, the answer type
(who/where/when/how many) and, for "what did X say" questions, whether X is the speaker.
The analysis also carries the coverage verdict of `qa.gate`, which both answerers obey.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.dates import CALENDAR_WORDS
from index.records import ArticleMeta, Chunk
from index.text import ANSWER_STOPWORDS, NUMBER_WORDS, wordset
from qa.citations import article_heading, check_answer
from qa.gate import Coverage, RefusalBars, judge_coverage, refusal
from qa.markers import format_marker
from qa.question import QuestionInfo
from qa.records import Answer, Citation, Passage, lines_then
from qa.text import (
    SENTENCE_STARTERS,
    Word,
    content_stems,
    name_matches,
    segment,
    words,
)

SPEECH_VERBS = wordset("""
said says told tells added adds stressed noted explained insisted warned argued claimed stated
declared confirmed reiterated dismissed downplayed denied rejected urged announced wrote tweeted
asked replied acknowledged admitted emphasized emphasised suggested promised vowed criticized
criticised praised echoed saying
""")
_FORWARD_VERBS = wordset("said says added stressed noted explained asked wrote")
_SKIP_BEFORE_VERB = wordset("""
also has had have then later again further earlier previously repeatedly who was is and
categorically firmly personally once
""")
TITLE_WORDS = wordset("""
minister prime deputy defense defence foreign interior economy finance president vice chancellor
general secretary spokesman spokeswoman leader chief king queen senator governor mayor ambassador
envoy commander premier head director judge representative congressman congresswoman pope prince
""")
_FIRST_PERSON = wordset("i we our my me us ours")
_THIRD_PERSON = wordset("him he she her they them his this")
_NUMBER_WORDS = NUMBER_WORDS | wordset("percent")
_TIME_WORDS = CALENDAR_WORDS | wordset("""
week month year today yesterday tomorrow morning evening night ago last next earlier later
""")

#: Weights of the span score (tuned on the seed questions, checked on the eval subset).
W_SEMANTIC = 0.45
W_KEYWORD = 0.30
W_NAMES = 0.10
W_SPEAKER = 0.30
W_TYPE = 0.10
W_PRIOR = 0.05
MAX_SPANS = 4
#: Candidate spans embedded per question at most (latency bound on long articles), chosen by
#: their score without similarity plus PRIOR_FOR_EMBEDDING x the passage's retrieval rank.
MAX_EMBEDDED = 12
PRIOR_FOR_EMBEDDING = 0.15
SPAN_MARGIN = 0.12


@dataclass(frozen=True)
class ArticleAnalysis:
    """Spans of one article body and who speaks in each (name keys, lower case)."""

    body: str
    spans: tuple[tuple[int, int], ...]
    speakers: tuple[frozenset[str], ...]
    inherited: tuple[frozenset[str], ...]
    titles: dict[str, str] = field(default_factory=dict)
    whole: bool = True  # False: built from a lone chunk (span indices are not the article's)


def _is_name(word: Word) -> bool:
    return (word.capitalised and word.text != "I" and word.text not in SENTENCE_STARTERS
            and word.lower not in ANSWER_STOPWORDS)


def _titles(tokens: Sequence[Word]) -> dict[str, str]:
    """Title phrases mapped to the name they precede: "defense minister" -> "trenta" for
    "Defense Minister Elisabetta Trenta" and "his defense minister Trenta"."""
    titles: dict[str, str] = {}
    for i, word in enumerate(tokens):
        if word.lower not in TITLE_WORDS:
            continue
        j = i
        while j + 1 < len(tokens) and tokens[j + 1].lower in TITLE_WORDS:
            j += 1
        k = j + 1
        while k + 1 < len(tokens) and _is_name(tokens[k]) and _is_name(tokens[k + 1]) \
                and tokens[k + 1].lower not in TITLE_WORDS:
            k += 1
        if k < len(tokens) and _is_name(tokens[k]) and tokens[k].lower not in TITLE_WORDS:
            b = i
            while b > 0 and tokens[b - 1].lower in TITLE_WORDS:
                b -= 1
            phrase = " ".join(t.lower for t in tokens[b:j + 1])
            key = tokens[k].lower
            titles.setdefault(phrase, key)
            titles.setdefault(tokens[j].lower, key)
    return titles


def _speaker_before(tokens: Sequence[Word], verb: int, titles: dict[str, str],
                    pronoun_means: str) -> str:
    """The speaker written before the speech verb at `verb` ("Trenta also said", "he said",
    "the minister said"); `pronoun_means` is whom "he"/"she" refers to."""
    k = verb - 1
    while k >= 0 and verb - k <= 4 and (tokens[k].lower in _SKIP_BEFORE_VERB
                                        or tokens[k].lower.endswith("ly")):
        k -= 1
    if k < 0:
        return ""
    prev = tokens[k]
    if _is_name(prev):
        return prev.lower
    if prev.lower in ("he", "she"):
        return pronoun_means
    if prev.lower in TITLE_WORDS:
        b = k
        while b > 0 and tokens[b - 1].lower in TITLE_WORDS:
            b -= 1
        phrase = " ".join(t.lower for t in tokens[b:k + 1])
        return titles.get(phrase) or titles.get(prev.lower, "")
    return ""


def _speaker_after(tokens: Sequence[Word], verb: int) -> str:
    """The speaker named right after a forward speech verb ("said Giuseppe Conte")."""
    if tokens[verb].lower not in _FORWARD_VERBS or verb + 1 >= len(tokens) \
            or not _is_name(tokens[verb + 1]):
        return ""
    run_end = verb + 1
    while run_end + 1 < len(tokens) and _is_name(tokens[run_end + 1]):
        run_end += 1
    return tokens[run_end].lower


def _span_speakers(spans: Sequence[tuple[int, int]], tokens: Sequence[Word],
                   titles: dict[str, str]) -> list[frozenset[str]]:
    """Who speaks in each span (X said, said X, he told...), in order through the article."""
    speakers: list[frozenset[str]] = []
    last_speaker = ""
    last_person = ""
    for start, end in spans:
        found: set[str] = set()
        span_tokens = [t for t in tokens if start <= t.start and t.end <= end]
        for j, token in enumerate(span_tokens):
            if _is_name(token) and token.lower not in TITLE_WORDS:
                nxt = span_tokens[j + 1] if j + 1 < len(span_tokens) else None
                if nxt is None or not _is_name(nxt):
                    last_person = token.lower
            if token.lower not in SPEECH_VERBS:
                continue
            who = (_speaker_before(span_tokens, j, titles, last_speaker or last_person)
                   or _speaker_after(span_tokens, j))
            if who:
                found.add(who)
                last_speaker = who
        speakers.append(frozenset(found))
    return speakers


def _inherited_speakers(body: str, spans: Sequence[tuple[int, int]],
                        speakers: Sequence[frozenset[str]]) -> list[frozenset[str]]:
    """For first-person spans without a speaker of their own, the speakers next to them."""
    inherited: list[frozenset[str]] = []
    for index, (start, end) in enumerate(spans):
        if speakers[index]:
            inherited.append(frozenset())
            continue
        lowered = {w.lower for w in words(body[start:end])}
        if lowered & _FIRST_PERSON:
            near: set[str] = set()
            for other in (index - 1, index + 1):
                if 0 <= other < len(spans):
                    near |= speakers[other]
            inherited.append(frozenset(near))
        else:
            inherited.append(frozenset())
    return inherited


def analyse_article(body: str) -> ArticleAnalysis:
    """Segment an article and attribute speech in each span (X said, said X, he told...)."""
    spans = tuple(segment(body))
    tokens = words(body)
    titles = _titles(tokens)
    speakers = _span_speakers(spans, tokens, titles)
    inherited = _inherited_speakers(body, spans, speakers)
    return ArticleAnalysis(body=body, spans=spans, speakers=tuple(speakers),
                           inherited=tuple(inherited), titles=titles)


@dataclass(frozen=True)
class ScoredSpan:
    """A candidate answer span with its article, chunk and score parts."""

    article: ArticleMeta
    chunk: Chunk
    start: int
    end: int
    text: str
    score: float
    semantic: float
    keyword: float
    names: float
    speaker: float
    answer_type: float
    index: int = -1

    def widened(self, start: int, end: int, body: str, chunk: Chunk) -> ScoredSpan:
        """The same span stretched to [start, end) of the article body."""
        return ScoredSpan(self.article, chunk, start, end, body[start:end], self.score,
                          self.semantic, self.keyword, self.names, self.speaker,
                          self.answer_type, self.index)


@dataclass(frozen=True)
class Analysis:
    """Scored spans for a question over some passages, and the coverage verdict."""

    question: QuestionInfo
    spans: list[ScoredSpan]
    coverage: Coverage
    timings: dict[str, float] = field(default_factory=dict)


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[Any, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


def _speaker_keys(speaker: str, titles_by_article: dict[str, str]) -> set[str]:
    names = [w for w in words(speaker) if _is_name(w) and w.lower not in TITLE_WORDS]
    if names:
        return {names[-1].lower} | {w.lower for w in names}
    phrase = " ".join(w.lower for w in words(speaker) if w.lower not in ("the", "a", "an",
                                                                            "his", "her"))
    key = titles_by_article.get(phrase) or titles_by_article.get(phrase.split(" ")[-1] if phrase
                                                                else "")
    return {key} if key else set()


def _answer_type_score(qtype: str, tokens: list[Word], question_lower: set[str]) -> float:
    if qtype in ("person", "name"):
        return float(any(_is_name(t) and t.lower not in question_lower
                         and t.lower not in _TIME_WORDS for t in tokens))
    if qtype == "place":
        return float(any(tokens[i].lower in ("in", "at", "from", "to") and _is_name(tokens[i + 1])
                         and tokens[i + 1].lower not in question_lower
                         for i in range(len(tokens) - 1)))
    if qtype == "time":
        return float(any(t.lower in _TIME_WORDS or t.text.isdigit() for t in tokens))
    if qtype == "number":
        return float(any(t.lower in _NUMBER_WORDS or any(c.isdigit() for c in t.text)
                         for t in tokens))
    return 0.0


@dataclass(frozen=True)
class _Candidate:
    """One candidate span: span `index` of an analysed article, reached through `passage`."""

    passage: Passage
    analysis: ArticleAnalysis
    index: int

    @property
    def span(self) -> tuple[int, int]:
        return self.analysis.spans[self.index]

    @property
    def text(self) -> str:
        start, end = self.span
        return self.analysis.body[start:end]

    @property
    def key(self) -> tuple[str, int, int]:
        """The span embedding's cache key."""
        return (self.passage.article.id, *self.span)


def _chunk_as_span(passage: Passage) -> ArticleAnalysis:
    """A passage's chunk as a one-span "article" (offsets kept), for chunks too short to hold
    a whole span."""
    chunk = passage.chunk
    return ArticleAnalysis(body=" " * chunk.start + chunk.text, spans=((chunk.start, chunk.end),),
                           speakers=(frozenset(),), inherited=(frozenset(),), whole=False)


@dataclass(frozen=True)
class _Features:
    """The score parts of a span that need no embedding."""

    keyword: float
    names: float
    speaker: float
    answer_type: float
    prior: float

    @property
    def partial(self) -> float:
        """The span score without its similarity part."""
        return (W_KEYWORD * self.keyword + W_NAMES * self.names + W_SPEAKER * self.speaker
                + W_TYPE * self.answer_type + W_PRIOR * self.prior)


def _rarity_weights(stems: Sequence[str], span_stems: list[set[str]]) -> dict[str, float]:
    """Each question stem weighted by its rarity among the candidate spans."""
    count = len(span_stems)
    return {s: math.log(1 + count / (1 + sum(s in st for st in span_stems))) for s in stems}


def _names_score(names: Sequence[str], lowered: list[str], speakers: frozenset[str],
                 title: list[str]) -> float:
    """Share of the question's names in the span or its speakers (0.7 for the title only)."""
    return sum(1.0 if name_matches(name, [*lowered, *speakers])
               else 0.7 if name_matches(name, title) else 0.0
               for name in names) / len(names)


def _speaker_score(candidate: _Candidate, target: set[str]) -> float:
    """1 when the asked-about speaker speaks in the span, 0.6 when a neighbour span's speaker
    goes on in the first person."""
    if not target:
        return 0.0
    if candidate.analysis.speakers[candidate.index] & target:
        return 1.0
    if candidate.analysis.inherited[candidate.index] & target:
        return 0.6
    return 0.0


def _span_features(info: QuestionInfo, question: str, candidates: Sequence[_Candidate],
                   texts: list[str], passages: Sequence[Passage]) -> list[_Features]:
    """Keyword, name, speaker, answer-type and retrieval-rank parts of each candidate."""
    span_stems = [set(content_stems(t)) for t in texts]
    idf = _rarity_weights(info.stems, span_stems)
    total_idf = sum(idf.values()) or 1.0
    question_lower = {w.lower for w in words(question)}
    titles: dict[str, str] = {}
    for candidate in candidates:
        titles.update(candidate.analysis.titles)
    target = _speaker_keys(info.speaker, titles) if info.speaker else set()
    prior = {p.id: 1.0 - rank / max(len(passages), 1) for rank, p in enumerate(passages)}
    title_words: dict[str, list[str]] = {}
    features: list[_Features] = []
    for n, candidate in enumerate(candidates):
        tokens = words(texts[n])
        analysis, index, article = candidate.analysis, candidate.index, candidate.passage.article
        names = 0.0
        if info.names:
            title = title_words.setdefault(article.id, [w.lower for w in words(article.title)])
            names = _names_score(info.names, [t.lower for t in tokens],
                                 analysis.speakers[index] | analysis.inherited[index], title)
        features.append(_Features(
            keyword=sum(idf[s] for s in info.stems if s in span_stems[n]) / total_idf,
            names=names, speaker=_speaker_score(candidate, target),
            answer_type=_answer_type_score(info.qtype, tokens, question_lower),
            prior=prior.get(candidate.passage.id, 0.0)))
    return features


def _scored(candidate: _Candidate, text: str, features: _Features,
            semantic: float) -> ScoredSpan:
    """A candidate with its full score (similarity included)."""
    start, end = candidate.span
    analysis = candidate.analysis
    return ScoredSpan(candidate.passage.article, candidate.passage.chunk, start, end, text,
                      features.partial + W_SEMANTIC * semantic, semantic, features.keyword,
                      features.names, features.speaker, features.answer_type,
                      candidate.index if analysis.whole else -1)


class ExtractiveAnswerer:
    """Answers with verbatim spans of the passages; no language model needed."""

    name = "extractive"

    def __init__(self, embedder: Any, *, article_loader: Any = None,
                 bars: RefusalBars | None = None, max_spans: int = MAX_SPANS,
                 max_embedded: int = MAX_EMBEDDED) -> None:
        self.embedder = embedder
        self.article_loader = article_loader
        self.bars = bars or RefusalBars()
        self.max_spans = max_spans
        self.max_embedded = max_embedded
        self._articles = _LRU(512)
        self._vectors = _LRU(50000)

    def clear_cache(self) -> None:
        """Forget analysed articles and span embeddings (for cold measurements)."""
        self._articles = _LRU(self._articles.size)
        self._vectors = _LRU(self._vectors.size)

    # --- analysis ------------------------------------------------------------------------

    def _article(self, passage: Passage) -> ArticleAnalysis:
        """The analysed body of a passage's article (cached by content-derived id)."""
        cached = self._articles.get(passage.article.id)
        if cached is not None:
            return cached
        body = None
        if self.article_loader is not None:
            article = self.article_loader(passage.article.id)
            body = article.body if article is not None else None
        if body is None or body[passage.chunk.start:passage.chunk.end] != passage.chunk.text:
            # no body at hand: analyse the chunk alone, offsets shifted to the article
            local = analyse_article(passage.chunk.text)
            shift = passage.chunk.start
            pad = " " * shift
            return ArticleAnalysis(body=pad + passage.chunk.text,
                                   spans=tuple((s + shift, e + shift) for s, e in local.spans),
                                   speakers=local.speakers, inherited=local.inherited,
                                   titles=local.titles, whole=False)
        analysis = analyse_article(body)
        self._articles.put(passage.article.id, analysis)
        return analysis

    def _embed(self, keys: list[tuple[str, int, int]], texts: list[str]) -> np.ndarray:
        rows: list[np.ndarray | None] = [self._vectors.get(key) for key in keys]
        todo = [i for i, row in enumerate(rows) if row is None]
        if todo:
            fresh = self.embedder.embed_small([texts[i] for i in todo])
            for i, vector in zip(todo, fresh, strict=True):
                rows[i] = vector
                self._vectors.put(keys[i], vector)
        if not rows:
            return np.zeros((0, 1), dtype=np.float32)
        return np.vstack(rows)

    def _candidates(self, passages: Sequence[Passage]) -> list[_Candidate]:
        """The spans of the passages' articles that lie inside a retrieved chunk (each once);
        the chunks themselves when they are too short to hold a whole span."""
        candidates: list[_Candidate] = []
        seen: set[tuple[str, int]] = set()
        for passage in passages:
            analysis = self._article(passage)
            chunk = passage.chunk
            for index, (start, end) in enumerate(analysis.spans):
                if start >= chunk.start and end <= chunk.end \
                        and (passage.article.id, start) not in seen:
                    seen.add((passage.article.id, start))
                    candidates.append(_Candidate(passage, analysis, index))
        if not candidates:
            for passage in passages:
                key = (passage.article.id, passage.chunk.start)
                if key not in seen:
                    seen.add(key)
                    candidates.append(_Candidate(passage, _chunk_as_span(passage), 0))
        return candidates

    def _similarities(self, question: str, info: QuestionInfo, query_embedding: Any,
                      chosen: Sequence[_Candidate], texts: list[str]) -> np.ndarray:
        """Similarity of each chosen span to the question (blended with the topic of "what
        did X say about Y"), rounded so that batch composition cannot reorder near-ties."""
        extra = [t for t in (info.topic,) if t]
        if query_embedding is None:
            extra.insert(0, question)
        extra_vectors = self.embedder.embed_small(extra) if extra else None
        q_vec = (np.asarray(query_embedding, dtype=np.float32) if query_embedding is not None
                 else extra_vectors[0])
        topic_vec = extra_vectors[-1] if info.topic else None
        matrix = self._embed([c.key for c in chosen], texts)
        semantic = matrix @ q_vec
        if topic_vec is not None:
            semantic = 0.4 * semantic + 0.6 * (matrix @ topic_vec)
        return np.round(semantic, 3)

    def analyse(self, question: str, passages: Sequence[Passage], *,
                query_embedding: Any = None) -> Analysis:
        """Score every candidate span of the passages for `question` and judge coverage."""
        started = time.perf_counter()
        info = QuestionInfo.parse(question)
        if not passages:
            return Analysis(info, [], Coverage(False, "no indexed article matches"))
        candidates = self._candidates(passages)
        texts = [c.text for c in candidates]
        features = _span_features(info, question, candidates, texts, passages)
        # only the most promising spans are embedded: embedding is the costly step
        order = sorted(range(len(candidates)),
                       key=lambda i: -(features[i].partial
                                       + PRIOR_FOR_EMBEDDING * features[i].prior))
        chosen = sorted(order[:self.max_embedded])
        mark = time.perf_counter()
        semantic = self._similarities(question, info, query_embedding,
                                      [candidates[i] for i in chosen], [texts[i] for i in chosen])
        embed_time = time.perf_counter() - mark
        scored = [_scored(candidates[n], texts[n], features[n], float(semantic[row]))
                  for row, n in enumerate(chosen)]
        scored.sort(key=lambda s: -s.score)
        coverage = judge_coverage(info, passages,
                                  best_semantic=max((s.semantic for s in scored), default=0.0),
                                  top_keyword=scored[0].keyword if scored else 0.0,
                                  bars=self.bars)
        timings = {"embed_spans": embed_time, "analyse": time.perf_counter() - started}
        return Analysis(info, scored, coverage, timings)

    # --- answering -----------------------------------------------------------------------

    def select(self, analysis: Analysis, passages: Sequence[Passage] = ()) -> list[ScoredSpan]:
        """The spans to quote: the best one and those close to it (neighbours of a chosen
        span get twice the margin); adjacent chosen spans merge, pronouns get their context."""
        if not analysis.spans:
            return []
        best = analysis.spans[0].score
        chosen: list[ScoredSpan] = []
        for span in analysis.spans:
            if len(chosen) >= self.max_spans or span.score < best - 2 * SPAN_MARGIN:
                break
            neighbour = span.speaker > 0 and any(
                c.article.id == span.article.id and abs(c.index - span.index) == 1
                and c.speaker > 0 for c in chosen)
            if span.score < best - SPAN_MARGIN and not neighbour:
                continue
            chosen.append(span)
        chunks: dict[str, list[Chunk]] = {}
        for passage in passages:
            chunks.setdefault(passage.article.id, []).append(passage.chunk)
        chosen = self._merge_adjacent(chosen, chunks)
        return [self._with_context(span, chunks) for span in chosen]

    def _merge_adjacent(self, spans: list[ScoredSpan],
                        chunks: dict[str, list[Chunk]]) -> list[ScoredSpan]:
        out: list[ScoredSpan] = []
        for span in spans:
            cached = self._articles.get(span.article.id)
            merged = False
            for k, kept in enumerate(out):
                if cached is None or kept.article.id != span.article.id:
                    continue
                if span.index < 0 or kept.index < 0:
                    continue
                lo, hi = min(kept.start, span.start), max(kept.end, span.end)
                touching = abs(kept.index - span.index) == 1 or (
                    kept.start <= span.start < kept.end or span.start <= kept.start < span.end)
                home = next((c for c in chunks.get(span.article.id, [])
                             if c.start <= lo and hi <= c.end), None)
                if touching and home is not None and len(words(cached.body[lo:hi])) <= 90:
                    out[k] = kept.widened(lo, hi, cached.body, home)
                    merged = True
                    break
            if not merged:
                out.append(span)
        return out

    def _with_context(self, span: ScoredSpan, chunks: dict[str, list[Chunk]]) -> ScoredSpan:
        """Prepend the previous span when this one opens on a pronoun ("met with him")."""
        cached = self._articles.get(span.article.id)
        if cached is None or span.index < 1:
            return span
        for token in words(span.text):
            if _is_name(token):
                return span  # a name comes before any pronoun: the span stands alone
            if token.lower in _THIRD_PERSON:
                break
        else:
            return span
        prev_start = cached.spans[span.index - 1][0]
        home = next((c for c in chunks.get(span.article.id, [])
                     if c.start <= prev_start and span.end <= c.end), None)
        if home is None or len(words(cached.body[prev_start:span.end])) > 70:
            return span
        return span.widened(prev_start, span.end, cached.body, home)

    def answer(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None, analysis: Analysis | None = None) -> Answer:
        """Verbatim cited spans grouped by article, or the not-found answer."""
        analysis = analysis or self.analyse(question, passages, query_embedding=query_embedding)
        refused = refusal(question, passages, analysis, answerer=self.name)
        if refused is not None:
            return refused
        text, citations = _quote_spans(self.select(analysis, passages))
        return check_answer(question, text, passages, citations=citations,
                            answerer=self.name, timings=analysis.timings)

    def stream(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None,
               analysis: Analysis | None = None) -> Iterator[str | Answer]:
        """The answer's lines, then the Answer (the answer is composed in one go)."""
        return lines_then(self.answer(question, passages, query_embedding=query_embedding,
                                      analysis=analysis))


def _quote_spans(chosen: Sequence[ScoredSpan]) -> tuple[str, list[Citation]]:
    """The answer text quoting the chosen spans, grouped by article, and its citations."""
    groups: OrderedDict[str, list[ScoredSpan]] = OrderedDict()
    for span in chosen:
        groups.setdefault(span.article.id, []).append(span)
    citations: list[Citation] = []
    lines = ["The indexed articles say (verbatim excerpts, most relevant first):"]
    for spans in groups.values():
        lines.append("")
        lines.append(article_heading(spans[0].article))
        for span in spans:
            number = len(citations) + 1
            citations.append(Citation(number=number, article=span.article, quote=span.text,
                                      start=span.start, end=span.end, chunk_id=span.chunk.id))
            lines.append(f"- “{span.text}” {format_marker(number)}")
    return "\n".join(lines), citations
