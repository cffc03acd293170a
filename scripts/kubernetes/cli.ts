import { startCluster, stopCluster } from './cluster.js';
import { ClusterError } from './paths.js';
import { down, up } from './up.js';

/**
 *   npm run k8s:start   builds the pinned Kubernetes and CoreDNS once, starts a two-node cluster
 *                       of this clone in its own namespaces, writes .kubernetes/kubeconfig
 *   npm run k8s:stop    stops everything the start started
 *   npm run k8s:up      the cluster, a Vault and a PostgreSQL of its own, the native-sidecar
 *                       overlay applied; prints how to reach the app and stays in the foreground
 *   npm run k8s:down    stops everything k8s:up started
 */
const [command = 'start'] = process.argv.slice(2);
const say = (line: string) => { console.log(`k8s: ${line}`); };
const failed = (error: unknown) => {
  console.error(`k8s: ${error instanceof ClusterError ? error.message : String(error)}`);
  process.exit(1);
};

if (command === 'start') {
  await startCluster(say).catch(failed);
} else if (command === 'stop') {
  await stopCluster(say);
} else if (command === 'up') {
  await up(say).catch(failed);
} else if (command === 'down') {
  await down(say);
} else {
  console.error(`k8s: unknown command '${command}': expected start, stop, up or down`);
  process.exit(2);
}
