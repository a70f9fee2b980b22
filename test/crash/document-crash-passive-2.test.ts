// The document layer's crash-point sweep in `passive` mode, second half of the seeds: see
// document-crash-passive.test.ts and test/helpers/document-crash.ts.

import { sweep } from '../helpers/document-crash.js';

sweep('passive', 2);
