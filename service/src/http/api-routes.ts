import Router from '@koa/router';
import { z } from 'zod';
import { decodeCursor, ProjectQuotaReached, type ProjectStore } from '../db/projects.js';
import { ClientError } from './errors.js';
import type { SessionDependencies, SessionState } from './require-session.js';
import type { RouteUses } from './route-uses.js';

export interface ApiDependencies extends SessionDependencies {
  projects: ProjectStore;
}

export type ApiState = SessionState;

const newProject = z.strictObject({
  name: z.string().trim().min(1).max(100),
  description: z.string().max(2000).default(''),
});
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A list's page: `default` rows unless ?limit= says otherwise, at most `max` (the answer's size is bounded). */
export const pageSize = { default: 50, max: 100 } as const;

/** The page ?limit= and ?after= ask for; a 400 naming the parameter when either is not one. */
export function readPage(query: Record<string, string | string[] | undefined>): { limit: number; after?: { position: string; id: string } } {
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

/**
 * The SaaS API, added to `router` under /api: a session naming the tenant (auth-routes.ts opens
 * it), tenant-scoped projects in PostgreSQL (database group), and a webhook per created
 * project, through the outbox (webhook-deliveries.ts). Only a create reads a body.
 */
export function apiRoutes(router: Router, deps: ApiDependencies, uses: RouteUses): void {
  const { pools, projects } = deps;

  router.get('/api/session', ...uses.session, (ctx) => {
    ctx.body = { tenant: (ctx.state as ApiState).tenant };
  });

  router.get('/api/projects', ...uses.session, async (ctx) => {
    const { tenant, config } = ctx.state as ApiState;
    const page = readPage(ctx.query);
    ctx.body = await pools.use((pool) => projects.list(pool, tenant, page), config);
  });
  router.post('/api/projects', ...uses.session, uses.body, async (ctx) => {
    const { tenant, config } = ctx.state as ApiState;
    const input = parse(newProject, ctx.request.body);
    const project = await pools.use((pool) => projects.create(pool, tenant, input), config).catch((error: unknown) => {
      if (!(error instanceof ProjectQuotaReached)) throw error;
      throw new ClientError(409, 'quota_exceeded', `tenant ${tenant} holds ${error.quota} projects, its quota (TENANT_PROJECT_QUOTA): delete one first`);
    });
    ctx.status = 201;
    ctx.set('Location', `/api/projects/${project.id}`);
    ctx.body = project;
  });
  router.get('/api/projects/:id', ...uses.session, async (ctx) => {
    const { tenant, config } = ctx.state as ApiState;
    const id = ctx.params.id ?? '';
    const project = uuid.test(id) ? await pools.use((pool) => projects.get(pool, tenant, id), config) : undefined;
    if (project === undefined) throw new ClientError(404, 'not_found', `no project ${id}`);
    ctx.body = project;
  });
  router.delete('/api/projects/:id', ...uses.session, async (ctx) => {
    const { tenant, config } = ctx.state as ApiState;
    const id = ctx.params.id ?? '';
    const deleted = uuid.test(id) && await pools.use((pool) => projects.delete(pool, tenant, id), config);
    if (!deleted) throw new ClientError(404, 'not_found', `no project ${id}`);
    ctx.status = 204;
  });
}
