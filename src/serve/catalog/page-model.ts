/** The repository page (tags, indexes with their variants), the model page, the sign-in page and the error page. */
import type { RepoEntry } from './catalog-index.js';
import { formatDate, formatSize, html, repoPath, shortDigest, trusted, type Html } from './html.js';
import type { ModelDetailsView } from './model-details.js';
import type { VariantFacts } from './model-source.js';

function crumbs(name: string, ref?: string): Html {
  return html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/">Models</a> / ${ref === undefined ? name : html`<a href="${repoPath(name)}">${name}</a> / ${ref.includes(':') ? shortDigest(ref) : ref}`}</nav>`;
}

function variantList(name: string, vs: VariantFacts[]): Html {
  return html`<ul class="variants">${vs.map(
    (v) => html`<li><a href="${repoPath(name, v.digest)}" class="mono" title="${v.digest}">${shortDigest(v.digest)}</a>
      ${[v.quantization, v.precision, v.format, v.paramSize, v.platform].filter(Boolean).map((x) => html` <span class="chip">${x}</span>`)} <span class="muted">${formatSize(v.size)}</span></li>`,
  )}</ul>`;
}

export function repoBody(r: RepoEntry): Html {
  const rows = r.tags.map(
    (t) => html`<tr>
  <td class="name"><a href="${repoPath(r.name, t.tag)}">${t.tag}</a>${t.facts.variants ? variantList(r.name, t.facts.variants) : ''}</td>
  <td class="mono" title="${t.digest}">${shortDigest(t.digest)}</td>
  <td>${t.facts.kind}</td>
  <td>${[t.facts.architecture, t.facts.paramSize, t.facts.quantization].filter(Boolean).map((x) => html`<span class="chip">${x}</span>`)}</td>
  <td class="num">${formatSize(t.facts.size)}</td>
  <td class="num hide-sm">${formatDate(t.pushed)}</td>
</tr>`,
  );
  return html`${crumbs(r.name)}<h1>${r.name}</h1>
<div class="panel"><h2>Tags</h2><div class="table-wrap"><table>
<thead><tr><th scope="col">Tag</th><th scope="col">Digest</th><th scope="col">Kind</th><th scope="col">Model</th><th scope="col" class="num">Size</th><th scope="col" class="num hide-sm">Pushed</th></tr></thead>
<tbody>${rows}</tbody></table></div></div>`;
}

export function modelBody(d: ModelDetailsView, commands: Array<{ label: string; command: string }>): Html {
  const title = d.reference.includes(':') ? `${d.repository}@${shortDigest(d.reference)}` : `${d.repository}:${d.reference}`;
  const chips = d.metadata.filter(([k]) => ['Architecture', 'Parameters', 'Format', 'Quantization'].includes(k)).map(([, v]) => html`<span class="chip">${v}</span>`);
  const cmds = commands.map(
    (c) => html`<div class="cmd"><div class="label">${c.label}</div><div class="row"><pre><code>${c.command}</code></pre><button type="button" class="copy" data-copy="${c.command}" aria-label="Copy the ${c.label} command">Copy</button></div></div>`,
  );
  const files = d.files.map(
    (f) => html`<tr><td class="mono">${f.path}</td><td>${f.kind}</td><td class="num">${formatSize(f.size)}</td><td class="mono hide-sm">${f.mediaType}</td></tr>`,
  );
  const annotations = Object.entries(d.annotations).filter(([k]) => k !== 'org.cncf.model.gguf.metadata+json');
  return html`${crumbs(d.repository, d.reference)}<h1>${title}</h1>
<div class="facts">${chips}<span class="chip">${d.kind}</span><span class="chip">${formatSize(d.size)}</span></div>
<p class="muted mono digest" title="manifest digest">${d.digest}</p>
<div class="grid">
<div>
${
  d.variants
    ? html`<section class="panel" aria-labelledby="h-variants"><h2 id="h-variants">Variants</h2>${variantList(d.repository, d.variants)}</section>`
    : ''
}
<section class="panel card" aria-labelledby="h-card"><h2 id="h-card">Model card</h2>${d.card ? trusted(d.card.html) : html`<p class="muted">This model has no README.</p>`}</section>
<section class="panel" aria-labelledby="h-files"><h2 id="h-files">Files</h2>${
    d.files.length
      ? html`<div class="table-wrap"><table><thead><tr><th scope="col">Path</th><th scope="col">Kind</th><th scope="col" class="num">Size</th><th scope="col" class="hide-sm">Media type</th></tr></thead><tbody>${files}</tbody></table></div>`
      : html`<p class="muted">No files.</p>`
  }</section>
${
  d.referrers.length
    ? html`<section class="panel" aria-labelledby="h-refs"><h2 id="h-refs">Referrers</h2><div class="table-wrap"><table><thead><tr><th scope="col">Artifact type</th><th scope="col">Digest</th><th scope="col" class="num">Size</th></tr></thead><tbody>${d.referrers.map(
        (r) => html`<tr><td>${r.artifactType ?? r.mediaType}</td><td class="mono"><a href="${repoPath(d.repository, r.digest)}" title="${r.digest}">${shortDigest(r.digest)}</a></td><td class="num">${formatSize(r.size)}</td></tr>`,
      )}</tbody></table></div></section>`
    : ''
}
</div>
<div>
<section class="panel" aria-labelledby="h-pull"><h2 id="h-pull">Pull</h2>${cmds}</section>
<section class="panel" aria-labelledby="h-meta"><h2 id="h-meta">Metadata</h2>${
    d.metadata.length ? html`<dl class="meta">${d.metadata.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>` : html`<p class="muted">No metadata.</p>`
  }
${d.gguf.length ? html`<details><summary>GGUF header (${d.gguf.length} keys)</summary><dl class="meta">${d.gguf.map(([k, v]) => html`<dt class="mono">${k}</dt><dd class="mono">${v}</dd>`)}</dl></details>` : ''}
</section>
${
  annotations.length
    ? html`<section class="panel" aria-labelledby="h-ann"><h2 id="h-ann">Annotations</h2><dl class="meta">${annotations.map(([k, v]) => html`<dt class="mono">${k}</dt><dd>${v.length > 300 ? `${v.slice(0, 300)}…` : v}</dd>`)}</dl></section>`
    : ''
}
</div>
</div>`;
}

export function loginBody(next: string, error?: string): Html {
  return html`<div class="panel login"><h1>Sign in</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/-/login">
<input type="hidden" name="next" value="${next}">
<label>User name<input name="user" autocomplete="username" required></label>
<label>Password<input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></div>`;
}

export function errorBody(title: string, message: string, signInHint: boolean): Html {
  return html`<div class="panel"><h1>${title}</h1><p>${message}</p>${signInHint ? html`<p><a class="button" href="/-/login">Sign in</a></p>` : ''}<p><a href="/">Back to the catalog</a></p></div>`;
}
