/**
 * The dashboard's stylesheet, embedded so the single-file bundle carries it.
 *
 * @module
 */

/** `/dashboard/app.css`. */
export const APP_CSS = `
:root { --fg:#1d2433; --muted:#667085; --bg:#f6f7f9; --card:#fff; --line:#e4e7ec;
  --ok:#067647; --okbg:#dcfae6; --warn:#b54708; --warnbg:#fef0c7; --err:#b42318; --errbg:#fee4e2; --acc:#1849a9; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:center; gap:24px; padding:10px 20px; background:#101828; color:#fff; flex-wrap:wrap; }
header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
nav a { color:#d0d5dd; text-decoration:none; margin-right:14px; padding:4px 0; }
nav a.active { color:#fff; border-bottom:2px solid #84adff; }
#updated { margin-left:auto; font-size:12px; color:#98a2b3; }
main { padding:16px 20px; }
.hidden { display:none !important; }
.banner { padding:8px 20px; background:var(--errbg); color:var(--err); }
#toolbar input { width:100%; max-width:520px; padding:7px 10px; border:1px solid var(--line); border-radius:6px; margin-bottom:12px; font-size:14px; }
h2 { font-size:16px; margin:18px 0 8px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(220px,1fr)); gap:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card h3 { margin:0 0 6px; font-size:13px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.4px; }
.big { font-size:24px; font-weight:600; }
table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line); border-radius:8px; overflow:hidden; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); background:#fafbfc; font-weight:600; }
td code { font-size:12.5px; word-break:break-all; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
.ok { color:var(--ok); background:var(--okbg); }
.warn { color:var(--warn); background:var(--warnbg); }
.err { color:var(--err); background:var(--errbg); }
.muted { color:var(--muted); }
.error-text { white-space:pre-wrap; color:var(--err); background:var(--errbg); padding:6px 8px; border-radius:6px; margin:4px 0 0; font:12.5px/1.4 ui-monospace, monospace; }
ul.plain { margin:0; padding:0; list-style:none; }
.empty { padding:18px; background:var(--card); border:1px dashed var(--line); border-radius:8px; color:var(--muted); }
`;
