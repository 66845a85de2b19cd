// Copy buttons of the back office. Pages work without this script: the text to copy is always
// shown. A button `<button type="button" class="copy" data-copy="ID" hidden>` copies the text of
// the element with id ID; the script reveals the buttons it can serve.
(function () {
  "use strict";
  if (!navigator.clipboard) { return; }
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) { return; }
    button.hidden = false;
    var label = button.textContent;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        button.textContent = button.getAttribute("data-copied") || label;
        setTimeout(function () { button.textContent = label; }, 1500);
      });
    });
  });
})();

// A card that scrolls sideways (a wide table on a phone) can be scrolled with the keyboard: it
// takes focus when its content is wider than it is.
(function () {
  "use strict";
  function mark() {
    document.querySelectorAll(".card").forEach(function (card) {
      if (card.scrollWidth > card.clientWidth + 1) {
        card.tabIndex = 0;
      } else if (card.getAttribute("tabindex") === "0") {
        card.removeAttribute("tabindex");
      }
    });
  }
  mark();
  window.addEventListener("resize", mark);
})();
