/** The catalog page: filters, the repositories of one page, and the pager. */
import type { CatalogPage, CatalogQuery } from './catalog-index.js';
import { formatDate, formatSize, html, repoPath, type Html } from './html.js';

const SORTS: Array<[string, string]> = [
  ['name', 'Name'],
  ['size', 'Size (largest first)'],
  ['date', 'Last push (newest first)'],
];

/** The query string of `q` with some fields changed (for pager and links). */
export function catalogHref(q: CatalogQuery, change: Partial<CatalogQuery>): string {
  const v = { ...q, ...change };
  const p = new URLSearchParams();
  if (v.text) p.set('q', v.text);
  if (v.architecture) p.set('arch', v.architecture);
  if (v.format) p.set('format', v.format);
  if (v.quantization) p.set('quant', v.quantization);
  if (v.sort && v.sort !== 'name') p.set('sort', v.sort);
  if (v.page && v.page > 1) p.set('page', String(v.page));
  const s = p.toString();
  return s ? `/?${s}` : '/';
}

function select(name: string, label: string, values: string[], current: string | undefined, all: string): Html {
  const opts = current && !values.includes(current) ? [current, ...values] : values;
  return html`<label>${label}<select name="${name}"><option value="">${all}</option>${opts.map((v) => html`<option value="${v}"${v === current ? html` selected` : ''}>${v}</option>`)}</select></label>`;
}

export function catalogBody(q: CatalogQuery, r: CatalogPage, anonymousHint: boolean): Html {
  const rows = r.items.map((e) => {
    const f = e.latest?.facts;
    return html`<tr>
  <td class="name"><a href="${repoPath(e.name)}">${e.name}</a></td>
  <td>${e.latest ? html`<a href="${repoPath(e.name, e.latest.tag)}">${e.latest.tag}</a>` : ''}${e.tags.length > 1 ? html` <span class="muted">+${e.tags.length - 1}</span>` : ''}</td>
  <td>${f?.architecture ?? ''}</td>
  <td>${f?.paramSize ?? ''}</td>
  <td class="hide-sm">${f?.format ?? ''}</td>
  <td class="hide-sm">${(f?.quantization ?? '').split(',').filter(Boolean).map((x) => html`<span class="chip">${x}</span>`)}</td>
  <td class="num">${formatSize(f?.size)}</td>
  <td class="num hide-sm">${formatDate(e.latest?.pushed)}</td>
</tr>`;
  });
  const pages: Html[] = [];
  const first = Math.max(1, r.page - 3);
  const last = Math.min(r.pages, r.page + 3);
  for (let p = first; p <= last; p++) {
    pages.push(p === r.page ? html`<span class="current" aria-current="page">${p}</span>` : html`<a href="${catalogHref(q, { page: p })}">${p}</a>`);
  }
  return html`<h1>Models</h1>
<form class="panel filters" method="get" action="/">
  <label class="q">Filter<input type="search" name="q" value="${q.text ?? ''}" placeholder="name, tag, architecture…"></label>
  ${select('arch', 'Architecture', r.facets.architectures, q.architecture, 'Any')}
  ${select('format', 'Format', r.facets.formats, q.format, 'Any')}
  ${select('quant', 'Quantization', r.facets.quantizations, q.quantization, 'Any')}
  <label>Sort<select name="sort">${SORTS.map(([v, l]) => html`<option value="${v}"${(q.sort ?? 'name') === v ? html` selected` : ''}>${l}</option>`)}</select></label>
  <button type="submit">Apply</button>
</form>
<div class="panel">
${
  r.total === 0
    ? html`<p class="empty">No models${q.text || q.architecture || q.format || q.quantization ? ' match these filters' : ' here yet'}.${anonymousHint ? html` <a href="/-/login?next=%2F">Sign in</a> to see more.` : ''}</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th scope="col">Repository</th><th scope="col">Latest tag</th><th scope="col">Architecture</th><th scope="col">Params</th><th scope="col" class="hide-sm">Format</th><th scope="col" class="hide-sm">Quantization</th><th scope="col" class="num">Size</th><th scope="col" class="num hide-sm">Last push</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>
<nav class="pager" aria-label="Pages"><span class="muted">${r.total} ${r.total === 1 ? 'repository' : 'repositories'} · page ${r.page} of ${r.pages}</span>
<span class="pages">${r.page > 1 ? html`<a href="${catalogHref(q, { page: r.page - 1 })}" rel="prev">Previous</a>` : ''}${pages}${r.page < r.pages ? html`<a href="${catalogHref(q, { page: r.page + 1 })}" rel="next">Next</a>` : ''}</span></nav>`
}
</div>`;
}
