/** The frame of every catalog page: head (assets by hashed name), top bar with search and sign-in state, footer. */
import { SCRIPT, STYLE } from './assets/index.js';
import { html, type Html } from './html.js';

export interface Chrome {
  /** '' anonymous. */
  user: string;
  /** Whether the registry has users at all (a sign-in link makes sense). */
  canLogin: boolean;
  /** The search text to show in the top bar. */
  q?: string;
  /** The path to come back to after signing in. */
  here: string;
}

export function page(title: string, chrome: Chrome, body: Html): string {
  const signIn = chrome.canLogin
    ? chrome.user
      ? html`<span class="who">Signed in as <strong>${chrome.user}</strong></span>
          <form method="post" action="/-/logout"><button type="submit" class="secondary">Sign out</button></form>`
      : html`<a class="button" href="/-/login?next=${encodeURIComponent(chrome.here)}">Sign in</a>`
    : '';
  return `<!doctype html>\n${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · mpk registry</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${STYLE.path}">
<script src="${SCRIPT.path}" defer></script>
</head>
<body>
<header class="top"><div class="inner">
  <a class="brand" href="/"><span class="logo" aria-hidden="true"></span>mpk registry</a>
  <form method="get" action="/" role="search">
    <input id="top-q" type="search" name="q" value="${chrome.q ?? ''}" placeholder="Search models" aria-label="Search models"></form>
  <span class="spacer"></span>
  ${signIn}
</div></header>
<main id="main">
${body}
</main>
<footer>Served by <code>mpk serve</code> · <a href="/-/api/catalog">JSON API</a></footer>
</body>
</html>`.text}\n`;
}
