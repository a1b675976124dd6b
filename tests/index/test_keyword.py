"""The BM25 keyword index: stemming, filtering, atomic generations, rebuild from the store."""

from __future__ import annotations

from pathlib import Path

from index.keyword import KeywordIndex, current_generation, load_or_build
from index.records import Chunk
from index.settings import Settings


def chunk(article_id: str, ordinal: int, text: str) -> Chunk:
    return Chunk(article_id=article_id, ordinal=ordinal, start=0, end=len(text), text=text)


CHUNKS = [
    chunk("a1", 0, "The minister rejected military intervention in Libya."),
    chunk("a1", 1, "Talks with the United Nations envoy continue in Tripoli."),
    chunk("a2", 0, "Dock workers ended their strike after the union won a pay rise."),
    chunk("a3", 0, "Libya's oil output fell as fighting intensified near the port."),
]
TITLES = {"a1": "Italy on Libya", "a2": "Port strike ends", "a3": "Oil and war"}


def test_search_stems_and_ranks() -> None:
    index = KeywordIndex.build(CHUNKS, TITLES)
    assert len(index) == 4
    hits = index.search("Militaries and interventions", k=5)  # stems: militari, intervent
    assert hits[0][0] == CHUNKS[0].id
    assert all(score > 0 for _, score in hits)
    assert index.search("the and of", k=5) == []  # stop words only
    assert index.search("zeppelin", k=5) == []
    # title words count: "port" is in a2's title only (and in a3's text), "Italy" only in
    # a1's title, which both of a1's chunks carry
    assert {cid for cid, _ in index.search("port", k=5)} == {CHUNKS[2].id, CHUNKS[3].id}
    assert {cid for cid, _ in index.search("Italy", k=5)} == {CHUNKS[0].id, CHUNKS[1].id}
    untitled = KeywordIndex.build(CHUNKS, {})
    assert untitled.search("Italy", k=5) == []
    assert [cid for cid, _ in untitled.search("port", k=5)] == [CHUNKS[3].id]


def test_filter_is_applied_before_top_k() -> None:
    index = KeywordIndex.build(CHUNKS, TITLES)
    hits = index.search("Libya", k=1, allowed_article_ids={"a3"})
    assert [cid for cid, _ in hits] == [CHUNKS[3].id]
    assert index.search("Libya", k=3, allowed_article_ids={"a2"}) == []
    assert index.search("Libya", k=3, allowed_article_ids=set()) == []
    best = index.search("Libya", k=10)  # a1's first chunk has Libya in its title and text
    assert [cid for cid, _ in best] == [CHUNKS[0].id, CHUNKS[1].id, CHUNKS[3].id]
    assert best[0][1] > best[1][1] > best[2][1] > 0


def test_save_load_and_refresh(tmp_path: Path) -> None:
    folder = tmp_path / "keyword"
    first = KeywordIndex.build(CHUNKS[:2], TITLES)
    first.save(folder)
    server = KeywordIndex.load(folder)
    assert server is not None and len(server) == 2
    assert server.refresh_if_stale() is False

    KeywordIndex.build(CHUNKS, TITLES).save(folder)  # another process publishes
    assert server.refresh_if_stale() is True
    assert len(server) == 4
    assert server.search("strike", k=1)[0][0] == CHUNKS[2].id
    assert server.generation == current_generation(folder)
    generations = sorted(p.name for p in folder.glob("g-*"))
    assert len(generations) <= 2 and server.generation in generations


def test_missing_or_corrupt_index_loads_as_none(tmp_path: Path) -> None:
    folder = tmp_path / "keyword"
    assert KeywordIndex.load(folder) is None
    name = KeywordIndex.build(CHUNKS, TITLES).save(folder)
    (folder / name / "chunks.json").write_text("{truncated", encoding="utf-8")
    assert KeywordIndex.load(folder) is None


def test_empty_index(tmp_path: Path) -> None:
    index = KeywordIndex.build([], {})
    assert len(index) == 0 and index.search("anything", k=3) == []
    index.save(tmp_path / "k")
    loaded = KeywordIndex.load(tmp_path / "k")
    assert loaded is not None and len(loaded) == 0


class FakeStore:
    """The two Store methods load_or_build needs."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks = chunks
        self.iterated = 0

    def iter_chunks(self):
        self.iterated += 1
        return iter(self.chunks)

    def list_articles(self):
        from index.records import ArticleMeta

        return [(ArticleMeta(id=a, title=t), 1) for a, t in TITLES.items()]

    def count(self) -> tuple[int, int]:
        return len(TITLES), len(self.chunks)


def test_load_or_build_rebuilds_when_missing_corrupt_or_out_of_step(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = FakeStore(CHUNKS)
    index = load_or_build(settings, store)  # type: ignore[arg-type]
    assert len(index) == 4 and store.iterated == 1
    assert len(load_or_build(settings, store)) == 4 and store.iterated == 1  # loaded
    (settings.keyword_dir / index.generation / "meta.json").write_text("garbage")
    assert len(load_or_build(settings, store)) == 4 and store.iterated == 2  # corrupt
    store.chunks = CHUNKS[:3]
    assert len(load_or_build(settings, store)) == 3 and store.iterated == 3  # out of step
