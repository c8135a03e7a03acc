// nodescope page: no build step, no external resources; talks to the REST API of the same server.
"use strict";

const LABELS = { bmode: "B-mode image", cdfi: "Colour Doppler image", elastography: "Elastography image",
                 image: "Image" };
const state = { models: [], chosen: {}, csvUrl: null };

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.entries(props || {}).forEach(([k, v]) => {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  });
  children.forEach((c) => e.append(c));
  return e;
}

function headers() {
  const key = $("apikey").value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    const d = body.detail;
    return typeof d === "string" ? d : JSON.stringify(d);
  } catch (e) {
    return resp.status + " " + resp.statusText;
  }
}

function say(id, text, isError) {
  const s = $(id);
  s.textContent = text;
  s.className = isError ? "error" : "";
}

function currentModel() {
  return state.models.find((m) => m.id === $("model").value);
}

// ------------------------------------------------------------------------------------------ model card
function flatten(obj, prefix, rows) {
  Object.entries(obj || {}).forEach(([k, v]) => {
    const key = prefix ? prefix + "." + k : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) flatten(v, key, rows);
    else rows.push([key, Array.isArray(v) ? "[" + v.map(fmt).join(", ") + "]" : fmt(v)]);
  });
  return rows;
}

function fmt(v) {
  return typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v);
}

function table(caption, rows) {
  const t = el("table", {}, el("caption", { text: caption }));
  rows.forEach(([k, v]) => t.append(el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: v }))));
  return t;
}

function renderCard(m) {
  const card = $("card");
  card.replaceChildren();
  if (!m) return;
  card.append(el("h3", { text: m.name + " (" + m.kind.replace("_", " ") + ")" }));
  const facts = [["classes", m.classes.join(", ")], ["inputs", m.modalities.join(", ")]];
  if (m.threshold) facts.push(["operating threshold", m.threshold.value.toFixed(3) + " (" + m.threshold.method +
                                ", chosen on " + m.threshold.chosen_on + "; " + m.threshold.rule + ")"]);
  else facts.push(["operating threshold", "none: the most probable class is shown"]);
  if (m.input) facts.push(["input", m.input.image_size + " px, " + m.input.channels + " channel(s), ROI " +
                           m.input.roi]);
  if (m.members.length) facts.push(["averages", m.members.join(", ")]);
  card.append(table("Model", facts));
  if (m.synthetic_data) card.append(el("p", { class: "synthetic",
    text: "Trained on SYNTHETIC demo data: it exercises the software and has no clinical meaning." }));
  const training = flatten(m.training, "", []);
  if (training.length) card.append(table("Trained on", training));
  const metrics = flatten(m.metrics, "", []);
  card.append(metrics.length ? table("Validation figures (computed from saved predictions; CIs as recorded)",
                                     metrics) : el("p", { text: "No validation figures recorded in the bundle." }));
  const versions = Object.entries(m.versions || {}).map(([k, v]) => k + " " + v).join(", ");
  if (versions) card.append(el("p", { class: "hint", text: "Versions: " + versions }));
}

// ------------------------------------------------------------------------------------------ inputs
function renderInputs(m) {
  const box = $("inputs");
  box.replaceChildren();
  state.chosen = {};
  (m ? m.modalities : []).forEach((field) => {
    const id = "file-" + field;
    const input = el("input", { type: "file", id: id, name: field,
                                accept: "image/png,image/jpeg,application/dicom,.dcm,.dicom" });
    const name = el("span", { class: "fname", id: id + "-name", text: "no file chosen" });
    const zone = el("div", { class: "drop", "data-field": field },
                    el("label", { for: id, text: LABELS[field] || field }), input, name);
    input.addEventListener("change", () => choose(field, input.files[0], zone));
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; choose(field, input.files[0], zone); }
    });
    box.append(zone);
  });
}

function choose(field, file, zone) {
  const old = zone.querySelector("img");
  if (old) { URL.revokeObjectURL(old.src); old.remove(); }
  if (!file) { delete state.chosen[field]; $("file-" + field + "-name").textContent = "no file chosen"; return; }
  state.chosen[field] = file;
  $("file-" + field + "-name").textContent = file.name + " (" + Math.round(file.size / 1024) + " kB)";
  if (/^image\/(png|jpeg)$/.test(file.type)) {
    zone.append(el("img", { src: URL.createObjectURL(file), alt: "preview of the chosen " + (LABELS[field] || field) }));
  }
}

// ------------------------------------------------------------------------------------------ results
function bar(cls, p, model) {
  const pct = (100 * p).toFixed(1) + "%";
  const meter = el("div", { class: "bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1",
                            "aria-valuenow": p.toFixed(4), "aria-label": "probability of " + cls + ": " + pct });
  const fill = el("div", { class: "fill" });
  fill.style.width = (100 * p) + "%";
  meter.append(fill);
  if (model.threshold !== null && cls === model.positive_class) {
    const marker = el("div", { class: "threshold-marker", title: "operating threshold " + model.threshold.toFixed(3),
                               "data-threshold": String(model.threshold) });
    marker.style.left = "calc(" + (100 * model.threshold) + "% - 1px)";
    meter.append(marker);
  }
  return el("div", { class: "bar-row" }, el("span", { text: cls }), meter, el("span", { text: pct }));
}

