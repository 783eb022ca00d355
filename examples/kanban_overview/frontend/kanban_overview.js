// Dashboard tile of the `kanban_overview` widget (kanban_overview plugin),
// as an ES module. Frontend API 1 (see "Frontend half" in the SDK guide).
//
// Defines <kanban_overview-board>. The web app creates it and sets (see
// VigiloTileElement in sdk/frontend/vigilo-element.d.ts):
//   tile.workspace, tile.tileId = where it is;
//   tile.config = the tile's configuration;
//   tile.data   = what the plugin's render returned (see the plugin's docs),
//                 set anew on every refresh of the dashboard.
// It draws one lane per kind of work item, every status of that kind's
// workflow a column (zeros included), in workflow order. It styles itself
// with a constructable stylesheet: the app's Content-Security-Policy allows
// no inline <style>. Colours come from the app's CSS custom properties when
// they are set (--vg-text, --vg-muted, --vg-border, --vg-accent, --vg-surface).

const TAG = "kanban_overview-board";

const STYLE = `
:host { display: block; font: inherit; color: var(--vg-text, #1d2330); }
.heading { display: flex; justify-content: space-between; align-items: baseline; margin: 0 0 .75rem; }
.heading span:first-child { color: var(--vg-muted, #5b6472); font-size: .875rem; }
.total { font-size: 1.75rem; font-weight: 700; line-height: 1; }
.lanes { display: grid; gap: .75rem; }
.lane h3 { margin: 0 0 .35rem; font-size: .8125rem; font-weight: 600; display: flex; justify-content: space-between; }
.lane h3 span { color: var(--vg-muted, #5b6472); font-weight: 500; }
.columns { display: grid; grid-template-columns: repeat(auto-fill, minmax(4.75rem, 1fr)); gap: .375rem;
  list-style: none; margin: 0; padding: 0; }
.columns li { min-width: 0; border: 1px solid var(--vg-border, #e3e6ec); border-radius: .375rem;
  padding: .35rem .45rem; background: var(--vg-surface, #f7f8fa); }
.columns .status { display: block; font-size: .6875rem; color: var(--vg-muted, #5b6472); white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.columns .count { display: block; font-size: 1.125rem; font-weight: 650; }
.columns li.zero .count { color: var(--vg-muted, #5b6472); font-weight: 400; }
table { width: 100%; border-collapse: collapse; font-size: .875rem; }
th, td { padding: .25rem .375rem; border-bottom: 1px solid var(--vg-border, #e3e6ec); text-align: right; }
tbody th { text-align: left; font-weight: 500; }
.empty { color: var(--vg-muted, #5b6472); margin: 0; }
.breakdown { margin-top: .75rem; }
.breakdown h3 { margin: 0 0 .35rem; font-size: .8125rem; font-weight: 600; }
.breakdown .note { color: var(--vg-muted, #5b6472); font-size: .75rem; margin: .25rem 0 0; }
`;

let sheet = null;
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
  }
  return sheet;
}

const humanise = (status) => String(status).replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

function node(tag, text, className) {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  if (className) element.className = className;
  return element;
}

function lanes(data) {
  const list = node("div", undefined, "lanes");
  for (const lane of data.lanes) {
    const section = node("section", undefined, "lane");
    section.dataset.kind = lane.kind;
    const title = node("h3", lane.label || humanise(lane.kind));
    title.append(node("span", `${lane.total ?? 0} in all`));
    section.append(title);
    const columns = node("ul", undefined, "columns");
    columns.setAttribute("aria-label", `${lane.label || humanise(lane.kind)} by status`);
    for (const { status, count } of lane.statuses || []) {
      const item = node("li", undefined, count ? "" : "zero");
      item.dataset.status = status;
      item.title = `${humanise(status)}: ${count ?? 0}`;
      item.append(node("span", humanise(status), "status"), node("span", String(count ?? 0), "count"));
      columns.append(item);
    }
    section.append(columns);
    list.append(section);
  }
  return list;
}

// Servers that do not send every workflow's statuses: the counted ones.
function grid(data) {
  const columns = Array.isArray(data.columns) ? data.columns : [];
  const table = node("table");
  const head = table.createTHead().insertRow();
  head.append(node("th", ""));
  for (const status of columns) head.append(node("th", humanise(status)));
  const body = table.createTBody();
  for (const row of data.rows) {
    const tr = body.insertRow();
    tr.dataset.kind = row.kind;
    tr.append(node("th", row.label || humanise(row.kind)));
    for (const status of columns) tr.append(node("td", String((row.counts && row.counts[status]) || 0)));
  }
  return table;
}

// Open incidents by the value of one custom field (the `breakdown` option).
function breakdown(b) {
  const section = node("section", undefined, "breakdown");
  section.dataset.field = b.field;
  section.append(node("h3", `Open incidents by ${humanise(b.field).toLowerCase()}`));
  const columns = node("ul", undefined, "columns");
  columns.setAttribute("aria-label", `Open incidents by ${humanise(b.field).toLowerCase()}`);
  const entries = Object.entries(b.counts);
  if (b.without) entries.push(["not set", b.without]);
  for (const [value, count] of entries) {
    const item = node("li");
    item.dataset.value = value;
    item.append(node("span", value, "status"), node("span", String(count), "count"));
    columns.append(item);
  }
  if (!entries.length) columns.append(node("li", "No open incidents", "status"));
  section.append(columns);
  if (b.capped) section.append(node("p", `Counted the first ${b.total} open incidents.`, "note"));
  return section;
}

class KanbanBoard extends HTMLElement {
  constructor() {
    super();
    this._data = null;
    this._config = {};
    const root = this.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [styles()];
  }

  get data() {
    return this._data;
  }

  set data(value) {
    this._data = value;
    this.render();
  }

  get config() {
    return this._config;
  }

  set config(value) {
    this._config = value || {};
    this.render();
  }

  connectedCallback() {
    this.render();
  }

  render() {
    const root = this.shadowRoot;
    const data = this._data;
    root.replaceChildren();
    if (!data || !Array.isArray(data.rows)) {
      root.append(node("p", "No data yet.", "empty"));
      return;
    }
    const heading = node("div", undefined, "heading");
    heading.append(node("span", "Work items"), node("span", String(data.total ?? 0), "total"));
    root.append(heading, Array.isArray(data.lanes) ? lanes(data) : grid(data));
    if (data.breakdown && data.breakdown.counts) root.append(breakdown(data.breakdown));
  }
}

if (!customElements.get(TAG)) customElements.define(TAG, KanbanBoard);
