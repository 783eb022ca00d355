// Follows the audit log live: long-polls the page's feed for events after
// the newest one shown and puts them at the top of the list. After a
// dropped connection it waits a little longer each time and resumes from
// the last event it saw, so nothing is missed or shown twice.

const live = document.querySelector("[data-live-url]");
if (live) {
  const button = live.querySelector("#live-toggle");
  const status = live.querySelector("#live-status");
  const body = document.querySelector("#events tbody");
  let after = Number(live.dataset.after) || 0;
  let running = false;
  let controller = null;

  const cell = (text, className) => {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text instanceof Node) td.append(text);
    else td.textContent = text;
    return td;
  };
  const code = (text, className) => {
    const c = document.createElement("code");
    if (className) c.className = className;
    c.textContent = text;
    return c;
  };

  const show = (event) => {
    if (body.querySelector(`tr[data-seq="${event.seq}"]`)) return;
    const tr = document.createElement("tr");
    tr.dataset.seq = event.seq;
    tr.className = "fresh";
    const time = document.createElement("time");
    time.dateTime = event.time;
    time.textContent = event.when;
    const seq = document.createElement("span");
    seq.className = "small muted";
    seq.textContent = `#${event.seq}`;
    const when = cell(time, "nowrap");
    when.append(document.createElement("br"), seq);
    tr.append(
      when,
      cell(event.actor),
      cell(code(event.action)),
      cell(event.target, "target"),
      cell(event.details ? code(event.details, "wrap") : "", "hide-narrow details"),
    );
    body.prepend(tr);
    document.querySelector(".empty-events")?.remove();
  };

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  const follow = async () => {
    let delay = 1000;
    while (running) {
      try {
        controller = new AbortController();
        const url = new URL(live.dataset.liveUrl, location.href);
        url.searchParams.set("after", String(after));
        url.searchParams.set("wait", "25");
        const response = await fetch(url, {
          signal: controller.signal,
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (response.redirected || response.status === 401) {
          status.textContent = "You were signed out: reload the page to sign in again.";
          stop();
          return;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const page = await response.json();
        for (const event of page.events) show(event);
        after = Math.max(after, page.next_after);
        delay = 1000;
        status.textContent = "Live: new events appear at the top.";
      } catch (error) {
        if (!running) return;
        status.textContent = "Connection lost; reconnecting…";
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
      }
    }
  };

  const start = () => {
    running = true;
    button.textContent = "Stop following";
    button.setAttribute("aria-pressed", "true");
    status.textContent = "Live: new events appear at the top.";
    follow();
  };
  const stop = () => {
    running = false;
    controller?.abort();
    button.textContent = "Follow live";
    button.setAttribute("aria-pressed", "false");
  };

  button.hidden = false;
  button.addEventListener("click", () => (running ? stop() : start()));
  if (new URLSearchParams(location.search).get("live") === "1") start();
}
