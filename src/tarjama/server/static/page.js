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
let used = null; // the stored glossary the shown translation was sent with: { id, name }, or null
let adding = false; // an "add to glossary" is under way (a second click would make two glossaries)

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

// One native API call: its JSON answer, or an Error with the server's message and the HTTP status.
async function call(path, body) {
  const r = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body) });
  const answer = await r.json().catch(() => ({}));
  if (r.ok) return answer;
  const error = new Error((answer.error && answer.error.message) || `HTTP ${r.status}`);
  error.status = r.status;
  throw error;
}

function glossaryNote(message) {
  $("glossary-note").textContent = message;
  $("glossary-note").hidden = !message;
}

// The newsroom's stored glossaries, newest first, offered beside the model with "none" the default
// (POST /v1/glossaries:list). A server with none keeps the picker hidden; one whose glossary database
// is down (503) says so in one line, and translating without a glossary still works.
async function listGlossaries(selected = $("glossary").value) {
  let glossaries = [];
  try {
    glossaries = (await call("/v1/glossaries:list", {})).glossaries || [];
    glossaryNote("");
  } catch (error) {
    // Before the token is typed, a server that asks for one says 401: nothing to report yet.
    glossaryNote(error.status === 401 ? "" : `Glossaries unavailable: ${error.message}`);
  }
  const none = element("option", { value: "" }, "none");
  $("glossary").replaceChildren(none, ...glossaries.map((g) =>
    element("option", { value: g.glossary_id, "data-name": g.name }, `${g.name} (${count(g.entry_count || 0, "entry", "entries")})`)));
  $("glossary").value = glossaries.some((g) => g.glossary_id === selected) ? selected : "";
  $("glossary-choice").hidden = !glossaries.length;
}

function chosenGlossary() {
  const option = $("glossary").selectedOptions[0];
  if (!option || !option.value) return null;
  return { id: option.value, name: option.dataset.name };
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

function count(n, noun, plural = `${noun}s`) {
  return `${n} ${n === 1 ? noun : plural}`;
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
  $("names").hidden = true;
  $("result").hidden = false;
  $("progress").textContent = "Translating…";
  current = { id: "", paragraphs: [], terms: [] };
  used = chosenGlossary();
  const options = { model: $("model").value };
  if (used) options.glossary_id = used.id;
  const started = performance.now();
  try {
    const response = await fetch("/v1/translate:stream", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ text, summarize: $("summarize").checked, options }),
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
    const glossary = used ? `, with the glossary “${used.name}”` : "";
    $("progress").textContent = `${count(current.paragraphs.length, "paragraph")} in ${seconds} s${model}${glossary}`;
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
    showNames((message.info && message.info.name_variants) || []);
  }
}

// Each name the article spells several ways (info.name_variants; the later sentences are flagged
// NAME_VARIANT): the editor picks the spelling to keep and adds "Arabic → spelling" to a glossary.
function showNames(variants) {
  $("names-list").replaceChildren(...variants.map((variant, i) => {
    const select = element("select", { id: `name-${i}`, "aria-label": `Spelling of ${variant.source}` },
      ...variant.renderings.map((r) => element("option", { value: r }, r)));
    const source = element("span", { class: "name-source", dir: "rtl", lang: "ar" });
    source.textContent = variant.source;
    const button = element("button", { type: "button", class: "add-term" }, "Add to glossary");
    button.addEventListener("click", () => addToGlossary(variant.source, select.value));
    return element("li", {}, source, " → ", select, " ", button);
  }));
  $("names-status").textContent = "";
  $("names").hidden = !variants.length;
  // Beside each flagged sentence, a control that takes the editor to its name's spellings.
  for (const paragraph of current.paragraphs) {
    paragraph.sentences.forEach((s, i) => {
      if (!variants.length || !(s.flags || []).includes("NAME_VARIANT")) return;
      const found = variants.findIndex((v) => v.renderings.slice(1).some((r) => s.translation.includes(r)));
      const index = found >= 0 ? found : 0;
      const span = document.querySelector(`#paragraphs .en .sentence[data-key="${paragraph.index}-${i}"]`);
      const button = element("button", { type: "button", class: "name-fix", "data-variant": String(index) }, "add to glossary");
      button.addEventListener("click", () => $(`name-${index}`).focus());
      if (span) span.after(button);
    });
  }
}

// Stored glossaries are immutable (as DeepL's v2): adding a term makes a new glossary of the chosen
// one's entries plus this one, under the same name, then deletes the old one and selects the new.
// With no glossary chosen, it offers to create one.
async function addToGlossary(source, spelling) {
  if (adding) return;
  const status = $("names-status");
  const chosen = chosenGlossary();
  let name;
  let entries = [];
  adding = true;
  status.className = "";
  try {
    if (chosen) {
      const old = await call("/v1/glossaries:get", { glossary_id: chosen.id, include_entries: true });
      name = old.name;
      entries = (old.entries || []).filter((e) => e.source !== source); // the new spelling replaces an old one
    } else {
      name = (window.prompt("No glossary is chosen. Name a new one for this spelling:", "Newsroom names") || "").trim();
      if (!name) return;
    }
    entries.push({ source, target: spelling });
    const made = await call("/v1/glossaries:create", { name, entries, source_lang: "ar", target_lang: "en" });
    let left = "";
    if (chosen) {
      try {
        await call("/v1/glossaries:delete", { glossary_id: chosen.id });
      } catch (error) {
        left = ` The previous version could not be deleted: ${error.message}`;
      }
    }
    await listGlossaries(made.glossary_id);
    status.textContent = `Added ${source} → ${spelling} to “${name}” (${count(made.entry_count || entries.length, "entry", "entries")}); ` +
      `translate again to apply it.${left}`;
  } catch (error) {
    status.className = "refused";
    status.textContent = `Not added: ${error.message}`;
  } finally {
    adding = false;
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
  listGlossaries();
  $("token").addEventListener("change", listModels);
  $("token").addEventListener("change", () => listGlossaries());
  setInterval(checkHealth, 15000);
});
