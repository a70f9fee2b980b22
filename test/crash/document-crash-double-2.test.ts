// The document layer's crash-point sweep in `double` mode, second half of the seeds: see
// document-crash-double.test.ts and test/helpers/document-crash.ts.

import { sweep } from '../helpers/document-crash.js';

sweep('double', 2);
