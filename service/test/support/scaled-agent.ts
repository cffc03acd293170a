import { readSettings } from '../../src/config/settings.js';
import type { AgentStatus } from '../../src/report/agent-report.js';
import { startService, type RunningService } from '../../src/start.js';
import { renewalPeriodMs, requestToleranceMs } from '../../src/vault/agent-renewal.js';
import { prepareAgentDir, startAgent, waitForFile, type AgentDir } from './agent.js';
import { startDevServer, type DevServer } from './bao.js';
import type { ManagedProcess } from './processes.js';
import { capturingLogger } from './rendered-secrets.js';
import { asDuration, scaleDurations, shippedProduction, type ProductionDurations } from './shipped-durations.js';

/** Every shipped duration divided by this one factor (the soak's and the cluster's). */
export const agentTimeFactor = 30;

/**
 * A real agent (the dev configuration, unchanged) and the service in process, on the shipped
 * token TTL, max TTL and check interval divided by `agentTimeFactor`: what the tests of the
 * agent's health share. `agent` is replaced when a test restarts it, as a supervisor would.
 */
export interface ScaledAgent {
  readonly server: DevServer;
  readonly agentDir: AgentDir;
  agent: ManagedProcess;
  readonly service: RunningService;
  readonly durations: ProductionDurations;
  /** The longest the agent may take between two renewals of the full TTL, with the second the service allows its requests. */
  readonly periodMs: number;
  readonly log: ReturnType<typeof capturingLogger>;
  /** The operator's /status, as JSON. */
  status<T extends { agent: AgentStatus }>(): Promise<T>;
  /** The scraped value of saas_agent_overdue. */
  overdueGauge(): Promise<number>;
  /** Polls /status every 100 ms until the agent's state is `state`; returns the time it took. */
  timeUntilAgent(state: AgentStatus['state'], limitMs: number, what: string): Promise<number>;
  stop(): Promise<void>;
}

/** `beforeAgent` runs once the agent's folder is laid out, before the agent starts (a mount, say). */
export async function startScaledAgent(beforeAgent: (dir: AgentDir) => Promise<void> = () => Promise.resolve()): Promise<ScaledAgent> {
  const durations = scaleDurations((await shippedProduction()).durations, agentTimeFactor);
  const server = await startDevServer();
  const agentDir = await prepareAgentDir(server, 'dev', {
    ROLE_TOKEN_TTL: asDuration(durations.tokenTtl), ROLE_TOKEN_MAX_TTL: asDuration(durations.tokenMaxTtl), ROLE_SECRET_ID_NUM_USES: '0',
  });
  await beforeAgent(agentDir);
  const agent = startAgent(server, agentDir);
  await waitForFile(agentDir.renderedFile, agent);
  const log = capturingLogger();
  const service = await startService(readSettings({
    SECRETS_MODE: 'agent', APP_ENV: 'dev', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: server.addr,
    SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile, TOKEN_CHECK_MAX_INTERVAL_MS: String(durations.checkInterval),
  }), {}, log.logger);
  const admin = `http://127.0.0.1:${service.adminPort}`;
  const scaled: ScaledAgent = {
    server, agentDir, agent, service, durations, log,
    periodMs: renewalPeriodMs(durations.tokenTtl / 1000, durations.tokenTtl / 1000) + requestToleranceMs,
    status: async <T>() => (await (await fetch(`${admin}/status`)).json()) as T,
    overdueGauge: async () => Number(/^saas_agent_overdue (\S+)$/m.exec(await (await fetch(`${admin}/metrics`)).text())?.[1]),
    async timeUntilAgent(state, limitMs, what) {
      const start = Date.now();
      while ((await scaled.status()).agent.state !== state) {
        if (Date.now() - start > limitMs) throw new Error(`${what}: not ${state} within ${limitMs} ms; the agent's log:\n${(await scaled.agent.log()).slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return Date.now() - start;
    },
    async stop() {
      await service.close();
      await scaled.agent.stop();
      await server.stop();
    },
  };
  return scaled;
}
