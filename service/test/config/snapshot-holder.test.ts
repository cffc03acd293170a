import { expect } from 'chai';
import { buildSnapshot, type ConfigSnapshot } from '../../src/config/snapshot.js';
import { SnapshotHolder } from '../../src/config/snapshot-holder.js';
import { renderedDocument } from '../support/rendered-secrets.js';

function snapshot(version: number): ConfigSnapshot {
  return buildSnapshot('dev', renderedDocument('dev', version), `rev-${version}`, version);
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
    const holder = new SnapshotHolder();
    holder.swap(snapshot(1));
    const config = holder.current as ConfigSnapshot;
    expect(() => { (config.secrets.database as { password: string }).password = 'changed'; }).to.throw(TypeError);
    expect(() => { (config.secrets.app.session_keys as string[]).push('x'); }).to.throw(TypeError);
    expect(() => { (config.sources as unknown[]).length = 0; }).to.throw(TypeError);
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
