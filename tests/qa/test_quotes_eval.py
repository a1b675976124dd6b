"""`newsqa eval-quotes` reports the rules and the product's tagger side by side, each with its
own hand-judged resolution (fixtures written here: no PolNeAR text)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from index.records import Article, Quote
from qa.eval.quotes_eval import (
    PRODUCT,
    ResolutionItem,
    judge,
    load_judgements,
    run_quotes_eval,
)

TEXT = ("Mayor Ana Ruiz opened the bridge. She said the budget was cut. "
        "Her deputy Tom Bell said nothing.")
SHE = (TEXT.index("She"), TEXT.index("She") + 3)
CONTENT = (TEXT.index("the budget"), TEXT.index(" Her") - 1)


def _polnear_file(tmp_path: Path) -> Path:
    """One PolNeAR-shaped record with one pronoun-sourced attribution."""
    record = {"id": "h1", "publisher": "test", "published": "2026-03-03", "title": "t",
              "author": "", "text": TEXT, "attributions": [
                  {"source": [list(SHE)], "cue": [[SHE[1] + 1, SHE[1] + 5]],
                   "content": [list(CONTENT)]}]}
    path = tmp_path / "polnear.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def _resolving_to(name: str) -> Callable[[Article], list[Quote]]:
    """An extractor that finds the gold content and resolves its speaker to `name`."""
    def extract(article: Article) -> list[Quote]:
        return [Quote(article_id=article.id, content_spans=(CONTENT,),
                      content=article.body[CONTENT[0]:CONTENT[1]], speaker="She",
                      speaker_span=SHE, speaker_name=name, kind="indirect")]
    return extract


def test_one_id_holds_a_verdict_per_resolved_name(tmp_path: Path) -> None:
    path = tmp_path / "judgements.json"
    path.write_text(json.dumps([
        {"id": "h1#0", "resolved": "Ana Ruiz", "verdict": "correct"},
        {"id": "h1#0", "resolved": "Tom Bell", "verdict": "wrong"}]), encoding="utf-8")
    judgements = load_judgements(path)
    right = ResolutionItem("h1#0", "She", "Ana Ruiz", True)
    wrong = ResolutionItem("h1#0", "She", "Tom Bell", True)
    other = ResolutionItem("h1#0", "She", "Somebody", True)
    assert judge([right], judgements)["correct"] == 1
    assert judge([wrong], judgements)["wrong"] == 1
    figures = judge([other], judgements)
    assert figures["unjudged"] == 1 and figures["unjudged_items"][0]["resolved"] == "Somebody"


def test_report_has_both_extractors_and_targets_from_the_product(tmp_path: Path) -> None:
    judgements = tmp_path / "judgements.json"
    judgements.write_text(json.dumps([
        {"id": "h1#0", "resolved": "Ana Ruiz", "verdict": "correct"},
        {"id": "h1#0", "resolved": "Tom Bell", "verdict": "wrong"}]), encoding="utf-8")
    out = tmp_path / "quotes-eval.md"
    report = run_quotes_eval(_polnear_file(tmp_path), out=out, extractors={
        "rules": _resolving_to("Tom Bell"), PRODUCT: _resolving_to("Ana Ruiz")},
        judgements_file=judgements)
    assert report["extractor"] == PRODUCT
    assert set(report["results"]) == {"rules", PRODUCT}
    assert report["resolution"][PRODUCT]["share_correct"] == 1.0
    assert report["resolution"]["rules"]["share_correct"] == 0.0
    text = out.read_text(encoding="utf-8")
    assert f"## Targets ({PRODUCT})" in text
    assert "| resolution of pronoun / description sources (hand-judged) | ≥ 80.0 | 100.0 | yes |" \
        in text, "the targets table reads the product's resolution, not the rules'"
    assert f"**{PRODUCT}**: correct 1" in text and "**rules**: correct 0, wrong 1" in text
