// The document layer's crash-point sweep in `double` mode, first half of the seeds (the second is in
// document-crash-double-2.test.ts, so tap runs them in parallel): see test/helpers/document-crash.ts.

import { sweep } from '../helpers/document-crash.js';

sweep('double', 1);
