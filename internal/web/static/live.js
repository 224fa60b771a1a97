// Live progress of a migration page, from the server's event stream; the
// page works without it (reload shows the same).
(function () {
  var table = document.getElementById("tasks");
  if (!table || !table.dataset.live || !window.EventSource) return;
  var started = {};
  var labels = JSON.parse(document.getElementById("labels") ? document.getElementById("labels").textContent : "{}");
  function human(n) {
    if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GB";
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MB";
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KB";
    return n + " B";
  }
  var es = new EventSource("/migrations/" + table.dataset.migration + "/events");
  es.addEventListener("progress", function (ev) {
    var m = JSON.parse(ev.data);
    m.tasks.forEach(function (t) {
      var row = document.getElementById("task-" + t.id);
      if (!row) return;
      var bar = row.querySelector("progress");
      bar.max = t.messages_total || 1; bar.value = t.messages_done;
      row.querySelector(".counts").textContent = t.messages_done + " / " + t.messages_total;
      row.querySelector(".folders").textContent = (labels["folders"] || "folders %d / %d")
        .replace("%d", t.folders_done).replace("%d", t.folders_total);
      row.querySelector(".bytes").textContent = human(t.bytes_done) + " / " + human(t.bytes_total);
      var now = Date.now() / 1000;
      if (!started[t.id] && t.bytes_done > 0) started[t.id] = { at: now, bytes: t.bytes_done };
      var rate = "";
      if (started[t.id] && now > started[t.id].at && t.state === "copying") {
        var bps = (t.bytes_done - started[t.id].bytes) / (now - started[t.id].at);
        if (bps > 0) {
          rate = human(bps) + "/s";
          if (t.bytes_total > t.bytes_done) rate += " · ETA " + Math.round((t.bytes_total - t.bytes_done) / bps) + " s";
        }
      }
      row.querySelector(".rate").textContent = rate;
      if (t.failure && !row.querySelector(".state .failure")) {
        var f = document.createElement("div");
        f.className = "failure";
        f.textContent = t.failure.message;
        row.querySelector(".state").appendChild(f);
      }
      if (row.dataset.state !== t.state) {
        row.dataset.state = t.state;
        var badge = row.querySelector(".badge");
        badge.className = "badge " + t.state;
        badge.textContent = labels[t.state] || t.state;
      }
    });
  });
  es.addEventListener("done", function () {
    // The per-folder reports are part of the page once it is loaded again.
    es.close();
    // Every mailbox has finished: offer the reports and the next steps
    // without reloading (a reload shows the same, with the actions).
    Array.prototype.forEach.call(table.querySelectorAll('tbody tr[id^="task-"]'), function (row) {
      var id = row.id.replace("task-", "");
      var cell = row.querySelector(".report");
      cell.textContent = "";
      [["csv", "CSV"], ["json", "JSON"]].forEach(function (f, i) {
        if (i) cell.appendChild(document.createTextNode(" · "));
        var a = document.createElement("a");
        a.href = "/tasks/" + id + "/report" + (f[0] === "csv" ? "?format=csv" : "");
        a.setAttribute("download", "");
        a.textContent = f[1];
        cell.appendChild(a);
      });
      var cancel = row.querySelector('form[action$="/cancel"]');
      if (cancel) cancel.remove();
    });
    var done = Array.prototype.every.call(table.querySelectorAll('tbody tr[id^="task-"]'), function (r) {
      return r.dataset.state === "done" || r.dataset.state === "done_with_warnings";
    });
    if (done) document.getElementById("next").hidden = false;
    table.dataset.finished = "1";
  });
})();
