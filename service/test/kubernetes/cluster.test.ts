import { expect } from 'chai';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kubernetesBinaries, runningCluster, startCluster } from '../../../scripts/kubernetes/cluster.js';
import { ClusterError, clusterPaths } from '../../../scripts/kubernetes/paths.js';
import { tempDir } from '../support/temp-dirs.js';

/**
 * npm run k8s:start when the cluster cannot come up (real processes, a real namespace): one
 * line naming the cause, and nothing left running. The cause here is a folder the cluster
 * must create inside its own state being a file, found by the supervisor in its namespace
 * after the certificates, the configuration and the namespace exist.
 */
describe('k8s:start that fails (a real supervisor in a real namespace)', function () {
  this.timeout(120_000);

  before(async function () {
    // Cold, the first run builds Kubernetes (minutes), printing its progress.
    this.timeout(30 * 60_000);
    await kubernetesBinaries((line) => { process.stderr.write(`      kubernetes: ${line}\n`); });
  });

  it('names the cause in one line and leaves no process, namespace or cgroup behind', async function () {
    const paths = clusterPaths(join(await tempDir('k8s'), 'cluster'));
    await mkdir(paths.dir, { recursive: true });
    // Where the kubelet's pod logs go (.kubernetes/var-log, bound over /var/log in the namespace).
    await writeFile(join(paths.dir, 'var-log'), 'not a folder\n');
    const said: string[] = [];
    const failure = await startCluster((line) => { said.push(line); }, paths).then(() => undefined, (error: unknown) => error);
    expect(failure).to.be.instanceOf(ClusterError);
    const message = (failure as ClusterError).message;
    expect(message.split('\n'), message).to.have.length(1);
    expect(message).to.contain(join(paths.dir, 'var-log'));
    expect(await runningCluster(paths)).to.equal(undefined);
    // The supervisors (host side and namespace side) run with KUBERNETES_DIR set to the folder.
    const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
    const environments = await Promise.all(pids.map(async (pid) => readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')));
    expect(environments.filter((env) => env.split('\0').includes(`KUBERNETES_DIR=${paths.dir}`)), 'processes of this cluster').to.deep.equal([]);
    expect(await readdir(join('/sys/fs/cgroup/memory', paths.cgroupRoot)).then(() => true, () => false)).to.equal(false);
  });
});
