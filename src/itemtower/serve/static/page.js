// The itemtower page: plain DOM calls against the public API, no framework, no build step.
// Every value from the API goes in through textContent or setAttribute, never innerHTML, so an item's title
// cannot inject markup. URLs are relative, so the page also works behind a proxy that mounts the app under a prefix.
"use strict";

const $ = (selector) => document.querySelector(selector);
const KEY_STORE = "itemtower.apiKey";
const SHOWN_FIELDS = 6; // std attributes shown on a card: these first (where the schema has them), then the rest
const KEY_FIELDS = ["category", "article_type", "color", "base_colour", "gender", "season", "brand", "price"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.errors = (body && Array.isArray(body.errors)) ? body.errors : [];
  }
}

// fetch + JSON, with the service's error body ({detail, errors}) turned into an ApiError.
async function api(method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { detail: `could not reach the service (${e.message})` });
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

const itemPath = (id) => "items/" + encodeURIComponent(id);

function problemList(errors) {
  if (!errors.length) return null;
  return el("ul", {}, ...errors.map((p) =>
    el("li", { text: `${p.item != null ? `item ${p.item}, ` : ""}${p.field}: ${p.message}` })));
}

function showError(err) {
  const box = $("#error");
  box.replaceChildren(el("strong", { text: err.status ? `Error ${err.status}: ` : "Error: " }),
    document.createTextNode(err.message), problemList(err.errors || []) || "");
  box.hidden = false;
}

function clearError() { $("#error").hidden = true; }

// ------------------------------------------------------------------ schema -> filter dropdowns

async function loadStatus() {
  try {
    const h = await api("GET", "health");
    $("#status").textContent = h.model_loaded ? `${h.status} · ${h.n_items} items` : h.status;
    if (h.message) $("#status").title = h.message;
  } catch (e) { $("#status").textContent = "unreachable"; }
}

async function loadFilters() {
  let schema;
  try { schema = await api("GET", "schema"); } catch (e) { showError(e); return; }
  const box = $("#filters");
  box.replaceChildren();
  for (const f of schema.std_fields) {
    if (!f.values.length) continue;
    const select = el("select", { id: `f-${f.name}`, "data-field": f.name },
      el("option", { value: "", text: "any" }), ...f.values.map((v) => el("option", { value: v, text: v })));
    box.append(el("label", { class: "filter" }, el("span", { text: f.name }), select));
  }
}

function chosenFilters() {
  const out = {};
  for (const s of document.querySelectorAll("#filters select")) if (s.value) out[s.dataset.field] = s.value;
  return out;
}

// ------------------------------------------------------------------ searching

let current = null; // the query on show: {what, k, offset, fetchPage(k, offset)}, for the pager

const perGroup = () => ($("#q-per-group").checked ? 1 : null);

function similarTo(id) {
  $("#q-id").value = id;
  const filters = chosenFilters(), group = perGroup();
  return run(`similar to ${id}`, (k, offset) => {
    const params = new URLSearchParams({ k, offset, ...(group ? { per_group: group } : {}), ...filters });
    return api("GET", `${itemPath(id)}/similar?${params}`);
  });
}

function searchWords(words) {
  const filters = chosenFilters(), group = perGroup();
  const item = { title: words || null, std: filters };
  return run(`search "${words}"`, (k, offset) =>
    api("POST", "search", { body: { item, k, offset, filters, ...(group ? { per_group: group } : {}) } }));
}

function variantsOf(id) {
  return run(`variants of ${id}`, (k, offset) =>
    api("GET", `${itemPath(id)}/variants?${new URLSearchParams({ k, offset })}`));
}

