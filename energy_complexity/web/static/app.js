// The page of `energy-complexity serve`: builds the API bodies from the form, shows what the CLI answers
// (tables, plotly charts, totals), the CLI's one-line errors next to their fields, and the downloads.
"use strict";

const $ = (id) => document.getElementById(id);
const LEVELS = ["dram", "buffer", "array", "rf", "mac"];
const DATA = ["input", "weight", "psum", "mac"];
const LAYER_KEYS = ["c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups", "b"];
const COLORS = {dram: "#b2182b", buffer: "#ef8a62", array: "#fddbc7", rf: "#67a9cf", mac: "#2166ac",
                input: "#1b9e77", weight: "#d95f02", psum: "#7570b3"};

let seq = 0;                 // the newest computation; older answers are dropped
let upload = null;           // the answer of /api/upload for the chosen file
let result = {bounds: null, estimate: null, label: ""};

function mode() { return document.querySelector("input[name=mode]:checked").value; }
function val(id) { return $(id).value.trim(); }

function sourceBody() {
  const m = mode();
  if (m === "network") return {network: val("network")};
  if (m === "upload") return {upload: upload ? upload.upload : null};
  const layer = {};
  for (const k of LAYER_KEYS) { const v = val("layer-" + k); if (v !== "") layer[k] = v; }
  return {layer};
}

function boundsBody() {
  const body = {...sourceBody(), M: val("M"), eD: val("eD"), eB: val("eB"), eM: val("eM"), bits: val("bits")};
  if (val("arch")) body.arch = val("arch");
  if (mode() !== "layer") body.json_totals = true;
  return body;
}

function estimateBody() {
  return {...sourceBody(), bits: val("bits"), density_w: val("density_w"), density_a: val("density_a")};
}

function parseJSON(text) {  // the CLI may print NaN / Infinity, which JSON.parse refuses
  return JSON.parse(text.replace(/\b(-?Infinity|NaN)\b/g, "null"));
}

async function post(url, body) {
  const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                              body: JSON.stringify(body)});
  const text = await r.text();
  let data;
  try { data = parseJSON(text); } catch (e) { data = {detail: text.slice(0, 300)}; }
  return {ok: r.ok, status: r.status, data};
}

// ----- errors next to their fields ----------------------------------------------------------

function clearErrors() {
  document.querySelectorAll(".error").forEach((e) => { e.textContent = ""; });
  document.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
}

function showError(detail, field) {
  let id = "err-" + (field || "source");
  const m = mode();
  if (field && field.startsWith("layer.")) id = "err-" + m;
  if ((field === "network" || field === "upload") && field !== m) id = "err-source";
  const el = $(id) || $("err-source");
  const tail = (s) => s.replace(/^energy-complexity \w+: error: /, "");
  const shown = [...document.querySelectorAll(".error")].some((e) =>
    e.textContent.split("\n").some((line) => line && tail(line) === tail(detail)));
  if (!shown) el.textContent = el.textContent ? el.textContent + "\n" + detail : detail;
  let input = null;
  if (field && field.startsWith("layer.")) { if (m === "layer") input = $("layer-" + field.slice(6)); }
  else if (field) input = $(field);
  if (input) input.classList.add("invalid");
}

// ----- formatting --------------------------------------------------------------------------

function fmt(x) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e7) return x.toLocaleString("en-US");
  if (Math.abs(x) >= 1e7 || (Math.abs(x) < 1e-3 && x !== 0)) return x.toExponential(3);
  return x.toPrecision(4).replace(/\.?0+$/, "");
}

// ----- the rows shown, downloaded and charted ---------------------------------------------

function boundsItems(b) {
  if (!b) return [];
  if (Array.isArray(b)) return b;
  if (b.layers) return b.layers;
  return [{name: "layer", ...b}];
}

// The "hierarchy" object of `bounds --arch NAME`: the floor (lower_bound.E_pJ) and, when given, the energy of
// the best nested dataflow (upper_bound.E_pJ), both in pJ.
function hierE(h) {
  if (!h || typeof h !== "object") return null;
  if (h.lower_bound && typeof h.lower_bound.E_pJ === "number") return h.lower_bound.E_pJ;
  if (typeof h.E_pJ === "number") return h.E_pJ;
  return null;
}

function hierUpper(h) {
  return h && h.upper_bound && typeof h.upper_bound.E_pJ === "number" ? h.upper_bound.E_pJ : null;
}

