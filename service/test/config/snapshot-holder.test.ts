import { expect } from 'chai';
import { buildSnapshot, type ConfigSnapshot, type SecretRead } from '../../src/config/snapshot.js';
import { databaseCredsPath } from '../../src/config/secret-schema.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { appScope, randomKey, renderedDocument } from '../support/rendered-secrets.js';

function snapshot(version: number): ConfigSnapshot {
  return buildSnapshot(appScope('dev'), renderedDocument('dev', version), `rev-${version}`, version);
}

/** Every object and array reachable from `root`, with its path ('' for the root). */
function objectsIn(root: object): { path: string; value: object }[] {
  const found: { path: string; value: object }[] = [];
  const walk = (value: unknown, path: string) => {
    if (value === null || typeof value !== 'object') return;
    found.push({ path, value });
    for (const [key, inner] of Object.entries(value)) walk(inner, path === '' ? key : `${path}.${key}`);
  };
  walk(root, '');
  return found;
}

describe('SnapshotHolder', function () {
  it('is empty until the first swap, then holds exactly what was swapped in', function () {
    const holder = new SnapshotHolder();
    expect(holder.current).to.equal(undefined);
    const first = snapshot(1);
    holder.swap(first);
    expect(holder.current).to.equal(first);
  });

  it('gives every concurrent reader one whole snapshot while swaps happen between its reads', async function () {
    const holder = new SnapshotHolder();
    const versions = [1, 2, 3, 4].map(snapshot);
    holder.swap(versions[0] as ConfigSnapshot);
    let swaps = 0;
    const swapper = (async () => {
      for (let i = 0; i < 200; i++) {
        holder.swap(versions[i % versions.length] as ConfigSnapshot);
        swaps++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    // A request takes the snapshot once, then reads fields across awaits, as a handler does.
    const request = async (arrival: number) => {
      for (let wait = 0; wait < arrival % 20; wait++) await new Promise((r) => setImmediate(r));
      const config = holder.current as ConfigSnapshot;
      const seen: string[] = [];
      for (let step = 0; step < 5; step++) {
        seen.push(`${config.sources[0]?.version}:${config.secrets.database.password}:${config.secrets.app.session_keys[0]}`);
        await new Promise((r) => setImmediate(r));
      }
      return { config, seen };
    };
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => request(i)));
    await swapper;
    expect(swaps).to.equal(200);
    const distinct = new Set(results.map((r) => r.config.revision));
    expect(distinct.size, 'requests should have started under different snapshots').to.be.greaterThan(1);
    for (const { config, seen } of results) {
      const expected = `${config.sources[0]?.version}:${config.secrets.database.password}:${config.secrets.app.session_keys[0]}`;
      expect(new Set(seen)).to.deep.equal(new Set([expected]));
    }
  });

  it('hands out frozen snapshots that no reader can change for the others', function () {
    // Every object in the snapshot the holder holds (kv mode, and dynamic mode with its lease)
    // refuses a write, and the next reader gets exactly what was swapped in.
    const dynamic: Partial<Record<string, SecretRead>> = {
      ...renderedDocument('dev', 1),
      database: {
        path: databaseCredsPath(appScope('dev')),
        lease: { id: 'database/creds/saas-app-dev/abc', durationSeconds: 3600, renewable: true },
        data: { username: 'v-approle-saas-app', password: randomKey() },
      },
    };
    const built = [snapshot(1), buildSnapshot(appScope('dev'), dynamic, 'rev-dynamic', 2, 'dynamic')];
    for (const swapped of built) {
      const holder = new SnapshotHolder();
      holder.swap(swapped);
      const before = structuredClone(holder.current) as ConfigSnapshot;
      const reader = holder.current as ConfigSnapshot;
      const objects = objectsIn(reader);
      expect(objects.map((o) => o.path), 'the walk should reach the nested secrets').to.include.members(
        ['secrets.database', 'secrets.app.session_keys', 'sources.0'],
      );
      if (reader.lease !== null) expect(objects.map((o) => o.path)).to.include('lease');
      for (const { path, value } of objects) {
        for (const key of Object.keys(value)) {
          expect(() => { (value as Record<string, unknown>)[key] = 'changed'; }, `${path}.${key}`).to.throw(TypeError);
          expect(Reflect.deleteProperty(value, key), `delete ${path}.${key}`).to.equal(false);
        }
        expect(() => { (value as Record<string, unknown>).added = 'x'; }, `${path}.added`).to.throw(TypeError);
        if (Array.isArray(value)) expect(() => { value.push('x'); }, `${path}.push`).to.throw(TypeError);
      }
      // Another reader, after every attempt above: the same snapshot, unchanged.
      expect(holder.current).to.equal(swapped);
      expect(structuredClone(holder.current)).to.deep.equal(before);
    }
  });

  it('tells subscribers about each swap, with the previous snapshot, until they unsubscribe', function () {
    const holder = new SnapshotHolder();
    const seen: [number | undefined, number | undefined][] = [];
    const unsubscribe = holder.onSwap((next, previous) => seen.push([next.loadedAt, previous?.loadedAt]));
    holder.swap(snapshot(1));
    holder.swap(snapshot(2));
    unsubscribe();
    holder.swap(snapshot(3));
    expect(seen).to.deep.equal([[1, undefined], [2, 1]]);
  });
});
