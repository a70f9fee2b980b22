// The contract: GET /openapi.yaml as written, GET /openapi.json parsed once (on first use), and
// GET /docs, Swagger UI for it, from swagger-ui-dist's prebuilt files. Only the files the page
// loads are served, by name from a fixed list, so no request names a path on disk.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import { parse } from 'yaml';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import type { Docket } from '../server/http/context.js';

const SPEC_FILE = 'openapi.yaml';
const CACHE_CONTROL = 'public, max-age=3600';

/** The page: Swagger UI's stylesheet and bundle, started by our own script (no inline code). */
const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Docket API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/docket-swagger-ui.js"></script>
</body>
</html>
`;

const STARTER_JS = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, presets: [SwaggerUIBundle.presets.apis], layout: 'BaseLayout' });
});
`;

/** Every name under /docs/ that is served: file name → media type. Anything else is 404. */
const DIST_FILES: ReadonlyMap<string, string> = new Map([
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
  ['favicon-32x32.png', 'image/png'],
  ['favicon-16x16.png', 'image/png'],
]);
const STARTER_FILE = 'docket-swagger-ui.js';

export const openapiRoutes: FastifyPluginAsync<{ docket: Docket }> = async (app) => {
  const yamlText = await readFile(path.join(packageDirectory(), SPEC_FILE), 'utf8');
  // Parsed on first request, not at startup: parsing costs ~250 ms, every start would pay it.
  let jsonText: string | undefined;
  const distDirectory = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  // Read on first request and kept: a fixed set of a few files, 1.5 MB in all.
  const files = new Map<string, Promise<Buffer>>();

  app.get('/openapi.yaml', async (_request, reply) => reply.type('application/yaml; charset=utf-8').send(yamlText));
  app.get('/openapi.json', async (_request, reply) => reply.type('application/json; charset=utf-8').send((jsonText ??= JSON.stringify(parse(yamlText)))));
  app.get('/docs', async (_request, reply) => reply.type('text/html; charset=utf-8').send(INDEX_HTML));

  app.get<{ Params: { file: string } }>('/docs/:file', async (request, reply) => {
    const name = request.params.file;
    if (name === STARTER_FILE) return reply.type('text/javascript; charset=utf-8').header('cache-control', CACHE_CONTROL).send(STARTER_JS);
    const type = DIST_FILES.get(name);
    if (type === undefined) throw new DocketError(DocketErrorCode.ROUTE_NOT_FOUND, `no file ${JSON.stringify(name.slice(0, 80))} under /docs`);
    let bytes = files.get(name);
    if (!bytes) {
      bytes = readFile(path.join(distDirectory, name));
      bytes.catch(() => files.delete(name)); // A failed read is retried by the next request.
      files.set(name, bytes);
    }
    return reply.type(type).header('cache-control', CACHE_CONTROL).send(await bytes);
  });
};

/** The directory of package.json and openapi.yaml, from here in routes/ or in dist/routes/. */
function packageDirectory(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(directory, SPEC_FILE)) && existsSync(path.join(directory, 'package.json'))) return directory;
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`${SPEC_FILE} not found above ${fileURLToPath(import.meta.url)}`);
    directory = parent;
  }
}
