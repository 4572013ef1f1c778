// Gallery paging and sorting. Data comes from gallery-data.js (window.CELEBREF_GALLERY);
// every string from the data is inserted with textContent, never innerHTML (names are untrusted).
(function () {
  "use strict";
  var G = window.CELEBREF_GALLERY;
  var body = document.getElementById("gallery-body");
  if (!G || !body) { return; }
  var sortSel = document.getElementById("gallery-sort");
  var pageInfo = document.getElementById("gallery-page");
  var page = 0;
  var rows = G.rows.slice();

  function key(row, k) {
    if (!k) { return 0; }
    var parts = k.split(":"), m = parts[0], metric = parts.slice(1).join(":");
    var v = row.values[m] ? row.values[m][metric] : null;
    if (v === null || v === undefined) { return -Infinity; }
    return (G.higher[metric] === false) ? -v : v;
  }
  function sortRows(k) {
    rows.sort(function (a, b) { var d = key(a, k) - key(b, k); return d !== 0 ? d : (a.id < b.id ? -1 : a.id > b.id ? 1 : 0); });
  }
  function cellFor(c) {
    var td = document.createElement("td");
    if (c.thumb) {
      var a = document.createElement("a"); a.className = "enlarge"; a.href = c.full || c.thumb;
      a.title = c.label + ": click to enlarge beside LQ and GT";
      var img = document.createElement("img"); img.src = c.thumb; img.loading = "lazy"; img.alt = c.label;
      a.appendChild(img); td.appendChild(a);
      if (c.detail) {
        var box = document.createElement("div"); box.className = "detail";
        var cap = document.createElement("div"); cap.className = "small"; cap.textContent = "eyes \u00b7 mouth (enlarged)";
        var d = document.createElement("img"); d.src = c.detail; d.loading = "lazy"; d.alt = c.label + " detail";
        box.appendChild(cap); box.appendChild(d); td.appendChild(box);
      }
    } else {
      td.className = "failed"; td.textContent = (c.status || "missing") + (c.reason ? ": " + c.reason : "");
    }
    return td;
  }
  function draw() {
    var n = Math.max(1, Math.ceil(rows.length / G.page_size));
    page = Math.min(Math.max(page, 0), n - 1);
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows.slice(page * G.page_size, (page + 1) * G.page_size).forEach(function (row) {
      var tr = document.createElement("tr");
      var th = document.createElement("td"); th.textContent = row.id;
      if (row.identity) { var s = document.createElement("div"); s.className = "small"; s.textContent = row.identity; th.appendChild(s); }
      var vals = document.createElement("div"); vals.className = "small";
      var k = sortSel ? sortSel.value : G.default_sort;
      if (k) {
        var p = k.split(":"); var v = row.values[p[0]] ? row.values[p[0]][p.slice(1).join(":")] : null;
        var name = (G.key_labels && G.key_labels[k]) || k;
        vals.textContent = name + " = " + (v === null || v === undefined ? "n/a" : v === Infinity ? "\u221e" : v);
      }
      th.appendChild(vals); tr.appendChild(th);
      row.cells.forEach(function (c) { tr.appendChild(cellFor(c)); });
      body.appendChild(tr);
    });
    if (pageInfo) { pageInfo.textContent = "page " + (page + 1) + " of " + n + " (" + rows.length + " images)"; }
  }
  if (sortSel) { sortSel.addEventListener("change", function () { sortRows(sortSel.value); page = 0; draw(); }); }
  var prev = document.getElementById("gallery-prev"), next = document.getElementById("gallery-next");
  if (prev) { prev.addEventListener("click", function () { page -= 1; draw(); }); }
  if (next) { next.addEventListener("click", function () { page += 1; draw(); }); }
  // a click on a face: LQ | that face | GT at full size, side by side (Esc or a click closes)
  function closeView() { var v = document.getElementById("full-view"); if (v) { v.parentNode.removeChild(v); } }
  function openView(anchor) {
    closeView();
    var links = Array.prototype.slice.call(anchor.closest("tr").querySelectorAll("a.enlarge"));
    var shown = [links[0], anchor, links[links.length - 1]].filter(function (x, i, all) { return all.indexOf(x) === i; });
    var view = document.createElement("div"); view.id = "full-view";
    shown.forEach(function (a) {
      var fig = document.createElement("figure");
      var img = document.createElement("img"); img.src = a.getAttribute("href"); img.alt = a.querySelector("img").alt;
      var cap = document.createElement("figcaption"); cap.textContent = a.querySelector("img").alt;
      fig.appendChild(img); fig.appendChild(cap); view.appendChild(fig);
    });
    view.addEventListener("click", closeView);
    document.body.appendChild(view);
  }
  document.getElementById("gallery-table").addEventListener("click", function (e) {
    var a = e.target.closest ? e.target.closest("a.enlarge") : null;
    if (a) { e.preventDefault(); openView(a); }
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { closeView(); } });
  sortRows(G.default_sort);
  draw();
})();
