// The reading page: streams a translation from /v1/translate:stream and lays the Arabic and the
// English side by side, sentence against sentence. Plain DOM, no framework, nothing from a CDN.
"use strict";

const FLAG_REASONS = {
  SPLIT: "translated in parts (a very long sentence)",
  OUTPUT_CAPPED: "the English reached its length cap: check it is complete",
  PASSTHROUGH: "no Arabic in it: returned as written",
  PROTECTED_RESTORED: "a link, handle or Latin name was put back as written",
  PLACEHOLDER_LOST: "the model dropped a link, handle or name; it was re-inserted",
  TERM_LOST: "a glossary term was dropped by the model and re-inserted",
  TERM_EXPANDED: "the model wrote part of a glossary term; it was expanded in place to the whole",
  REPETITION: "the English repeats itself",
  LENGTH_RATIO: "the English is much shorter or longer than the Arabic suggests",
  UNTRANSLATED_ARABIC: "Arabic left in the English",
  EMPTY: "the model gave no English",
  NUMBER_MISMATCH: "a number in the Arabic is missing from the English: check it",
  NAME_VARIANT: "a name spelt differently than earlier in the article",
  MARKUP_PLACED: "a link or emphasis was placed by position: check which words it wraps",
  BOILERPLATE: "page furniture (a font widget, byline, credit or share line), left out of the summary",
};

const $ = (id) => document.getElementById(id);
let current = null; // the response so far, in the shape of /v1/translate's answer

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// A server with several translation models: offer them, the default first (POST /v1/info).
async function listModels() {
  try {
    const r = await fetch("/v1/info", { method: "POST", headers: headers(), body: "{}" });
    if (!r.ok) return;
    const models = ((await r.json()).models || []).filter((m) => m.role === "translation");
    $("model").replaceChildren(...models.map((m) => element("option", { value: m.name }, `${m.name} (${m.id})`)));
    $("model-choice").hidden = models.length < 2;
  } catch {
    // the page still translates with the default model
  }
}

async function checkHealth() {
  try {
    const r = await fetch("/healthz");
    $("health").textContent = r.ok ? "ready" : "starting or stopping";
    $("health").className = "health " + (r.ok ? "ok" : "bad");
  } catch {
    $("health").textContent = "unreachable";
    $("health").className = "health bad";
  }
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function sentenceSpan(paragraph, i, side) {
  const s = paragraph.sentences[i];
  const key = `${paragraph.index}-${i}`;
  const span = element("span", { class: "sentence", tabindex: "0", "data-key": key });
  span.textContent = side === "ar" ? s.source : s.translation;
  const flags = s.flags || [];
  if (flags.length && side === "en") {
    span.classList.add("flagged");
    const reasons = flags.map((f) => FLAG_REASONS[f] || f.toLowerCase());
    span.title = reasons.join("; ");
    const mark = element("span", { class: "flag", "aria-hidden": "true" });
    mark.textContent = "⚠ " + flags.map((f) => f.toLowerCase().replace("_", " ")).join(", ");
    const spoken = element("span", { class: "visually-hidden" });
    spoken.textContent = ` (check: ${reasons.join("; ")})`;
    span.append(mark, spoken);
  }
  return span;
}

function count(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function cell(paragraph, side) {
  // A paragraph with no Arabic (an English quote, a byline) reads left to right even in the Arabic column.
  const arabic = /[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]/.test(paragraph.source);
  const attributes = side === "en" ? { class: "en", lang: "en" }
    : arabic ? { class: "ar", dir: "rtl", lang: "ar" } : { class: "ar latin", dir: "ltr" };
  const node = element("div", attributes);
  // The text between sentences (spaces, stray marks) stays as it was in the Arabic.
  let position = 0;
  paragraph.sentences.forEach((s, i) => {
    if (side === "ar" && s.source_start > position) node.append(paragraph.source.slice(position, s.source_start));
    if (side === "en" && i > 0) node.append(" ");
    node.append(sentenceSpan(paragraph, i, side));
    position = s.source_end;
  });
  if (side === "ar" && position < paragraph.source.length) node.append(paragraph.source.slice(position));
  return node;
}

function addParagraph(paragraph) {
  const number = element("a", { class: "number", href: `#p${paragraph.index + 1}` });
  number.textContent = `¶${paragraph.index + 1}`;
  const row = element("li", { id: `p${paragraph.index + 1}` }, number, cell(paragraph, "ar"), cell(paragraph, "en"));
  $("paragraphs").append(row);
}

function showSummary(summary) {
  const list = $("summary-list");
  list.replaceChildren();
  if (!summary || !summary.sentences || !summary.sentences.length) {
    $("summary").hidden = true;
    return;
  }
  for (const s of summary.sentences) {
    const item = element("li", {});
    item.append(s.text);
    if (s.unsupported || !s.paragraphs.length) {
      const note = element("em", {});
      note.textContent = " (unsupported: check it against the source)";
      item.append(note);
    }
    for (const p of s.paragraphs) {
      const link = element("a", { href: `#p${p + 1}`, "data-jump": String(p + 1) });
      link.textContent = `¶${p + 1}`;
      item.append(link);
    }
    list.append(item);
  }
  $("summary").hidden = false;
}

function highlight(key, on) {
  // One pair lit at a time: a sentence reached by the keyboard while the mouse rests on another would
  // otherwise leave both lit, and the reader could not tell which Arabic goes with which English.
  if (on) for (const node of document.querySelectorAll(".sentence.hl")) node.classList.remove("hl");
  for (const node of document.querySelectorAll(`.sentence[data-key="${key}"]`)) node.classList.toggle("hl", on);
}

for (const kind of ["mouseover", "focusin"]) {
  document.addEventListener(kind, (event) => {
    const node = event.target.closest && event.target.closest(".sentence");
    if (node) highlight(node.dataset.key, true);
  });
}
for (const kind of ["mouseout", "focusout"]) {
  document.addEventListener(kind, (event) => {
    const node = event.target.closest && event.target.closest(".sentence");
    if (node) highlight(node.dataset.key, false);
  });
}
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[data-jump], a.number");
  if (!link) return;
  const row = document.getElementById(link.getAttribute("href").slice(1));
  if (!row) return;
  event.preventDefault();
  for (const r of document.querySelectorAll("#paragraphs > li.jumped")) r.classList.remove("jumped");
  row.classList.add("jumped");
  row.scrollIntoView({ behavior: "smooth", block: "center" });
  const first = row.querySelector(".en .sentence");
  if (first) first.focus({ preventScroll: true });
});

