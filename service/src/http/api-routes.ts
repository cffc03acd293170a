import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { ConfigSnapshot } from '../config/snapshot.js';
import type { PoolHolder } from '../db/pool-holder.js';
import type { ProjectStore } from '../db/projects.js';
import { ClientError } from './errors.js';
import { clearSession, isTenant, readSession, writeSession } from './session.js';
import type { WebhookSender } from './webhooks.js';

export interface ApiDependencies {
  pools: PoolHolder;
  projects: ProjectStore;
  webhooks: WebhookSender;
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

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
  throw new ClientError(400, 'invalid_input', problems.join('; '));
}

async function requireSession(ctx: Context, next: Next): Promise<void> {
  const session = readSession(ctx);
  if (session === undefined) throw new ClientError(401, 'unauthenticated', 'sign in first: POST /api/session');
  (ctx.state as ApiState).tenant = session.tenant;
  await next();
}

/**
 * The SaaS API: a signed session naming the tenant (app group), tenant-scoped projects in
 * PostgreSQL (database group), and a signed webhook per created project (api-keys group).
 */
export function apiRoutes({ pools, projects, webhooks }: ApiDependencies): Router {
  const router = new Router({ prefix: '/api' });

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
    ctx.body = { projects: await pools.use((pool) => projects.list(pool, tenant), config) };
  });
  router.post('/projects', requireSession, async (ctx) => {
    const { tenant, config } = ctx.state as ApiState;
    const input = parse(newProject, ctx.request.body);
    const project = await pools.use((pool) => projects.create(pool, tenant, input), config);
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
