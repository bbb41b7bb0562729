/**
 * Model cards (README.md) rendered with markdown-it, raw HTML off: every `<` of the card is text.
 * markdown-it's own link check drops `javascript:`, `vbscript:`, `file:` and non-image `data:`
 * URLs. On top of that: images become links (the page loads nothing from elsewhere, and the CSP
 * allows images only from the registry), links get rel="nofollow ugc noopener noreferrer", and a
 * table's column alignment becomes a class rather than a style attribute (the CSP has no
 * 'unsafe-inline'). The input is bounded by the caller.
 */
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: true, typographer: false });

md.renderer.rules.image = (tokens, i, _opts, _env, self) => {
  const t = tokens[i]!;
  const src = String(t.attrGet('src') ?? '');
  const alt = self.renderInlineAsText(t.children ?? [], _opts, _env);
  return `<a href="${md.utils.escapeHtml(src)}" rel="nofollow ugc noopener noreferrer" class="img-link">[image${alt ? `: ${md.utils.escapeHtml(alt)}` : ''}]</a>`;
};

const defaultLinkOpen = md.renderer.rules.link_open ?? ((tokens, i, opts, _env, self) => self.renderToken(tokens, i, opts));
md.renderer.rules.link_open = (tokens, i, opts, env, self) => {
  tokens[i]!.attrSet('rel', 'nofollow ugc noopener noreferrer');
  return defaultLinkOpen(tokens, i, opts, env, self);
};

for (const rule of ['th_open', 'td_open'] as const) {
  md.renderer.rules[rule] = (tokens, i, opts, _env, self) => {
    const t = tokens[i]!;
    const style = t.attrGet('style');
    const align = style !== null ? /text-align:(left|right|center)/.exec(String(style))?.[1] : undefined;
    if (style !== null) t.attrs = (t.attrs ?? []).filter(([k]) => k !== 'style');
    if (align) t.attrJoin('class', `align-${align}`);
    return self.renderToken(tokens, i, opts);
  };
}

/** The card's HTML: safe to put in a page as it is. */
export function renderMarkdown(text: string): string {
  return md.render(text);
}
