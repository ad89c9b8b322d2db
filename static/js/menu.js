// The header menu at phone width: a button folds the links and the session controls
// away and opens them again. A static file, not inline script, so that a
// Content-Security-Policy of script-src 'self' allows it. Without JavaScript the menu
// simply stays open (stacked under the brand at phone width).
(function () {
  "use strict";
  function setUp() {
    var header = document.getElementById("topbar");
    var toggle = document.getElementById("menu-toggle");
    if (!header || !toggle) return;
    header.classList.add("collapsible");
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = header.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && header.classList.contains("open")) {
        header.classList.remove("open");
        toggle.setAttribute("aria-expanded", "false");
        toggle.focus();
      }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
