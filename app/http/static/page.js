// The page at GET /: one POST /tag per submit, rendered off-document into a DocumentFragment and
// inserted once; one POST /embed for the two sentences; each names the model chosen from GET
// /info's list. Plain DOM, nothing loaded from elsewhere.
// Server text is only ever set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const score = (x) => x.toFixed(2);

// ---- requests ----------------------------------------------------------------------------------

class RequestError extends Error {}

function keyHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// The API names inputs by position ("input 1 is empty…"); the page names what was typed.
function inOurWords(message, names) {
  const said = message
    .replace(/\binput (\d+)\b/g, (all, i) => names[Number(i)] ?? all)
    .replace(/\ban input\b/g, names.length === 1 ? names[0] : "a sentence");
  return said.charAt(0).toUpperCase() + said.slice(1);
}

// Relative paths, so the page also works behind a proxy that mounts the service under a prefix.
// `names`: what the person calls each input, for error messages. The body names the chosen model;
// none is chosen while /info is unread, and the server's default answers.
async function post(path, body, signal, names) {
  const model = $("model").value;
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...keyHeaders() },
      body: JSON.stringify(model ? { ...body, model } : body),
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new RequestError(`Could not reach the server (${e.message}).`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON: a proxy's error page, say; the status line is all we can show
  }
  if (response.ok && data !== null) return data;
  if (response.status === 401) $("auth").open = true;
  const what = data && typeof data.error === "string"
    ? `${inOurWords(data.error, names)} (${data.error_type}, HTTP ${response.status})`
    : `HTTP ${response.status} ${response.statusText}`.trim();
  throw new RequestError(response.status === 401 ? `${what}. Enter the key under “API key”.` : what);
}

function showError(box, error) {
  box.hidden = false;
  box.textContent = error instanceof RequestError ? error.message : `Unexpected error: ${error}`;
}

// ---- the model: which one the requests name, and what the page offers for it -------------------

