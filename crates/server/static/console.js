// Light progressive enhancement: the console works without it. Server-sent events tell an
// open page that a lead or reminder arrived; the page shows it and refreshes its lists.
// In the rule editor, a rep row's own value box shows only when "a value" is chosen.
(function () {
  "use strict";
  function toggle(select) {
    var literal = select.form && select.form.elements[select.name.replace(/_ref$/, "_literal")];
    if (literal) { literal.hidden = select.value !== ""; }
  }
  var selects = document.querySelectorAll("select[name$='_ref']");
  for (var i = 0; i < selects.length; i++) {
    toggle(selects[i]);
    selects[i].addEventListener("change", function (event) { toggle(event.target); });
  }
})();
(function () {
  "use strict";
  var stream = document.body.getAttribute("data-stream");
  if (!stream || !window.EventSource) { return; }
  var toast = document.getElementById("toast");
  var source = new EventSource(stream);
  // Let go of the stream when the page goes away (also into the back-forward cache): browsers
  // allow only a few connections per site, and a kept stream would stall the next page.
  window.addEventListener("pagehide", function () { source.close(); });
  source.addEventListener("lead", function (message) {
    var data = {};
    try { data = JSON.parse(message.data); } catch (error) { return; }
    if (toast) {
      toast.textContent = data.text || data.event;
      toast.className = "shown";
      setTimeout(function () { toast.className = ""; }, 5000);
    }
    if (document.getElementById("my-leads") || document.getElementById("pool")) {
      setTimeout(function () { window.location.reload(); }, 1200);
    }
  });
})();
