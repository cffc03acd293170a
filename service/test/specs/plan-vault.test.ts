import { expect } from 'chai';
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';
import { parse as parseYaml } from 'yaml';
import { settingsSchema } from '../../src/config/settings.js';
import { secretGroups } from '../../src/config/secret-schema.js';
import { publicHaltMessages } from '../../src/http/traffic-gate.js';
import { appRoleName, credentialVariables } from '../../src/vault/approle-credentials.js';
import { repoRoot } from '../support/repo-root.js';
import { durationMs, retryBudgetMs, shippedProduction } from '../support/shipped-durations.js';

const exists = (path: string) => access(path).then(() => true, () => false);

/** Run-time output, never in the repository (each is git-ignored): the local stack's, the production topology's, the Docker engine's. */
const generatedPrefixes = ['.stack/', '.prod/', '.engine/'];

/**
 * What the plan names that is not a repository path although it looks like one: Vault API paths,
 * the agent's working folder (`config/`, `credentials/`, `secrets/`, relative to the agent),
 * annotation and label names (a domain first), a container image.
 */
const notRepositoryPaths = [
  /^(?:secret|sys|auth|v1)\//, /^(?:config|credentials|secrets)\//, /^[\w-]+(?:\.[\w-]+)+\/(?!.*\.\w+$)/, /^[\w-]+\.(?:io|com)\//,
  /^hashicorp\/vault$/,
];

/**
 * Every repository path the plan cites, in inline code and in code blocks: a relative path whose
 * first segment is a top-level entry of the repository, or which starts with a dot folder, or
 * which ends with a file extension. Words with a placeholder (`<…>`), a variable or a URL are
 * not paths; `-config=config/agent.hcl` yields `config/agent.hcl`.
 */
