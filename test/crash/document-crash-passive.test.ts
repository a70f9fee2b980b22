// The document layer's crash-point sweep in `passive` mode, first half of the seeds (the second is in
// document-crash-passive-2.test.ts, so tap runs them in parallel): see test/helpers/document-crash.ts.

import { sweep } from '../helpers/document-crash.js';

sweep('passive', 1);