function rows() {
  const bi = boundsItems(result.bounds);
  const el = result.estimate ? result.estimate.layers : [];
  const n = Math.max(bi.length, el.length);
  const out = [];
  for (let i = 0; i < n; i++) {
    const b = bi[i], e = el[i];
    const name = (b && b.name) || (e && e.name) || ("layer" + i);
    const r = {name, macs: e ? e.macs : (b ? b.F : null)};
    if (e) {
      r.est_total = e.total; r.est_energy_per_mac = e.energy_per_mac;
      for (const l of LEVELS) r["est_" + l] = e.by_level[l];
      for (const d of DATA.slice(0, 3)) r["est_" + d] = e.by_data[d];
    }
    if (b) {
      for (const [k, src] of [["lb", "lower_bound"], ["os", "os"], ["ws", "ws"]]) {
        r[k + "_Q"] = b[src].Q; r[k + "_A"] = b[src].A; r[k + "_E"] = b[src].E;
      }
      r.best = b.best; r.gap_Q = b.gap_Q; r.gap_E = b.gap_E;
      if (b.hierarchy !== undefined) {
        r.hierarchy_E_pJ = hierE(b.hierarchy);
        r.hierarchy_upper_E_pJ = hierUpper(b.hierarchy);
      }
    }
    out.push(r);
  }
  return out;
}

const COLUMNS = [
  ["name", "layer"], ["macs", "MACs"], ["est_total", "estimate E"], ["est_energy_per_mac", "E / MAC"],
  ["est_dram", "DRAM"], ["est_buffer", "buffer"], ["est_array", "array"], ["est_rf", "RF"], ["est_mac", "MAC"],
  ["est_input", "input"], ["est_weight", "weight"], ["est_psum", "psum"],
  ["lb_Q", "LB Q"], ["lb_A", "LB A"], ["lb_E", "LB E"], ["os_Q", "OS Q"], ["os_A", "OS A"], ["os_E", "OS E"],
  ["ws_Q", "WS Q"], ["ws_A", "WS A"], ["ws_E", "WS E"], ["best", "best"], ["gap_Q", "gap Q"], ["gap_E", "gap E"],
  ["hierarchy_E_pJ", "hierarchy floor (pJ)"], ["hierarchy_upper_E_pJ", "hierarchy dataflow (pJ)"],
];

function columns(rs) { return COLUMNS.filter(([k]) => rs.some((r) => r[k] !== undefined)); }

function csvText() {
  const rs = rows(), cols = columns(rs);
  const cell = (v) => {
    if (v === undefined || v === null) return "";
    const s = String(v);
    return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  const lines = [cols.map(([k]) => k).join(",")];
  for (const r of rs) lines.push(cols.map(([k]) => cell(r[k])).join(","));
  return lines.join("\n") + "\n";
}

function download(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], {type}));
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function fileStem() { return "energy-complexity-" + (result.label || "result").replace(/[^A-Za-z0-9_-]+/g, "_"); }

// ----- rendering ---------------------------------------------------------------------------

function card(id, title, value, sub) {
  return `<div class="card" id="${id}"><div class="card-title">${title}</div>` +
         `<div class="card-value">${value}</div><div class="card-sub">${sub || ""}</div></div>`;
}

