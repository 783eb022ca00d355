//! The page an invite link opens: asks for a name, accepts the invite
//! through the API and shows the new member's first API token.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/invites/{token}", get(page))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Join a Vigilo workspace</title>
<meta name="referrer" content="no-referrer">
<style>
body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem; color: #1d2330; }
input, button { font: inherit; padding: .4rem .6rem; }
code { background: #eef1f5; padding: .2rem .4rem; word-break: break-all; }
.error { color: #a01919; }
</style></head>
<body>
<h1>Join a Vigilo workspace</h1>
<form id="accept">
  <label>Your name <input id="name" required maxlength="100" autocomplete="name"></label>
  <button type="submit">Accept invite</button>
</form>
<div id="result" role="status"></div>
<script>
const token = location.pathname.split('/').pop();
document.getElementById('accept').addEventListener('submit', async (event) => {
  event.preventDefault();
  const out = document.getElementById('result');
  out.textContent = '';
  const response = await fetch('/api/v1/invites/' + encodeURIComponent(token) + '/accept', {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({name: document.getElementById('name').value}),
  });
  const body = await response.json();
  if (!response.ok) {
    out.className = 'error';
    out.textContent = body.error ? body.error.message : 'The invite could not be accepted.';
    return;
  }
  out.className = '';
  const p = document.createElement('p');
  p.textContent = 'You joined ' + body.workspace + ' as ' + (body.custom_role || body.role) + '.';
  out.appendChild(p);
  if (body.token) {
    const t = document.createElement('p');
    t.append('Your API token (shown once): ');
    const c = document.createElement('code');
    c.textContent = body.token.token;
    t.appendChild(c);
    out.appendChild(t);
    const cli = document.createElement('p');
    cli.append('Configure the CLI: ');
    const c2 = document.createElement('code');
    c2.textContent = 'vigilo configure --url ' + location.origin + ' --token ' + body.token.token + ' --workspace ' + body.workspace;
    cli.appendChild(c2);
    out.appendChild(cli);
  }
  document.getElementById('accept').remove();
});
</script>
</body></html>
"#;
