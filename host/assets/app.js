// Vigilo's own small module for every page: copy buttons, menus that close
// when you click elsewhere or press Escape, forms that submit once, and
// pickers that tick a preset's checkboxes (a custom role's base role).
// Nothing here is needed for a page to work; it only makes it nicer.

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const text = source.textContent.trim();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      // No clipboard access (plain http, or refused): select it instead.
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => (button.textContent = "Copy"), 2500);
  });
}

const menus = [...document.querySelectorAll("details.menu")];
document.addEventListener("click", (event) => {
  for (const menu of menus) if (menu.open && !menu.contains(event.target)) menu.open = false;
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const menu of menus) {
    if (menu.open) {
      menu.open = false;
      menu.querySelector("summary")?.focus();
    }
  }
});

// A page brought back by Back or Forward from the browser's memory shows
// what was true when it was left (and the button its form disabled): load
// it afresh, so it shows the current state.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) location.reload();
});

for (const form of document.querySelectorAll("form[method=post]")) {
  form.addEventListener("submit", () => {
    // Submitting twice would create twice; the page is replaced anyway.
    setTimeout(() => {
      for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
    }, 0);
  });
}

// A <select data-ticks="NAME"> whose options carry data-permissions ticks
// exactly those checkboxes named NAME when another option is chosen.
for (const select of document.querySelectorAll("select[data-ticks]")) {
  select.addEventListener("change", () => {
    const preset = new Set((select.selectedOptions[0]?.dataset.permissions || "").split(" "));
    for (const box of document.querySelectorAll(`input[type=checkbox][name="${select.dataset.ticks}"]`)) {
      box.checked = preset.has(box.value);
    }
  });
}

// A slug or a key suggested from the name or label typed above it
// ("Platform team" → `platform-team`, "Change window" → `change_window`),
// until the person edits it themselves.
for (const target of document.querySelectorAll("[data-suggest-from]")) {
  const source = document.querySelector(target.dataset.suggestFrom);
  if (!source) continue;
  const joiner = target.dataset.suggest === "key" ? "_" : "-";
  const limit = target.maxLength > 0 ? target.maxLength : 64;
  const suggest = (text) =>
    text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, joiner)
      .replace(new RegExp(`^${joiner}+|${joiner}+$`, "g"), "")
      .slice(0, limit)
      .replace(new RegExp(`${joiner}+$`), "");
  let suggested = target.value === "" ? "" : null;
  source.addEventListener("input", () => {
    if (suggested === null || target.value !== suggested) return;
    suggested = suggest(source.value);
    target.value = suggested;
  });
  target.addEventListener("input", () => {
    suggested = target.value === "" ? "" : null;
  });
}

// Quick search: `/`, Ctrl-K or ⌘K on any page of a workspace opens its
// search page (not while typing in a field, where `/` is a character).
const quickSearch = document.querySelector("[data-quick-search]");
if (quickSearch) {
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest?.("input, textarea, select, [contenteditable]");
    const slash = event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey;
    const k = event.key.toLowerCase() === "k" && (event.ctrlKey || event.metaKey) && !event.altKey;
    if (!slash && !k) return;
    event.preventDefault();
    const box = document.querySelector("form[role=search] input[type=search]#q");
    if (box && location.pathname === new URL(quickSearch.href).pathname) {
      box.focus();
      box.select();
    } else {
      location.href = quickSearch.href;
    }
  });
}

// Times: the server writes them in UTC (`<time datetime="...">2026-12-01
// 20:32 UTC</time>`); here they are shown in the reader's own time zone
// (the browser's, or the one chosen in their profile),
// and those within a week as "5 minutes ago" or "in 3 hours", with the
// full time and zone in the tooltip. Rows added later (the audit log's live
// view) are shown the same way, and relative times are kept current.
// A zone chosen in the profile (on <html data-time-zone>) wins over the
// browser's, unless this browser does not know it.
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const [zone, full] = (() => {
  const style = { dateStyle: "medium", timeStyle: "short" };
  const chosen = document.documentElement.dataset.timeZone;
  if (chosen) {
    try {
      return [chosen, new Intl.DateTimeFormat(undefined, { ...style, timeZone: chosen })];
    } catch {
      // An unknown zone: the browser's instead.
    }
  }
  return [Intl.DateTimeFormat().resolvedOptions().timeZone, new Intl.DateTimeFormat(undefined, style)];
})();
const STEPS = [
  [60, 1, "second"],
  [3600, 60, "minute"],
  [86400, 3600, "hour"],
  [7 * 86400, 86400, "day"],
];

