// Light progressive enhancement: the console works without it. Server-sent events tell an
// open page that a lead or reminder arrived; the page shows it and refreshes its lists.
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