// GET /info (`name`'s, else the default's), or null when it cannot be read: no key yet, say.
async function readInfo(name) {
  const query = name ? `?model=${encodeURIComponent(name)}` : "";
  try {
    const response = await fetch(`info${query}`, { headers: keyHeaders() });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

// A section marked data-task shows only when the model does that task (embed: it has a sentence
// encoder); with no /info to go by, everything shows and the server's errors say what is missing.
function offer(info) {
  for (const section of document.querySelectorAll("[data-task]")) {
    section.hidden = info !== null && !info.tasks.includes(section.dataset.task);
  }
  const m = info?.model;
  const languages = m?.languages?.length ? `, ${m.languages.join(", ")}` : "";
  $("model-about").textContent = m ? `version ${m.version}${languages}` : "";
}

let modelsRead = false;
let choice = 0; // counts model choices: only the latest one's /info is applied

// The picker lists every model, the default chosen; with one model it stays hidden.
async function readModels() {
  const info = await readInfo(null);
  if (info === null || modelsRead) return;
  modelsRead = true;
  const options = info.models.map((m) => new Option(m.name, m.name, m.default, m.default));
  $("model").replaceChildren(...options);
  $("model-picker").hidden = options.length < 2;
  offer(info);
}

async function onModel() {
  const mine = ++choice;
  const info = await readInfo($("model").value);
  if (mine === choice) offer(info);
}

function wireModels() {
  $("model").addEventListener("change", onModel);
  // a server with a key answers /info only once the key is typed in
  $("api-key").addEventListener("change", () => modelsRead || readModels());
  readModels();
}

// ---- tagging -----------------------------------------------------------------------------------

let tagging = null; // the AbortController of the /tag request in flight
let shown = null; // { tokens, entities } on the page, for the tooltip

async function onTag(event) {
  event.preventDefault();
  const text = $("tag-text").value;
  const output = $("tag-output");
  tagging?.abort(); // a newer submit wins
  const controller = (tagging = new AbortController());
  $("tag-error").hidden = true;
  output.setAttribute("aria-busy", "true");
  $("tag-status").textContent = "Tagging…";
  const started = performance.now();
  try {
    const [result] = await post("tag", { inputs: text }, controller.signal, ["the text"]);
    render(text, result);
    const ms = Math.round(performance.now() - started);
    $("tag-status").textContent = summary(result, ms);
  } catch (e) {
    if (e.name === "AbortError") return;
    output.hidden = $("tag-help").hidden = true;
    $("tag-status").textContent = "";
    showError($("tag-error"), e);
  } finally {
    if (tagging === controller) {
      tagging = null;
      output.removeAttribute("aria-busy");
    }
  }
}

// What a screen reader hears once the result is in: counts, then the entities themselves.
function summary(result, ms) {
  const n = result.tokens.length;
  if (n === 0) return "No words found.";
  const ents = result.entities;
  const k = (result.sentences || []).length;
  const words = `${n} word${n === 1 ? "" : "s"} in ${k} sentence${k === 1 ? "" : "s"}`;
  if (ents.length === 0) return `${words}, no entities (${ms} ms).`;
  const listed = ents.slice(0, 10).map((e) => `${e.text} (${e.label})`).join(", ");
  const more = ents.length > 10 ? `, and ${ents.length - 10} more` : "";
  return `${words}, ${ents.length} entit${ents.length === 1 ? "y" : "ies"}: ${listed}${more} (${ms} ms).`;
}

function render(text, result) {
  const { tokens, entities } = result;
  const entityAt = new Map(entities.map((e, k) => [e.token_start, k]));
  const sentenceAt = new Set((result.sentences || []).map((s) => s.token_start));
  const fragment = document.createDocumentFragment();
  let i = 0;
  while (i < tokens.length) {
    if (i > 0) appendGap(fragment, text, tokens[i - 1], tokens[i]);
    if (i > 0 && sentenceAt.has(i)) fragment.append(el("span", "sent", "¶")); // a new sentence
    const k = entityAt.get(i);
    if (k === undefined) {
      fragment.append(tokenElement(tokens[i], i));
      i += 1;
      continue;
    }
    const e = entities[k];
    const mark = el("mark", "ent");
    mark.dataset.label = e.label;
    mark.dataset.e = k;
    for (let j = e.token_start; j < e.token_end; j++) mark.append(tokenElement(tokens[j], j));
    mark.append(el("span", "chip", e.label));
    fragment.append(mark);
    i = e.token_end;
  }
  const first = fragment.querySelector(".tok");
  if (first) first.tabIndex = 0; // one tab stop for the whole text; arrows move inside it
  shown = result;
  hideTip();
  const output = $("tag-output");
  output.replaceChildren(fragment);
  output.hidden = false;
  $("tag-help").hidden = tokens.length === 0;
  const deps = window.dependencyView(result); // null: the model has no parser
  $("deps-output").replaceChildren(...(deps ? [deps] : []));
  $("deps").hidden = deps === null;
}

function tokenElement(token, i) {
  const node = el("span", "tok");
  node.tabIndex = -1;
  node.dataset.i = i;
  node.append(el("span", "w", token.text), el("span", "upos", token.upos));
  return node;
}

// Keep the input's line breaks; any other run of spaces shows as one; touching words stay touching.
function appendGap(parent, text, prev, next) {
  if (prev.end == null || next.start == null) {
    parent.append(" ");
    return;
  }
  const between = text.slice(prev.end, next.start);
  const breaks = Math.min((between.match(/\n/g) || []).length, 2);
  if (breaks > 0) {
    for (let b = 0; b < breaks; b++) parent.append(el("br"));
  } else if (between.length > 0) {
    parent.append(" ");
  }
}

// ---- the score tooltip: one element, shown for the hovered or focused word ----------------------

function tipText(i) {
  const t = shown.tokens[i];
  const lines = [`${t.text}`, `UPOS ${t.upos}  ${score(t.upos_score)}`, `NER  ${t.ner}  ${score(t.ner_score)}`];
  if (t.lemma !== undefined) lines.push(`lemma ${t.lemma}  ${score(t.lemma_score)}`);
  if (t.xpos !== undefined) lines.push(`XPOS ${t.xpos}  ${score(t.xpos_score)}`);
  if (t.feats !== undefined) lines.push(`feats ${t.feats}  ${score(t.feats_score)}`);
  const e = shown.entities.find((x) => x.token_start <= i && i < x.token_end);
  if (e) lines.push(`entity ${e.label}  ${score(e.score)}`);
  return lines.join("\n");
}

function showTip(tok) {
  hideTip();
  const tip = $("tip");
  tip.textContent = tipText(Number(tok.dataset.i));
  tip.hidden = false;
  const wrap = tip.parentElement.getBoundingClientRect();
  const box = tok.getBoundingClientRect();
  const half = tip.offsetWidth / 2;
  const centre = box.left - wrap.left + box.width / 2;
  tip.style.left = `${Math.max(half, Math.min(wrap.width - half, centre))}px`;
  tip.style.top = `${box.bottom - wrap.top + 4}px`;
  tok.setAttribute("aria-describedby", "tip");
}

function hideTip() {
  $("tip").hidden = true;
  document.querySelector('.tok[aria-describedby="tip"]')?.removeAttribute("aria-describedby");
}

function onKey(event) {
  const tok = event.target.closest(".tok");
  if (!tok) return;
  if (event.key === "Escape") {
    hideTip();
    return;
  }
  const all = $("tag-output").querySelectorAll(".tok");
  const i = Number(tok.dataset.i);
  const to = { ArrowLeft: i - 1, ArrowRight: i + 1, Home: 0, End: all.length - 1 }[event.key];
  if (to === undefined || to < 0 || to >= all.length) return;
  event.preventDefault();
  tok.tabIndex = -1;
  all[to].tabIndex = 0;
  all[to].focus();
}

function wireTagging() {
  const output = $("tag-output");
  $("tag-form").addEventListener("submit", onTag);
  $("tag-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("tag-form").requestSubmit();
    }
  });
  output.addEventListener("keydown", onKey);
  output.addEventListener("focusin", (event) => {
    const tok = event.target.closest(".tok");
    if (tok) showTip(tok);
  });
  output.addEventListener("focusout", hideTip);
  // the hovered word's scores, else the focused word's, else none
  const follow = (tok) => {
    const focused = output.contains(document.activeElement) ? document.activeElement : null;
    if (tok || focused) showTip(tok || focused);
    else hideTip();
  };
  output.addEventListener("mouseover", (event) => follow(event.target.closest(".tok")));
  output.addEventListener("mouseleave", () => follow(null));
}

