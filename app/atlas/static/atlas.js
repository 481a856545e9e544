// The atlas pages: data arrives as scripts calling atlasSite / atlasLayer / atlasSize (file:// has no
// fetch()), and every name or number from the model is set as text, never as markup.
"use strict";

// layers: a layer's data by name (unit pages); grids: what its layer page draws (layer pages)
const atlas = {site: null, size: null, layers: {}, grids: {}, waiting: {}};

function atlasSite(site) { atlas.site = site; }

function atlasSize(size) {
  atlas.size = size;
  const where = document.getElementById("site-size");
  if (where) where.textContent = `this site: ${size.files} files, ${formatBytes(size.bytes)}`;
}

function atlasLayer(data) { arrived("file", data); }

function atlasGrid(data) { arrived("grid", data); }

function arrived(part, data) {
  (part === "grid" ? atlas.grids : atlas.layers)[data.name] = data;
  const key = `${part} ${data.name}`;
  (atlas.waiting[key] || []).forEach((done) => done(data));
  delete atlas.waiting[key];
}

function formatBytes(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function number(value) {
  // a number as text, its exact value kept in data-value (what the tests compare with the files)
  const span = make("span", {class: "num"}, value === null || value === undefined ? "–" : String(Number(Number(value).toPrecision(5))));
  if (value !== null && value !== undefined) span.dataset.value = String(value);
  return span;
}

function make(tag, attributes, text) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== null && value !== undefined) element.setAttribute(name, value);
  }
  if (text !== undefined && text !== null) element.textContent = text;
  return element;
}

function hashParams() { return new URLSearchParams(location.hash.slice(1)); }

function pageUrl(page, params) { return `${page}#${new URLSearchParams(params).toString()}`; }

function siteLayer(name) { return atlas.site.layers.findIndex((layer) => layer.name === name); }

function loadLayer(name, done, part = "file") {
  // part "file": the layer's whole data (a unit page), "grid": what its layer page draws
  const loaded = (part === "grid" ? atlas.grids : atlas.layers)[name];
  if (loaded) { done(loaded); return; }
  const index = siteLayer(name);
  if (index < 0) { showMessage(`no layer ${JSON.stringify(name)} in this site`); return; }
  const key = `${part} ${name}`, file = atlas.site.layers[index][part];
  if (!atlas.waiting[key]) {
    atlas.waiting[key] = [];
    const script = make("script", {src: file});
    script.onerror = () => showMessage(`cannot load ${file}`);
    document.head.appendChild(script);
  }
  atlas.waiting[key].push(done);
}

function drawn() { document.body.dataset.drawn = location.hash; }   // what the page shows now

function showMessage(text) {
  let where = document.getElementById("message");
  if (!where) {
    where = make("p", {id: "message", class: "message"});
    document.querySelector("main").prepend(where);
  }
  where.textContent = text;
}

// -- jump box and keys ------------------------------------------------------------------------
function jumpTarget(text) {
  // "layer:unit" (a layer name may hold ':': the last one separates the unit), "layer:" or "layer";
  // the layer by name, else by its number in this site
  text = text.trim();
  const colon = text.lastIndexOf(":");
  const layerText = colon < 0 ? text : text.slice(0, colon);
  const unitText = colon < 0 ? "" : text.slice(colon + 1).trim();
  let index = siteLayer(layerText);
  if (index < 0 && /^\d+$/.test(layerText) && Number(layerText) < atlas.site.layers.length) index = Number(layerText);
  if (index < 0) return null;
  const layer = atlas.site.layers[index];
  if (unitText === "") return pageUrl("layer.html", {layer: layer.name});
  if (!/^\d+$/.test(unitText) || Number(unitText) >= layer.units) return null;
  return pageUrl("unit.html", {layer: layer.name, unit: Number(unitText)});
}

function go(url) { location.href = url; }   // same page, other hash: a hashchange redraws it

function setUpChrome(keys) {
  const help = document.getElementById("help");
  const box = document.getElementById("jump-box");
  document.getElementById("help-button").addEventListener("click", () => { help.hidden = !help.hidden; });
  document.getElementById("jump").addEventListener("submit", (event) => {
    event.preventDefault();
    const url = jumpTarget(box.value);
    if (url) { box.classList.remove("wrong"); box.blur(); go(url); } else box.classList.add("wrong");
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "h") help.hidden = !help.hidden;
    else if (event.key === "Escape") help.hidden = true;
    else if (event.key === "/") { event.preventDefault(); box.focus(); }
    else if (keys[event.key]) keys[event.key]();
  });
}