function citedPaths(markdown: string, topLevel: string[]): string[] {
  const code = [...markdown.matchAll(/```[^\n]*\n([\s\S]*?)```|`([^`\n]+)`/g)].map((m) => m[1] ?? m[2] ?? '');
  const words = code.flatMap((text) => text.split(/[\s=]+/))
    .map((word) => word.replace(/^[@'"(]+|[)'",;:.]+$/g, ''))
    .filter((word) => word !== '' && !/[<>$*"{}]|:\/\/|^\/|^-/.test(word));
  const looksLikePath = (word: string) => {
    const [first] = word.split('/');
    return (word.includes('/') && (topLevel.includes(first ?? '') || word.startsWith('.')))
      || /^[\w.-]+(?:\/[\w.-]+)*\.(?:md|ts|js|sh|hcl|ya?ml|json|ctmpl|pem|txt)$/.test(word);
  };
  const paths = words.filter((word) => looksLikePath(word) && !notRepositoryPaths.some((pattern) => pattern.test(word)));
  return [...new Set(paths.map((path) => path.replace(/\/$/, '')))];
}

/**
 * The repository scripts a test file runs, read from its syntax tree (so comments and titles
 * never count): `runScript('scripts/…', …)`; `join(repoRoot, 'scripts/…')` as the first element
 * of an argument list handed to a call (`execFile('sh', [join(…), …])`, `script([join(…)])`);
 * and a helper that adds the folder to a name it takes, `(name) => runScript(`scripts/prod/${name}`, …)`,
 * called with that name.
 */
function scriptsRunIn(source: string, fileName: string): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const helpers = new Map<string, string>();
  const calleeName = (call: ts.CallExpression) => (ts.isIdentifier(call.expression) ? call.expression.text : undefined);
  const literal = (node: ts.Node | undefined) =>
    node !== undefined && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined;
  const joinedScript = (node: ts.Node | undefined) => {
    if (node === undefined || !ts.isCallExpression(node) || calleeName(node) !== 'join') return undefined;
    const [root, path] = node.arguments;
    return root !== undefined && ts.isIdentifier(root) && root.text === 'repoRoot' ? literal(path) : undefined;
  };
  const isScript = (path: string | undefined): path is string => path !== undefined && /^scripts\/[\w/-]+\.sh$/.test(path);
  // Helpers first: a function of a name whose body runs `${prefix}${name}`.
  const findHelpers = (node: ts.Node): void => {
    const named = ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer !== undefined
      && (ts.isArrowFunction(node.initializer) || ts.isFunctionExpression(node.initializer))
      ? { name: node.name.text, fn: node.initializer }
      : ts.isFunctionDeclaration(node) && node.name !== undefined ? { name: node.name.text, fn: node } : undefined;
    const param = named?.fn.parameters[0]?.name;
    if (named !== undefined && param !== undefined && ts.isIdentifier(param)) {
      const visit = (inner: ts.Node): void => {
        if (ts.isCallExpression(inner) && calleeName(inner) === 'runScript') {
          const [first] = inner.arguments;
          if (first !== undefined && ts.isTemplateExpression(first) && first.templateSpans.length === 1) {
            const [span] = first.templateSpans;
            if (span !== undefined && ts.isIdentifier(span.expression) && span.expression.text === param.text && span.literal.text === '') {
              helpers.set(named.name, first.head.text);
            }
          }
        }
        ts.forEachChild(inner, visit);
      };
      visit(named.fn);
    }
    ts.forEachChild(node, findHelpers);
  };
  findHelpers(file);
  const findRuns = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const name = calleeName(node);
      const [first] = node.arguments;
      if (name === 'runScript' && isScript(literal(first))) found.push(literal(first) as string);
      const prefix = name === undefined ? undefined : helpers.get(name);
      const named = literal(first);
      if (prefix !== undefined && named !== undefined && isScript(prefix + named)) found.push(prefix + named);
      if (name !== undefined && name !== 'expect') {
        for (const argument of node.arguments) {
          const script = ts.isArrayLiteralExpression(argument) ? joinedScript(argument.elements[0]) : undefined;
          if (isScript(script)) found.push(script);
        }
      }
    }
    ts.forEachChild(node, findRuns);
  };
  findRuns(file);
  return [...new Set(found)];
}

/** The text with every run of white space made one space: a sentence wrapped over lines reads as one. */
const oneLine = (text: string) => text.replace(/\s+/g, ' ');

/** The captures of `pattern` in `text`; fails naming the pattern when the text no longer says it. */
function said(text: string, pattern: RegExp): string[] {
  const match = pattern.exec(text);
  expect(match, `the plan no longer says ${String(pattern)}`).to.not.equal(null);
  return (match as RegExpExecArray).slice(1);
}

/** Each `path "…" { capabilities = [...] }` block of an HCL policy: the path and its capabilities, sorted. */
function policyCapabilities(hcl: string): Map<string, string[]> {
  const paths = new Map<string, string[]>();
  for (const [, path = '', list = ''] of hcl.matchAll(/^path "([^"]+)" \{\s*capabilities\s*=\s*\[([^\]]*)\]/gm)) {
    paths.set(path, [...list.matchAll(/"([a-z]+)"/g)].map((m) => m[1] ?? '').sort());
  }
  return paths;
}

/**
 * The plan's table of a policy (the rows after `header`): each path of the first cell, `<env>`
 * made dev, staging and prod, with the capabilities of the second cell, sorted.
 */
function tableCapabilities(plan: string, header: string): Map<string, string[]> {
  const lines = plan.slice(plan.indexOf(header)).split('\n').slice(2);
  const paths = new Map<string, string[]>();
  for (const line of lines.slice(0, lines.findIndex((l) => !l.trim().startsWith('|')))) {
    const [first = '', second = ''] = line.trim().replace(/^\| | \|$/g, '').split(' | ');
    const capabilities = [...second.matchAll(/`([a-z]+)`/g)].map((m) => m[1] ?? '').sort();
    for (const [, path = ''] of first.matchAll(/`([^`]+)`/g)) {
      for (const env of path.includes('<env>') ? ['dev', 'staging', 'prod'] : ['']) paths.set(path.replace('<env>', env), capabilities);
    }
  }
  return paths;
}

/** A duration as the plan writes it: `24 h`, `17 h 59 min`, `10 min`, `30 s`. */
function inFrench(ms: number): string {
  const parts = [[Math.floor(ms / 3_600_000), 'h'], [Math.floor((ms % 3_600_000) / 60_000), 'min'], [Math.floor((ms % 60_000) / 1000), 's']] as const;
  return parts.filter(([n]) => n > 0).map(([n, unit]) => `${n} ${unit}`).join(' ');
}

/**
 * A command the plan shows as a script's (`vault write -f sys/locked-users/<accesseur>/unlock/<role-id>`)
 * as a pattern over the script's source: `vault` is `"$cli"`, a `<placeholder>` any word, and
 * each word may be quoted.
 */
