import type { Context, Middleware, Next } from 'koa';

/**
 * One step every request passes (the request id, the errors, the log, ...), written as plain
 * functions that one middleware calls in turn (runSteps). A Koa middleware per step cost each
 * request a promise and a closure per step, and together they took a probe to 0.6× of bare
 * Koa (BENCHMARKS.md 1d); a step here costs a function call.
 */
export interface RequestStep {
  readonly name: string;
  /**
   * Runs the rest of the request, this step's other functions included, inside a context of
   * its own (the request id's log context): `rest` is everything from this step on.
   */
  readonly around?: (ctx: Context, rest: () => Promise<void>) => Promise<void>;
  /** On the way in. True when the step answered the request: the steps after it and the routes do not run. */
  readonly enter?: (ctx: Context) => boolean;
  /** An error thrown by a step after this one or by the routes, turned into an answer. */
  readonly fail?: (ctx: Context, error: unknown) => void;
  /** On the way out, last step first, after `fail`: every step whose `enter` ran, answered, failed or served. */
  readonly leave?: (ctx: Context) => void;
}

type Run = (ctx: Context, next: Next) => Promise<void>;

/** The steps, in order, as one middleware; `next` (the routes) runs when no step answered. */
export function runSteps(steps: readonly RequestStep[]): Middleware {
  const run = compile(steps);
  return (ctx, next) => run(ctx, next);
}

/** A step with `around` starts a segment that runs inside it; the steps up to the next such step share one loop. */
function compile(steps: readonly RequestStep[]): Run {
  const [first] = steps;
  if (first === undefined) return (_ctx, next) => next();
  const nextAround = steps.findIndex((step, i) => i > 0 && step.around !== undefined);
  const end = nextAround === -1 ? steps.length : nextAround;
  const segment = loop(steps.slice(0, end), compile(steps.slice(end)));
  const { around } = first;
  return around === undefined ? segment : (ctx, next) => around(ctx, () => segment(ctx, next));
}

function loop(steps: readonly RequestStep[], inner: Run): Run {
  return async (ctx, next) => {
    // How many steps' `enter` ran to its end: theirs are the `leave`s to run and the `fail`s to ask.
    let entered = 0;
    try {
      for (const step of steps) {
        const answered = step.enter?.(ctx) ?? false;
        entered++;
        if (answered) return;
      }
      await inner(ctx, next);
    } catch (error) {
      const handler = steps.slice(0, entered).findLast((step) => step.fail !== undefined);
      if (handler?.fail === undefined) throw error;
      handler.fail(ctx, error);
    } finally {
      for (let i = entered - 1; i >= 0; i--) steps[i]?.leave?.(ctx);
    }
  };
}
