// newsqa: a [n] marker in an answer scrolls the sources panel to card n and flashes it.
// Cards of an older answer appear once the chat's select event has re-rendered the panel,
// so the handler waits for the card for up to three seconds.
(function () {
  function reveal(id, tries) {
    var card = document.getElementById(id);
    if (!card) {
      if (tries > 0) { setTimeout(function () { reveal(id, tries - 1); }, 150); }
      return;
    }
    // scroll the sources panel only (not the page), so the answer stays where it is
    var panel = document.getElementById("nq-sources");
    if (panel && panel.contains(card) && panel.scrollHeight > panel.clientHeight) {
      var delta = card.getBoundingClientRect().top - panel.getBoundingClientRect().top - 8;
      panel.scrollTo({ top: panel.scrollTop + delta, behavior: "smooth" });
    } else {
      card.scrollIntoView({ behavior: "smooth", block: "start" });
    }
    card.classList.add("nq-flash");
    setTimeout(function () { card.classList.remove("nq-flash"); }, 1600);
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.nq-cite") : null;
    if (!link) { return; }
    var href = link.getAttribute("href") || "";
    if (href.indexOf("#nq-src-") !== 0) { return; }
    event.preventDefault();
    reveal(href.slice(1), 20);
  }, true);
  // Opening "Read the full article" scrolls the highlighted span into view.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.classList || !details.classList.contains("nq-full") || !details.open) { return; }
    var mark = details.querySelector("mark");
    var box = details.querySelector(".nq-body");
    if (mark && box) { box.scrollTop = Math.max(0, mark.offsetTop - box.offsetTop - 40); }
  }, true);
})();
