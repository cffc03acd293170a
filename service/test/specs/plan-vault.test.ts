import { expect } from 'chai';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { settingsSchema } from '../../src/config/settings.js';
import { secretGroups } from '../../src/config/secret-schema.js';
import { appRoleName, credentialVariables } from '../../src/vault/approle-credentials.js';
import { repoRoot } from '../support/bao.js';

const exists = (path: string) => access(path).then(() => true, () => false);

/** specs/vault/plan-vault.md must describe what the code does: names, paths and commands. */
describe('specs/vault/plan-vault.md agrees with the code', function () {
  let plan: string;
  before(async function () {
    plan = await readFile(join(repoRoot, 'specs/vault/plan-vault.md'), 'utf8');
  });

  it('has the required sections, in order, then the production transition and the runbook', function () {
    const headings = plan.split('\n').filter((l) => l.startsWith('## ')).map((l) => l.slice(3));
    expect(headings).to.deep.equal([
      '1. Préparation de l\'environnement local',
      '2. Configuration de Vault',
      '3. Mise à jour de l\'application',
      '4. Implémentation du renouvellement',
      '5. Transition vers la production',
      '6. Runbook d\'exploitation',
    ]);
    expect(plan).to.contain('Koa/TypeScript');
  });

  it('names only repository files and scripts that exist', async function () {
    const named = new Set(plan.match(/(?<![\w./-])(?:scripts|policies|agent-config|deploy|service\/src|specs)\/[\w./-]*\w/g) ?? []);
    for (const top of ['docker-compose.yml', 'docker-compose.prod.yml', 'Dockerfile']) if (plan.includes(top)) named.add(top);
    expect(named.size).to.be.greaterThan(20);
    for (const path of named) expect(await exists(join(repoRoot, path)), path).to.be.true;
  });

  it('uses the secret paths the service reads: secret/data/saas-project/<env>/<group>', function () {
    const paths = plan.match(/secret\/data\/saas-project\/[\w<>-]+\/[\w<>*-]+/g) ?? [];
    expect(paths.length).to.be.greaterThan(5);
    for (const path of paths) {
      const [, , , env, group] = path.split('/');
      expect(['dev', 'staging', 'prod', '<env>'], path).to.include(env);
      expect([...secretGroups, '*', '<groupe>'], path).to.include(group);
    }
    for (const group of secretGroups) expect(plan).to.contain(`secret/data/saas-project/<env>/${group}`);
  });

  it('names the role and the policies the code uses', async function () {
    const roles = new Set([...plan.matchAll(/auth\/approle\/role\/([\w-]+)/g)].map((m) => m[1]));
    expect([...roles]).to.deep.equal([appRoleName]);
    const policies = new Set(plan.match(/saas-app-(?:dev|staging|prod)\b|saas-orchestrator/g) ?? []);
    for (const policy of policies) expect(await exists(join(repoRoot, `policies/${policy}.hcl`)), policy).to.be.true;
    expect(plan).to.contain(await readFile(join(repoRoot, 'policies/saas-app-dev.hcl'), 'utf8').then((hcl) =>
      hcl.split('\n').filter((l) => !l.startsWith('#')).join('\n').trim()));
  });

  it('names only environment variables that the service or the scripts read', async function () {
    const known = new Set<string>([
      ...Object.values(settingsSchema).map((s) => s.env), ...credentialVariables,
    ]);
    const scripts = ['bootstrap.sh', 'prod/first-bootstrap.sh', 'prod/issue-wrapped-secret-id.sh', 'compose-vault-init.sh',
      'postgres-credentials.sh', 'postgres-init.sh']
      .map((name) => readFile(join(repoRoot, 'scripts', name), 'utf8'));
    const scriptText = (await Promise.all(scripts)).join('\n') + await readFile(join(repoRoot, 'scripts/stack/stack.ts'), 'utf8')
      + await readFile(join(repoRoot, 'docker-compose.yml'), 'utf8');
    const variables = new Set(plan.match(/`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`/g)?.map((v) => v.slice(1, -1)) ?? []);
    expect(variables.size).to.be.greaterThan(15);
    for (const variable of variables) {
      expect(known.has(variable) || scriptText.includes(variable), variable).to.be.true;
    }
  });

  it('shows the bootstrap\'s own commands', async function () {
    const bootstrap = await readFile(join(repoRoot, 'scripts/bootstrap.sh'), 'utf8');
    const block = plan.slice(plan.indexOf('### Ce que fait `scripts/bootstrap.sh`'), plan.indexOf('Équivalents API'));
    const commands = block.split('\n').filter((l) => l.startsWith('vault ')).map((l) => l.slice('vault '.length));
    expect(commands).to.have.length(9);
    for (const command of commands) {
      // The first words of each (subcommand and leading flags) appear in the script as "$cli" ...
      const head = command.split(/\s+/).filter((w) => w.startsWith('-') || /^[a-z]+$/.test(w)).slice(0, 2)
        .map((w) => w.replace(/=.*/, '=')).join(' ');
      expect(bootstrap, command).to.contain(`"$cli" ${head}`);
    }
    for (const setting of ['token_ttl', 'token_max_ttl', 'token_num_uses=0', 'secret_id_ttl', 'secret_id_num_uses', 'secret_id_bound_cidrs']) {
      expect(block).to.contain(setting);
      expect(bootstrap).to.contain(setting);
    }
  });
});
