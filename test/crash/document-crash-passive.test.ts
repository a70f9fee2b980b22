// The document layer's crash-point sweep in `passive` mode: see test/helpers/document-crash.ts.

import { sweep } from '../helpers/document-crash.js';

sweep('passive');
