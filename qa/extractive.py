"""The offline answerer: verbatim spans of the retrieved passages, cited, most relevant first.

Candidate spans are sentences (or pseudo-sentences when the text has no punctuation) of the
articles the passages come from, restricted to the retrieved chunks. They are scored by
embedding similarity to the question, keyword overlap, names of the question, the answer type
(who/where/when/how many) and, for "what did X say" questions, whether X is the speaker.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.records import ArticleMeta, Chunk
from index.text import ANSWER_STOPWORDS, stem, wordset
from qa.records import Answer, Citation, Passage
from qa.text import (
    SENTENCE_STARTERS,
    Word,
    content_stems,
    name_matches,
    quoted_terms,
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
_NUMBER_WORDS = wordset("""
one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred
hundreds thousand thousands million millions billion billions trillion dozen dozens percent half
""")
_TIME_WORDS = wordset("""
monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december week month year today yesterday tomorrow
morning evening night ago last next earlier later
""")

_SAY_PATTERNS = (
    re.compile(r"^\s*(?:what|how)\s+(?:did|does|do|has|have|had|was|is|were)\s+(?P<who>.+?)\s+"
               r"(?:say|said|tell|told|think|comment(?:ed)?|claim(?:ed)?|state|reply|respond|"
               r"argue|announce|mean|write|declare|react)\b"
               r"(?:\s+(?:about|on|regarding|concerning|of|to|over|when|after|in))?"
               r"\s*(?P<topic>.*?)[\s?.!]*$", re.IGNORECASE),
    re.compile(r"^\s*(?:what|how)\s+(?:was|is|were|are)\s+(?P<who>.+?)['’]s?\s+"
               r"(?:position|view|stance|comment|reaction|response|opinion)s?"
               r"(?:\s+(?:on|about|to|regarding|over))?\s*(?P<topic>.*?)[\s?.!]*$",
               re.IGNORECASE),
)

#: Weights of the span score (tuned on the seed questions, checked on the eval subset).
W_SEMANTIC = 0.45
W_KEYWORD = 0.30
W_NAMES = 0.10
W_SPEAKER = 0.30
W_TYPE = 0.10
W_PRIOR = 0.05
#: Not found when the best span similarity is below RELEVANCE_BAR and the top span holds less
#: than KEYWORD_BAR of the question's (rarity-weighted) words, or when under STEM_COVERAGE_BAR
#: of the question's words occur in the passages at all (calibrated in qa/benchmark.py)...
RELEVANCE_BAR = 0.50
KEYWORD_BAR = 0.40
STEM_COVERAGE_BAR = 0.70
#: ... unless a span is at least this similar to the question (paraphrase: "offensive" for
#: "operation").
STRONG_SEMANTIC = 0.55
MAX_SPANS = 4
#: Candidate spans embedded per question at most (latency bound on long articles), chosen by
#: their score without similarity plus PRIOR_FOR_EMBEDDING x the passage's retrieval rank.
MAX_EMBEDDED = 12
PRIOR_FOR_EMBEDDING = 0.15
SPAN_MARGIN = 0.12


@dataclass(frozen=True)
class QuestionInfo:
    """What the answerer needs to know about a question."""

    text: str
    names: tuple[str, ...]
    quoted: tuple[str, ...]
    stems: tuple[str, ...]
    qtype: str
    speaker: str = ""
    topic: str = ""

    @classmethod
    def parse(cls, question: str) -> QuestionInfo:
        from qa.text import question_names

        text = question.strip()
        lower = text.lower()
        speaker = topic = ""
        for pattern in _SAY_PATTERNS:
            match = pattern.match(text)
            if match:
                speaker, topic = match.group("who").strip(), match.group("topic").strip()
                break
        qtype = "other"
        for prefix, kind in (("how many", "number"), ("how much", "number"),
                             ("who", "person"), ("whom", "person"), ("whose", "person"),
                             ("where", "place"), ("when", "time"), ("what year", "time"),
                             ("which", "name"), ("what", "other")):
            if re.search(rf"\b{prefix}\b", lower):
                qtype = kind
                break
        if speaker:
            qtype = "say"
        return cls(text=text, names=tuple(question_names(text)), quoted=tuple(quoted_terms(text)),
                   stems=tuple(dict.fromkeys(content_stems(text))), qtype=qtype,
                   speaker=speaker, topic=topic)


@dataclass(frozen=True)
class ArticleAnalysis:
    """Spans of one article body and who speaks in each (name keys, lower case)."""

    body: str
    spans: tuple[tuple[int, int], ...]
    speakers: tuple[frozenset[str], ...]
    inherited: tuple[frozenset[str], ...]
    titles: dict[str, str] = field(default_factory=dict)
    whole: bool = True  # False: built from a lone chunk (span indices are not the article's)


def _name_run(tokens: Sequence[Word], end: int) -> list[Word]:
    """The capitalised run of tokens ending at index `end` (inclusive)."""
    begin = end
    while begin > 0 and tokens[begin - 1].capitalised and tokens[begin - 1].text != "I" \
            and tokens[begin - 1].text not in SENTENCE_STARTERS:
        begin -= 1
    return list(tokens[begin:end + 1])


def _is_name(word: Word) -> bool:
    return (word.capitalised and word.text != "I" and word.text not in SENTENCE_STARTERS
            and word.lower not in ANSWER_STOPWORDS)


def analyse_article(body: str) -> ArticleAnalysis:
    """Segment an article and attribute speech in each span (X said, said X, he told...)."""
    spans = tuple(segment(body))
    titles: dict[str, str] = {}
    tokens = words(body)
    # titles: "Defense Minister Elisabetta Trenta", "his defense minister Trenta"
    for i, word in enumerate(tokens):
        if word.lower in TITLE_WORDS:
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
            who = ""
            k = j - 1
            while k >= 0 and j - k <= 4 and (span_tokens[k].lower in _SKIP_BEFORE_VERB
                                             or span_tokens[k].lower.endswith("ly")):
                k -= 1
            if k >= 0:
                prev = span_tokens[k]
                if _is_name(prev):
                    who = prev.lower
                elif prev.lower in ("he", "she"):
                    who = last_speaker or last_person
                elif prev.lower in TITLE_WORDS:
                    b = k
                    while b > 0 and span_tokens[b - 1].lower in TITLE_WORDS:
                        b -= 1
                    phrase = " ".join(t.lower for t in span_tokens[b:k + 1])
                    who = titles.get(phrase) or titles.get(prev.lower, "")
            if not who and token.lower in _FORWARD_VERBS and j + 1 < len(span_tokens) \
                    and _is_name(span_tokens[j + 1]):
                run_end = j + 1
                while run_end + 1 < len(span_tokens) and _is_name(span_tokens[run_end + 1]):
                    run_end += 1
                who = span_tokens[run_end].lower
            if who:
                found.add(who)
                last_speaker = who
        speakers.append(frozenset(found))
    inherited: list[frozenset[str]] = []
    for index, (start, end) in enumerate(spans):
        if speakers[index]:
            inherited.append(frozenset())
            continue
        lowered = {w.lower for w in words(body[start:end])}
        if lowered & _FIRST_PERSON:
            near = set()
            for other in (index - 1, index + 1):
                if 0 <= other < len(spans):
                    near |= speakers[other]
            inherited.append(frozenset(near))
        else:
            inherited.append(frozenset())
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
class Coverage:
    """Whether the passages can answer: found, and a reason when they cannot."""

    found: bool
    reason: str = ""
    best_semantic: float = 0.0


@dataclass
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


class ExtractiveAnswerer:
    """Answers with verbatim spans of the passages; no language model needed."""

    name = "extractive"

    def __init__(self, embedder: Any, *, article_loader: Any = None,
                 relevance_bar: float = RELEVANCE_BAR, max_spans: int = MAX_SPANS,
                 max_embedded: int = MAX_EMBEDDED, keyword_bar: float = KEYWORD_BAR,
                 stem_coverage_bar: float = STEM_COVERAGE_BAR) -> None:
        self.embedder = embedder
        self.article_loader = article_loader
        self.relevance_bar = relevance_bar
        self.max_spans = max_spans
        self.max_embedded = max_embedded
        self.keyword_bar = keyword_bar
        self.stem_coverage_bar = stem_coverage_bar
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
            fresh = self.embedder.embed_documents([texts[i] for i in todo])
            for i, vector in zip(todo, fresh, strict=True):
                rows[i] = vector
                self._vectors.put(keys[i], vector)
        if not rows:
            return np.zeros((0, 1), dtype=np.float32)
        return np.vstack(rows)

    def analyse(self, question: str, passages: Sequence[Passage], *,
                query_embedding: Any = None) -> Analysis:
        """Score every candidate span of the passages for `question` and judge coverage."""
        started = time.perf_counter()
        info = QuestionInfo.parse(question)
        if not passages:
            return Analysis(info, [], Coverage(False, "no indexed article matches"))
        candidates: list[tuple[Passage, ArticleAnalysis, int]] = []
        seen: set[tuple[str, int]] = set()
        for passage in passages:
            analysis = self._article(passage)
            chunk = passage.chunk
            for index, (start, end) in enumerate(analysis.spans):
                if start >= chunk.start and end <= chunk.end \
                        and (passage.article.id, start) not in seen:
                    seen.add((passage.article.id, start))
                    candidates.append((passage, analysis, index))
        if not candidates:  # chunks too short to hold a whole span: use the chunks
            for passage in passages:
                key = (passage.article.id, passage.chunk.start)
                if key not in seen:
                    seen.add(key)
                    candidates.append((passage, ArticleAnalysis(
                        body=" " * passage.chunk.start + passage.chunk.text,
                        spans=((passage.chunk.start, passage.chunk.end),),
                        speakers=(frozenset(),), inherited=(frozenset(),), whole=False), 0))
        texts = [a.body[a.spans[i][0]:a.spans[i][1]] for _, a, i in candidates]
        # keyword overlap, weighted by rarity among the candidate spans
        span_stems = [set(content_stems(t)) for t in texts]
        count = len(texts)
        idf = {s: math.log(1 + count / (1 + sum(s in st for st in span_stems)))
               for s in info.stems}
        total_idf = sum(idf.values()) or 1.0
        question_lower = {w.lower for w in words(question)}
        titles: dict[str, str] = {}
        for _, analysis, _ in candidates:
            titles.update(analysis.titles)
        target = _speaker_keys(info.speaker, titles) if info.speaker else set()
        prior = {p.id: 1.0 - rank / max(len(passages), 1) for rank, p in enumerate(passages)}
        title_words: dict[str, list[str]] = {}
        features: list[tuple[float, float, float, float, float]] = []
        for n, (passage, analysis, index) in enumerate(candidates):
            tokens = words(texts[n])
            lowered = [t.lower for t in tokens]
            keyword = sum(idf[s] for s in info.stems if s in span_stems[n]) / total_idf
            speakers = analysis.speakers[index] | analysis.inherited[index]
            names = 0.0
            if info.names:
                title = title_words.setdefault(passage.article.id, [
                    w.lower for w in words(passage.article.title)])
                names = sum(1.0 if name_matches(name, [*lowered, *speakers])
                            else 0.7 if name_matches(name, title) else 0.0
                            for name in info.names) / len(info.names)
            speaker = 0.0
            if target:
                if analysis.speakers[index] & target:
                    speaker = 1.0
                elif analysis.inherited[index] & target:
                    speaker = 0.6
            answer_type = _answer_type_score(info.qtype, tokens, question_lower)
            features.append((keyword, names, speaker, answer_type, prior.get(passage.id, 0.0)))
        partial = [W_KEYWORD * k + W_NAMES * n + W_SPEAKER * sp + W_TYPE * t + W_PRIOR * p
                   for k, n, sp, t, p in features]
        # only the most promising spans are embedded: embedding is the costly step
        order = sorted(range(len(candidates)),
                       key=lambda i: -(partial[i] + PRIOR_FOR_EMBEDDING * features[i][4]))
        chosen = sorted(order[:self.max_embedded])
        mark = time.perf_counter()
        extra = [t for t in (info.topic,) if t]
        if query_embedding is None:
            extra.insert(0, question)
        extra_vectors = self.embedder.embed_documents(extra) if extra else None
        q_vec = (np.asarray(query_embedding, dtype=np.float32) if query_embedding is not None
                 else extra_vectors[0])
        topic_vec = extra_vectors[-1] if info.topic else None
        keys = [(candidates[i][0].article.id, *candidates[i][1].spans[candidates[i][2]])
                for i in chosen]
        matrix = self._embed(keys, [texts[i] for i in chosen])
        embed_time = time.perf_counter() - mark
        semantic = matrix @ q_vec
        if topic_vec is not None:
            semantic = 0.4 * semantic + 0.6 * (matrix @ topic_vec)
        semantic = np.round(semantic, 3)  # batch composition must not reorder near-ties
        scored: list[ScoredSpan] = []
        for row, n in enumerate(chosen):
            passage, analysis, index = candidates[n]
            keyword, names, speaker, answer_type, _ = features[n]
            start, end = analysis.spans[index]
            scored.append(ScoredSpan(passage.article, passage.chunk, start, end, texts[n],
                                     partial[n] + W_SEMANTIC * float(semantic[row]),
                                     float(semantic[row]), keyword, names, speaker, answer_type,
                                     index if analysis.whole else -1))
        scored.sort(key=lambda s: -s.score)
        coverage = self.coverage(info, passages, scored)
        timings = {"embed_spans": embed_time, "analyse": time.perf_counter() - started}
        return Analysis(info, scored, coverage, timings)

    def coverage(self, info: QuestionInfo, passages: Sequence[Passage],
                 spans: Sequence[ScoredSpan]) -> Coverage:
        """Do the passages speak about what the question asks? Names, quoted terms, key
        words and similarity (bars calibrated on RealTime QA, see qa/benchmark.py)."""
        best = max((s.semantic for s in spans), default=0.0)
        pool: list[str] = []
        for passage in passages:
            pool.extend(w.lower for w in words(passage.chunk.text))
            pool.extend(w.lower for w in words(passage.article.title))
        missing = [name for name in info.names if not name_matches(name, pool)]
        if missing:
            return Coverage(False, f"{', '.join(missing)} "
                                   f"{'is' if len(missing) == 1 else 'are'} not mentioned in "
                                   "the passages found", best)
        joined = " ".join(pool)
        for term in info.quoted:
            if " ".join(w.lower for w in words(term)) not in joined:
                return Coverage(False, f"“{term}” does not occur in the passages found", best)
        if info.stems:
            present = {stem(w) for w in pool}
            share = sum(s in present for s in info.stems) / len(info.stems)
            if share < self.stem_coverage_bar and best < STRONG_SEMANTIC:
                return Coverage(False, "most key words of the question do not occur in the "
                                       "passages found", best)
        top_keyword = spans[0].keyword if spans else 0.0
        if best < self.relevance_bar and top_keyword < self.keyword_bar:
            return Coverage(False, "no passage is close enough to the question", best)
        return Coverage(True, "", best)

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
        from qa.citations import check_answer, not_found

        analysis = analysis or self.analyse(question, passages, query_embedding=query_embedding)
        if not analysis.coverage.found:
            return not_found(question, passages, analysis.coverage.reason,
                             answerer=self.name, timings=analysis.timings)
        chosen = self.select(analysis, passages)
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
                quote = span.text
                citations.append(Citation(number=number, article=span.article, quote=quote,
                                          start=span.start, end=span.end,
                                          chunk_id=span.chunk.id))
                lines.append(f"- “{quote}” [{number}]")
        return check_answer(question, "\n".join(lines), passages, citations=citations,
                            answerer=self.name, timings=analysis.timings)


def article_heading(article: ArticleMeta) -> str:
    """"Title (Source, date)" for an article, with fallbacks for missing fields."""
    title = article.title or article.source or article.id
    extra = ", ".join(x for x in (article.source if article.title else "",
                                  article.published[:10]) if x)
    return f"{title} ({extra})" if extra else title


__all__ = ["Analysis", "ArticleAnalysis", "Coverage", "ExtractiveAnswerer", "QuestionInfo",
           "ScoredSpan", "analyse_article", "article_heading", "stem"]