function neighbourLayer(name, step) {
  const index = siteLayer(name) + step;
  return index >= 0 && index < atlas.site.layers.length ? atlas.site.layers[index] : null;
}

// -- layer page -------------------------------------------------------------------------------
const SORTS = {
  unit: () => null,
  activation: (data) => orderBy(data, (unit) => unit.top, -1),
  dead: (data) => orderBy(data, (unit) => unit.dead, -1),
  kmeans: (data) => data.orders.kmeans || null,
  pca: (data) => data.orders.pca || null,
};

function orderBy(data, key, direction) {
  // units by key (largest first for direction -1), units without a value last, ties by unit
  const units = data.units.map((unit) => unit.unit);
  if (!data.units.some((unit) => key(unit) !== null)) return null;
  return units.sort((a, b) => {
    const ka = key(data.units[a]), kb = key(data.units[b]);
    if (ka === null || kb === null) return (ka === null) - (kb === null) || a - b;
    return direction * (ka - kb) || a - b;
  });
}

function layerPage() {
  const sort = document.getElementById("sort");
  let tiles = [], shown = null;
  function draw() {
    const params = hashParams();
    const name = params.get("layer") || atlas.site.layers[0].name;
    loadLayer(name, (data) => {
      if (hashParams().toString() !== params.toString()) return;   // the address moved on meanwhile
      if (shown !== data) { tiles = buildGrid(data); shown = data; }
      const key = SORTS[params.get("sort")] ? params.get("sort") : "unit";
      for (const option of sort.options) option.disabled = option.value !== "unit" && !SORTS[option.value](data);
      sort.value = SORTS[key](data) ? key : "unit";
      const order = SORTS[sort.value](data) || data.units.map((unit) => unit.unit);
      const grid = document.getElementById("grid");
      grid.replaceChildren(...order.map((unit) => tiles[unit]));
      grid.dataset.order = order.join(",");
      drawn();
    }, "grid");
  }
  sort.addEventListener("change", () => {
    const params = hashParams();
    params.set("sort", sort.value);
    location.hash = params.toString();
  });
  window.addEventListener("hashchange", draw);
  let cursor = -1;   // the selected tile's position in the grid: j / l move it, Enter opens its unit
  function select(position) {
    const grid = document.getElementById("grid");
    if (!grid.children.length) return;
    cursor = Math.max(0, Math.min(grid.children.length - 1, position));
    const selected = grid.querySelector(".selected");
    if (selected) selected.classList.remove("selected");
    grid.children[cursor].classList.add("selected");
    grid.children[cursor].focus({preventScroll: true});
    grid.children[cursor].scrollIntoView({block: "nearest"});
  }
  setUpChrome({
    j: () => select(cursor - 1), l: () => select(cursor + 1), u: () => layerStep(-1), o: () => layerStep(1),
  });
  function layerStep(step) {
    const next = neighbourLayer(shown ? shown.name : "", step);
    if (next) {
      const params = hashParams();
      params.set("layer", next.name);
      location.hash = params.toString();
    }
  }
  draw();
}

function layerFacts(data) {
  const field = data.field ? `receptive field ${data.field.join(" x ")} px, stride ${data.stride.join(" x ")}` : "sees the whole input";
  return `${data.shape.join(" x ")} ${data.op} (${data.kind}), ${field}, ${data.units.length} units` +
    (data.images ? `, top activations over ${data.images} images` : "");
}

function buildGrid(data) {
  document.title = `${data.name} – ${atlas.site.title}`;
  document.getElementById("layer-name").textContent = data.name;
  document.getElementById("where").textContent = data.name;
  document.getElementById("layer-facts").textContent = layerFacts(data);
  const stats = document.getElementById("layer-stats");
  stats.hidden = !data.stats;
  if (data.stats) {
    for (const name of ["correlation", "inactivity"]) {
      const picture = document.getElementById(name);
      picture.parentElement.hidden = !data.stats[name];
      if (data.stats[name]) picture.src = data.stats[name];
    }
  }
  return data.units.map((unit) => {
    const tile = make("a", {class: "tile", href: pageUrl("unit.html", {layer: data.name, unit: unit.unit}),
                            "data-unit": unit.unit});
    tile.appendChild(unit.thumb ? make("img", {src: unit.thumb, loading: "lazy", width: 96, height: 96, alt: `unit ${unit.unit}`})
                                : make("div", {class: "blank"}, "no image"));
    const caption = make("span", {class: "caption"}, `${unit.unit} `);
    caption.appendChild(number(unit.top));
    tile.appendChild(caption);
    return tile;
  });
}

