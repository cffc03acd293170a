/** Why the service will not start: one sentence naming the variable, file, path or policy at fault. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}
