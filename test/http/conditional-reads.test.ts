// If-Match on GET and HEAD (RFC 9110 §13.1.1): a read whose If-Match names no current revision
// is 412, evaluated before If-None-Match (§13.2.2); a document that does not exist is 404
// whatever the preconditions (§13.2.1); weak tags never match strongly.

import t from 'tap';
import { openApp } from '../helpers/app.js';


t.test('If-Match on GET and HEAD', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  const written = await app.inject({ method: 'PUT', url: '/collections/c/docs/d', payload: { a: 1 } });
  const rev = written.json().rev as number;
  const read = (method: 'GET' | 'HEAD', headers: Record<string, string>, url = '/collections/c/docs/d') => app.inject({ method, url, headers });
  for (const method of ['GET', 'HEAD'] as const) {
    for (const tag of [`"${rev}"`, '*', `"1", "${rev}"`]) {
      const response = await read(method, { 'if-match': tag });
      t.equal(response.statusCode, 200, `${method} If-Match: ${tag} holds`);
      t.equal(response.headers.etag, `"${rev}"`);
    }
    for (const tag of [`"${rev + 1}"`, `W/"${rev}"`, '"1", "99"']) {
      const response = await read(method, { 'if-match': tag });
      t.equal(response.statusCode, 412, `${method} If-Match: ${tag} fails`);
      t.equal(response.headers.etag, `"${rev}"`, 'the 412 names the current revision');
      if (method === 'GET') {
        t.equal(response.json().code, 'DOCKET_ERR_DOCUMENT_CONFLICT');
        t.match(response.json().message, `is at revision ${rev}`);
      } else t.equal(response.body, '', 'a HEAD has no body');
    }
    // If-Match first: a failing If-Match with a matching If-None-Match is 412, not 304.
    t.equal((await read(method, { 'if-match': '"999"', 'if-none-match': `"${rev}"` })).statusCode, 412, `${method}: If-Match is evaluated before If-None-Match`);
    t.equal((await read(method, { 'if-match': `"${rev}"`, 'if-none-match': `"${rev}"` })).statusCode, 304, `${method}: both hold, If-None-Match says 304`);
    t.equal((await read(method, { 'if-match': `"${rev}"`, 'if-none-match': '"1"' })).statusCode, 200, `${method}: both hold, a different If-None-Match`);
    // With fields= the revision is the document's.
    t.equal((await read(method, { 'if-match': '"999"' }, '/collections/c/docs/d?fields=a')).statusCode, 412, `${method} with fields=`);
    t.equal((await read(method, { 'if-match': '"999"' }, '/collections/c/docs/missing')).statusCode, 404, `${method}: no document is 404 whatever If-Match says`);
    t.equal((await read(method, { 'if-match': 'not-a-tag' })).statusCode, 400, `${method}: a malformed If-Match is 400`);
  }
});
