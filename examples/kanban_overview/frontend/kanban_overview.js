// Dashboard tile for the `kanban_overview` widget (kanban_overview plugin).
//
// The server calls the plugin's `widget.render` and hands the JSON to the
// page; this file only draws it. Two ways to use it:
//
//   // 1. as an element
//   const tile = document.createElement("vigilo-kanban-overview");
//   tile.data = renderedJson;
//
//   // 2. as a function (the element is defined as a side effect)
//   window.VigiloKanbanOverview.render(containerElement, renderedJson);
//
// Data shape (see the plugin's docs):
//   { workspace, columns: [status...],
//     rows: [{ kind, label, counts: { status: n }, total }],
//     column_totals: { status: n }, total }
(() => {
  "use strict";

  const TAG = "vigilo-kanban-overview";

  const humanise = (status) => status.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

  function cell(tag, text, className) {
    const element = document.createElement(tag);
    element.textContent = text;
    if (className) element.className = className;
    return element;
  }

  function render(container, data) {
    container.replaceChildren();
    container.classList.add("vko");
    if (!data || !Array.isArray(data.rows)) {
      container.append(cell("p", "No data", "vko-empty"));
      return;
    }
    const columns = Array.isArray(data.columns) ? data.columns : [];

    const heading = cell("div", "", "vko-heading");
    heading.append(cell("span", "Work in progress", "vko-title"), cell("span", String(data.total ?? 0), "vko-total"));
    container.append(heading);

    if (data.total === 0) {
      container.append(cell("p", "Nothing here yet", "vko-empty"));
      return;
    }

    const table = document.createElement("table");
    table.className = "vko-table";
    const head = table.createTHead().insertRow();
    head.append(cell("th", ""));
    for (const status of columns) head.append(cell("th", humanise(status)));
    head.append(cell("th", "Total", "vko-sum"));

    const body = table.createTBody();
    for (const row of data.rows) {
      const tr = body.insertRow();
      tr.dataset.kind = row.kind;
      tr.append(cell("th", row.label || humanise(row.kind)));
      for (const status of columns) {
        const n = (row.counts && row.counts[status]) || 0;
        tr.append(cell("td", n ? String(n) : "·", n ? "vko-count" : "vko-zero"));
      }
      tr.append(cell("td", String(row.total ?? 0), "vko-sum"));
    }

    if (data.column_totals) {
      const foot = table.createTFoot().insertRow();
      foot.append(cell("th", "All"));
      for (const status of columns) foot.append(cell("td", String(data.column_totals[status] ?? 0)));
      foot.append(cell("td", String(data.total ?? 0), "vko-sum"));
    }
    container.append(table);
  }

  if (!customElements.get(TAG)) {
    customElements.define(
      TAG,
      class extends HTMLElement {
        set data(value) {
          this._data = value;
          if (this.isConnected) render(this, value);
        }
        get data() {
          return this._data;
        }
        connectedCallback() {
          render(this, this._data);
        }
      },
    );
  }

  window.VigiloKanbanOverview = { render };
})();
