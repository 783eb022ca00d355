// Loads plugins' frontend halves into the page: dashboard tiles and field
// editors. Each is a custom element, defined by an ES module of its plugin
// (see "Frontend half" in the SDK guide). A placeholder says which:
//
//   <div data-plugin-element="TAG" data-module="URL" data-plugin="NAME"
//        [data-stylesheet="URL"] ...>fallback</div>
//
// An element whose module fails to load, or that does not define its tag in
// time, or that throws while given its data, gets an error card in its own
// place; the rest of the page keeps working. Tiles refresh their data from
// the dashboard's `data-refresh` URL every 30 s and when the tab is shown
// again.

const DEFINE_TIMEOUT_MS = 8000;
const REFRESH_MS = 30000;
const modules = new Map();

function loadModule(url) {
  if (!modules.has(url)) modules.set(url, import(url));
  return modules.get(url);
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

function errorCard(plugin, message) {
  const card = document.createElement("div");
  card.className = "tile-error";
  card.setAttribute("role", "alert");
  const title = document.createElement("p");
  const strong = document.createElement("strong");
  strong.textContent = "This part of the page could not be drawn.";
  title.append(strong);
  const detail = document.createElement("p");
  detail.textContent = `${plugin}: ${message}`;
  card.append(title, detail);
  return card;
}

async function define(slot) {
  const tag = slot.dataset.pluginElement;
  linkStylesheet(slot.dataset.stylesheet);
  try {
    await withTimeout(
      loadModule(slot.dataset.module).then(() => customElements.whenDefined(tag)),
      DEFINE_TIMEOUT_MS,
      `its element <${tag}> was not defined within ${DEFINE_TIMEOUT_MS / 1000} s`,
    );
  } catch (error) {
    throw new Error(`its frontend could not be loaded (${error.message || error})`);
  }
  return tag;
}

async function upgradeTile(slot) {
  const plugin = slot.dataset.plugin || "a plugin";
  try {
    const tag = await define(slot);
    const element = document.createElement(tag);
    element.config = jsonIn(slot, "config") ?? {};
    element.data = jsonIn(slot, "data");
    for (const child of [...slot.children]) if (child.tagName !== "SCRIPT") child.remove();
    slot.append(element);
    slot.dataset.ready = "true";
  } catch (error) {
    slot.replaceChildren(errorCard(plugin, error.message || String(error)));
    slot.dataset.failed = "true";
  }
}

async function upgradeEditor(slot) {
  const plugin = slot.dataset.plugin || "a plugin";
  const fallback = slot.querySelector("input");
  try {
    const tag = await define(slot);
    const editor = document.createElement(tag);
    editor.id = slot.dataset.id;
    editor.setAttribute("name", slot.dataset.name);
    editor.setAttribute("label", slot.dataset.label || "");
    if (slot.hasAttribute("data-required")) editor.setAttribute("required", "");
    if (fallback?.getAttribute("aria-describedby")) {
      editor.setAttribute("aria-describedby", fallback.getAttribute("aria-describedby"));
    }
    editor.settings = jsonIn(slot, "settings") ?? {};
    editor.value = fallback ? fallback.value : slot.dataset.value || "";
    fallback?.remove();
    slot.prepend(editor);
    slot.dataset.ready = "true";
  } catch (error) {
    // The text box stays: the value can still be typed, and the server
    // checks it either way.
    const note = document.createElement("p");
    note.className = "warning";
    note.setAttribute("role", "status");
    note.textContent = `${plugin}'s editor could not be loaded (${error.message || error}). Type the value instead.`;
    slot.append(note);
    slot.dataset.failed = "true";
  }
}

for (const slot of document.querySelectorAll(".tile-body[data-plugin-element]")) upgradeTile(slot);
for (const slot of document.querySelectorAll(".plugin-editor[data-plugin-element]")) upgradeEditor(slot);

const tiles = document.querySelector("[data-refresh]");
if (tiles) {
  let last = Date.now();
  const refresh = async () => {
    last = Date.now();
    let answer;
    try {
      const response = await fetch(tiles.dataset.refresh, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      answer = await response.json();
    } catch {
      return; // Offline for a moment: the next refresh tries again.
    }
    for (const tile of answer.tiles || []) {
      const article = tiles.querySelector(`[data-tile="${tile.id}"]`);
      const slot = article?.querySelector(".tile-body[data-ready]");
      if (!slot) continue;
      const element = slot.querySelector(slot.dataset.pluginElement);
      if (tile.error !== undefined) {
        slot.replaceChildren(errorCard(slot.dataset.plugin || "a plugin", tile.error));
        delete slot.dataset.ready;
        continue;
      }
      try {
        if (element) element.data = tile.data;
      } catch (error) {
        slot.replaceChildren(errorCard(slot.dataset.plugin || "a plugin", error.message || String(error)));
        delete slot.dataset.ready;
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
