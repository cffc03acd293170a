import { expect } from 'chai';
import { cliAs, runScript } from '../support/bao-server.js';
import { namespace, sleep, until, type Pod } from '../support/native-sidecar.js';
import type { Context } from './pod-lifecycle.js';

/**
 * The kill switch on Kubernetes: scripts/prod/kill-switch.sh, run with the admin's token, against
 * the native sidecar as native-sidecar.test.ts deploys it (2 replicas, kubernetes auth, every
 * Vault duration divided by 30), on each server (npm test runs that file against OpenBao and
 * against HashiCorp Vault; the agent's image is HashiCorp Vault's either way). It runs on that
 * file's deployment rather than one of its own: one cluster start and one deployment fewer per
 * server in the suite's longest chain.
 */
export function killSwitchTest(context: Context): void {
  it('kill-switch.sh locks the kubernetes role: both replicas halt, stay halted through two login backoffs, and --reopen brings the same pods back', async function () {
    const deployed = context.deployed();
    const { cluster, vault } = deployed;
    const d = vault.durations;
    const before = await deployed.runningPods();
    expect(before).to.have.length(2);
    const restarts = (pod: Pod, container: string) =>
      [...pod.status.containerStatuses ?? [], ...pod.status.initContainerStatuses ?? []].find((c) => c.name === container)?.restartCount ?? 0;
    const urls = await Promise.all(before.map((pod) => deployed.podUrl(pod)));
    const kill = (args: string[]) => runScript('scripts/prod/kill-switch.sh', args, vault.node.cliEnv({ VAULT_TOKEN: vault.adminToken }));
    // The admin may set the role's bound names to the lock or to the manifests' account only.
    for (const names of ['*', 'saas-app,default', 'other']) {
      const widened = await cliAs(vault.node, vault.adminToken, ['write', 'auth/kubernetes/role/saas-app-prod', `bound_service_account_names=${names}`]);
      expect(widened.code, names).to.not.equal(0);
      expect(widened.stderr, names).to.contain('permission denied');
    }

    const killed = await kill(['prod']);
    const at = Date.now();
    let open = false;
    try {
      expect(killed.code, killed.stderr).to.equal(0);
      expect(killed.stdout).to.contain("locked auth/kubernetes/role/saas-app-prod (bound_service_account_names kill-switch:locked; was 'saas-app'");
      expect(killed.stdout).to.contain('locked auth/approle/role/saas-app-prod');
      expect(killed.stdout).to.match(/revoked [1-9]\d* token\(s\) with the policy saas-app-prod/);
      const haltBound = d.checkInterval + 1000;
      const halted = await Promise.all(urls.map(async (url) => {
        await until(`a 503 from ${url}`, haltBound + 5000, async () => ((await fetch(`${url}/readyz`)).status === 503 ? true : undefined));
        return Date.now() - at;
      }));
      for (const ms of halted) expect(ms, `halted after ${halted.join(' and ')} ms`).to.be.at.most(haltBound);
      // The operator's configuration run again leaves the lock in place, and says so.
      const again = await deployed.configureAuth();
      expect(again.code, again.stderr).to.equal(0);
      expect(again.stdout).to.contain('role saas-app-prod is locked by the kill switch: left as it is');

      // Each agent finds its token gone at its next renewal or render and logs in again with its
      // pod's token, which the cluster vouches for and the locked role refuses. Then two login
      // backoffs, every answer a 503, each agent trying again (or restarted by the kubelet).
      const state = async (pod: Pod) => {
        const now = await cluster.api<Pod>(`/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}`);
        const log = await cluster.kube(['logs', '-n', namespace, pod.metadata.name, '-c', 'vault-agent']).catch(() => '');
        return { refused: log.split('service account name not authorized').length - 1, restarts: restarts(now, 'vault-agent') };
      };
      const first = await Promise.all(before.map((pod) => until(`${pod.metadata.name}'s agent refused`, d.tokenTtl + d.maxBackoff + 30_000,
        async () => { const seen = await state(pod); return seen.refused > 0 ? seen : undefined; })));
      const answers: number[] = [];
      for (const end = Date.now() + 2 * d.maxBackoff; Date.now() < end;) {
        answers.push(...await Promise.all(urls.map(async (url) => (await fetch(`${url}/readyz`)).status)));
        await sleep(100);
      }
      expect(answers.filter((status) => status !== 503), 'every /readyz answer during the lock').to.deep.equal([]);
      // Each agent tried again: a refusal more in its log, or a restart. The log is read until it
      // shows one, within one more max_backoff and a margin: a read the loaded API server fails
      // counts as nothing seen, not as a stopped agent.
      await Promise.all(before.map((pod, i) => {
        const was = first[i] ?? { refused: 0, restarts: 0 };
        return until(`${pod.metadata.name}'s agent kept trying`, d.maxBackoff + 10_000, async () => {
          const seen = await state(pod);
          return seen.refused > was.refused || seen.restarts > was.restarts ? true : undefined;
        });
      }));
      const reopened = await kill(['--reopen', 'prod']);
      open = true;
      const reopenedAt = Date.now();
      expect(reopened.code, reopened.stderr).to.equal(0);
      expect(reopened.stdout).to.contain("restored bound_service_account_names of auth/kubernetes/role/saas-app-prod to 'saas-app'");
      // The agent's next login (at most max_backoff away), its render, the app's check, + 1 s.
      const readyBound = d.checkInterval + d.maxBackoff + 1000;
      const ready = await Promise.all(urls.map(async (url) => {
        await until(`a 200 from ${url}`, readyBound + 30_000, async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
        return Date.now() - reopenedAt;
      }));
      const after = await deployed.runningPods();
      expect(after.map((pod) => pod.metadata.uid).sort(), 'the same pods').to.deep.equal(before.map((pod) => pod.metadata.uid).sort());
      for (const pod of after) {
        const was = before.find((p) => p.metadata.uid === pod.metadata.uid);
        expect(restarts(pod, 'app'), 'the same app container').to.equal(was === undefined ? -1 : restarts(was, 'app'));
        console.log(`      ${pod.metadata.name}: agent restarts ${was === undefined ? '?' : restarts(was, 'vault-agent')} -> ${restarts(pod, 'vault-agent')}; halted ${halted.join(', ')} ms; ready ${ready.join(', ')} ms after the reopen`);
      }
      for (const ms of ready) expect(ms, `ready ${ready.join(' and ')} ms after the reopen`).to.be.at.most(readyBound);
    } finally {
      // A failure above leaves the role reopened for the tests after this one.
      if (!open) await kill(['--reopen', 'prod']);
    }
  });
}
