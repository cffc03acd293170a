import { run } from '../engine/engine.js';
import type { Components } from './components.js';
import { bridgeAddress } from './node-start.js';
import { nodePaths, nodes, type ClusterPaths, type NodePaths } from './paths.js';

/*
 * The wire between the first node's namespace (the control plane's) and another node's: a veth
 * pair, its first node's end named after the node, the other end eth0 in the node's namespace.
 * Each node's address is on its loopback device, as the first node's is; the routes carry the
 * node addresses and each node's pod subnet. Nothing else reaches a node's namespace: the
 * other nodes' pods, the host's exposed ports and the API server are all reached through the
 * first node.
 */

const linkName = (node: NodePaths) => `veth-node-${node.index}`;

/** In the first node's namespace, once the node's namespace exists (pid: a process in it). */
export async function linkFromFirstNode(c: Components, paths: ClusterPaths, node: NodePaths, pid: number): Promise<void> {
  const first = nodePaths(paths, 1);
  const link = linkName(node);
  await c.must('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
  await c.must('ip', ['link', 'set', link, 'up']);
  await c.must('ip', ['route', 'add', `${node.node.ip}/32`, 'dev', link, 'src', first.node.ip]);
  // Connections from this namespace (the host's, through the bridge) come from the first
  // node's bridge address, whichever node the pod is on: pods trust one proxy address.
  await c.must('ip', ['route', 'add', node.node.podSubnet, 'via', node.node.ip, 'dev', link, 'src', bridgeAddress(first)]);
}

/** In the node's own namespace: waits for its end of the pair, then routes everything through the first node. */
export async function linkInNode(c: Components, node: NodePaths): Promise<void> {
  const first = nodes[0];
  // ip, not /sys/class/net: sysfs shows the devices of the namespace that mounted it, the host's.
  await c.until('the link to the first node did not appear', 30, async () => (await run('ip', ['link', 'show', 'eth0'])).code === 0);
  await c.must('ip', ['link', 'set', 'lo', 'up']);
  await c.must('ip', ['addr', 'add', `${node.node.ip}/32`, 'dev', 'lo']);
  await c.must('ip', ['link', 'set', 'eth0', 'up']);
  await c.must('ip', ['route', 'add', `${first.ip}/32`, 'dev', 'eth0', 'src', node.node.ip]);
  await c.must('ip', ['route', 'add', 'default', 'via', first.ip, 'dev', 'eth0', 'src', node.node.ip]);
}
