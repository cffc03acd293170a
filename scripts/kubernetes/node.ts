import { mkdir, readlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { superviseComponents } from './components.js';
import { linkInNode } from './node-link.js';
import { prepareNode, startNode } from './node-start.js';
import { clusterPaths, nodePaths } from './paths.js';

/*
 * The supervisor of a node other than the first, run by the first node's supervisor (inside.ts)
 * under `unshare --mount --net`: a network and mount namespace of the node's own, so its
 * kubelet, containerd, shims, bridge and iptables chains meet the other nodes' only through its
 * link (node-link.ts). Writes its namespace's link, where the host's stop finds what is left
 * after a crash, then its pid, for which inside.ts waits to make the link.
 *
 *   argv: the Kubernetes binaries' folder, the node's index (2, ...)
 */
const paths = clusterPaths();
const [binDir = '', index = '2'] = process.argv.slice(2);
const node = nodePaths(paths, Number(index));
const c = superviseComponents(paths);

await mkdir(dirname(node.netnsFile), { recursive: true });
await writeFile(node.netnsFile, await readlink('/proc/self/ns/net'));
await writeFile(node.insidePid, `${process.pid}\n`);
await linkInNode(c, node);
await prepareNode(c, node);
await startNode(c, paths, node, binDir);
