// What a well-known provider needs before a migration can log in there
// (an app password, IMAP switched on), shown as the customer types the old
// server's name or old logins; the server shows the same after Check or
// Start, so the form works without this script.
(function () {
  var form = document.getElementById("tool");
  var box = document.getElementById("provider-hints");
  var table = document.getElementById("provider-table");
  if (!form || !box || !table) return;
  var providers = JSON.parse(table.textContent || "[]") || [];
  // name is domain, or ends in "." + domain: notgmail.com is not gmail.com.
  function under(name, domain) {
    return name === domain || name.slice(-domain.length - 1) === "." + domain;
  }
  function byDomain(domain) {
    for (var i = 0; i < providers.length; i++) {
      var ds = providers[i].domains || [];
      for (var j = 0; j < ds.length; j++) if (under(domain, ds[j])) return providers[i];
    }
    return null;
  }
  function byHost(host) {
    host = host.trim().toLowerCase().replace(/\.$/, "");
    for (var i = 0; i < providers.length; i++) if (host && providers[i].host === host) return providers[i];
    return null;
  }
  // The old logins of a field, or of the lines of new mailboxes (the
  // first word of each line: the rest are passwords), as the server reads them.
  function domainsIn(text, lines) {
    var out = [], words = [];
    (text || "").split(/\r?\n/).forEach(function (line) {
      var ws = line.trim().split(/[\s,;"<>]+/);
      words = words.concat(lines ? ws.slice(0, 1) : ws);
    });
    words.forEach(function (w) {
      var at = w.indexOf("@");
      var d = at >= 0 ? w.slice(at + 1).toLowerCase() : "";
      if (d.indexOf(".") > 0) out.push(d);
    });
    return out;
  }
  function update() {
    var found = [], seen = {};
    function add(p) {
      if (p && !seen[p.id]) { seen[p.id] = true; found.push(p); }
    }
    var host = form.elements.source_host;
    add(byHost(host ? host.value : ""));
    Array.prototype.forEach.call(form.querySelectorAll("#discover_address, #new_mailboxes, input[name^='su:']"), function (el) {
      domainsIn(el.value, el.id === "new_mailboxes").forEach(function (d) { add(byDomain(d)); });
    });
    var shown = Array.prototype.map.call(box.children, function (el) { return el.dataset.provider; }).join(" ");
    if (shown === found.map(function (p) { return p.id; }).join(" ")) return;
    box.textContent = "";
    found.forEach(function (p) {
      var el = document.createElement("p");
      el.className = "help warn provider-hint";
      el.dataset.provider = p.id;
      el.textContent = p.text;
      box.appendChild(el);
    });
  }
  form.addEventListener("input", update);
  update();
})();