function renderTotals() {
  const cards = [];
  const e = result.estimate;
  if (e) {
    const t = e.total;
    const lv = LEVELS.map((l) => `${l} ${(100 * t.by_level[l] / t.total).toFixed(1)}%`).join(", ");
    cards.push(card("total-estimate", "Eyeriss-style estimate", fmt(t.total), lv));
    cards.push(card("total-per-mac", "energy per MAC", fmt(t.energy_per_mac),
                    `${fmt(t.macs)} MACs, ${fmt(t.weights)} weights; ${e.bits} bits`));
  }
  const b = result.bounds;
  if (b) {
    let lb, os, ws, best, hier = null, upper = null, unit;
    if (b.totals) {
      lb = b.totals.lower_bound; os = b.totals.os; ws = b.totals.ws; best = b.totals.best;
      if (b.totals.hierarchy !== undefined) hier = hierE(b.totals.hierarchy);
      unit = b.layers.length ? b.layers[0].E_unit : "";
    } else {
      const it = boundsItems(b)[0];
      lb = it.lower_bound; os = it.os; ws = it.ws; best = it[it.best]; unit = it.E_unit;
      if (it.hierarchy !== undefined) hier = hierE(it.hierarchy);
    }
    const items = boundsItems(b);
    if (hier === null) {
      const hs = items.map((it) => hierE(it.hierarchy));
      if (hs.length && hs.every((h) => h !== null)) hier = hs.reduce((s, h) => s + h, 0);
    }
    const us = items.map((it) => hierUpper(it.hierarchy));
    if (us.length && us.every((u) => u !== null)) upper = us.reduce((s, u) => s + u, 0);
    cards.push(card("total-lb", "lower bound (two-level)", fmt(lb.E), `Q ${fmt(lb.Q)} words; ${unit || ""}`));
    cards.push(card("total-os", "output-stationary", fmt(os.E), `Q ${fmt(os.Q)} words`));
    cards.push(card("total-ws", "weight-stationary", fmt(ws.E), `Q ${fmt(ws.Q)} words`));
    cards.push(card("total-gap", "best / lower bound", (best.E / lb.E).toFixed(3) + "×",
                    `best E ${fmt(best.E)}`));
    if (hier !== null) {
      cards.push(card("total-hierarchy", `floor on ${escapeHtml(val("arch"))}`, fmt(hier) + " pJ",
                      upper !== null ? `best nested dataflow ${fmt(upper)} pJ (${(upper / hier).toFixed(2)}×)` : ""));
    }
  }
  $("totals").innerHTML = cards.join("");
  $("downloads").hidden = !(e || b);
}

function renderTable() {
  const rs = rows(), cols = columns(rs);
  $("table-title").hidden = $("table-wrap").hidden = rs.length === 0;
  const head = "<thead><tr>" + cols.map(([, t]) => `<th>${t}</th>`).join("") + "</tr></thead>";
  const body = rs.map((r) => "<tr>" + cols.map(([k]) =>
    `<td${k === "name" ? "" : ' class="num"'}>${k === "name" ? escapeHtml(r[k]) : fmt(r[k])}</td>`).join("") +
    "</tr>").join("");
  $("layers").innerHTML = head + "<tbody>" + body + "</tbody>";
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
}

function renderCharts() {
  const rs = rows();
  const names = rs.map((r) => r.name);
  const layout = (title, ytitle, extra) => ({
    title: {text: title, font: {size: 14}}, barmode: "stack", autosize: true,
    margin: {l: 70, r: 20, t: 40, b: 90}, legend: {orientation: "h", y: 1.12},
    yaxis: {title: {text: ytitle}}, xaxis: {tickangle: -45, automargin: true}, ...extra});
  const cfg = {displaylogo: false, responsive: true};
  $("chart-level").hidden = $("chart-data").hidden = !result.estimate;
  $("chart-bounds").hidden = !result.bounds;
  if (result.estimate) {
    Plotly.react("chart-level", LEVELS.map((l) => ({type: "bar", name: l, x: names, marker: {color: COLORS[l]},
      y: rs.map((r) => r["est_" + l])})), layout("Estimate by memory level", "energy (16-bit MAC units)"), cfg);
    Plotly.react("chart-data", DATA.map((d) => ({type: "bar", name: d, x: names, marker: {color: COLORS[d]},
      y: rs.map((r) => r["est_" + d])})), layout("Estimate by data type", "energy (16-bit MAC units)"), cfg);
  } else { Plotly.purge("chart-level"); Plotly.purge("chart-data"); }
  if (result.bounds) {
    const traces = [["lb_E", "lower bound", "#333333"], ["os_E", "OS", "#4393c3"], ["ws_E", "WS", "#d6604d"]]
      .map(([k, n, c]) => ({type: "bar", name: n, x: names, y: rs.map((r) => r[k]), marker: {color: c}}));
    if (result.estimate) traces.push({type: "scatter", mode: "markers", name: "Eyeriss-style estimate (machine with RFs)",
      x: names, y: rs.map((r) => r.est_total), marker: {color: "#1b7837", symbol: "diamond", size: 8}});
    Plotly.react("chart-bounds", traces,
      layout("Two-level machine: lower bound and OS / WS dataflows per layer", "energy", {barmode: "group", yaxis: {type: "log",
        title: {text: "energy (log)"}}}), cfg);
  } else Plotly.purge("chart-bounds");
}

function render() {
  renderTotals();
  renderTable();
  renderCharts();
  $("forms-section").hidden = mode() !== "layer";
}

// ----- computing ---------------------------------------------------------------------------

function setBusy(on) { document.body.dataset.busy = on ? "1" : "0"; }