function commandPattern(command: string): RegExp {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const words = command.trim().split(/\s+/).map((word, i) => (i === 0 && word === 'vault'
    ? '"\\$cli"'
    : `"?${word.split(/<[^>\s]+>/).map(escape).join('\\S+')}"?`));
  return new RegExp(words.join('\\s+'));
}

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

  it('cites no path that is neither in the repository nor listed as generated', async function () {
    const cited = citedPaths(plan, await readdir(repoRoot));
    expect(cited.length).to.be.greaterThan(30);
    const ignored = await readFile(join(repoRoot, '.gitignore'), 'utf8').then((text) => text.split('\n'));
    for (const path of cited) {
      const generated = generatedPrefixes.find((prefix) => `${path}/`.startsWith(prefix));
      if (generated !== undefined) expect(ignored, `${path}: ${generated} is generated, so git-ignored`).to.include(generated);
      else expect(await exists(join(repoRoot, path)), path).to.be.true;
    }
    // The check catches a file the repository does not hold, wherever the plan cites it.
    expect(citedPaths('les exigences (`shared/seed/requirements.md`) et\n```sh\nsh tools/missing.sh\n```', []))
      .to.deep.equal(['shared/seed/requirements.md', 'tools/missing.sh']);
  });

  it('lists every halt code of the traffic gate in its table', function () {
    const table = plan.slice(plan.indexOf('| situation | état |'), plan.indexOf('À l\'arrêt, toutes les routes'));
    for (const code of Object.keys(publicHaltMessages)) expect(table, code).to.contain(`code \`${code}\``);
  });

  it('gives API equivalents that run: a {"policy": "…"} body, the KV writes, the role id read, no secret/ mount on dev', function () {
    const block = plan.slice(plan.indexOf('Équivalents API'), plan.indexOf('### La politique (ACL)'));
    expect(block).to.not.contain('policy.json');
    expect(block).to.contain('jq -Rs \'{policy: .}\' policies/saas-app-dev.hcl');
    for (const group of secretGroups) expect(block, group).to.match(new RegExp(`-X POST --data @- \\$VAULT_ADDR/v1/secret/data/saas-project/dev/${group}\\n`));
    expect(block).to.contain('$VAULT_ADDR/v1/auth/approle/role/saas-app-dev/role-id | jq -r .data.role_id');
    expect(block).to.contain('serveur dev, `secret/` existe déjà');
  });

  it('tells the compose operator where the dev root token is, as docker-compose.yml makes it', async function () {
    const compose = await readFile(join(repoRoot, 'docker-compose.yml'), 'utf8');
    expect(compose).to.contain('HOME: /vault/home').and.to.contain('- vault-home:/vault/home\n').and.not.to.contain('VAULT_DEV_ROOT_TOKEN_ID:');
    expect(plan).to.contain('VAULT_TOKEN="$(docker compose exec -T vault cat /vault/home/.vault-token)"');
  });

  it('unseals from the operator\'s host: the port and CA docker-compose.prod.yml publishes', async function () {
    const compose = await readFile(join(repoRoot, 'docker-compose.prod.yml'), 'utf8');
    // The default host port and the operator's TLS folder (vault-prepare copies it for uid 100).
    expect(compose).to.contain('"127.0.0.1:${VAULT_HOST_PORT:-8200}:8200"').and.to.contain('${PROD_DIR:-./.prod}/tls:/host/tls:ro');
    const runs = plan.split('\n').filter((l) => /^VAULT_ADDR=\S+ .*sh scripts\/prod\/unseal\.sh/.test(l));
    expect(runs).to.have.length.greaterThan(0);
    for (const run of runs) expect(run).to.contain('VAULT_ADDR=https://127.0.0.1:8200 VAULT_CACERT=.prod/tls/ca.pem ');
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
    const roles = new Set([...plan.matchAll(/auth\/approle\/role\/([\w<>-]+)/g)].map((m) => m[1]));
    const named = [...(['dev', 'staging', 'prod'] as const).map((env) => appRoleName('saas', env)), appRoleName('saas', 'dev').replace(/dev$/, '<env>')];
    for (const role of roles) expect(named, role).to.include(role);
    const policies = new Set(plan.match(/saas-(?:app|orchestrator)-(?:dev|staging|prod)\b/g) ?? []);
    for (const policy of policies) expect(await exists(join(repoRoot, `policies/${policy}.hcl`)), policy).to.be.true;
    expect(plan).to.contain(await readFile(join(repoRoot, 'policies/saas-app-dev.hcl'), 'utf8').then((hcl) =>
      hcl.split('\n').filter((l) => !l.startsWith('#')).join('\n').trim()));
  });

  it('names only environment variables that the service or the scripts read', async function () {
    const known = new Set<string>([
      ...Object.values(settingsSchema).map((s) => s.env), ...credentialVariables,
    ]);
    const shellScripts = async (dir: string) => (await readdir(join(repoRoot, dir))).filter((name) => name.endsWith('.sh'))
      .map((name) => join(dir, name));
    const scripts = [...await shellScripts('scripts'), ...await shellScripts('scripts/prod')]
      .map((path) => readFile(join(repoRoot, path), 'utf8'));
    const scriptText = (await Promise.all(scripts)).join('\n') + await readFile(join(repoRoot, 'scripts/stack/stack.ts'), 'utf8')
      + await readFile(join(repoRoot, 'docker-compose.yml'), 'utf8');
    const variables = new Set(plan.match(/`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`/g)?.map((v) => v.slice(1, -1)) ?? []);
    expect(variables.size).to.be.greaterThan(15);
    for (const variable of variables) {
      expect(known.has(variable) || scriptText.includes(variable), variable).to.be.true;
    }
  });

  it('runs in a test every script its production section and runbook tell an operator to run', async function () {
    const production = plan.slice(plan.indexOf('## 5. Transition vers la production'));
    // A command to run: `sh scripts/...`, not a script merely named.
    const scripts = new Set([...production.matchAll(/\bsh (?:\S*\/)?(scripts\/(?:prod\/)?[\w-]+\.sh)/g)].map((m) => m[1] ?? ''));
    expect(scripts.size).to.be.greaterThan(5);
    const testFiles = async (dir: string): Promise<string[]> => (await readdir(dir, { withFileTypes: true }))
      .flatMap((entry) => (entry.isDirectory() ? [] : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []))
      .concat(...await Promise.all((await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory())
        .map((e) => testFiles(join(dir, e.name)))));
    const run = new Set<string>();
    for (const file of await testFiles(join(repoRoot, 'service/test'))) {
      for (const script of scriptsRunIn(await readFile(file, 'utf8'), file)) run.add(script);
    }
    for (const script of scripts) expect([...run], `${script} is run by no test`).to.include(script);
    // A comment, a title, a file read or an assertion naming a script does not count.
    expect(scriptsRunIn([
      '// runScript(\'scripts/a.sh\', [], env)', 'describe(\'scripts/b.sh: what it does\', () => undefined);',
      'const text = readFile(join(repoRoot, \'scripts/c.sh\'));', 'expect(command).to.deep.equal([join(repoRoot, \'scripts/d.sh\')]);',
      'runScript(\'scripts/e.sh\', [], env);', 'execFile(\'sh\', [join(repoRoot, \'scripts/f.sh\'), \'x\']);',
      'const admin = (name: string) => runScript(`scripts/prod/${name}`, [], env); admin(\'g.sh\');',
    ].join('\n'), 'sample.ts')).to.deep.equal(['scripts/e.sh', 'scripts/f.sh', 'scripts/prod/g.sh']);
  });

  it('shows the bootstrap\'s own commands', async function () {
    // With the libraries it sources: "auth enable" lives in lib/vault-cli.sh's enable_auth_method.
    const script = await readFile(join(repoRoot, 'scripts/bootstrap.sh'), 'utf8');
    const sourced = [...script.matchAll(/^\. "\$here\/(lib\/[a-z-]+\.sh)"$/gm)].map((m) => m[1] ?? '');
    expect(sourced).to.include('lib/vault-cli.sh');
    const bootstrap = [script, ...await Promise.all(sourced.map((lib) => readFile(join(repoRoot, 'scripts', lib), 'utf8')))].join('\n');
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
  it('lists the app service\'s whole environment, as docker-compose.yml gives it', async function () {
    const compose = parseYaml(await readFile(join(repoRoot, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { environment?: Record<string, unknown> }> };
    const [list = ''] = said(oneLine(plan), /L'environnement de `app` ne contient que [^:]*: ([^.]*)\./);
    const listed = [...list.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]);
    expect([...listed].sort()).to.deep.equal(Object.keys(compose.services.app?.environment ?? {}).sort());
  });

  it('gives the agent\'s retries as every agent-config/env/*.hcl sets them, and how long they last', async function () {
    const [retries = '', minBackoff = '', maxBackoff = '', total = '', minutes = ''] = said(oneLine(plan),
      /`num_retries = (\d+)`, avec une attente qui double de `min_backoff` \((\d+) s\) à `max_backoff` \((\d+) s\), soit (\d+) s, environ (\S+) minutes/);
    for (const env of ['dev', 'staging', 'prod']) {
      const hcl = await readFile(join(repoRoot, `agent-config/env/${env}.hcl`), 'utf8');
      const setting = (name: string) => new RegExp(`^\\s*${name}\\s*=\\s*"?([^"\\s]+)"?`, 'm').exec(hcl)?.[1] ?? `no ${name}`;
      const shipped = { minBackoff: durationMs(setting('min_backoff')), maxBackoff: durationMs(setting('max_backoff')) };
      expect({ retries: setting('num_retries'), ...shipped }, env)
        .to.deep.equal({ retries, minBackoff: Number(minBackoff) * 1000, maxBackoff: Number(maxBackoff) * 1000 });
      expect(retryBudgetMs(shipped, { numRetries: Number(retries), secretIdNumUses: 0 }), env).to.equal(Number(total) * 1000);
    }
    expect(['une', 'deux', 'trois', 'quatre', 'cinq', 'six'][Math.round(Number(total) / 60) - 1], `${total} s`).to.equal(minutes);
  });

  it('gives saas-admin\'s capabilities path by path, exactly as policies/saas-admin.hcl grants them', async function () {
    const granted = policyCapabilities(await readFile(join(repoRoot, 'policies/saas-admin.hcl'), 'utf8'));
    expect(granted.get('secret/data/saas-infra/*'), 'the policy as read').to.deep.equal(['create', 'patch', 'read', 'update']);
    const stated = tableCapabilities(plan, '| chemin | capacités | pour quoi |');
    expect(Object.fromEntries([...stated].sort())).to.deep.equal(Object.fromEntries([...granted].sort()));
  });

  it('states the wrap TTLs the courier, the bootstrap and the first bootstrap ship, within the orchestrator policy\'s bound', async function () {
    const { durations } = await shippedProduction();
    const bootstrapWrap = durationMs(/\$\{SECRET_ID_WRAP_TTL:-([^}]+)\}/.exec(await readFile(join(repoRoot, 'scripts/bootstrap.sh'), 'utf8'))?.[1] ?? '');
    const text = oneLine(plan);
    for (const [, ttl = ''] of text.matchAll(/-wrap-ttl=(\w+)/g)) expect([durations.wrapTtl, bootstrapWrap], `-wrap-ttl=${ttl}`).to.include(durationMs(ttl));
    expect(said(text, /`WRAP_TTL` vaut (\d+ min)/)[0]).to.equal(inFrench(durations.wrapTtl));
    expect(said(text, /`SECRET_ID_WRAP_TTL=(\w+)`/)[0], 'the first bootstrap\'s').to.satisfy((ttl: string) => durationMs(ttl) === durations.firstWrapTtl);
    expect(said(text, /enveloppés pour (\d+ minutes) par le courrier \((\d+ minutes) pour le premier/))
      .to.deep.equal([inFrench(durations.wrapTtl), inFrench(durations.firstWrapTtl)].map((d) => d.replace('min', 'minutes')));
    for (const env of ['dev', 'staging', 'prod']) {
      const orchestrator = await readFile(join(repoRoot, `policies/saas-orchestrator-${env}.hcl`), 'utf8');
      const bounds = [...orchestrator.matchAll(/max_wrapping_ttl = "(\w+)"/g)];
      expect(bounds, env).to.have.length(1);
      for (const [, max = ''] of bounds) expect(durations.wrapTtl).to.be.at.most(durationMs(max));
    }
  });

  it('shows as a script\'s only commands that script runs', async function () {
    const blocks = [...plan.matchAll(/^`(scripts\/[\w/-]+\.sh)` exécute :\n\n```sh\n([\s\S]*?)```/gm)];
    expect(blocks.map(([, script]) => script)).to.include.members(['scripts/prod/renew-orchestrator-token.sh', 'scripts/prod/unlock-role-id.sh']);
    for (const [, script = '', block = ''] of blocks) {
      // The script's commands, not its comments.
      const source = (await readFile(join(repoRoot, script), 'utf8')).split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
      for (const line of block.split('\n').filter((l) => l.startsWith('vault '))) {
        expect(source, `${script}: ${line}`).to.match(commandPattern(line.replace(/#.*/, '')));
      }
    }
    // A command the script does not run is caught, and one it runs with variables is found.
    const unlock = await readFile(join(repoRoot, 'scripts/prod/unlock-role-id.sh'), 'utf8');
    expect(unlock).to.match(commandPattern('vault write -f sys/locked-users/<accesseur>/unlock/<role-id>'));
    expect(unlock).to.not.match(commandPattern('vault auth list -detailed'));
  });
});