async function translate() {
  const text = $("source").value;
  showError("");
  if (!text.trim()) {
    showError("Paste an Arabic article first.");
    return;
  }
  $("translate").disabled = true;
  $("paragraphs").replaceChildren();
  $("summary").hidden = true;
  $("result").hidden = false;
  $("progress").textContent = "Translating…";
  current = { id: "", paragraphs: [], terms: [] };
  const started = performance.now();
  try {
    const response = await fetch("/v1/translate:stream", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ text, summarize: $("summarize").checked, options: { model: $("model").value } }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim()) receive(JSON.parse(line));
      }
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const model = current.info && current.info.model && !$("model-choice").hidden ? `, by ${current.info.model.name}` : "";
    $("progress").textContent = `${count(current.paragraphs.length, "paragraph")} in ${seconds} s${model}`;
  } catch (error) {
    showError(error.message);
    $("progress").textContent = "";
  } finally {
    $("translate").disabled = false;
  }
}

function receive(message) {
  if (message.error) throw new Error(message.error.message);
  current.id = message.id;
  for (const p of message.paragraphs || []) {
    current.paragraphs.push(p);
    addParagraph(p);
  }
  $("progress").textContent = `Translating… ${count(current.paragraphs.length, "paragraph")} so far`;
  if (message.done) {
    current.info = message.info;
    current.terms = message.terms || [];
    if (message.summary) current.summary = message.summary;
    showSummary(message.summary);
  }
}

function download(name, type, content) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const link = element("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function loadFile(file) {
  const text = await file.text();
  showError("");
  if (!/\.html?$/i.test(file.name) && file.type !== "text/html") {
    $("source").value = text;
    return;
  }
  // A saved page: the server keeps its article (headline, byline, date, body) and says what it dropped.
  const response = await fetch("/v1/extract", { method: "POST", headers: headers(), body: JSON.stringify({ html: text }) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) return showError((body.error && body.error.message) || `HTTP ${response.status}`);
  if (!body.paragraphs.length) return showError("No article found in that page.");
  $("source").value = body.paragraphs.join("\n\n");
  $("progress").textContent = "";
  $("extracted").textContent = `From the page: kept ${count(body.paragraphs.length, "paragraph")}; dropped ${count(body.dropped.length, "block")} of page furniture` +
    (body.dropped.length ? ` (${body.dropped.slice(0, 5).map((b) => `“${b.slice(0, 40)}”`).join(", ")}${body.dropped.length > 5 ? ", …" : ""})` : "") + ".";
  $("extracted").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem("tarjama-token") || "";
  $("token").addEventListener("change", () => sessionStorage.setItem("tarjama-token", $("token").value));
  $("translate").addEventListener("click", translate);
  $("source").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) translate();
  });
  $("file").addEventListener("change", () => $("file").files[0] && loadFile($("file").files[0]));
  $("copy").addEventListener("click", async () => {
    const english = current.paragraphs.map((p) => p.translation).join("\n\n");
    await navigator.clipboard.writeText(english).catch(() => download("translation.txt", "text/plain", english));
    $("progress").textContent = "English copied";
  });
  $("download-json").addEventListener("click", () =>
    download(`${current.id || "translation"}.json`, "application/json", JSON.stringify(current, null, 2)));
  $("download-xliff").addEventListener("click", async () => {
    const response = await fetch("/v1/export?format=xliff", {
      method: "POST", headers: headers(), body: JSON.stringify(current),
    });
    if (!response.ok) return showError(`XLIFF export failed (HTTP ${response.status})`);
    download(`${current.id || "translation"}.xlf`, "application/xliff+xml", await response.text());
  });
  checkHealth();
  listModels();
  $("token").addEventListener("change", listModels);
  setInterval(checkHealth, 15000);
});
