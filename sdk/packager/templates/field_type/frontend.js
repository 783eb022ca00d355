// The editor of a `{{name}}` field: a text box that shows the code in upper
// case as it is typed. The web app creates it in place of the field's text
// box and sets `value` before it is connected; the element submits its
// value with the form it is in (a form-associated custom element).
//
// The page's Content-Security-Policy allows no inline styles, so the styles
// are a constructable stylesheet.

const TAG = "{{tag}}";

const sheet = new CSSStyleSheet();
sheet.replaceSync(`
  :host { display: block; }
  input {
    font: inherit;
    text-transform: uppercase;
    width: 100%;
    max-width: 20rem;
    box-sizing: border-box;
    padding: 0.4rem 0.5rem;
    border: 1px solid var(--vg-border, #c9ced8);
    border-radius: 4px;
    color: var(--vg-text, #1d2330);
    background: var(--vg-surface, #fff);
  }
`);

class CodeEditor extends HTMLElement {
  static formAssociated = true;

  constructor() {
    super();
    this._internals = this.attachInternals();
    this._value = "";
    const root = this.attachShadow({ mode: "open", delegatesFocus: true });
    root.adoptedStyleSheets = [sheet];
    this._input = document.createElement("input");
    this._input.maxLength = 32;
    this._input.autocomplete = "off";
    this._input.spellcheck = false;
    this._input.addEventListener("input", () => {
      this.value = this._input.value;
      this.dispatchEvent(new CustomEvent("change", { detail: { value: this._value }, bubbles: true }));
    });
    root.append(this._input);
  }

  connectedCallback() {
    this._input.setAttribute("aria-label", this.getAttribute("label") || "Code");
    this._input.required = this.hasAttribute("required");
    this._check();
  }

  get value() {
    return this._value;
  }

  set value(text) {
    this._value = String(text ?? "").toUpperCase();
    if (this._input.value.toUpperCase() !== this._value) this._input.value = this._value;
    this._internals.setFormValue(this._value);
    this._check();
  }

  _check() {
    const code = this._value.trim();
    if (!code && this.hasAttribute("required")) {
      this._internals.setValidity({ valueMissing: true }, "Enter a code.", this._input);
    } else if (code && !/^[A-Z0-9-]{1,32}$/.test(code)) {
      this._internals.setValidity(
        { customError: true },
        "Use letters, digits and hyphens only.",
        this._input,
      );
    } else {
      this._internals.setValidity({});
    }
  }
}

customElements.define(TAG, CodeEditor);
