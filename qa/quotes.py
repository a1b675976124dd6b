"""The quote index: who said what, from the quotes stored with the articles (index.quotes).

`QuoteIndex.quotes()` finds quotes by speaker, topic, date and source; `speakers()` lists the
people and outlets quoted, merged across their mentions and articles.

The merge rule. A speaker's name is the quote's resolved name (else its mention), read as the
run of name words after any leading titles, lower-case words and articles ("Defense Minister
Elisabetta Trenta" and "his defense minister Trenta" are read as "Elisabetta Trenta" and
"Trenta"); a mention with no such run (a pronoun, "the ministry") names no speaker.
1. Within an article, a name that ends a fuller name of the article ("Trenta" in "Elisabetta
   Trenta") joins it, but only when exactly one fuller name of that article ends with it:
   when two people in the article share the surname, the surname alone stays apart.
2. Across articles, identical names (case aside) are one speaker.
3. A name left short by step 1 (a surname alone) joins a fuller name of another article only
   when exactly one fuller name in the whole index ends with it.
Two different full names never merge, so two people who share a surname stay two speakers.

Topic ranking: the cosine similarity of the quote's content to the topic (embedded with the
warm embedder, quote vectors cached) plus the share of the topic's content stems that occur
in the quote. Without a speaker, candidates are first narrowed by those keywords.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from index.dates import day_number
from index.quotes import QuoteCatalog, StoredQuotes
from index.records import ArticleMeta, Chunk, Quote
from index.store import Store
from index.text import wordset
from qa.records import Speaker
from qa.retriever import Filters
from qa.text import content_stems

#: Words read as titles or descriptions before a name ("Defense Minister", "Mr", "General"):
#: a name starts after the last of them ("Tesla CEO Elon Musk" -> "Elon Musk").
TITLE_WORDS = wordset("""
mr mrs ms miss dr prof sir dame lord lady rev president vice prime minister ministers deputy
chancellor secretary general gen senator sen rep representative governor gov mayor premier
king queen prince princess pope chairman chairwoman chair ceo director spokesman spokeswoman
spokesperson chief head leader commander colonel col captain capt lieutenant lt sergeant judge
justice ambassador envoy official officer former acting interim coordinator adviser advisor
state the a an his her their its our
""")
#: Articles left out at the start of any name ("The White House" -> "White House").
_ARTICLES = wordset("the a an")
#: Last words of an organisation's name, which is kept whole ("State Department").
ORGANISATION_WORDS = wordset("""
department ministry agency office house party council committee organization organisation
bureau service association union court commission institute foundation group bank
""")
#: Lower-case words allowed inside a name ("Fayez al Sarraj", "Ursula von der Leyen").
NAME_PARTICLES = wordset("al el bin ibn de del della der di da van von le la du dos")
PRONOUNS = wordset("i you he she it we they him her them me us who one")
_NAME_WORD = re.compile(r"[^\W\d_][\w'’.-]*", re.UNICODE)
#: Weight of the keyword share beside the embedding similarity in topic ranking.
KEYWORD_WEIGHT = 0.5
#: Quotes embedded for a topic search without a speaker (the best by keywords).
MAX_TOPIC_CANDIDATES = 64
#: Quote vectors kept (by quote id) for topic ranking.
VECTOR_CACHE = 20000

NameKey = tuple[str, ...]


def name_key(name: str) -> NameKey:
    """The name words of a speaker mention, lower-cased, without leading titles and articles,
    a possessive or an apposition after a comma ("Defense Minister Elisabetta Trenta's" ->
    ("elisabetta", "trenta"), "Jake Sullivan, adviser to Joe Biden" -> ("jake", "sullivan"));
    () when the mention holds no name (a pronoun, a description, a title alone)."""
    tokens = [t.rstrip(".").removesuffix("'s").removesuffix("’s") for t in
              _NAME_WORD.findall(name.split(",")[0])]
    tokens = [t for t in tokens if t]
    if all(t.lower() in TITLE_WORDS for t in tokens):
        return ()
    if tokens and tokens[-1].lower() not in ORGANISATION_WORDS:
        last_title = max((i for i, t in enumerate(tokens[:-1]) if t.lower() in TITLE_WORDS),
                         default=-1)
        tokens = tokens[last_title + 1:]
    while tokens and (not tokens[0][:1].isupper() or tokens[0].lower() in _ARTICLES):
        tokens.pop(0)
    if not tokens or any(not t[:1].isupper() and t.lower() not in NAME_PARTICLES
                         for t in tokens):
        return ()
    if len(tokens) == 1 and tokens[0].lower() in PRONOUNS:
        return ()
    return tuple(t.lower() for t in tokens)


def _ends(full: NameKey, short: NameKey) -> bool:
    """Whether `short` is a proper ending of `full` ("trenta" of "elisabetta trenta")."""
    return len(short) < len(full) and full[-len(short):] == short


def _only_fuller(key: NameKey, fulls: Iterable[NameKey]) -> NameKey | None:
    """The one name among `fulls` that `key` ends, or None (none, or several people)."""
    found = {full for full in fulls if _ends(full, key)}
    return found.pop() if len(found) == 1 else None


def quote_key(quote: Quote) -> NameKey:
    """The name a quote is attributed to: the mention when it is a full name itself, else
    the resolved name, else the mention."""
    mention = name_key(quote.speaker)
    return mention if len(mention) > 1 else name_key(quote.speaker_name) or mention


@dataclass(frozen=True)
class SpeakerMerge:
    """The merged speaker of every quote of a catalog (see the module docstring's rule)."""

    key_of: dict[str, NameKey]  # quote id -> merged name (no entry: no speaker)
    display: dict[NameKey, str]  # merged name -> how it is written
    forms: dict[NameKey, frozenset[str]]  # merged name -> every written form merged into it

    @classmethod
    def of(cls, quotes: Sequence[Quote]) -> SpeakerMerge:
        within = _merge_within_articles(quotes)
        fulls = {key for key in within.values() if len(key) > 1}
        key_of = {qid: _only_fuller(key, fulls) or key for qid, key in within.items()}
        written: dict[NameKey, Counter[str]] = {}
        forms: dict[NameKey, set[str]] = {}
        for quote in quotes:
            key = key_of.get(quote.id)
            if key is None:
                continue
            for form in (quote.speaker_name, quote.speaker):
                if name_key(form):
                    forms.setdefault(key, set()).add(_clean_form(form))
                    if name_key(form) == key:
                        written.setdefault(key, Counter())[_name_part(form, key)] += 1
        display = {key: (written[key].most_common(1)[0][0] if key in written
                         else " ".join(w.capitalize() for w in key)) for key in forms}
        return cls(key_of=key_of, display=display,
                   forms={key: frozenset(f) for key, f in forms.items()})

    def matching(self, speaker: str) -> set[NameKey]:
        """The merged speakers a name given by a user means: the one it names or whose
        forms hold it, else every speaker whose name ends with it ("Conte")."""
        key = name_key(speaker) or tuple(t.lower() for t in _NAME_WORD.findall(speaker))
        if not key:
            return set()
        exact = {k for k, forms in self.forms.items()
                 if k == key or any(name_key(form) == key for form in forms)}
        return exact or {k for k in self.forms if _ends(k, key)}


def _clean_form(form: str) -> str:
    """A mention as an alias: without leading lower-case words, trailing punctuation and
    possessive ("that Biden," -> "Biden", "a CNN" -> "CNN")."""
    words = form.split(",")[0].split()
    while len(words) > 1 and not words[0][:1].isupper():
        words.pop(0)
    return " ".join(words).rstrip(",.;:").removesuffix("'s").removesuffix("’s")


def _name_part(form: str, key: NameKey) -> str:
    """The name words of `form` as written ("Defense Minister Elisabetta Trenta" ->
    "Elisabetta Trenta")."""
    tokens = [t for t in (t.rstrip(".").removesuffix("'s").removesuffix("’s")
                          for t in _NAME_WORD.findall(form.split(",")[0])) if t]
    return " ".join(tokens[len(tokens) - len(key):])


def _merge_within_articles(quotes: Sequence[Quote]) -> dict[str, NameKey]:
    """Quote id -> name after step 1 of the rule (short names join the one fuller name of
    their article that ends with them)."""
    by_article: dict[str, list[tuple[str, NameKey]]] = {}
    for quote in quotes:
        key = quote_key(quote)
        if key:
            by_article.setdefault(quote.article_id, []).append((quote.id, key))
    out: dict[str, NameKey] = {}
    for rows in by_article.values():
        names = {key for _, key in rows}
        for quote_id, key in rows:
            out[quote_id] = _only_fuller(key, names) or key
    return out


@dataclass(frozen=True)
class RankedQuote:
    """A quote and its topic score (similarity plus keyword share; 0 without a topic)."""

    quote: Quote
    score: float = 0.0
    semantic: float = 0.0
    keyword: float = 0.0


class QuoteIndex:
    """Quotes by speaker, topic, date and source, over the quotes stored in the index.

    Cheap to build; the stored quotes are read on first use and again after each write to
    the store; the embedder is used only for topic ranking.
    """

    def __init__(self, store: Store, embedder: Any) -> None:
        self.stored = StoredQuotes(store)
        self.embedder = embedder
        self._merge: tuple[QuoteCatalog, SpeakerMerge] | None = None
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    # --- the catalog and its speakers -----------------------------------------------------

    def catalog(self) -> QuoteCatalog:
        return self.stored.current()

    def merge(self) -> SpeakerMerge:
        """The speaker merge of the current catalog (computed once per catalog)."""
        catalog = self.catalog()
        cached = self._merge
        if cached is None or cached[0] is not catalog:
            cached = (catalog, SpeakerMerge.of(catalog.quotes))
            self._merge = cached
        return cached[1]

    def article(self, article_id: str) -> ArticleMeta | None:
        """The metadata of a quote's article (title, source, date, URL)."""
        return self.catalog().article(article_id)

    def chunks_of(self, article_id: str) -> list[Chunk]:
        """The stored chunks of a quote's article (to cite its spans inside them)."""
        return self.stored.store.article_chunks(article_id)

    def speaker_of(self, quote: Quote) -> str:
        """The merged speaker name of a quote ("" when it names no speaker)."""
        merge = self.merge()
        key = merge.key_of.get(quote.id)
        return merge.display.get(key, "") if key else ""

    # --- the queries ----------------------------------------------------------------------

    def quotes(self, speaker: str | None = None, topic: str | None = None,
               since: str | date | None = None, until: str | date | None = None,
               sources: str | Sequence[str] | None = None,
               limit: int | None = None) -> list[Quote]:
        """Quotes of `speaker` (any merged form), ranked by `topic` when given, else newest
        first; within the dates and sources given (the retriever's filter rules)."""
        ranked = self.ranked(speaker=speaker, topic=topic, since=since, until=until,
                             sources=sources)
        if limit is not None:
            ranked = ranked[:max(0, limit)]
        return [r.quote for r in ranked]

    def ranked(self, *, speaker: str | None = None, topic: str | None = None,
               since: str | date | None = None, until: str | date | None = None,
               sources: str | Sequence[str] | None = None,
               filters: Filters | None = None) -> list[RankedQuote]:
        """`quotes()` with the topic scores (for the quote answerer)."""
        filters = filters or Filters.make(sources=sources, since=since, until=until)
        candidates = self._filtered(filters)
        if speaker is not None and speaker.strip():
            candidates = self._of_speaker(candidates, speaker)
        if topic is not None and topic.strip():
            return self._by_topic(candidates, topic, narrow=not (speaker or "").strip())
        candidates.sort(key=lambda q: (q.published, q.article_id, -q.start), reverse=True)
        return [RankedQuote(q) for q in candidates]

    def speakers(self, since: str | date | None = None, until: str | date | None = None,
                 sources: str | Sequence[str] | None = None) -> list[Speaker]:
        """The merged speakers of the quotes within these dates and sources, most quoted
        first, with their other forms, counts and date range."""
        merge = self.merge()
        groups: dict[NameKey, list[Quote]] = {}
        for quote in self._filtered(Filters.make(sources=sources, since=since, until=until)):
            key = merge.key_of.get(quote.id)
            if key:
                groups.setdefault(key, []).append(quote)
        out = [_speaker(merge, key, quotes) for key, quotes in groups.items()]
        out.sort(key=lambda s: (-s.quote_count, s.name.lower()))
        return out

    # --- the steps ------------------------------------------------------------------------

    def _filtered(self, filters: Filters) -> list[Quote]:
        return self.catalog().select(sources=filters.sources,
                                     low=day_number(filters.since or None),
                                     high=day_number(filters.until or None))

    def _of_speaker(self, quotes: list[Quote], speaker: str) -> list[Quote]:
        merge = self.merge()
        wanted = merge.matching(speaker)
        return [q for q in quotes if merge.key_of.get(q.id) in wanted]

    def _by_topic(self, quotes: list[Quote], topic: str, *, narrow: bool) -> list[RankedQuote]:
        """Quotes ranked by similarity to `topic` plus keyword share (best first)."""
        stems = set(content_stems(topic))
        shares = [_keyword_share(stems, q.content) for q in quotes]
        if narrow:
            order = sorted(range(len(quotes)), key=lambda i: -shares[i])
            keep = [i for i in order[:MAX_TOPIC_CANDIDATES] if shares[i] > 0]
            quotes, shares = [quotes[i] for i in keep], [shares[i] for i in keep]
        if not quotes:
            return []
        similarity = self._vectors_of(quotes) @ self.embedder.embed_query(topic)
        ranked = [RankedQuote(q, round(float(sim) + KEYWORD_WEIGHT * share, 4),
                              float(sim), share)
                  for q, sim, share in zip(quotes, similarity, shares, strict=True)]
        ranked.sort(key=lambda r: (-r.score, r.quote.article_id, r.quote.start))
        return ranked

    def _vectors_of(self, quotes: Sequence[Quote]) -> np.ndarray:
        """The embeddings of the quotes' contents (computed once per quote id)."""
        with self._lock:
            known = {q.id: self._vectors[q.id] for q in quotes if q.id in self._vectors}
        todo = [q for q in quotes if q.id not in known]
        if todo:
            fresh = dict(zip((q.id for q in todo),
                             self.embedder.embed_small([q.content for q in todo]), strict=True))
            known.update(fresh)
            with self._lock:
                if len(self._vectors) + len(fresh) > VECTOR_CACHE:
                    self._vectors.clear()
                self._vectors.update(fresh)
        return np.vstack([known[q.id] for q in quotes])


def _keyword_share(stems: set[str], text: str) -> float:
    """The share of `stems` that occur in `text`."""
    if not stems:
        return 0.0
    return len(stems & set(content_stems(text))) / len(stems)


def _speaker(merge: SpeakerMerge, key: NameKey, quotes: list[Quote]) -> Speaker:
    name = merge.display[key]
    dates = sorted(q.published[:10] for q in quotes if q.published)
    return Speaker(name=name, aliases=tuple(sorted(merge.forms[key] - {name})),
                   quote_count=len(quotes), article_count=len({q.article_id for q in quotes}),
                   first=dates[0] if dates else "", last=dates[-1] if dates else "")
