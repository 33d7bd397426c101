// Live reload and frame sizing for the preview page (no inline scripts: the CSP forbids them).
(function () {
  "use strict";
  var frame = document.getElementById("email-frame");
  function fit() {
    try {
      var doc = frame.contentDocument;
      if (doc && doc.documentElement) {
        frame.style.height = Math.max(doc.documentElement.scrollHeight, 200) + 4 + "px";
      }
    } catch (e) { /* not same-origin: keep the CSS height */ }
  }
  if (frame) {
    frame.addEventListener("load", fit);
    window.addEventListener("resize", fit);
  }
  if (window.EventSource) {
    var source = new EventSource("/preview/events");
    source.addEventListener("hello", function () {
      document.documentElement.setAttribute("data-live", "on");  // tests wait for this
    });
    source.addEventListener("reload", function () {
      source.close();
      window.location.reload();
    });
  }
})();