async function run(what, fetchPage, offset = 0) {
  const k = Number($("#q-k").value);
  current = { what, k, offset, fetchPage };
  clearError();
  $("#pager").hidden = true;
  $("#results-info").textContent = `${what}: searching...`;
  try {
    const data = await fetchPage(k, offset);
    renderResults(data, offset ? `${what}, from #${offset + 1}` : what);
    $("#btn-prev").disabled = offset === 0;
    $("#btn-next").disabled = (data.items || []).length < k;
    $("#pager").hidden = offset === 0 && (data.items || []).length < k;
  } catch (e) {
    $("#results-info").textContent = "";
    $("#grid").replaceChildren();
    showError(e);
  }
}

function turnPage(step) {
  if (current) run(current.what, current.fetchPage, Math.max(0, current.offset + step * current.k));
}

function imageOf(item) {
  // An http(s) URL or a path on this server as it is; a relative path (a file in the server's image root, as
  // PUT stores a photo) through GET /photos/{id}, which reads only inside that root. Never javascript:, data:
  // or a protocol-relative //host.
  const src = typeof item.image === "string" ? item.image.trim() : "";
  if (/^https?:\/\//i.test(src) || (src.startsWith("/") && !src.startsWith("//"))) return src;
  return src && item.id != null && !/^[a-z][a-z0-9+.-]*:/i.test(src) && !src.startsWith("\\")
    ? `photos/${encodeURIComponent(item.id)}` : null;
}

function photoImg(item, src) {
  // An absolute path may be a URL of this server or a file path in the image root (a catalog indexed with
  // absolute paths): if the server has no such URL, ask GET /photos/{id} once.
  const img = el("img", { src, alt: item.title || item.id, loading: "lazy" });
  if (src.startsWith("/") && item.id != null) {
    img.addEventListener("error", () => {
      const alt = `photos/${encodeURIComponent(item.id)}`;
      if (!img.src.endsWith(alt)) img.src = alt;
    }, { once: true });
  }
  return img;
}

function card(item) {
  const src = imageOf(item);
  const rank = ([k]) => (KEY_FIELDS.includes(k) ? KEY_FIELDS.indexOf(k) : KEY_FIELDS.length);
  const attrs = Object.entries(item.std || {}).filter(([, v]) => v && v.length)
    .sort((a, b) => rank(a) - rank(b)).slice(0, SHOWN_FIELDS);  // sort is stable: schema order otherwise
  return el("article", { class: "card", "data-id": item.id },
    src ? photoImg(item, src) : null,
    el("div", { class: "score", title: "cosine similarity", text: Number(item.score).toFixed(3) }),
    el("h3", { class: "title", text: item.title || "(no title)" }),
    el("div", { class: "muted id", text: item.group ? `${item.id} · group ${item.group}` : item.id }),
    el("dl", { class: "attrs" },
      ...attrs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: [].concat(v).join(", ") })])),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "similar", text: "Similar" }),
      el("button", { type: "button", class: "explain", text: "Explain" }),
      item.group ? el("button", { type: "button", class: "variants", text: "Variants" }) : null,
      el("button", { type: "button", class: "edit", text: "Edit" })));
}

function renderResults(data, what) {
  const items = data.items || [];
  $("#results-info").textContent = `${what}: ${items.length} result${items.length === 1 ? "" : "s"}`;
  $("#grid").replaceChildren(...items.map(card));
  if (data.warnings && data.warnings.length) {
    $("#results-info").append(el("span", { class: "warn", text:
      " (warnings: " + data.warnings.map((w) => `${w.field}: ${w.message}`).join("; ") + ")" }));
  }
}

// ------------------------------------------------------------------ explanation

async function explain(id) {
  const panel = $("#explain");
  $("#explain-id").textContent = id;
  const body = $("#explain-body");
  body.replaceChildren(el("p", { class: "muted", text: "loading..." }));
  panel.hidden = false;
  try {
    const ex = await api("GET", `${itemPath(id)}/explain`);
    body.replaceChildren(...explanation(ex));
  } catch (e) {
    body.replaceChildren(el("p", { class: "error", text: e.status ? `Error ${e.status}: ${e.message}` : e.message }));
  }
}