// -- unit page --------------------------------------------------------------------------------
const CROP_ROWS = ["maxim", "deconv", "guided", "backprop"];

function unitPage() {
  function draw() {
    const params = hashParams();
    const name = params.get("layer") || atlas.site.layers[0].name;
    loadLayer(name, (data) => {
      if (hashParams().toString() !== params.toString()) return;   // the address moved on meanwhile
      const unit = Math.max(0, Math.min(data.units.length - 1, Number(params.get("unit")) || 0));
      drawUnit(data, data.units[unit], params.get("source"));
      drawn();
    });
  }
  // from the address, not from what is drawn: keys pressed before a layer's data arrives add up
  function requested() {
    const params = hashParams();
    const index = Math.max(0, siteLayer(params.get("layer") || atlas.site.layers[0].name));
    return {layer: atlas.site.layers[index], unit: Number(params.get("unit")) || 0};
  }
  function unitStep(step) {
    const {layer, unit} = requested();
    if (unit + step >= 0 && unit + step < layer.units) go(pageUrl("unit.html", {layer: layer.name, unit: unit + step}));
  }
  function layerStep(step) {
    const {layer, unit} = requested();
    const next = neighbourLayer(layer.name, step);
    if (next) go(pageUrl("unit.html", {layer: next.name, unit: Math.min(unit, next.units - 1)}));
  }
  window.addEventListener("hashchange", draw);
  setUpChrome({j: () => unitStep(-1), l: () => unitStep(1), u: () => layerStep(-1), o: () => layerStep(1)});
  draw();
}

function section(id, show) {
  const where = document.getElementById(id);
  where.hidden = !show;
  return where;
}

function unitLink(layer, unit, text) {
  return make("a", {href: pageUrl("unit.html", {layer, unit})}, text === undefined ? `unit ${unit}` : text);
}

function drawUnit(data, unit, sourceRank) {
  const title = `${data.name} : unit ${unit.unit}`;
  document.title = `${title} – ${atlas.site.title}`;
  document.getElementById("where").textContent = title;
  document.getElementById("unit-title").textContent = title;
  const facts = document.getElementById("unit-facts");
  facts.replaceChildren("top activation ", number(unit.top),
                        ...(unit.dead === null ? [] : ["; dead on ", number(unit.dead), " % of the images"]),
                        `; ${layerFacts(data)}`);
  const previous = document.getElementById("previous-unit"), next = document.getElementById("next-unit");
  setLink(previous, unit.unit > 0 ? pageUrl("unit.html", {layer: data.name, unit: unit.unit - 1}) : null);
  setLink(next, unit.unit + 1 < data.units.length ? pageUrl("unit.html", {layer: data.name, unit: unit.unit + 1}) : null);
  const layerLink = document.getElementById("layer-link");
  layerLink.textContent = `layer ${data.name}`;
  layerLink.href = pageUrl("layer.html", {layer: data.name});
  drawSource(data, unit, sourceRank);
  drawOptimized(unit);
  drawCrops(data, unit);
  drawMaxes(unit);
  drawHistogram(unit);
  drawCorrelated(data, unit);
  const filter = section("filter", Boolean(unit.filter));
  if (unit.filter) filter.querySelector("img").src = unit.filter;
  section("commands", unit.commands.length > 0);
  document.getElementById("command-lines").textContent = unit.commands.join("\n\n");
}

function setLink(link, href) {
  if (href) link.setAttribute("href", href); else link.removeAttribute("href");
}

function drawSource(data, unit, rank) {
  const crop = rank === null ? null : unit.crops.find((c) => String(c.rank) === rank);
  section("source-view", Boolean(crop && crop.image));
  if (!crop || !crop.image) return;
  document.getElementById("source-title").textContent = `top image ${crop.rank + 1}: ${crop.source}`;
  document.getElementById("source-image").src = crop.image;
  document.getElementById("source-file").href = crop.image;
  const [height, width] = atlas.site.input;
  const [y0, y1, x0, x1] = crop.box;
  const clip = (v, size) => Math.max(0, Math.min(100, 100 * v / size));
  const box = document.getElementById("source-box");
  box.style.left = `${clip(x0, width)}%`;
  box.style.width = `${clip(x1, width) - clip(x0, width)}%`;
  box.style.top = `${clip(y0, height)}%`;
  box.style.height = `${clip(y1, height) - clip(y0, height)}%`;
}

