/**
 * Everything the service starts, in the order it is stopped (after the public listener has
 * drained): the watchers first, so nothing swaps a snapshot or halts mid-shutdown; then webhook
 * deliveries, then the database pools they may use; then the token's revocation (SDK mode),
 * which revokes the database user whose sessions the pools have closed; the operator's port
 * last, so the shutdown can be watched on it.
 */
export const stopOrder = [
  'token sink watch', 'lease swap watch', 'database errors watch', 'lease checks', 'secret re-reads', 'token checks', 'rendered file watch',
  'webhook deliveries', 'database pools', 'token revocation', 'admin listener',
] as const;

export type StopName = (typeof stopOrder)[number];
