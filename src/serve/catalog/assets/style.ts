/** The catalog's stylesheet (served as /-/assets/catalog-<hash>.css): light and dark by prefers-color-scheme. */
export const CSS = `
:root {
  color-scheme: light dark;
  --bg: #f7f8fa; --panel: #ffffff; --text: #1b1f24; --muted: #5b6470; --line: #dfe3e8;
  --accent: #0a5bd3; --accent-text: #ffffff; --chip: #eef2f7; --code: #f1f3f6; --danger: #b42318;
  --shadow: 0 1px 2px rgba(16, 24, 40, .06), 0 1px 3px rgba(16, 24, 40, .08);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1116; --panel: #161b22; --text: #e6edf3; --muted: #9aa5b1; --line: #2b333d;
    --accent: #5ba3ff; --accent-text: #0b1320; --chip: #202833; --code: #1c232c; --danger: #ff7b72;
    --shadow: none;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text); font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
a { color: var(--accent); text-decoration: none; }
a:hover, a:focus-visible, p a, footer a, .crumbs a, dd a, li a { text-decoration: underline; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: .9em; }
header.top { background: var(--panel); border-bottom: 1px solid var(--line); }
header.top .inner { max-width: 1180px; margin: 0 auto; padding: .7rem 1.25rem; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
.brand { font-weight: 700; font-size: 1.1rem; color: var(--text); display: flex; align-items: center; gap: .5rem; }
.brand .logo { display: inline-block; width: 1.4rem; height: 1.4rem; border-radius: .35rem; background: linear-gradient(135deg, #0a5bd3, #7b3fe4); }
.top .spacer { flex: 1; }
.top form { margin: 0; display: flex; gap: .5rem; align-items: center; }
.who { color: var(--muted); font-size: .9rem; }
main { max-width: 1180px; margin: 0 auto; padding: 1.25rem; }
h1 { font-size: 1.5rem; margin: .2rem 0 .8rem; word-break: break-word; }
h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: .6rem; box-shadow: var(--shadow); padding: 1rem 1.1rem; margin-bottom: 1rem; }
.muted { color: var(--muted); }
.filters { display: grid; grid-template-columns: 2fr repeat(4, 1fr) auto; gap: .6rem; align-items: end; }
.filters label { display: flex; flex-direction: column; gap: .2rem; font-size: .8rem; color: var(--muted); }
input, select, button { font: inherit; color: var(--text); background: var(--panel); border: 1px solid var(--line); border-radius: .4rem; padding: .45rem .6rem; min-height: 2.3rem; }
button, .button { cursor: pointer; background: var(--accent); color: var(--accent-text); border-color: var(--accent); font-weight: 600; padding: .45rem .9rem; border-radius: .4rem; display: inline-block; }
button.secondary { background: transparent; color: var(--accent); }
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .55rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); font-weight: 600; white-space: nowrap; }
tbody tr:hover { background: var(--chip); }
td.num, th.num { text-align: right; white-space: nowrap; }
td.name a { font-weight: 600; overflow-wrap: anywhere; }
@media (min-width: 901px) { td.name { min-width: 17rem; } }
.digest { overflow-wrap: anywhere; margin-top: 0; }
.grid > div { min-width: 0; }
.chip { display: inline-block; background: var(--chip); border-radius: 999px; padding: .05rem .55rem; font-size: .8rem; margin: 0 .25rem .25rem 0; white-space: nowrap; }
.pager { display: flex; gap: .4rem; align-items: center; justify-content: space-between; margin-top: .8rem; flex-wrap: wrap; }
.pager .pages { display: flex; gap: .3rem; flex-wrap: wrap; }
.pager a, .pager span.current { padding: .25rem .6rem; border: 1px solid var(--line); border-radius: .35rem; }
.pager span.current { background: var(--accent); color: var(--accent-text); border-color: var(--accent); }
.crumbs { font-size: .9rem; margin-bottom: .3rem; }
.facts { display: flex; flex-wrap: wrap; gap: .3rem; margin-bottom: .5rem; }
.grid { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); gap: 1rem; align-items: start; }
.cmd { margin-bottom: .75rem; }
.cmd .label { font-size: .8rem; color: var(--muted); margin-bottom: .2rem; }
.cmd .row { display: flex; gap: .4rem; align-items: stretch; }
.cmd pre { flex: 1; min-width: 0; margin: 0; background: var(--code); border-radius: .4rem; padding: .5rem .6rem; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.copy { min-width: 4.6rem; align-self: flex-start; }
dl.meta { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .3rem 1rem; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; word-break: break-word; }
.card { overflow-wrap: anywhere; }
.card pre { background: var(--code); padding: .7rem; border-radius: .4rem; overflow-x: auto; }
.card code { background: var(--code); padding: .05rem .3rem; border-radius: .25rem; }
.card pre code { background: none; padding: 0; }
.card table { margin: .6rem 0; }
.card img { max-width: 100%; }
.card h1 { font-size: 1.35rem; } .card h2 { font-size: 1.15rem; margin-top: 1.2rem; }
.align-right { text-align: right; } .align-center { text-align: center; } .align-left { text-align: left; }
details summary { cursor: pointer; color: var(--accent); }
.variants { margin: .3rem 0 0; padding-left: 1.1rem; font-size: .9rem; }
.login { max-width: 380px; margin: 3rem auto; }
.login form { display: flex; flex-direction: column; gap: .7rem; }
.login label { display: flex; flex-direction: column; gap: .25rem; }
.error { color: var(--danger); }
.empty { padding: 2rem; text-align: center; color: var(--muted); }
footer { max-width: 1180px; margin: 0 auto; padding: 1rem 1.25rem 2rem; color: var(--muted); font-size: .85rem; }
@media (max-width: 900px) {
  .filters { grid-template-columns: 1fr 1fr; }
  .filters .q { grid-column: 1 / -1; }
  .grid { grid-template-columns: 1fr; }
}
@media (max-width: 640px) {
  .hide-sm { display: none; }
  main { padding: .8rem; }
}
`;
