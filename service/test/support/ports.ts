// The one free-port probe lives with the local stack, which the tests and benchmarks share.
export { freePort } from '../../../scripts/stack/ports.js';
