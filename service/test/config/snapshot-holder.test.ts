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

  it('leaves a request the snapshot it took when a swap comes mid-request; the next request gets the new one', async function () {
    // The request middleware takes `current` once and the handlers read that object across
    // awaits: a swap must replace the holder's reference, never change what a request holds.
    const holder = new SnapshotHolder();
    const [first, second] = [snapshot(1), snapshot(2)];
    const firstSeen = { version: first.sources[0]?.version, revision: first.revision };
    // Compared, never printed: a failure shows no key.
    const samePassword = (config: ConfigSnapshot, other: ConfigSnapshot) => config.secrets.database.password === other.secrets.database.password;
    expect(samePassword(first, second), 'two different snapshots').to.equal(false);
    const whole = structuredClone(first);
    holder.swap(first);
    const taken = holder.current as ConfigSnapshot;
    holder.swap(second);
    await new Promise((resolve) => setImmediate(resolve));
    expect({ version: taken.sources[0]?.version, revision: taken.revision }, 'the request that started before the swap').to.deep.equal(firstSeen);
    expect(samePassword(taken, first), 'its database password').to.equal(true);
    expect(JSON.stringify(taken) === JSON.stringify(whole), 'the whole of it, unchanged').to.equal(true);
    const next = holder.current as ConfigSnapshot;
    expect(next.revision, 'the request after the swap').to.equal('rev-2');
    expect(samePassword(next, second), 'its database password').to.equal(true);
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
