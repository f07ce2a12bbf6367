/* darkmap link chart: cytoscape.js (served from /static/vendor), no inline script.
   Click a node to expand it (GET /api/graph/expand), double-click to open its page,
   filter edges by evidence kind, pin nodes, export the view as PNG or GraphML.
   Labels are drawn on a canvas: market text never becomes markup. */
(function () {
  "use strict";
  var box = document.getElementById("cy");
  if (!box || typeof cytoscape !== "function") { return; }
  var status = document.getElementById("graph-status");
  var colours = { persona: "#2b5d8a", account: "#4f8a3c", listing: "#5b7f7a", "case": "#a32020" };
  var cy = cytoscape({
    container: box,
    style: [
      { selector: "node", style: { "label": "data(label)", "font-size": 10, "text-wrap": "ellipsis",
        "text-max-width": 140, "background-color": function (n) { return colours[n.data("kind")] || "#8a6d2b"; } } },
      // a look-alike account (its label ends in its mark): the whole mark shown, wrapped
      { selector: "node[?mark]", style: { "text-wrap": "wrap", "color": "#a32020" } },
      { selector: "node.expanded", style: { "border-width": 3, "border-color": "#222" } },
      { selector: "node:locked", style: { "shape": "round-rectangle" } },
      { selector: "edge", style: { "width": 1.5, "curve-style": "bezier", "line-color": "#9aa3ad" } },
      { selector: "edge[kind = 'case']", style: { "line-color": "#a32020", "line-style": "dashed" } },
      { selector: "edge[kind = 'identifier']", style: { "line-color": "#c0a050" } }
    ]
  });
  window.darkmapGraph = cy;

  function say(text) { if (status) { status.textContent = text; } }

  // a node id as the status line shows it: ids hold market handles, and a right-to-left
  // override or control character in one is shown as an escape (as the server does)
  function shown(id) {
    return String(id).replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g,
      function (c) { return "\\u" + ("000" + c.charCodeAt(0).toString(16)).slice(-4); });
  }

  function expand(id) {
    say("expanding " + shown(id) + "…");
    return fetch("/api/graph/expand?node=" + encodeURIComponent(id), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) {
        var fresh = data.elements.filter(function (e) { return cy.getElementById(e.data.id).empty(); });
        cy.add(fresh);
        cy.getElementById(id).addClass("expanded");
        applyFilters();
        cy.layout({ name: "cose", animate: false, fit: true }).run();
        say(cy.nodes().length + " nodes, " + cy.edges().length + " edges");
        box.setAttribute("data-expanded", String(cy.nodes(".expanded").length));
      })
      .catch(function (err) { say("could not expand " + shown(id) + ": " + err.message); });
  }

  function applyFilters() {
    var boxes = document.querySelectorAll(".kind-filter");
    Array.prototype.forEach.call(boxes, function (b) {
      cy.edges("[kind = '" + b.value + "']").style("display", b.checked ? "element" : "none");
    });
  }

  function download(blob, name) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  // text for the GraphML file, escaped as the server's exporter does (export/graph.py,
  // xml_text): markup characters as entities, and every character XML 1.0 cannot hold
  // (C0 controls, lone surrogates, U+FFFE/U+FFFF) or should not (DEL, C1 controls) as a
  // visible escape, \x07 or \ud800: valid XML that keeps the text, nothing dropped
  var NOT_XML = /[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu;
  function xmlText(s) {
    return String(s).replace(NOT_XML, function (c) {
      var n = c.codePointAt(0);
      return n < 0x100 ? "\\x" + ("0" + n.toString(16)).slice(-2)
        : "\\u" + ("000" + n.toString(16)).slice(-4);
    });
  }
  function xml(s) {
    return xmlText(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&apos;" }[c];
    });
  }

  function graphml() {
    var out = ['<?xml version="1.0" encoding="UTF-8"?>',
      '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
      '<key id="kind" for="all" attr.name="kind" attr.type="string"/>',
      '<key id="label" for="node" attr.name="label" attr.type="string"/>',
      '<graph id="darkmap" edgedefault="undirected">'];
    cy.nodes(":visible").forEach(function (n) {
      out.push('<node id="' + xml(n.id()) + '"><data key="kind">' + xml(n.data("kind")) +
        '</data><data key="label">' + xml(n.data("label")) + "</data></node>");
    });
    cy.edges(":visible").forEach(function (e) {
      out.push('<edge source="' + xml(e.data("source")) + '" target="' + xml(e.data("target")) +
        '"><data key="kind">' + xml(e.data("kind")) + "</data></edge>");
    });
    out.push("</graph>", "</graphml>");
    return out.join("\n");
  }

  // a wallet (address cluster) a record links has no neighbours the chart draws: its
  // page (double-click) shows its addresses, flows and the accounts that published them
  cy.on("tap", "node", function (evt) {
    if (evt.target.data("kind") === "wallet") { say("a wallet: double-click opens its page"); return; }
    expand(evt.target.id());
  });
  var pages = { persona: "persona", account: "account", listing: "listing", wallet: "wallet", btc_address: "wallet" };
  cy.on("dbltap", "node", function (evt) {
    var id = evt.target.id(), k = evt.target.data("kind"), ref = id.slice(k.length + 1);
    if (pages[k]) { window.location.assign("/" + pages[k] + "/" + encodeURIComponent(ref)); }
  });
  Array.prototype.forEach.call(document.querySelectorAll(".kind-filter"), function (b) {
    b.addEventListener("change", applyFilters);
  });
  document.getElementById("pin").addEventListener("click", function () {
    cy.nodes(":selected").forEach(function (n) { if (n.locked()) { n.unlock(); } else { n.lock(); } });
  });
  document.getElementById("export-png").addEventListener("click", function () {
    download(cy.png({ output: "blob", full: true, bg: "#ffffff" }), "darkmap-graph.png");
  });
  document.getElementById("export-graphml").addEventListener("click", function () {
    download(new Blob([graphml()], { type: "application/xml" }), "darkmap-graph.graphml");
  });
  var start = box.getAttribute("data-node");  // URL-encoded: the exact id, no raw character
  if (start) { expand(decodeURIComponent(start)); }
}());
