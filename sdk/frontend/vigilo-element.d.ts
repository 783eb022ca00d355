// The contract between Vigilo's web app and a plugin's custom elements
// (frontend API 1; see "Frontend half" in the SDK guide, sdk/README.md).
//
// Use it from JavaScript with a JSDoc reference, no build step needed:
//
//   /** @typedef {import("./vigilo-element").VigiloTileElement} VigiloTileElement */
//
// or from TypeScript:
//
//   import type { VigiloTileElement, VigiloErrorDetail } from "./vigilo-element";
//   class Board extends HTMLElement implements VigiloTileElement { ... }
//
// Copy this file next to your frontend sources (it is types only: nothing
// of it runs in the page).

/** The version of this contract, `vigilo_sdk::FRONTEND_API_VERSION`. */
export type VigiloFrontendApi = 1;

/**
 * What the web app sets on every element it creates, before the element
 * is put in the page (so these setters run before `connectedCallback`).
 */
export interface VigiloElement extends HTMLElement {
  /** The workspace's slug, such as `"ops"`. */
  workspace: string;
}

/**
 * A dashboard tile's element (`Widget::element`).
 *
 * The web app sets, in this order: `workspace`, `tileId`, `config`, `data`,
 * then appends the element to the tile's card. Every refresh of the
 * dashboard (every 30 s while the tab is visible, and when it is shown
 * again) sets `data` anew on the same element, and `config` when it
 * changed: make both setters redraw.
 */
export interface VigiloTileElement<Data = unknown, Config = Record<string, unknown>>
  extends VigiloElement {
  /** The tile's id on the dashboard (the widget instance's id). */
  tileId: number;
  /** The tile's configuration (`{}` when it has none). */
  config: Config;
  /** What the widget's `render` returned for this tile. */
  data: Data;
  /**
   * Installed by the web app (do not define a `refresh` of your own): asks
   * the server for this tile's data afresh, sets `data` on the element, and
   * resolves to it. Rejects, with the reason in words, when the server's
   * render failed (the tile then shows the error card) or the server could
   * not be reached (the tile keeps its data).
   */
  readonly refresh: () => Promise<Data>;
}

/**
 * A field editor's element (`FieldType::element`), a form-associated
 * custom element (`static formAssociated = true`).
 *
 * The web app sets `workspace`, `fieldKey`, `settings` and `value`, and the
 * attributes `name`, `label`, `required` and `aria-describedby`, and the
 * `id`, before the element is put in the form.
 */
export interface VigiloEditorElement<Settings = Record<string, unknown>> extends VigiloElement {
  /** The custom field's key: the form submits the value as `fields.<key>`. */
  fieldKey: string;
  /** The workspace's settings object (what `validate` gets as `ctx.settings`). */
  settings: Settings;
  /** The field's value as text (`""` when it has none). */
  value: string;
}

/** The `detail` of a `vigilo-error` event. */
export interface VigiloErrorDetail {
  /** What went wrong, in words a person using Vigilo can read. */
  message: string;
}

/**
 * Dispatched by an element on itself to give up and show its own error:
 *
 *   this.dispatchEvent(new CustomEvent("vigilo-error", { detail: { message } }));
 *
 * A tile is replaced by the error card (`<plugin>: <message>`) and built
 * afresh on the next refresh; an editor is replaced by the plain text box
 * with a note saying why.
 */
export type VigiloErrorEvent = CustomEvent<VigiloErrorDetail>;

/**
 * Dispatched by an editor, bubbling, when the person changes the value.
 * Vigilo's pages read the value through the form, not from this event.
 */
export type VigiloChangeEvent = CustomEvent<{ value: string }>;

declare global {
  interface HTMLElementEventMap {
    "vigilo-error": VigiloErrorEvent;
  }
}
