// The document layer's crash-point sweep with durability `double` and sync `periodic`: see
// test/helpers/document-crash.ts.

import { sweep } from '../helpers/document-crash.js';

sweep('double-periodic');
