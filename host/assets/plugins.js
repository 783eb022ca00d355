// Loads plugins' frontend halves into the page: dashboard tiles and field
// editors. Each is a custom element, defined by an ES module of its plugin
// (see "Frontend half" in the SDK guide, and the element contract in
// sdk/frontend/vigilo-element.d.ts). A placeholder says which:
//
//   <div data-plugin-element="TAG" data-module="URL" data-plugin="NAME"
//        data-workspace="SLUG" [data-stylesheet="URL"]
//        [data-tile-id="ID" | data-field-key="KEY"] ...>fallback</div>
//
// The loader imports the module, checks at once that it defined TAG, creates
// the element, gives it its properties (`workspace`, `tileId` or `fieldKey`,
// `config` and `data` for a tile, `settings` and `value` for an editor, and a
// `refresh()` for a tile) and puts it in the page. When anything goes wrong
// on the way (the module does not load, does not define TAG, the element
// throws while it is created, given its data or connected, breaks the
// Content-Security-Policy, throws later from its module's code, or reports
// its own error with a `vigilo-error` event), that one element is replaced:
// a tile by an error card, an editor by the plain text box with a note. The
// rest of the page keeps working.
//
// Tiles refresh from the dashboard's `data-refresh` URL every 30 s and when
// the tab is shown again. The answer carries each tile's element, data and
// configuration (or its error), so a failed tile is built afresh on every
// refresh and recovers once its plugin is fixed, without a page load. A tag
// can be defined only once per page: when another version of a plugin
// arrives (its files have new URLs) whose old version already defined the
// tag, a working tile keeps the old element and a failed one offers to
// reload the page.

const LOAD_TIMEOUT_MS = 8000;
const REFRESH_MS = 30000;
const SLOTS = ".tile-body[data-plugin-element], .plugin-editor[data-plugin-element]";

// Module URL -> {promise, failed, attempt}.
const imports = new Map();
// Tag -> the module URL whose import defined it.
const definedBy = new Map();
// Slot -> its mount: {kind, slot, plugin, tag, module, base, element, state}.
const mounts = new Map();

const messageOf = (error) => (error && error.message) || String(error);

function absolute(url) {
  return new URL(url, document.baseURI).href;
}

// The folder every file of the plugin's build is served from.
function pluginBase(url) {
  const match = /^(.*\/plugins\/[^/]+\/(?:v\/[^/]+|assets)\/)/.exec(url);
  return match ? match[1] : url.slice(0, url.lastIndexOf("/") + 1);
}

// Imports `url` once per page; after a failure the next call tries again
// (under another URL: the browser keeps a module that threw).
function loadModule(url) {
  const known = imports.get(url);
  if (known && !known.failed) return known.promise;
  const attempt = known ? known.attempt + 1 : 1;
  const target = attempt === 1 ? url : `${url}${url.includes("?") ? "&" : "?"}attempt=${attempt}`;
  const entry = { attempt, failed: false };
  entry.promise = import(target).catch((error) => {
    entry.failed = true;
    throw error;
  });
  imports.set(url, entry);
  return entry.promise;
}

