import { startCluster, stopCluster } from './cluster.js';
import { ClusterError } from './paths.js';

/**
 *   npm run k8s:start   builds the pinned Kubernetes and CoreDNS once, starts a two-node cluster of this
 *                       clone in its own namespaces, writes .kubernetes/kubeconfig
 *   npm run k8s:stop    stops everything the start started
 */
const [command = 'start'] = process.argv.slice(2);
const say = (line: string) => { console.log(`k8s: ${line}`); };

if (command === 'start') {
  try {
    await startCluster(say);
  } catch (error) {
    console.error(`k8s: ${error instanceof ClusterError ? error.message : String(error)}`);
    process.exit(1);
  }
} else if (command === 'stop') {
  await stopCluster(say);
} else {
  console.error(`k8s: unknown command '${command}': expected start or stop`);
  process.exit(2);
}
