// The `{{name}}` tile: one large number and what it counts. The web app
// creates the element in the tile's card and sets `data` to what the
// widget's `render` returned, and sets it again on every refresh.
//
// The page's Content-Security-Policy allows no inline styles, so the styles
// are a constructable stylesheet.

const TAG = "{{tag}}";

const LABELS = {
  all: "open work items",
  changes: "open changes",
  incidents: "open incidents",
  tasks: "open tasks",
};

const sheet = new CSSStyleSheet();
sheet.replaceSync(`
  :host { display: block; }
  .count {
    font-size: 2.5rem;
    font-weight: 600;
    line-height: 1.1;
    color: var(--vg-text, #1d2330);
  }
  .what { color: var(--vg-muted, #5b6472); }
`);

class OpenWorkTile extends HTMLElement {
  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [sheet];
    this._count = document.createElement("p");
    this._count.className = "count";
    this._what = document.createElement("p");
    this._what.className = "what";
    root.append(this._count, this._what);
  }

  set data(data) {
    const open = Number(data?.open ?? 0);
    this._count.textContent = open.toLocaleString();
    this._what.textContent = LABELS[data?.kind] || LABELS.all;
  }
}

customElements.define(TAG, OpenWorkTile);
