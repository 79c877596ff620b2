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
  // The lead by name, as a link to it (text only: never markup from the stream).
  function show(data) {
    if (!toast) { return; }
    toast.textContent = "";
    var label = data.text || data.event;
    if (data.url && data.url.indexOf("/leads/") === 0) {
      var link = document.createElement("a");
      link.href = data.url;
      link.textContent = label;
      toast.appendChild(link);
    } else {
      toast.textContent = label;
    }
    toast.className = "shown";
    setTimeout(function () { toast.className = ""; }, 8000);
  }
  // A notice shown just before the list refreshed itself stays up after the refresh.
  try {
    var kept = window.sessionStorage.getItem("notice");
    if (kept) {
      window.sessionStorage.removeItem("notice");
      show(JSON.parse(kept));
    }
  } catch (error) { /* storage off: the notice just goes with the refresh */ }
  var source = new EventSource(stream);
  // Let go of the stream when the page goes away (also into the back-forward cache): browsers
  // allow only a few connections per site, and a kept stream would stall the next page.
  window.addEventListener("pagehide", function () { source.close(); });
  source.addEventListener("lead", function (message) {
    var data = {};
    try { data = JSON.parse(message.data); } catch (error) { return; }
    show(data);
    // Lists the lead may have joined refresh themselves.
    if (document.getElementById("my-leads") || document.getElementById("pool") ||
        document.getElementById("lead-list")) {
      try { window.sessionStorage.setItem("notice", JSON.stringify(data)); } catch (error) { /* ignored */ }
      setTimeout(function () { window.location.reload(); }, 1200);
    }
  });
})();
(function () {
  "use strict";
  // The lead list: the columns a person chose stay chosen (per user, in this browser), and
  // "tick this page" ticks every row; "select all matching" leaves the row ticks to the server.
  var table = document.getElementById("lead-list");
  if (!table) { return; }
  var key = "leadroute.columns." + (table.getAttribute("data-user") || "");
  var hidden = [];
  try { hidden = JSON.parse(window.localStorage.getItem(key) || "[]"); } catch (error) { hidden = []; }
  function apply() {
    var cells = table.querySelectorAll("[data-column]");
    for (var i = 0; i < cells.length; i++) {
      var shown = hidden.indexOf(cells[i].getAttribute("data-column")) < 0;
      cells[i].classList.toggle("col-hidden", !shown);
    }
  }
  var boxes = document.querySelectorAll("#column-chooser input[data-column]");
  for (var i = 0; i < boxes.length; i++) {
    boxes[i].checked = hidden.indexOf(boxes[i].getAttribute("data-column")) < 0;
    boxes[i].addEventListener("change", function (event) {
      var column = event.target.getAttribute("data-column");
      hidden = hidden.filter(function (name) { return name !== column; });
      if (!event.target.checked) { hidden.push(column); }
      try { window.localStorage.setItem(key, JSON.stringify(hidden)); } catch (error) { /* ignored */ }
      apply();
    });
  }
  apply();
  var page = document.getElementById("tick-page");
  if (page) {
    page.addEventListener("change", function () {
      var rows = table.querySelectorAll("tbody input[type=checkbox]");
      for (var j = 0; j < rows.length; j++) { rows[j].checked = page.checked; }
    });
  }
})();
(function () {
  "use strict";
  // "Copy WeChat": the id to the clipboard, to paste into WeChat's search.
  var buttons = document.querySelectorAll("button.copy[data-copy]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (event) {
      var button = event.currentTarget;
      var text = button.getAttribute("data-copy");
      function done() { button.textContent = button.getAttribute("data-done") + " ✓"; }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () { window.prompt("", text); });
      } else {
        window.prompt("", text);
      }
    });
  }
})();
(function () {
  "use strict";
  // The rule editor: a condition's value box offers the known values of the field chosen.
  var selects = document.querySelectorAll("select[name$='_field']");
  for (var i = 0; i < selects.length; i++) {
    selects[i].addEventListener("change", function (event) {
      var select = event.target;
      var box = select.form && select.form.elements[select.name.replace(/_field$/, "_value")];
      if (box && box.setAttribute) { box.setAttribute("list", "values-" + select.value); }
    });
  }
})();