async function compute() {
  const my = ++seq;
  clearTimeout(timer);
  setBusy(true);
  clearErrors();
  if (mode() === "upload" && !upload) {
    showError("choose an .onnx model or a .csv of layers to upload", "upload");
    setBusy(false);
    return;
  }
  const label = mode() === "network" ? val("network") : mode() === "upload" ? upload.filename : "layer";
  $("status").textContent = "computing the bounds…";
  const t0 = performance.now();
  const b = await post("/api/bounds", boundsBody());
  if (my !== seq) return;
  const t1 = performance.now();
  result = {bounds: b.ok ? b.data : null, estimate: null, label};
  if (!b.ok) showError(b.data.detail, b.data.field);
  render();
  $("status").textContent = "computing the estimate…";
  const e = await post("/api/estimate", estimateBody());
  if (my !== seq) return;
  result.estimate = e.ok ? e.data : null;
  if (!e.ok) showError(e.data.detail, e.data.field);
  render();
  const t2 = performance.now();
  $("status").textContent = `bounds ${((t1 - t0) / 1000).toFixed(2)} s, estimate ${((t2 - t1) / 1000).toFixed(2)} s`;
  setBusy(false);
}

let timer = null;
function computeSoon() { clearTimeout(timer); setBusy(true); timer = setTimeout(compute, 350); }

async function uploadFile() {
  const f = $("upload-file").files[0];
  upload = null;
  clearErrors();
  $("upload-status").textContent = "";
  if (!f) return;
  setBusy(true);
  const fd = new FormData();
  fd.append("file", f, f.name);
  $("status").textContent = "uploading…";
  const r = await fetch("/api/upload", {method: "POST", body: fd});
  let data;
  try { data = await r.json(); } catch (e) { data = {detail: `upload failed (HTTP ${r.status})`}; }
  if (!r.ok) { $("status").textContent = ""; showError(data.detail, "upload"); setBusy(false); return; }
  upload = data;
  $("upload-status").textContent = `${data.filename}: ${data.layers} layer${data.layers === 1 ? "" : "s"}`;
  compute();
}

async function showForms() {
  const body = {layer: sourceBody().layer};
  if ($("forms-M").checked) body.M = val("M");
  $("err-forms").textContent = "";
  $("forms").innerHTML = "";
  $("forms-status").textContent = "deriving…";
  const r = await post("/api/derive", body);
  $("forms-status").textContent = "";
  if (!r.ok) { $("err-forms").textContent = r.data.detail; return; }
  $("forms").innerHTML = r.data.sections.map((s) =>
    `<h3>${escapeHtml(s.title)}</h3>` + s.rows.map((row) =>
      `<div class="form" title="${escapeHtml(row.name + " = " + row.text)}">${row.mathml}` +
      (row.note ? `<span class="form-note">${escapeHtml(row.note)}</span>` : "") + "</div>").join("")).join("");
}

function setMode() {
  const m = mode();
  document.querySelectorAll(".mode-panel").forEach((p) => { p.hidden = p.dataset.mode !== m; });
  $("forms").innerHTML = "";
  if (m === "upload" && !upload) {
    seq++; clearErrors(); result = {bounds: null, estimate: null, label: ""}; render(); setBusy(false); return;
  }
  computeSoon();
}

document.querySelectorAll("input[name=mode]").forEach((r) => r.addEventListener("change", setMode));
$("upload-file").addEventListener("change", uploadFile);
$("compute").addEventListener("click", compute);
$("show-forms").addEventListener("click", showForms);
$("download-csv").addEventListener("click", () => download(fileStem() + ".csv", csvText(), "text/csv"));
$("download-json").addEventListener("click", () => download(fileStem() + ".json",
  JSON.stringify({bounds: result.bounds, estimate: result.estimate}, null, 1), "application/json"));
document.querySelectorAll("#form input[type=text], #form select").forEach((el) =>
  el.addEventListener("change", computeSoon));
// Fields can be preset from the address: /?network=alexnet&bits=8, /?mode=layer&kh=5, /?mode=upload.
for (const [k, v] of new URLSearchParams(location.search)) {
  if (k === "mode") {
    const r = document.querySelector(`input[name=mode][value="${CSS.escape(v)}"]`);
    if (r) r.checked = true;
  } else {
    const el = $(LAYER_KEYS.includes(k) ? "layer-" + k : k);
    if (el && (el.tagName === "INPUT" && el.type === "text" || el.tagName === "SELECT")) el.value = v;
  }
}
setMode();