function bar(percent) {
  const node = el("span", { class: "bar" });
  node.style.width = `${percent}%`; // CSSOM, not a style attribute: the page's CSP allows no inline styles
  return node;
}

function explanation(ex) {
  if (!ex.fields || !ex.fields.length) {
    return [el("p", { text: `This model (pool "${ex.pool}") has no attention queries to explain.` })];
  }
  return ex.fields.map((f) => {
    const top = Math.max(...f.tokens.map((t) => t.weight), 1e-9); // bars relative to the field's strongest token
    return el("section", { class: "field" },
    el("h3", {}, el("span", { text: f.field }),
      el("span", { class: "muted", text: ` = ${f.values.length ? f.values.join(", ") : "(none)"}` })),
    el("p", { class: "muted", text: `attended to nothing: ${(100 * f.null_weight).toFixed(0)}%`
      + (f.image_weight !== undefined ? `, to the photo: ${(100 * f.image_weight).toFixed(0)}%` : "") }),
    el("ul", { class: "tokens" }, ...f.tokens.map((t) => el("li", {},
      bar(Math.max(2, Math.round(100 * t.weight / top))),
      el("span", { class: "token", text: t.token }),
      el("span", { class: "muted", text: ` ${t.segment} ${(100 * t.weight).toFixed(1)}%` })))));
  });
}

// ------------------------------------------------------------------ add / edit

async function edit(id) {
  clearError();
  try {
    const item = await api("GET", itemPath(id));
    delete item.id;
    $("#e-id").value = id;
    $("#e-body").value = JSON.stringify(item, null, 2);
    $("#editor").scrollIntoView({ behavior: "smooth" });
  } catch (e) { showError(e); }
}

async function save() {
  const out = $("#edit-result");
  out.className = "";
  out.textContent = "saving...";
  const id = $("#e-id").value.trim();
  let item;
  try {
    item = JSON.parse($("#e-body").value);
  } catch (e) {
    out.className = "error";
    out.textContent = `the item is not valid JSON: ${e.message}`;
    return;
  }
  const key = $("#e-key").value;
  sessionStorage.setItem(KEY_STORE, key);
  try {
    const r = await api("PUT", itemPath(id), { body: item, headers: key ? { "X-API-Key": key } : {} });
    out.className = "ok";
    out.textContent = `${r.created ? "added" : "replaced"} ${r.id}` +
      (r.warnings.length ? ` (warnings: ${r.warnings.map((w) => `${w.field}: ${w.message}`).join("; ")})` : "");
    loadStatus();
  } catch (e) {
    out.className = "error";
    out.replaceChildren(document.createTextNode(e.status ? `Error ${e.status}: ${e.message}` : e.message),
      problemList(e.errors) || "");
  }
}

// ------------------------------------------------------------------ wiring

function init() {
  $("#e-key").value = sessionStorage.getItem(KEY_STORE) || "";
  $("#by-id").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = $("#q-id").value.trim();
    if (id) similarTo(id);
  });
  $("#by-words").addEventListener("submit", (ev) => {
    ev.preventDefault();
    searchWords($("#q-words").value.trim());
  });
  $("#edit-form").addEventListener("submit", (ev) => { ev.preventDefault(); save(); });
  $("#explain-close").addEventListener("click", () => { $("#explain").hidden = true; });
  $("#btn-prev").addEventListener("click", () => turnPage(-1));
  $("#btn-next").addEventListener("click", () => turnPage(1));
  $("#grid").addEventListener("click", (ev) => {
    const button = ev.target.closest("button");
    const id = button && button.closest(".card") && button.closest(".card").dataset.id;
    if (!id) return;
    if (button.classList.contains("similar")) similarTo(id);
    else if (button.classList.contains("explain")) explain(id);
    else if (button.classList.contains("edit")) edit(id);
    else if (button.classList.contains("variants")) variantsOf(id);
  });
  loadStatus();
  loadFilters();
  document.body.dataset.ready = "true"; // the browser test waits for this
}

document.addEventListener("DOMContentLoaded", init);