function showTime(time) {
  const at = new Date(time.dateTime);
  if (Number.isNaN(at.getTime())) return;
  const label = `${full.format(at)} (${zone})`;
  time.title = label;
  const seconds = (at.getTime() - Date.now()) / 1000;
  const step = STEPS.find(([limit]) => Math.abs(seconds) < limit);
  if (!step) {
    time.textContent = full.format(at);
  } else if (Math.abs(seconds) < 45) {
    time.textContent = seconds < 0 ? "just now" : "in a moment";
  } else {
    time.textContent = relative.format(Math.round(seconds / step[1]), step[2]);
  }
}

const showTimes = (root) => {
  for (const time of root.querySelectorAll("time[datetime]")) showTime(time);
};
showTimes(document);
setInterval(() => showTimes(document), 60000);
new MutationObserver((changes) => {
  for (const change of changes) {
    for (const node of change.addedNodes) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      if (node.matches("time[datetime]")) showTime(node);
      else showTimes(node);
    }
  }
}).observe(document.body, { childList: true, subtree: true });

// A server run by `vigilo-plugin dev` marks its pages: they ask it what
// they show (each plugin's build, the newest frontend file) and reload
// when that changes. Other servers neither mark pages nor answer.
const devReload = document.body.dataset.devReload;
if (devReload) {
  const poll = async () => {
    try {
      const response = await fetch(devReload, { cache: "no-store" });
      if (!response.ok) return;
      const now = await response.text();
      const seen = document.body.dataset.devSeen;
      if (seen !== undefined && now !== seen) location.reload();
      else document.body.dataset.devSeen = now;
    } catch {
      // The server is restarting: the next poll tries again.
    }
  };
  poll();
  setInterval(poll, 700);
}

// A list's "tick every item" box ticks (or clears) the boxes of its form.
for (const all of document.querySelectorAll("input[data-select-all]")) {
  const boxes = () => document.querySelectorAll(`input[name="id"][form="${all.dataset.selectAll}"]`);
  all.addEventListener("change", () => {
    for (const box of boxes()) box.checked = all.checked;
  });
}

// A tab strip wider than the screen (a phone) scrolls sideways: it starts
// with the current tab in view, and fades at an edge where more tabs are,
// so that the ones out of sight are not a secret.
for (const strip of document.querySelectorAll("nav.tabs")) {
  const mark = () => {
    const left = strip.scrollLeft > 1;
    const right = strip.scrollLeft + strip.clientWidth < strip.scrollWidth - 1;
    strip.dataset.more = left && right ? "both" : left ? "left" : right ? "right" : "";
  };
  const current = strip.querySelector("[aria-current]");
  if (current && strip.scrollWidth > strip.clientWidth) {
    strip.scrollLeft = current.offsetLeft - (strip.clientWidth - current.offsetWidth) / 2;
  }
  strip.addEventListener("scroll", mark, { passive: true });
  window.addEventListener("resize", mark);
  mark();
}

// A table wider than its card scrolls inside it: the card then takes the
// keyboard's focus (arrow keys scroll it) and is named after its table.
const focusScrolling = () => {
  for (const wrap of document.querySelectorAll(".table-wrap")) {
    if (wrap.scrollWidth > wrap.clientWidth + 1) {
      wrap.tabIndex = 0;
      wrap.setAttribute("role", "region");
      const caption = wrap.querySelector("caption");
      const heading = wrap.closest("section")?.querySelector("h2");
      const name = (caption || heading)?.textContent.trim();
      wrap.setAttribute("aria-label", name ? `${name} (scrolls sideways)` : "Table (scrolls sideways)");
    } else if (wrap.getAttribute("role") === "region") {
      wrap.removeAttribute("tabindex");
      wrap.removeAttribute("role");
      wrap.removeAttribute("aria-label");
    }
  }
};
focusScrolling();
window.addEventListener("resize", focusScrolling);
