/*
 * /docs: starts Swagger UI on /openapi.json. Swagger UI comes from a CDN
 * (see docs.html); when it did not load (offline, blocked), the routes are
 * listed from the spec instead, so the page is still of use.
 *
 * The token: Swagger UI's "Authorize" button takes it and keeps it in
 * memory only (persistAuthorization is off), sending it as a header.
 */
'use strict';

(function () {
  const root = document.getElementById('swagger-ui');

  if (typeof window.SwaggerUIBundle === 'function') {
    root.textContent = '';
    window.SwaggerUIBundle({
      url: '/openapi.json',
      domNode: root,
      deepLinking: true,
      persistAuthorization: false,
      // The validator badge would send the spec to a third party.
      validatorUrl: null,
    });
    return;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  root.className = 'docs-fallback';
  root.replaceChildren(
    element('h1', 'shellctl API'),
    element('p', 'Swagger UI could not be loaded from its CDN (offline?). The routes of '
      + '/openapi.json are listed below; the spec itself is linked at the top.'),
  );
  fetch('/openapi.json', { cache: 'no-store' })
    .then((response) => response.json())
    .then((spec) => {
      const info = spec.info || {};
      root.append(element('p', (info.title || '') + ' ' + (info.version || '')));
      // Grouped by tag, in the order the spec declares its tags.
      const groups = new Map((spec.tags || []).map((tag) => [tag.name, []]));
      for (const [path, item] of Object.entries(spec.paths || {})) {
        for (const [method, operation] of Object.entries(item)) {
          if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
          const tag = (operation.tags && operation.tags[0]) || 'other';
          if (!groups.has(tag)) groups.set(tag, []);
          const entry = element('li');
          entry.append(element('span', method.toUpperCase(), 'method'), ' ', element('code', path));
          const summary = operation.summary || operation.description || '';
          if (summary) entry.append(' — ' + summary.split('\n')[0]);
          groups.get(tag).push(entry);
        }
      }
      for (const [tag, entries] of groups) {
        if (entries.length === 0) continue;
        const list = element('ul');
        list.append(...entries);
        root.append(element('h2', tag), list);
      }
    })
    .catch((error) => root.append(element('p', 'Could not load /openapi.json: ' + error.message)));
})();