function picture(src, alt, title) {
  if (!src) return el("div", {}, el("p", { class: "hint", text: title + ": not requested or not available" }));
  return el("div", {}, el("p", { text: title }), el("img", { src: "data:image/png;base64," + src, alt: alt }));
}

function renderResult(r) {
  const bars = $("bars");
  bars.replaceChildren(...r.classes.map((c) => bar(c, r.probabilities[c], r)));
  $("verdict").replaceChildren(el("strong", { class: "verdict", text: "Predicted: " + r.predicted_class }),
                               document.createTextNode(" (" + r.decision + "; model " + r.model_id + ")"));
  const figs = $("figures");
  figs.replaceChildren();
  r.modalities.forEach((m) => {
    const label = LABELS[m.modality] || m.modality;
    const fig = el("figure", {}, el("figcaption", { text: label + " (" + m.width + "x" + m.height + ", " +
                                                          m.format.toUpperCase() + ")" }));
    fig.append(el("div", { class: "trio" }, picture(m.image_png, label, "Image"),
                  picture(m.heatmap_png, "Grad-CAM heat map of the " + label, "Heat map"),
                  picture(m.roi_png, "region of interest on the " + label, "ROI")));
    if (m.probabilities) {
      const txt = Object.entries(m.probabilities).map(([c, p]) => c + " " + (100 * p).toFixed(1) + "%").join(", ");
      fig.append(el("p", { text: "This image alone: " + txt + " -> " + m.predicted_class }));
    }
    m.notes.forEach((n) => fig.append(el("p", { class: "hint", text: n })));
    figs.append(fig);
  });
  if (r.missing_modalities.length) figs.append(el("p", { class: "hint",
    text: "Not given: " + r.missing_modalities.map((f) => LABELS[f] || f).join(", ") }));
  $("timing").textContent = "Server time " + r.latency_ms.toFixed(0) + " ms (model " + r.timing.model_ms.toFixed(0) +
                            " ms, " + r.engine + "). " + r.notice;
  $("result").hidden = false;
  $("h-result").focus();
}

// ------------------------------------------------------------------------------------------ actions
async function loadModels() {
  say("status", "Loading models...");
  const resp = await fetch("/api/models", { headers: headers() });
  if (!resp.ok) { say("status", "Models: " + (await errorText(resp)), true); return; }
  const body = await resp.json();
  state.models = body.models;
  const sel = $("model");
  sel.replaceChildren(...body.models.map((m) => el("option", { value: m.id, text: m.id + " (" + m.kind + ")" })));
  sel.value = body.default;
  $("roi").querySelector("option[value=auto]").disabled = !body.segmenter;
  onModel();
  say("status", "Ready.");
}

function onModel() {
  const m = currentModel();
  renderCard(m);
  renderInputs(m);
  $("result").hidden = true;
}

async function predict(ev) {
  ev.preventDefault();
  const m = currentModel();
  if (!m) { say("status", "No model loaded.", true); return; }
  if (!Object.keys(state.chosen).length) { say("status", "Choose at least one image.", true); return; }
  const form = new FormData();
  Object.entries(state.chosen).forEach(([f, file]) => form.append(f, file, file.name));
  form.append("model", m.id);
  form.append("explain", $("explain").checked ? "true" : "false");
  form.append("roi", $("roi").value);
  form.append("images", "true");
  if ($("roi").value === "box") form.append("box", $("box").value);
  $("predict-btn").disabled = true;
  say("status", "Predicting...");
  try {
    const resp = await fetch("/api/predict", { method: "POST", body: form, headers: headers() });
    if (!resp.ok) { say("status", "Refused (" + resp.status + "): " + (await errorText(resp)), true); return; }
    renderResult(await resp.json());
    say("status", "Done.");
  } catch (e) {
    say("status", "The server could not be reached: " + e, true);
  } finally {
    $("predict-btn").disabled = false;
  }
}

async function batch(ev) {
  ev.preventDefault();
  const form = new FormData();
  Array.from($("batch-folder").files).forEach((f) => form.append("files", f, f.webkitRelativePath || f.name));
  const zip = $("batch-zip").files[0];
  if (zip) form.append("archive", zip, zip.name);
  if (!form.has("files") && !form.has("archive")) { say("batch-status", "Choose a folder or a zip.", true); return; }
  const m = currentModel();
  if (m && m.batch) form.append("model", m.id);
  say("batch-status", "Scoring...");
  const resp = await fetch("/api/batch", { method: "POST", body: form, headers: headers() });
  if (!resp.ok) { say("batch-status", "Refused (" + resp.status + "): " + (await errorText(resp)), true); return; }
  const blob = await resp.blob();
  if (state.csvUrl) URL.revokeObjectURL(state.csvUrl);
  state.csvUrl = URL.createObjectURL(blob);
  const a = $("batch-download");
  a.href = state.csvUrl;
  a.hidden = false;
  const rows = (await blob.text()).trim().split("\n").length - 1;
  say("batch-status", rows + " file(s) scored. Download the CSV below.");
  a.focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("model").addEventListener("change", onModel);
  $("reload").addEventListener("click", loadModels);
  $("predict-form").addEventListener("submit", predict);
  $("batch-form").addEventListener("submit", batch);
  loadModels();
});
