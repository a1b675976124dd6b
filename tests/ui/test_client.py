"""The named API endpoints through gradio_client: /ask and /index (/quotes and /speakers in
test_quotes_tab.py), nothing else exposed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SEED_ARTICLE
from tests.ui.conftest import LiveApp


@pytest.fixture(scope="module")
def client(live_app: LiveApp) -> Iterator[Any]:
    from gradio_client import Client

    c = Client(live_app.url, verbose=False)  # default download_files, as a script would
    try:
        yield c
    finally:
        c.close()


def test_only_the_named_endpoints_are_public(client: Any) -> None:
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/ask", "/index", "/quotes", "/speakers"}


def test_ask_returns_answer_with_verifiable_citations(client: Any, live_app: LiveApp) -> None:
    result = client.predict("What did Trenta say about intervention?", api_name="/ask")
    assert result["found"] is True
    assert "[1]" in result["text"]
    assert result["citations"], result
    first = result["citations"][0]
    assert first["number"] == 1 and "the option does not exist" in first["quote"]
    assert "intervention" in " ".join(c["quote"] for c in result["citations"])
    body = live_app.qa.article(first["article_id"]).body
    seed = SEED_ARTICLE.read_text(encoding="utf-8")
    for citation in result["citations"]:
        assert citation["title"] and citation["article_id"] == first["article_id"]
        assert seed[citation["start"]:citation["end"]] == citation["quote"]
    assert body[first["start"]:first["end"]] == first["quote"]
    assert first["file"].endswith(SEED_ARTICLE.name) and "path" not in first


def test_ask_applies_filters(client: Any) -> None:
    later = client.predict("What did Trenta say about intervention?", [], "2099-01-01", "",
                           api_name="/ask")
    assert later["found"] is False and later["citations"] == []
    only_evil = client.predict(question="What did Trenta say about intervention?",
                               sources=["Evil Gazette"], api_name="/ask")
    # the filter leaves only the hostile article: its passages are shown, none from the seed
    assert only_evil["passages"], only_evil
    assert {p["article"]["source"] for p in only_evil["passages"]} == {"Evil Gazette"}
    assert all("lighthouse" in p["chunk"]["text"] for p in only_evil["passages"])
    assert all(c["source"] == "Evil Gazette" for c in only_evil["citations"])
    assert "the option does not exist" not in json.dumps(only_evil)
    with pytest.raises(Exception, match="From date"):
        client.predict("Trenta?", None, "31/12/2019", "", api_name="/ask")


def test_index_endpoint_reports_the_folder(client: Any, live_app: LiveApp) -> None:
    report = client.predict(api_name="/index")
    assert report["unchanged"] >= 2 and report["indexed"] == 0
    assert report["errors"] == []
    assert live_app.qa.stats()["articles"] >= 2
