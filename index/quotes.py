"""Every stored quote in memory: the quote catalog, read once per store write.

Quotes live in the article records (index.store, `QUOTES_KEY`); `QuoteCatalog.from_store`
reads them all in one pass over the records' metadata (no bodies, no embeddings), and
`StoredQuotes` keeps the catalog until the store's `fingerprint()` changes, as the retriever
does for the filter catalog (index.catalog). Filters follow `index.store.build_where`: sources
are a set, `since` / `until` inclusive YYYYMMDD bounds, and a `since` bound alone leaves out
undated quotes (day 0).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from index import attribution, quote_tagger
from index.artifacts import file_sha256
from index.dates import published_day
from index.quote_tagger import ChunkStates, QuoteTagger
from index.records import Article, ArticleMeta, Quote
from index.settings import BUNDLED_MODEL
from index.store import Store

logger = logging.getLogger(__name__)

#: Manifest meta key holding the version of the extractor that made the stored quotes.
EXTRACTOR_KEY = "quote_extractor"


@dataclass(frozen=True)
class QuoteExtractor:
    """What extracts an article's quotes at index time, and its version: when the version
    differs from the one recorded in the manifest, the next index run re-extracts the quotes
    of every stored article from its stored body (no re-embedding).

    `from_states`, when given, extracts from the token states the embedding pass computed
    for the article's chunks (the index run then embeds with `embed_documents_with_states`);
    `extract` serves when no states are at hand (re-extraction after a version change).
    """

    version: str
    extract: Callable[[Article], Sequence[Quote]]
    from_states: Callable[[Sequence[ArticleStates]], Sequence[Sequence[Quote]]] | None = None

    @property
    def reads_states(self) -> bool:
        """Whether the index run should hand this extractor its chunks' token states."""
        return self.from_states is not None

    def quotes_of(self, article: Article) -> tuple[Quote, ...]:
        """The article's quotes from its body alone (`extract`); see `verbatim`."""
        return verbatim(article, self.extract(article))

    def quotes_from_states(self, items: Sequence[ArticleStates]
                           ) -> dict[str, tuple[Quote, ...]]:
        """Article id -> quotes, from the chunk states of the embedding pass when this
        extractor reads them (else from the bodies); see `verbatim`."""
        if self.from_states is None:
            return {article.id: self.quotes_of(article) for article, _ in items}
        found = self.from_states(items)
        return {article.id: verbatim(article, quotes)
                for (article, _), quotes in zip(items, found, strict=True)}


#: An article and the token states its chunks' embedding pass computed.
ArticleStates = tuple[Article, Sequence[ChunkStates]]


def verbatim(article: Article, quotes: Sequence[Quote]) -> tuple[Quote, ...]:
    """The quotes whose spans are verbatim in the article's body (citations promise verbatim
    spans); any other is left out and logged."""
    kept = tuple(q for q in quotes if q.article_id == article.id and q.matches(article.body))
    if len(kept) != len(quotes):
        logger.warning("%s: %d quote(s) left out, their spans are not verbatim in the body",
                       article.key or article.id, len(quotes) - len(kept))
    return kept


def _source_hash(module_file: str | None) -> str:
    return hashlib.sha256(Path(str(module_file)).read_bytes()).hexdigest()[:16]


def rules_extractor() -> QuoteExtractor:
    """The extractor of index.attribution; its version is the hash of that module's source,
    so any change to the rules re-extracts the stored quotes on the next index run."""
    return QuoteExtractor(version="attribution-" + _source_hash(attribution.__file__),
                          extract=attribution.extract_quotes)


@dataclass(frozen=True)
class TaggerExtraction:
    """The learned tagger (index.quote_tagger) on punctuated articles, the rules on articles
    with punctuation stripped (`attribution.is_stripped`: the tagger is poor there); both end
    in `attribution.to_quotes` (speaker resolution, venue, kind)."""

    tagger: QuoteTagger

    def from_states(self, items: Sequence[ArticleStates]) -> list[tuple[Quote, ...]]:
        """At index time, from the chunk states of the embedding pass: no second encoder pass
        (the punctuated articles tagged in one batch)."""
        out: list[tuple[Quote, ...]] = [attribution.extract_quotes(article)
                                        if attribution.is_stripped(article.body) else ()
                                        for article, _ in items]
        tagged = [n for n, (article, _) in enumerate(items)
                  if not attribution.is_stripped(article.body)]
        found = self.tagger.attributions_from_chunks([(items[n][0].body, items[n][1])
                                                      for n in tagged])
        for n, attributions in zip(tagged, found, strict=True):
            out[n] = attribution.to_quotes(items[n][0], attributions)
        return out

    def with_own_pass(self, article: Article) -> tuple[Quote, ...]:
        """Without chunk states (re-extraction from stored bodies after a version change,
        once per extractor change): the tagger runs its own encoder pass over the body."""
        if attribution.is_stripped(article.body):
            return attribution.extract_quotes(article)
        return attribution.to_quotes(article, self.tagger.attributions(article.body))


