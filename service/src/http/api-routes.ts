import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { ConfigSnapshot } from '../config/snapshot.js';
import type { PoolHolder } from '../db/pool-holder.js';
import { decodeCursor, ProjectQuotaReached, type ProjectStore } from '../db/projects.js';
import { ClientError } from './errors.js';
import { clearSession, isTenant, readSession, writeSession } from './session.js';
import type { TenantRate } from './tenant-rate.js';
import type { WebhookSender } from './webhooks.js';

export interface ApiDependencies {
  pools: PoolHolder;
  projects: ProjectStore;
  webhooks: WebhookSender;
  tenantRate: TenantRate;
}

export interface ApiState {
  config: ConfigSnapshot;
  tenant: string;
}

const newProject = z.strictObject({
  name: z.string().trim().min(1).max(100),
  description: z.string().max(2000).default(''),
});
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A list's page: `default` rows unless ?limit= says otherwise, at most `max` (the answer's size is bounded). */
export const pageSize = { default: 50, max: 100 } as const;

function readPage(query: Record<string, string | string[] | undefined>): { limit: number; after?: { position: string; id: string } } {
  const { limit: limitText, after: afterText } = query;
  let limit: number = pageSize.default;
  if (limitText !== undefined) {
    limit = typeof limitText === 'string' && /^[1-9][0-9]{0,2}$/.test(limitText) ? Number(limitText) : Number.NaN;
    if (!(limit <= pageSize.max)) {
      throw new ClientError(400, 'invalid_input', `limit: a whole number from 1 to ${pageSize.max}, the largest page`);
    }
  }
  if (afterText === undefined) return { limit };
  const after = typeof afterText === 'string' ? decodeCursor(afterText) : undefined;
  if (after === undefined) throw new ClientError(400, 'invalid_input', 'after: not a cursor from a previous page\'s "next"');
  return { limit, after };
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
  throw new ClientError(400, 'invalid_input', problems.join('; '));
}

/** The session's tenant, held to its rate: every route behind a session counts. */
function requireSessionWithin(tenantRate: TenantRate) {
  return async function requireSession(ctx: Context, next: Next): Promise<void> {
    const session = readSession(ctx);
    if (session === undefined) throw new ClientError(401, 'unauthenticated', 'sign in first: POST /api/session');
    const wait = tenantRate.take(session.tenant);
    if (wait > 0) {
      ctx.set('Retry-After', String(wait));
      throw new ClientError(429, 'rate_limited',
        `tenant ${session.tenant} is over ${tenantRate.perSecond} requests per second on this replica (TENANT_REQUESTS_PER_SECOND): retry after ${wait} s`);
    }
    (ctx.state as ApiState).tenant = session.tenant;
    await next();
  };
}

/**
 * The SaaS API: a signed session naming the tenant (app group), tenant-scoped projects in
 * PostgreSQL (database group), and a signed webhook per created project (api-keys group).
 */
export function apiRoutes({ pools, projects, webhooks, tenantRate }: ApiDependencies): Router {
  const router = new Router({ prefix: '/api' });
  const requireSession = requireSessionWithin(tenantRate);

  // Stands in for a real sign-in: the point is the signed cookie, not the identity check.
  router.post('/session', (ctx) => {
    const { tenant } = parse(z.strictObject({ tenant: z.string() }), ctx.request.body);
    if (!isTenant(tenant)) {
      throw new ClientError(400, 'invalid_input', 'tenant: 2 to 63 lowercase letters, digits or dashes, not starting with a dash');
    }
    writeSession(ctx, tenant);
    ctx.status = 204;
  });
  router.get('/session', requireSession, (ctx) => {
    ctx.body = { tenant: (ctx.state as ApiState).tenant };
  });
  router.delete('/session', (ctx) => {
    clearSession(ctx);
    ctx.status = 204;
  });

  router.get('/projects', requireSession, async (ctx) => {
    const { tenant, config } = ctx.state as ApiState;
    const page = readPage(ctx.query);
    ctx.body = await pools.use((pool) => projects.list(pool, tenant, page), config);
  });
  router.post('/projects', requireSession, async (ctx) => {
    const { tenant, config } = ctx.state as ApiState;
    const input = parse(newProject, ctx.request.body);
    const project = await pools.use((pool) => projects.create(pool, tenant, input), config).catch((error: unknown) => {
      if (!(error instanceof ProjectQuotaReached)) throw error;
      throw new ClientError(409, 'quota_exceeded', `tenant ${tenant} holds ${error.quota} projects, its quota (TENANT_PROJECT_QUOTA): delete one first`);
    });
    webhooks.send({ type: 'project.created', tenant, data: project }, config.secrets['api-keys'].webhook_signing_key);
    ctx.status = 201;
    ctx.set('Location', `/api/projects/${project.id}`);
    ctx.body = project;
  });
  router.get('/projects/:id', requireSession, async (ctx) => {
    const { tenant, config } = ctx.state as ApiState;
    const id = ctx.params.id ?? '';
    const project = uuid.test(id) ? await pools.use((pool) => projects.get(pool, tenant, id), config) : undefined;
    if (project === undefined) throw new ClientError(404, 'not_found', `no project ${id}`);
    ctx.body = project;
  });
  router.delete('/projects/:id', requireSession, async (ctx) => {
    const { tenant, config } = ctx.state as ApiState;
    const id = ctx.params.id ?? '';
    const deleted = uuid.test(id) && await pools.use((pool) => projects.delete(pool, tenant, id), config);
    if (!deleted) throw new ClientError(404, 'not_found', `no project ${id}`);
    ctx.status = 204;
  });
  return router;
}
