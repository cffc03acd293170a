// Kept until src/vault/token-lifecycle.ts, its last importer here, is rewritten.
export { coalesce, type Coalesced } from './secrets/coalesce.js';
