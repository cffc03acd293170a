import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from '../support/repo-root.js';
import { shippedProduction } from '../support/shipped-durations.js';

/** A duration as both documents write it: `24 h`, `17 h 59 min`, `6 h`, `30 s`. */
function written(ms: number): string {
  const parts = [[Math.floor(ms / 3_600_000), 'h'], [Math.floor((ms % 3_600_000) / 60_000), 'min'], [Math.floor((ms % 60_000) / 1000), 's']] as const;
  return parts.filter(([n]) => n > 0).map(([n, unit]) => `${n} ${unit}`).join(' ');
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ');

/**
 * How long Vault may stay sealed and the service still reopen by itself. The courier
 * (scripts/prod/deliver-secret-ids.sh) renews the orchestrator token every
 * ORCHESTRATOR_RENEW_INTERVAL, looking every DELIVERY_INTERVAL, back to its period
 * (first-bootstrap.sh's ORCHESTRATOR_TOKEN_PERIOD); Vault counts the token down while sealed. When
 * the seal starts the token has at least period − renewal interval − one look left, and after the
 * unseal the courier uses it within one look: a shorter seal always leaves it alive. A seal of a
 * whole period or more always kills it, and then nothing delivers the agent a secret id.
 */
describe('the seal the service reopens after by itself, as the plan and the README bound it, from the shipped durations', function () {
  let always: string;
  let never: string;
  let shipped: { period: string; renew: string; look: string };

  before(async function () {
    const { durations } = await shippedProduction();
    never = written(durations.orchestratorPeriod);
    always = written(durations.orchestratorPeriod - durations.orchestratorRenewInterval - 2 * durations.deliveryInterval);
    shipped = { period: never, renew: written(durations.orchestratorRenewInterval), look: written(durations.deliveryInterval) };
  });

  it('is what production runs: docker-compose.prod.yml leaves the courier its script\'s intervals', async function () {
    const compose = parseYaml(await readFile(join(repoRoot, 'docker-compose.prod.yml'), 'utf8')) as
      { services: Record<string, { environment?: Record<string, unknown> }> };
    const courier = compose.services['secret-id-courier']?.environment ?? {};
    expect(Object.keys(courier)).to.not.include('DELIVERY_INTERVAL');
    expect(Object.keys(courier)).to.not.include('ORCHESTRATOR_RENEW_INTERVAL');
  });

  it('is stated in the plan\'s runbook, with the durations it comes from', async function () {
    const plan = oneLine(await readFile(join(repoRoot, 'specs/vault/plan-vault.md'), 'utf8'));
    const unseal = plan.slice(plan.indexOf('**Desceller après un redémarrage.**'));
    expect(unseal).to.contain(`**moins de ${always}**`).and.to.contain(`**${never} ou plus**`);
    expect(unseal).to.contain(`\`ORCHESTRATOR_RENEW_INTERVAL\` (${shipped.renew})`)
      .and.to.contain(`(\`ORCHESTRATOR_TOKEN_PERIOD\`, ${shipped.period})`)
      .and.to.contain(`\`DELIVERY_INTERVAL\` (${shipped.look})`);
    expect(plan, 'no promise beyond the bound').to.not.contain('quelle que soit la durée du scellement');
  });

  it('is stated in the README\'s production section', async function () {
    const readme = oneLine(await readFile(join(repoRoot, 'README.md'), 'utf8'));
    expect(readme).to.contain(`never after a seal of ${never} (the token's period) or more, always after one under ${always}`);
  });
});