// ---- similarity --------------------------------------------------------------------------------

let comparing = null;

// What people said of sentence pairs with about this cosine: STS-B dev pairs grouped by their
// human rating (0-5), each group's median cosine under the shipped model (0.20, 0.44, 0.59,
// 0.74, 0.87; docs/similarity_scale.py); a cosine reads as the group whose median is nearest.
const READINGS = [
  [0.318, "different meanings (people rate such pairs 0–1 of 5)"],
  [0.517, "same topic, different meanings (1–2 of 5)"],
  [0.664, "some details shared (2–3 of 5)"],
  [0.805, "roughly the same meaning (3–4 of 5)"],
  [Infinity, "the same meaning (4–5 of 5)"],
];

function reading(cosine) {
  return READINGS.find(([below]) => cosine < below)[1];
}

async function onCompare(event) {
  event.preventDefault();
  comparing?.abort();
  const controller = (comparing = new AbortController());
  $("sim-error").hidden = true;
  $("sim-output").setAttribute("aria-busy", "true");
  try {
    const inputs = [$("sim-a").value, $("sim-b").value];
    const names = ["the first sentence", "the second sentence"];
    const [u, v] = await post("embed", { inputs, normalize: true }, controller.signal, names);
    let cosine = 0; // unit vectors: the dot product is the cosine
    for (let k = 0; k < u.length; k++) cosine += u[k] * v[k];
    const value = $("sim-value");
    value.value = cosine.toFixed(3);
    value.dataset.value = String(cosine);
    $("sim-meter").value = cosine;
    $("sim-reading").textContent = reading(cosine);
    $("sim-result").hidden = false;
  } catch (e) {
    if (e.name === "AbortError") return;
    $("sim-result").hidden = true;
    showError($("sim-error"), e);
  } finally {
    if (comparing === controller) {
      comparing = null;
      $("sim-output").removeAttribute("aria-busy");
    }
  }
}

wireModels();
wireTagging();
$("sim-form").addEventListener("submit", onCompare);
