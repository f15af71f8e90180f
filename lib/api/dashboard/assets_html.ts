/**
 * The dashboard's HTML shell, embedded so the single-file bundle carries it.
 *
 * @module
 */

/** `/dashboard/` — loads `app.css` and `app.js` relative to itself. */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Portico dashboard</title>
<link rel="stylesheet" href="app.css">
</head>
<body>
<header>
  <h1>Portico</h1>
  <nav id="nav">
    <a href="#/overview" data-nav="overview">Overview</a>
    <a href="#/routers" data-nav="routers">Routers</a>
    <a href="#/services" data-nav="services">Services</a>
    <a href="#/middlewares" data-nav="middlewares">Middlewares</a>
    <a href="#/tcp" data-nav="tcp">TCP</a>
    <a href="#/cluster" data-nav="cluster">Cluster</a>
    <a href="#/certificates" data-nav="certificates">Certificates</a>
  </nav>
  <span id="updated" class="muted"></span>
</header>
<div id="banner" class="banner hidden" role="alert"></div>
<main>
  <div id="toolbar" class="hidden"><input id="search" type="search" placeholder="Search by name, rule, service…" autocomplete="off"></div>
  <section id="view" aria-live="polite"></section>
</main>
<noscript>The dashboard needs JavaScript; the same data is at ../api/rawdata.</noscript>
<script src="app.js"></script>
</body>
</html>
`;
