// Live progress of a migration page, from the server's event stream; the
// page works without it (reload shows the same). Every row holds all of
// its actions; the stream's states decide which are shown, so that the
// page stays true while mailboxes pause, finish or start again.
(function () {
  var table = document.getElementById("tasks");
  if (!table || !table.dataset.live || !window.EventSource) return;
  var started = {};
  var labels = JSON.parse(document.getElementById("labels") ? document.getElementById("labels").textContent : "{}");
  // Sizes, rates and times as the page's language writes them (1,6 MB in
  // Czech), like the server does.
  var lang = document.documentElement.lang || "en";
  var count = new Intl.NumberFormat(lang);
  var decimal = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  function human(n) {
    if (n >= 1 << 30) return decimal.format(n / (1 << 30)) + " GB";
    if (n >= 1 << 20) return decimal.format(n / (1 << 20)) + " MB";
    if (n >= 1 << 10) return decimal.format(n / (1 << 10)) + " KB";
    return Math.round(n) + " B";
  }
  // Go's zero time ("0001-01-01T00:00:00Z") means not yet.
  function isSet(iso) { return iso && iso.indexOf("0001-") !== 0; }
  // The server writes times in UTC: "2006-01-02 15:04", in Czech "2. 1. 2006 15:04".
  function when(iso) {
    var d = new Date(iso), hm = d.toISOString().slice(11, 16);
    if (lang === "cs") return d.getUTCDate() + ". " + (d.getUTCMonth() + 1) + ". " + d.getUTCFullYear() + " " + hm.replace(/^0/, "");
    return d.toISOString().slice(0, 10) + " " + hm;
  }
  function showTime(row, cls, iso) {
    var el = row.querySelector(".times ." + cls);
    if (!el) return;
    el.hidden = !isSet(iso);
    if (isSet(iso)) el.querySelector("time").textContent = when(iso);
  }
  // The actions of the row's state are shown, the others hidden.
  function showActions(row, state) {
    Array.prototype.forEach.call(row.querySelectorAll(".actions [data-states]"), function (el) {
      el.hidden = el.dataset.states.split(" ").indexOf(state) < 0;
    });
  }
  // The failure shown is the task's: none once it runs again.
  function showFailure(row, failure) {
    var el = row.querySelector(".state .failure");
    if (!failure) {
      if (el) el.remove();
      return;
    }
    if (el && el.dataset.message === failure.message) return;
    // The page's own failure (with its causes and details) stays while it is the same.
    if (el && !el.dataset.message && el.firstChild && (el.firstChild.nodeValue || "").trim() === failure.message.trim()) return;
    if (el) el.remove();
    el = document.createElement("div");
    // An old provider's throttling is a wait, not an error.
    el.className = failure.kind === "throttled" ? "failure waiting" : "failure";
    el.dataset.message = failure.message;
    el.textContent = failure.message;
    row.querySelector(".state").appendChild(el);
  }
  function showReportLinks(row, id, finished) {
    var cell = row.querySelector(".report");
    if (!isSet(finished)) {
      cell.textContent = "–";
      return;
    }
    if (cell.querySelector("a")) return;
    cell.textContent = "";
    [["csv", "CSV"], ["json", "JSON"]].forEach(function (f, i) {
      if (i) cell.appendChild(document.createTextNode(" · "));
      var a = document.createElement("a");
      a.href = "/tasks/" + id + "/report" + (f[0] === "csv" ? "?format=csv" : "");
      a.setAttribute("download", "");
      a.textContent = f[1];
      cell.appendChild(a);
    });
  }
  // A task's per-folder report and its list of runs change when its state
  // does (a run starts or ends): they are taken from the page as the
  // server renders it now, keeping what the customer opened.
  function refreshDetails(id) {
    fetch(location.pathname, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : Promise.reject(r.status);
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var after = document.getElementById("task-" + id);
      if (!after) return;
      ["folders-", "runs-"].forEach(function (prefix) {
        var fresh = doc.getElementById(prefix + id), old = document.getElementById(prefix + id);
        if (fresh) {
          fresh = document.importNode(fresh, true);
          if (old) {
            var opened = old.querySelector("details[open]");
            if (opened) fresh.querySelector("details").open = true;
            old.replaceWith(fresh);
          } else {
            after.after(fresh);
          }
          after = fresh;
        } else if (old) {
          old.remove();
        }
      });
    }).catch(function () { /* the next state change or a reload shows them */ });
  }
  var es = new EventSource("/migrations/" + table.dataset.migration + "/events");
  es.addEventListener("progress", function (ev) {
    var m = JSON.parse(ev.data);
    m.tasks.forEach(function (t) {
      var row = document.getElementById("task-" + t.id);
      if (!row) return;
      var bar = row.querySelector("progress");
      bar.max = t.messages_total || 1; bar.value = t.messages_done;
      row.querySelector(".counts").textContent = count.format(t.messages_done) + " / " + count.format(t.messages_total);
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
          if (t.bytes_total > t.bytes_done) {
            rate += " · " + (labels["eta"] || "%s left").replace("%s", count.format(Math.round((t.bytes_total - t.bytes_done) / bps)) + " s");
          }
        }
      }
      row.querySelector(".rate").textContent = rate;
      showFailure(row, t.failure);
      showTime(row, "started", t.started);
      showTime(row, "finished", t.finished);
      showReportLinks(row, t.id, t.finished);
      if (t.state !== "paused_over_quota") {
        // The space warning belongs to the pause; it is stale once the copy goes on.
        var space = row.querySelector(".state .space");
        if (space) space.remove();
      }
      if (row.dataset.state !== t.state) {
        row.dataset.state = t.state;
        var badge = row.querySelector(".badge");
        badge.className = "badge " + t.state;
        badge.textContent = labels[t.state] || t.state;
        showActions(row, t.state);
        refreshDetails(t.id);
      }
    });
  });
  es.addEventListener("done", function () {
    // Every mailbox has finished: the next steps and the restart of all
    // are offered now.
    es.close();
    var done = Array.prototype.every.call(table.querySelectorAll('tbody tr[id^="task-"]'), function (r) {
      return r.dataset.state === "done" || r.dataset.state === "done_with_warnings";
    });
    if (done) document.getElementById("next").hidden = false;
    var all = document.getElementById("restart-all-form");
    if (all) all.hidden = false;
    table.dataset.finished = "1";
  });
})();