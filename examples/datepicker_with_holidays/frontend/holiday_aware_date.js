// Editor for the `holiday_aware_date` field type (datepicker_with_holidays plugin).
//
// Defines <vigilo-holiday-aware-date>: a month calendar in which Saturdays,
// Sundays and the workspace's holidays cannot be picked. The server validates
// every value again (the plugin's `field_type.validate`); this only makes the
// right choice the easy one.
//
// Usage:
//   const editor = document.createElement("vigilo-holiday-aware-date");
//   editor.settings = workspace.settings;   // { holidays: ["2026-12-25"] } or "2026-12-25, 2026-12-31"
//   editor.value = "2026-12-24";            // ISO date or "" for none
//   editor.addEventListener("change", (e) => save(e.detail.value));
//
// Attributes: value="YYYY-MM-DD", settings='{"holidays": [...]}' (JSON), disabled.
(() => {
  "use strict";

  const TAG = "vigilo-holiday-aware-date";
  if (customElements.get(TAG)) return;

  const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const ISO = /^(\d{4})-(\d{1,2})-(\d{1,2})$/;

  const pad = (n) => String(n).padStart(2, "0");
  const iso = (y, m, d) => `${y}-${pad(m)}-${pad(d)}`;

  function parseIso(text) {
    const match = ISO.exec(String(text || "").trim());
    if (!match) return null;
    const [y, m, d] = match.slice(1).map(Number);
    const date = new Date(Date.UTC(y, m - 1, d));
    if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return null;
    return { y, m, d };
  }

  // Same rules as the plugin: a list of dates or one comma-separated string.
  function holidaySet(settings) {
    const raw = settings && settings.holidays;
    const entries = Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split(",") : [];
    const set = new Set();
    for (const entry of entries) {
      const date = parseIso(entry);
      if (date) set.add(iso(date.y, date.m, date.d));
    }
    return set;
  }

  // 0 = Monday ... 6 = Sunday
  const weekday = (y, m, d) => (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
  const daysInMonth = (y, m) => new Date(Date.UTC(y, m, 0)).getUTCDate();

  class HolidayAwareDate extends HTMLElement {
    static get observedAttributes() {
      return ["value", "settings", "disabled"];
    }

    constructor() {
      super();
      this._value = "";
      this._settings = {};
      const today = new Date();
      this._view = { y: today.getFullYear(), m: today.getMonth() + 1 };
    }

    get value() {
      return this._value;
    }

    set value(text) {
      const date = parseIso(text);
      this._value = date ? iso(date.y, date.m, date.d) : "";
      if (date) this._view = { y: date.y, m: date.m };
      this._render();
    }

    get settings() {
      return this._settings;
    }

    set settings(settings) {
      this._settings = settings || {};
      this._render();
    }

    connectedCallback() {
      this.classList.add("vhad");
      this._render();
    }

    attributeChangedCallback(name, _old, text) {
      if (name === "value") this.value = text;
      if (name === "settings") {
        try {
          this.settings = text ? JSON.parse(text) : {};
        } catch {
          this.settings = {};
        }
      }
      if (name === "disabled") this._render();
    }

    // Why a day cannot be picked, or "" if it can.
    reason(y, m, d) {
      const wd = weekday(y, m, d);
      if (wd === 5) return "Saturday";
      if (wd === 6) return "Sunday";
      if (holidaySet(this._settings).has(iso(y, m, d))) return "Holiday in this workspace";
      return "";
    }

    _move(months) {
      const index = this._view.y * 12 + (this._view.m - 1) + months;
      this._view = { y: Math.floor(index / 12), m: (index % 12) + 1 };
      this._render();
    }

    _pick(y, m, d) {
      this._value = iso(y, m, d);
      this._render();
      this.dispatchEvent(new CustomEvent("change", { detail: { value: this._value }, bubbles: true }));
    }

    _render() {
      if (!this.isConnected) return;
      const { y, m } = this._view;
      const disabled = this.hasAttribute("disabled");
      this.replaceChildren();

      const header = document.createElement("div");
      header.className = "vhad-header";
      const prev = this._button("‹", "Previous month", () => this._move(-1), disabled);
      const next = this._button("›", "Next month", () => this._move(1), disabled);
      const title = document.createElement("span");
      title.className = "vhad-title";
      title.textContent = new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString(undefined, {
        month: "long",
        year: "numeric",
        timeZone: "UTC",
      });
      header.append(prev, title, next);

      const grid = document.createElement("div");
      grid.className = "vhad-grid";
      grid.setAttribute("role", "grid");
      for (const name of WEEKDAYS) {
        const cell = document.createElement("span");
        cell.className = "vhad-weekday";
        cell.textContent = name;
        grid.append(cell);
      }
      for (let i = 0; i < weekday(y, m, 1); i++) grid.append(document.createElement("span"));
      for (let d = 1; d <= daysInMonth(y, m); d++) {
        const why = this.reason(y, m, d);
        const day = this._button(String(d), why || iso(y, m, d), () => this._pick(y, m, d), disabled || !!why);
        day.classList.add("vhad-day");
        if (why === "Holiday in this workspace") day.classList.add("vhad-holiday");
        else if (why) day.classList.add("vhad-weekend");
        if (iso(y, m, d) === this._value) day.classList.add("vhad-selected");
        grid.append(day);
      }

      const footer = document.createElement("div");
      footer.className = "vhad-footer";
      footer.textContent = this._value ? `Selected: ${this._value}` : "No date selected";

      this.append(header, grid, footer);
    }

    _button(text, title, onClick, disabled) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = text;
      button.title = title;
      button.disabled = disabled;
      button.addEventListener("click", onClick);
      return button;
    }
  }

  customElements.define(TAG, HolidayAwareDate);
})();