def tagger_ready(tagger: QuoteTagger, model: str) -> bool:
    """Whether the tagger's weights are there, match their sha256 and were trained on the
    states of `model` (the index's embedding model); no torch import, no model load."""
    try:
        weights = tagger.folder / quote_tagger.WEIGHTS_FILE
        return (weights.is_file() and file_sha256(weights) == tagger.sha256
                and tagger.metadata.get("model") == model)
    except quote_tagger.TaggerWeightsError:
        return False


def default_extractor(model: str = BUNDLED_MODEL,
                      folder: Path = quote_tagger.WEIGHTS_DIR) -> QuoteExtractor:
    """The tagger extractor (`TaggerExtraction`) when its weights verify and fit the index's
    embedding `model`, else the rules alone (logged). The tagger's version covers the weights'
    sha256 and the source of the rules and of the tagger's decoding."""
    tagger = QuoteTagger(folder, model=model)
    if not tagger_ready(tagger, model):
        logger.warning("quote tagger unavailable for model %r (weights missing, corrupted or "
                       "trained on another model): quotes are extracted by the rules", model)
        return rules_extractor()
    extraction = TaggerExtraction(tagger)
    version = (f"tagger-{tagger.sha256[:16]}-{_source_hash(quote_tagger.__file__)}"
               f"+attribution-{_source_hash(attribution.__file__)}")
    return QuoteExtractor(version=version, extract=extraction.with_own_pass,
                          from_states=extraction.from_states)


@dataclass(frozen=True)
class QuoteCatalog:
    """All quotes of the visible articles, their publication days, and the articles' metadata.

    `unextracted` holds the ids of articles stored without quotes (an index built before
    quotes were extracted, until the next index run extracts them).
    """

    quotes: tuple[Quote, ...]
    days: tuple[int, ...]  # YYYYMMDD per quote, 0 when undated
    articles: Mapping[str, ArticleMeta]
    by_article: Mapping[str, tuple[Quote, ...]]
    unextracted: frozenset[str] = frozenset()

    @classmethod
    def build(cls, rows: Iterable[tuple[ArticleMeta, Sequence[Quote] | None]]) -> QuoteCatalog:
        """From (article metadata, its quotes or None) rows, in article order then text order."""
        by_article: dict[str, tuple[Quote, ...]] = {}
        articles: dict[str, ArticleMeta] = {}
        unextracted: set[str] = set()
        for meta, article_quotes in sorted(rows, key=lambda row: row[0].id):
            articles[meta.id] = meta
            if article_quotes is None:
                unextracted.add(meta.id)
                continue
            by_article[meta.id] = tuple(sorted(article_quotes, key=lambda q: (q.start, q.end)))
        quotes = tuple(q for article_quotes in by_article.values() for q in article_quotes)
        return cls(quotes=quotes, days=tuple(published_day(q.published) for q in quotes),
                   articles=MappingProxyType(articles), unextracted=frozenset(unextracted),
                   by_article=MappingProxyType(by_article))

    @classmethod
    def from_store(cls, store: Store) -> QuoteCatalog:
        """The catalog of what `store` holds now (one read of its article records)."""
        return cls.build(store.quote_records())

    def article(self, article_id: str) -> ArticleMeta | None:
        return self.articles.get(article_id)

    def of_article(self, article_id: str) -> tuple[Quote, ...]:
        """The quotes of one article, in text order."""
        return self.by_article.get(article_id, ())

    def select(self, *, sources: Sequence[str] = (), low: int | None = None,
               high: int | None = None) -> list[Quote]:
        """The quotes of articles the filter keeps (the rules of `build_where`), in order."""
        wanted = set(sources)
        out = []
        for quote, day in zip(self.quotes, self.days, strict=True):
            if wanted and quote.source not in wanted:
                continue
            if low is not None and (day < low or (high is None and day == 0)):
                continue
            if high is not None and day > high:
                continue
            out.append(quote)
        return out


class StoredQuotes:
    """The quote catalog of a store, re-read after each write to it (its fingerprint, a file
    read or one request to a server, is checked per use)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cached: tuple[str, QuoteCatalog] | None = None
        self._lock = threading.Lock()

    def current(self) -> QuoteCatalog:
        """The catalog of what the store holds now."""
        stamp = self.store.fingerprint()
        cached = self._cached
        if cached is None or cached[0] != stamp or not stamp:
            with self._lock:
                cached = self._cached
                if cached is None or cached[0] != stamp or not stamp:
                    cached = (stamp, QuoteCatalog.from_store(self.store))
                    self._cached = cached
        return cached[1]

    def forget(self) -> None:
        """Drop the cached catalog (after the store was reopened)."""
        with self._lock:
            self._cached = None