function linkStylesheet(url) {
  if (!url || document.querySelector(`link[rel=stylesheet][href="${CSS.escape(url)}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = url;
  document.head.append(link);
}

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function jsonIn(slot, role) {
  const script = slot.querySelector(`script[type="application/json"][data-role="${role}"]`);
  if (!script) return undefined;
  try {
    return JSON.parse(script.textContent);
  } catch {
    return undefined;
  }
}

// Thrown when the page already runs another version of the element.
class NeedsReload extends Error {}

// Makes sure `tag` is defined by `module`; throws, in words, when it cannot.
async function defineElement(tag, module, stylesheet) {
  linkStylesheet(stylesheet);
  if (customElements.get(tag)) {
    const owner = definedBy.get(tag);
    if (owner && owner !== module) {
      throw new NeedsReload("another version of it is installed; reload the page to use it");
    }
    return;
  }
  try {
    await withTimeout(
      loadModule(module),
      LOAD_TIMEOUT_MS,
      `its module did not load within ${LOAD_TIMEOUT_MS / 1000} s`,
    );
  } catch (error) {
    throw new Error(`its frontend could not be loaded (${messageOf(error)})`);
  }
  if (!customElements.get(tag)) {
    throw new Error(`its module loaded but did not define the element <${tag}>`);
  }
  if (!definedBy.has(tag)) definedBy.set(tag, module);
}

// Runs `action`, part of putting `tag` in the page; an error it throws, or
// one the browser reports while it runs (custom element reactions such as
// `connectedCallback` report theirs to `window` instead of throwing), is
// thrown, in words.
let guarding = 0;
function guarded(tag, action) {
  let reported = null;
  const onError = (event) => {
    reported ??= event.error instanceof Error ? event.error : new Error(event.message);
  };
  window.addEventListener("error", onError);
  guarding += 1;
  let result;
  try {
    result = action();
  } catch (error) {
    reported ??= error;
  } finally {
    guarding -= 1;
    window.removeEventListener("error", onError);
  }
  if (reported) {
    if (reported.name === "EvalError") {
      throw new Error("the page's security policy blocked eval() or new Function()");
    }
    throw new Error(`its element <${tag}> threw an error (${messageOf(reported)})`);
  }
  return result;
}

function errorCard(plugin, message, { reload = false } = {}) {
  const card = document.createElement("div");
  card.className = "tile-error";
  card.setAttribute("role", "alert");
  const title = document.createElement("p");
  const strong = document.createElement("strong");
  strong.textContent = "This tile could not be shown.";
  title.append(strong);
  const detail = document.createElement("p");
  detail.textContent = `${plugin}: ${message}`;
  card.append(title, detail);
  if (reload) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button";
    button.textContent = "Reload the page";
    button.addEventListener("click", () => location.reload());
    card.append(button);
  } else {
    const next = document.createElement("p");
    next.className = "muted small";
    next.textContent = "It is tried again when the dashboard refreshes.";
    card.append(next);
  }
  return card;
}

// A mount fails once: its element leaves the page, the fallback takes its
// place.
function fail(mount, error) {
  if (mount.state === "failed" || mounts.get(mount.slot) !== mount) return;
  mount.state = "failed";
  // Addresses on this server read shorter without it.
  const message = messageOf(error).replaceAll(location.origin, "").replace(/\?attempt=\d+/g, "");
  const slot = mount.slot;
  delete slot.dataset.ready;
  slot.dataset.failed = "true";
  if (mount.kind === "tile") {
    slot.replaceChildren(errorCard(mount.plugin, message, { reload: error instanceof NeedsReload }));
    return;
  }
  // An editor: the text box comes back with what the editor held, so the
  // value can still be typed; the server checks it either way.
  let value = mount.fallback ? mount.fallback.value : slot.dataset.value || "";
  try {
    if (mount.element && typeof mount.element.value === "string") value = mount.element.value;
  } catch {
    // Keep the value the text box had.
  }
  mount.element?.remove();
  if (mount.fallback) {
    mount.fallback.value = value;
    if (!mount.fallback.isConnected) slot.prepend(mount.fallback);
  }
  const note = document.createElement("p");
  note.className = "warning";
  note.setAttribute("role", "status");
  note.textContent = `${mount.plugin}'s editor could not be used (${message}). Type the value instead.`;
  slot.append(note);
}

// What the plugin's element may use: `this.dispatchEvent(new
// CustomEvent("vigilo-error", {detail: {message}}))` shows its error.
function listenForReports(element, mount) {
  element.addEventListener("vigilo-error", (event) => {
    const message = event.detail && event.detail.message;
    fail(mount, new Error(message ? String(message) : "its element reported an error"));
  });
}

function newMount(kind, slot) {
  const module = absolute(slot.dataset.module);
  const mount = {
    kind,
    slot,
    plugin: slot.dataset.plugin || "a plugin",
    tag: slot.dataset.pluginElement,
    module,
    base: pluginBase(module),
    element: null,
    state: "loading",
  };
  mounts.set(slot, mount);
  delete slot.dataset.failed;
  delete slot.dataset.ready;
  return mount;
}

async function mountTile(slot, data, config) {
  const mount = newMount("tile", slot);
  try {
    await defineElement(mount.tag, mount.module, slot.dataset.stylesheet);
    if (mount.state !== "loading") return;
    const element = guarded(mount.tag, () => {
      const element = document.createElement(mount.tag);
      mount.element = element;
      listenForReports(element, mount);
      element.workspace = slot.dataset.workspace || "";
      element.tileId = Number(slot.dataset.tileId);
      Object.defineProperty(element, "refresh", {
        configurable: true,
        value: () => refreshTile(slot),
      });
      element.config = config ?? {};
      element.data = data;
      for (const child of [...slot.children]) if (child.tagName !== "SCRIPT") child.remove();
      slot.append(element);
      return element;
    });
    if (mount.state !== "loading") return;
    mount.element = element;
    mount.state = "ready";
    slot.dataset.ready = "true";
  } catch (error) {
    fail(mount, error);
  }
}

async function mountEditor(slot) {
  const mount = newMount("editor", slot);
  mount.fallback = slot.querySelector("input");
  const fallback = mount.fallback;
  try {
    await defineElement(mount.tag, mount.module, slot.dataset.stylesheet);
    if (mount.state !== "loading") return;
    guarded(mount.tag, () => {
      const editor = document.createElement(mount.tag);
      mount.element = editor;
      listenForReports(editor, mount);
      editor.id = slot.dataset.id;
      editor.setAttribute("name", slot.dataset.name);
      editor.setAttribute("label", slot.dataset.label || "");
      if (slot.hasAttribute("data-required")) editor.setAttribute("required", "");
      if (fallback?.getAttribute("aria-describedby")) {
        editor.setAttribute("aria-describedby", fallback.getAttribute("aria-describedby"));
      }
      editor.workspace = slot.dataset.workspace || "";
      editor.fieldKey = slot.dataset.fieldKey || "";
      editor.settings = jsonIn(slot, "settings") ?? {};
      editor.value = fallback ? fallback.value : slot.dataset.value || "";
      fallback?.remove();
      slot.prepend(editor);
    });
    if (mount.state !== "loading") return;
    mount.state = "ready";
    slot.dataset.ready = "true";
  } catch (error) {
    fail(mount, error);
  }
}

// The mounts an error or a violation from `url` (a file of some plugin)
// belongs to: those of that module when any element came from it, else
// every one of the plugin's build.
function mountsFrom(url) {
  if (!url) return [];
  const all = [...mounts.values()];
  const exact = all.filter((m) => url === m.module || url.startsWith(`${m.module}?`));
  const chosen = exact.length ? exact : all.filter((m) => url.startsWith(m.base));
  return chosen.filter((m) => m.state !== "failed");
}

function slotOf(node) {
  return node instanceof Element ? node.closest(SLOTS) : null;
}

function blocked(event) {
  const directive = event.effectiveDirective || event.violatedDirective || "";
  if (directive.startsWith("style-src")) return "an inline style (a <style> element or a style attribute)";
  if (directive === "script-src-attr") return "an inline event handler (an onclick=-style attribute)";
  if (event.blockedURI === "eval") return "eval() or new Function()";
  if (directive === "script-src-elem") return "an inline or outside script";
  return `${event.blockedURI || "something"} (${directive})`;
}

// Errors its module's code throws later (from a timer or an event handler).
window.addEventListener("error", (event) => {
  if (guarding) return; // Reported where it happened.
  for (const mount of mountsFrom(event.filename)) {
    fail(mount, new Error(`its code threw an error: ${messageOf(event.error || event.message)}`));
  }
});

window.addEventListener("unhandledrejection", (event) => {
  const stack = String((event.reason && event.reason.stack) || "");
  const file = /(https?:\/\/[^\s)]+?\.m?js)/.exec(stack);
  for (const mount of file ? mountsFrom(file[1]) : []) {
    fail(mount, new Error(`its code failed: ${messageOf(event.reason)}`));
  }
});

// What the Content-Security-Policy blocks: in a slot (the event's target is
// the slot's element, or inside it), or from a plugin's file.
document.addEventListener(
  "securitypolicyviolation",
  (event) => {
    const slot = slotOf(event.target);
    const found = slot && mounts.get(slot);
    const owners = found ? [found] : mountsFrom(event.sourceFile);
    const error = new Error(`the page's security policy blocked ${blocked(event)}`);
    for (const mount of owners) fail(mount, error);
  },
  true,
);

for (const slot of document.querySelectorAll(".tile-body[data-plugin-element]")) {
  mountTile(slot, jsonIn(slot, "data"), jsonIn(slot, "config"));
}
for (const slot of document.querySelectorAll(".plugin-editor[data-plugin-element]")) mountEditor(slot);

// The dashboard.
const tiles = document.querySelector("[data-refresh]");

// Everything in the tile's card below its header.
function setBody(article, node) {
  for (const child of [...article.children]) {
    if (child.tagName === "HEADER") continue;
    const mount = mounts.get(child);
    if (mount) {
      mount.state = "failed";
      mounts.delete(child);
    }
    child.remove();
  }
  article.append(node);
}

// A tile as the refresh answer describes it.
function applyTile(tile) {
  const article = tiles.querySelector(`[data-tile="${CSS.escape(String(tile.id))}"]`);
  if (!article) return;
  const plugin = tile.plugin || "a plugin";
  const slot = article.querySelector(":scope > .tile-body[data-plugin-element]");
  const mount = slot && mounts.get(slot);
  if (tile.error !== undefined) {
    if (mount && mount.state !== "failed") fail(mount, new Error(tile.error));
    else setBody(article, errorCard(plugin, tile.error));
    return;
  }
  const element = tile.element;
  if (!element) {
    const pre = document.createElement("pre");
    pre.className = "tile-plain";
    pre.textContent = JSON.stringify(tile.data, null, 2);
    setBody(article, pre);
    return;
  }
  if (mount && mount.tag === element.tag && mount.state === "loading") return;
  if (mount && mount.tag === element.tag && mount.state === "ready") {
    // A working element keeps its class (the one the page defined first)
    // and gets the fresh data.
    try {
      guarded(mount.tag, () => {
        if (JSON.stringify(mount.element.config) !== JSON.stringify(tile.config ?? {})) {
          mount.element.config = tile.config ?? {};
        }
        mount.element.data = tile.data;
      });
    } catch (error) {
      fail(mount, error);
    }
    return;
  }
  // Failed, drawn by the server, or another element: built afresh.
  const fresh = document.createElement("div");
  fresh.className = "tile-body";
  fresh.dataset.pluginElement = element.tag;
  fresh.dataset.module = element.module;
  if (element.stylesheet) fresh.dataset.stylesheet = element.stylesheet;
  fresh.dataset.plugin = plugin;
  fresh.dataset.workspace = tiles.dataset.workspace || "";
  fresh.dataset.tileId = String(tile.id);
  const loading = document.createElement("p");
  loading.className = "muted loading";
  loading.textContent = "Loading…";
  fresh.append(loading);
  setBody(article, fresh);
  mountTile(fresh, tile.data, tile.config);
}

async function fetchTiles(only) {
  const url = new URL(tiles.dataset.refresh, document.baseURI);
  if (only !== undefined) url.searchParams.set("tile", String(only));
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  const answer = await response.json();
  return answer.tiles || [];
}

// A tile element's `refresh()`: its data afresh, set on it and returned.
async function refreshTile(slot) {
  const id = Number(slot.dataset.tileId);
  const found = (await fetchTiles(id)).find((t) => t.id === id);
  if (!found) throw new Error("the tile is no longer on the dashboard");
  applyTile(found);
  if (found.error !== undefined) throw new Error(found.error);
  return found.data;
}

if (tiles) {
  let last = Date.now();
  const refresh = async () => {
    last = Date.now();
    let answer;
    try {
      answer = await fetchTiles();
    } catch {
      return; // Offline for a moment: the next refresh tries again.
    }
    for (const tile of answer) {
      try {
        applyTile(tile);
      } catch {
        // One tile never stops the others.
      }
    }
    tiles.dataset.refreshed = String(last);
  };
  setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && Date.now() - last > 2000) refresh();
  });
}
