import type pg from 'pg';

export interface Project {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly createdAt: string;
}

export interface NewProject {
  readonly name: string;
  readonly description: string;
}

interface Row {
  id: string;
  name: string;
  description: string;
  created_at: Date;
}

const schema = `
CREATE TABLE IF NOT EXISTS projects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant text NOT NULL,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS projects_tenant ON projects (tenant, created_at);
`;

const toProject = (row: Row): Project => ({
  id: row.id, name: row.name, description: row.description, createdAt: row.created_at.toISOString(),
});

/** Projects, always scoped to one tenant: no query can reach another tenant's rows. */
export class ProjectStore {
  #ready: Promise<void> | undefined;

  async #ensureSchema(pool: pg.Pool): Promise<void> {
    // Once per process; a failure is forgotten so the next request tries again.
    this.#ready ??= pool.query(schema).then(() => undefined, (error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    await this.#ready;
  }

  async create(pool: pg.Pool, tenant: string, project: NewProject): Promise<Project> {
    await this.#ensureSchema(pool);
    const result = await pool.query<Row>(
      'INSERT INTO projects (tenant, name, description) VALUES ($1, $2, $3) RETURNING id, name, description, created_at',
      [tenant, project.name, project.description]);
    return toProject(result.rows[0] as Row);
  }

  async list(pool: pg.Pool, tenant: string): Promise<Project[]> {
    await this.#ensureSchema(pool);
    const result = await pool.query<Row>(
      'SELECT id, name, description, created_at FROM projects WHERE tenant = $1 ORDER BY created_at, id', [tenant]);
    return result.rows.map(toProject);
  }

  async get(pool: pg.Pool, tenant: string, id: string): Promise<Project | undefined> {
    await this.#ensureSchema(pool);
    const result = await pool.query<Row>(
      'SELECT id, name, description, created_at FROM projects WHERE tenant = $1 AND id = $2', [tenant, id]);
    const row = result.rows[0];
    return row === undefined ? undefined : toProject(row);
  }

  async delete(pool: pg.Pool, tenant: string, id: string): Promise<boolean> {
    await this.#ensureSchema(pool);
    const result = await pool.query('DELETE FROM projects WHERE tenant = $1 AND id = $2', [tenant, id]);
    return result.rowCount === 1;
  }
}
