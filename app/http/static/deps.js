"use strict";
// The parse as displaCy's dependency view draws it: per sentence, its words in a row with their
// part of speech under them, and an arc from each head to its dependent, labelled with the
// relation, the arrowhead at the dependent. Shorter arcs sit lower, so arcs rarely cross labels.

const SVG = "http://www.w3.org/2000/svg";
const STEP = 96; // px between words
const LEVEL = 34; // px an arc rises per level
const BASE = 24; // px of the lowest arc

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Each arc's level: its span's rank among the sentence's distinct spans (1: the shortest).
function levels(arcs) {
  const spans = [...new Set(arcs.map((a) => Math.abs(a.to - a.from)))].sort((x, y) => x - y);
  return new Map(spans.map((span, k) => [span, k + 1]));
}

function sentenceSvg(tokens, start, end) {
  const arcs = [];
  for (let i = start; i < end; i++) {
    const h = tokens[i].head;
    if (h !== i) arcs.push({ from: h - start, to: i - start, label: tokens[i].deprel });
  }
  const level = levels(arcs);
  const top = BASE + LEVEL * Math.max(0, ...level.values()) + 12;
  const width = STEP * (end - start) + 20;
  const svg = svgEl("svg", { class: "deps", width, height: top + 44, role: "img" });
  const x = (k) => 10 + STEP * k + STEP / 2;
  for (let k = 0; k < end - start; k++) {
    const t = tokens[start + k];
    svg.append(svgEl("text", { x: x(k), y: top + 18, class: "dep-word" }, t.text));
    svg.append(svgEl("text", { x: x(k), y: top + 36, class: "dep-pos" }, t.upos ?? ""));
  }
  for (const a of arcs) {
    const rise = BASE + LEVEL * level.get(Math.abs(a.to - a.from));
    const [x1, x2] = [x(a.from), x(a.to)];
    const y = top;
    const path = `M${x1},${y} C${x1},${y - rise} ${x2},${y - rise} ${x2},${y}`;
    const arc = svgEl("g", { class: "dep-arc" });
    arc.append(svgEl("path", { d: path, class: "dep-line" }));
    arc.append(svgEl("path", { d: `M${x2 - 4},${y - 8} L${x2},${y} L${x2 + 4},${y - 8}`, class: "dep-head" }));
    arc.append(svgEl("text", { x: (x1 + x2) / 2, y: y - rise * 0.75 - 4, class: "dep-label" }, a.label));
    svg.append(arc);
  }
  const said = arcs.map((a) => `${tokens[start + a.to].text} is ${a.label} of ${tokens[start + a.from].text}`);
  svg.setAttribute("aria-label", said.join("; ") || "one word, the root");
  return svg;
}

// The parse of every sentence of an answer, or nothing when the model has no parser.
function dependencyView(result) {
  const tokens = result.tokens;
  if (tokens.length === 0 || tokens[0].head === undefined) return null;
  const view = document.createElement("div");
  view.className = "deps-view";
  for (const s of result.sentences) view.append(sentenceSvg(tokens, s.token_start, s.token_end));
  return view;
}

window.dependencyView = dependencyView;
