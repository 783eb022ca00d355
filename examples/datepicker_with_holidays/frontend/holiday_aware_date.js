// Editor of the `holiday_aware_date` field type (datepicker_with_holidays
// plugin), as an ES module. Frontend API 1 (see "Frontend half" in the SDK
// guide).
//
// Defines <datepicker_with_holidays-picker>: a form-associated custom
// element, so a plain <form> submits its value under its `name` and a
// <label for=...> labels it. A month calendar in which Saturdays, Sundays and
// the workspace's holidays cannot be picked, plus a text box for typing a
// date. The server validates every value again (the plugin's
// `field_type.validate`); this only makes the right choice the easy one.
//
// Inputs (attributes or properties): value ("YYYY-MM-DD" or ""), settings
// (the workspace's settings: an object, or JSON in the attribute; reads
// `holidays`), disabled, required, label. Fires `change` with
// `detail.value` when the date changes.
//
// Styles: its own stylesheet, holiday_aware_date.css, linked inside the
// shadow root (the app's Content-Security-Policy allows no inline <style>).

const TAG = "datepicker_with_holidays-picker";
const STYLESHEET = new URL("holiday_aware_date.css", import.meta.url).href;
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

// The plugin's rules: a list of dates, or one comma-separated string.
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
const longDate = (y, m, d) =>
  new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(undefined, {
    weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC",
  });

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("aria-") || key === "role" || key === "part") node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

class HolidayAwarePicker extends HTMLElement {
  static formAssociated = true;

  static get observedAttributes() {
    return ["value", "settings", "disabled", "required", "label"];
  }

  constructor() {
    super();
    this._internals = this.attachInternals();
    this._value = "";
    this._settings = {};
    const today = new Date();
    this._view = { y: today.getFullYear(), m: today.getMonth() + 1 };
    const root = this.attachShadow({ mode: "open", delegatesFocus: true });
    root.append(el("link", { rel: "stylesheet", href: STYLESHEET }));
    this._input = el("input", {
      type: "text", inputMode: "numeric", placeholder: "YYYY-MM-DD", autocomplete: "off", part: "input",
    });
    this._input.addEventListener("change", () => this._typed());
    this._message = el("p", { class: "message", "aria-live": "polite" });
    this._calendar = el("div", { class: "calendar" });
    root.append(el("div", { class: "picker" }, this._input, this._calendar, this._message));
  }

  get value() {
    return this._value;
  }

  set value(text) {
    const date = parseIso(text);
    this._value = date ? iso(date.y, date.m, date.d) : String(text || "").trim();
    if (date) this._view = { y: date.y, m: date.m };
    this._input.value = this._value;
    this._sync();
  }

  get settings() {
    return this._settings;
  }

  set settings(settings) {
    this._settings = settings && typeof settings === "object" ? settings : {};
    this._sync();
  }

  get form() {
    return this._internals.form;
  }

  get labels() {
    return this._internals.labels;
  }

  get validity() {
    return this._internals.validity;
  }

  get validationMessage() {
    return this._internals.validationMessage;
  }

  checkValidity() {
    return this._internals.checkValidity();
  }

  reportValidity() {
    return this._internals.reportValidity();
  }

  attributeChangedCallback(name, _old, text) {
    if (name === "value") this.value = text;
    else if (name === "settings") {
      try {
        this.settings = text ? JSON.parse(text) : {};
      } catch {
        this.settings = {};
      }
    } else if (name === "label") this._input.setAttribute("aria-label", text || "Date");
    else this._sync();
  }

  connectedCallback() {
    if (!this._input.hasAttribute("aria-label")) this._input.setAttribute("aria-label", this.getAttribute("label") || "Date");
    this._sync();
  }

  formResetCallback() {
    this.value = this.getAttribute("value") || "";
  }

  formDisabledCallback() {
    this._sync();
  }

  // Why a day cannot be picked, or "" if it can.
  reason(y, m, d) {
    const wd = weekday(y, m, d);
    if (wd === 5) return "Saturday";
    if (wd === 6) return "Sunday";
    if (holidaySet(this._settings).has(iso(y, m, d))) return "a holiday in this workspace";
    return "";
  }

  _disabled() {
    return this.hasAttribute("disabled") || this.matches(":disabled");
  }

  _typed() {
    const before = this._value;
    this.value = this._input.value;
    if (this._value !== before) this._changed();
  }

  _pick(y, m, d) {
    this._value = iso(y, m, d);
    this._input.value = this._value;
    this._sync();
    this._changed();
  }

  _changed() {
    this.dispatchEvent(new CustomEvent("change", { detail: { value: this._value }, bubbles: true }));
  }

  _move(months) {
    const index = this._view.y * 12 + (this._view.m - 1) + months;
    this._view = { y: Math.floor(index / 12), m: (index % 12) + 1 };
    this._renderCalendar();
  }

  // The form value and validity follow the value; then the calendar is drawn.
  _sync() {
    const value = this._value;
    this._internals.setFormValue(value);
    const date = parseIso(value);
    let problem = "";
    if (!value) problem = this.hasAttribute("required") ? "Pick a date." : "";
    else if (!date) problem = `"${value}" is not a date: use YYYY-MM-DD.`;
    else {
      const why = this.reason(date.y, date.m, date.d);
      if (why) problem = `${value} is ${why.startsWith("a ") ? why : `a ${why}`}: pick a working day.`;
    }
    if (problem) {
      this._internals.setValidity(value ? { customError: true } : { valueMissing: true }, problem, this._input);
    } else {
      this._internals.setValidity({});
    }
    this._message.textContent = value && problem ? problem : value ? `Selected: ${longDate(date.y, date.m, date.d)}` : "";
    this._message.classList.toggle("problem", Boolean(value && problem));
    this._input.disabled = this._disabled();
    this._renderCalendar();
  }

  _renderCalendar() {
    const { y, m } = this._view;
    const disabled = this._disabled();
    const title = new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString(undefined, {
      month: "long", year: "numeric", timeZone: "UTC",
    });
    const header = el(
      "div",
      { class: "header" },
      this._button("‹", "Previous month", () => this._move(-1), disabled),
      el("span", { class: "title", "aria-live": "polite" }, title),
      this._button("›", "Next month", () => this._move(1), disabled),
    );
    const grid = el("div", { class: "grid", role: "group", "aria-label": title });
    for (const name of WEEKDAYS) grid.append(el("span", { class: "weekday", "aria-hidden": "true" }, name));
    for (let i = 0; i < weekday(y, m, 1); i++) grid.append(el("span", { "aria-hidden": "true" }));
    for (let d = 1; d <= daysInMonth(y, m); d++) {
      const why = this.reason(y, m, d);
      const label = why ? `${longDate(y, m, d)}, not available: ${why}` : longDate(y, m, d);
      const day = this._button(String(d), label, () => this._pick(y, m, d), disabled || Boolean(why));
      day.classList.add("day");
      day.dataset.date = iso(y, m, d);
      if (why.startsWith("a holiday")) day.classList.add("holiday");
      else if (why) day.classList.add("weekend");
      if (iso(y, m, d) === this._value) {
        day.classList.add("selected");
        day.setAttribute("aria-pressed", "true");
      }
      grid.append(day);
    }
    this._calendar.replaceChildren(header, grid);
  }

  _button(text, label, onClick, disabled) {
    const button = el("button", { type: "button", textContent: text, title: label, disabled });
    button.setAttribute("aria-label", label);
    button.addEventListener("click", onClick);
    return button;
  }
}

if (!customElements.get(TAG)) customElements.define(TAG, HolidayAwarePicker);
