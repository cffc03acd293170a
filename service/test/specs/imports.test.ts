import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { repoRoot } from '../support/repo-root.js';

const src = join(repoRoot, 'service/src');

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : Promise.resolve(
    e.name.endsWith('.ts') ? [join(dir, e.name)] : []))));
  return nested.flat();
}

/** service/src's own imports (type-only ones included: a cycle of types is a cycle of ideas), by file. */
async function importGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const file of await sourceFiles(src)) {
    const text = await readFile(file, 'utf8');
    const targets = [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'/gm)]
      .map((m) => relative(src, resolve(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'))));
    graph.set(relative(src, file), targets);
  }
  return graph;
}

describe('service/src imports run one way', function () {
  it('has no import cycle', async function () {
    const graph = await importGraph();
    expect(graph.size).to.be.greaterThan(40);
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') { cycles.push([...path.slice(path.indexOf(file)), file].join(' -> ')); return; }
      state.set(file, 'visiting');
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).to.deep.equal([]);
  });

  it('keeps http/ free of vault/: the traffic gate hears of tokens and leases through report/ only', async function () {
    const graph = await importGraph();
    const crossing = [...graph].flatMap(([file, targets]) => (file.startsWith('http/')
      ? targets.filter((t) => t.startsWith('vault/')).map((t) => `${file} -> ${t}`) : []));
    expect(crossing).to.deep.equal([]);
    // The check sees the imports it guards: http/ does import report/.
    expect([...graph].some(([file, targets]) => file.startsWith('http/') && targets.some((t) => t.startsWith('report/')))).to.be.true;
  });
});