function drawOptimized(unit) {
  const opt = unit.opt;
  section("optimized", Boolean(opt));
  if (!opt) return;
  const images = document.getElementById("opt-images");
  images.replaceChildren(...[["opt", "as the app shows it"], ["raw", "raw"], ["transparency", "where the gradient went"]]
    .filter(([key]) => opt[key]).map(([key, caption]) => {
      const figure = make("figure");
      figure.append(make("img", {src: opt[key], alt: caption}), make("figcaption", {}, caption));
      return figure;
    }));
  document.getElementById("opt-facts").replaceChildren(
    "activation ", number(opt.activation), " (random start ", number(opt.start_activation), `) at step ${opt.step}; ` +
    `preset ${opt.preset}, objective ${opt.objective}, ${opt.iterations} steps, seed ${opt.seed}`);
}

function drawCrops(data, unit) {
  section("crops", unit.crops.length > 0);
  const table = document.getElementById("crop-table");
  const rows = [];
  for (const kind of CROP_ROWS.filter((k) => unit.kinds.includes(k))) {
    const row = make("tr", {class: `kind-${kind}`});
    row.appendChild(make("th", {}, kind));
    for (const crop of unit.crops) {
      const cell = make("td");
      if (crop.files[kind]) {
        const zero = crop.zero.includes(kind);
        cell.appendChild(make("img", {src: crop.files[kind], width: 112, height: 112, loading: "lazy",
                                      alt: `${kind} ${crop.rank}`, title: zero ? "the backward pass was all zero" : null}));
      }
      row.appendChild(cell);
    }
    rows.push(row);
  }
  const values = make("tr", {class: "values"});
  values.appendChild(make("th", {}, "value"));
  const sources = make("tr", {class: "sources"});
  sources.appendChild(make("th", {}, "image"));
  for (const crop of unit.crops) {
    const value = make("td");
    value.appendChild(number(crop.value));
    values.appendChild(value);
    const source = make("td");
    source.appendChild(crop.image
      ? make("a", {href: pageUrl("unit.html", {layer: data.name, unit: unit.unit, source: crop.rank})}, crop.source)
      : make("span", {}, crop.source));
    sources.appendChild(source);
  }
  table.replaceChildren(...rows, values, sources);
}

function drawMaxes(unit) {
  const maxes = unit.maxes || [];
  section("maxes", maxes.length > 0);
  document.getElementById("max-list").replaceChildren(...maxes.map((entry) => {
    const item = make("li");
    item.append(number(entry.value), " ",
                entry.image ? make("a", {href: entry.image}, entry.source) : make("span", {}, entry.source));
    return item;
  }));
}

function drawHistogram(unit) {
  section("histogram", Boolean(unit.hist));
  const plot = document.getElementById("histogram-plot");
  if (!unit.hist) { plot.replaceChildren(); return; }
  const counts = unit.hist.counts, edges = unit.hist.edges;
  const width = 400, height = 120, peak = Math.max(1, ...counts);
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 16}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height + 16);
  counts.forEach((count, bin) => {
    const bar = document.createElementNS(svgNs, "rect");
    const w = width / counts.length, h = height * count / peak;
    bar.setAttribute("x", bin * w); bar.setAttribute("width", Math.max(w - 1, 1));
    bar.setAttribute("y", height - h); bar.setAttribute("height", h);
    bar.setAttribute("data-count", count);
    svg.appendChild(bar);
  });
  for (const [x, value, anchor] of [[0, edges[0], "start"], [width, edges[edges.length - 1], "end"]]) {
    const label = document.createElementNS(svgNs, "text");
    label.setAttribute("x", x); label.setAttribute("y", height + 13); label.setAttribute("text-anchor", anchor);
    label.textContent = Number(value).toPrecision(4);
    svg.appendChild(label);
  }
  plot.replaceChildren(svg);
  const total = counts.reduce((a, b) => a + b, 0);
  document.getElementById("histogram-facts").replaceChildren(
    `the unit's spatial max over ${total} images; dead (max <= 0) on `, number(unit.dead), " %");
}

function drawCorrelated(data, unit) {
  section("correlated", Boolean(unit.most));
  for (const which of ["most", "least"]) {
    document.getElementById(which).replaceChildren(...(unit[which] || []).map(([other, r]) => {
      const item = make("li");
      item.append(unitLink(data.name, other), " r = ", number(r));
      return item;
    }));
  }
}

// -- index ------------------------------------------------------------------------------------
function indexPage() { setUpChrome({}); drawn(); }

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (!atlas.site) { showMessage("data/site.js did not load"); return; }
  ({index: indexPage, layer: layerPage, unit: unitPage})[page]();
});
