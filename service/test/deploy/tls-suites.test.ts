import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { serverBin, vaultServer } from '../support/bao.js';
import { generateTls as generateVaultTls, startServerNode, type ServerNode } from '../support/bao-server.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { enableTls, generateTls as generatePostgresTls } from '../support/postgres-tls.js';
import { repoRoot } from '../support/repo-root.js';
import { tempDir } from '../support/temp-dirs.js';

/*
 * What the shipped TLS settings offer, as testssl.sh (Debian's package, installed by
 * scripts/ensure-testssl.sh) sees it: a real server on deploy/vault-server.hcl's listener, and a
 * real PostgreSQL with docker-compose.prod.yml's ssl settings. Every suite offered must be an
 * AEAD one with an ephemeral key exchange (forward secrecy): no CBC, no static RSA.
 */

const run = promisify(execFile);
const prodComposeFile = join(repoRoot, 'docker-compose.prod.yml');

/** testssl.sh as scripts/ensure-testssl.sh finds it (installing Debian's testssl.sh package when missing). */
async function ensureTestssl(): Promise<string> {
  return (await run('sh', [join(repoRoot, 'scripts/ensure-testssl.sh')], { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
}

interface Suite {
  /** As testssl.sh names it: `TLS 1.2`, `TLS 1.3`, `SSLv3`... */
  protocol: string;
  /** The IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256. */
  name: string;
}

interface Finding { id: string; severity: string; finding: string }

/** The suites testssl.sh's `-E` (ciphers per protocol) found offered, from its JSON file. */
function offeredSuites(findings: readonly Finding[]): Suite[] {
  return findings
    .filter((f) => /^cipher-(sslv2|sslv3|tls1|tls1_1|tls1_2|tls1_3)_x[0-9a-f]+$/i.test(f.id))
    .map((f) => {
      const words = f.finding.trim().split(/\s+/);
      return { protocol: /^SSLv/.test(words[0] ?? '') ? words[0] ?? '' : `${words[0] ?? ''} ${words[1] ?? ''}`, name: words.at(-1) ?? '' };
    });
}

const aead = /_(GCM|CCM|CCM_8|CHACHA20_POLY1305)(_SHA\d+)?$/;
/** TLS 1.3's suites name no key exchange: it is always ephemeral. Before it, only (EC)DHE is. */
const forwardSecret = (suite: Suite) => suite.protocol === 'TLS 1.3' ? !suite.name.includes('_WITH_') : /^TLS_(ECDHE|DHE)_/.test(suite.name);

/** The suites that are not AEAD with forward secrecy, each said with its protocol. */
function weakSuites(suites: readonly Suite[]): string[] {
  return suites.filter((s) => !aead.test(s.name) || !forwardSecret(s)).map((s) => `${s.protocol} ${s.name}`);
}

/** Runs testssl.sh -E against host:port and returns every suite offered; throws with its output when it found none. */
async function testssl(bin: string, target: string, extra: readonly string[] = []): Promise<Suite[]> {
  const json = join(await tempDir('testssl'), 'out.json');
  const result = await run(bin, ['--quiet', '--color', '0', '--warnings', 'off', '--ip', 'one', '-E', '--jsonfile', json, ...extra, target], {
    maxBuffer: 16 * 1024 * 1024, timeout: 280_000,
  }).catch((error: unknown) => error as { stdout?: string; stderr?: string });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  const findings = JSON.parse(await readFile(json, 'utf8').catch(() => '[]')) as Finding[];
  const suites = offeredSuites(findings);
  if (suites.length === 0) throw new Error(`testssl.sh found no suite offered at ${target}:\n${output}`);
  return suites;
}

describe('TLS suites as testssl.sh sees them: a real non-dev server on the shipped listener, a real PostgreSQL with the shipped ssl settings', function () {
  this.timeout(300_000);
  let bin: string;

  before(async function () {
    this.timeout(600_000); // a fresh machine installs the package first
    bin = await ensureTestssl();
  });

  it('classifies suites as testssl.sh names them: AEAD with forward secrecy passes, CBC and static RSA do not', function () {
    const findings: Finding[] = [
      { id: 'cipher-tls1_3_x1301', severity: 'INFO', finding: 'TLS 1.3   x1301   TLS_AES_128_GCM_SHA256   ECDH 253   AESGCM   128   TLS_AES_128_GCM_SHA256' },
      { id: 'cipher-tls1_2_xc02f', severity: 'INFO', finding: 'TLS 1.2   xc02f   ECDHE-RSA-AES128-GCM-SHA256   ECDH 253   AESGCM   128   TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' },
      { id: 'cipher-tls1_2_xc013', severity: 'INFO', finding: 'TLS 1.2   xc013   ECDHE-RSA-AES128-SHA   ECDH 253   AES   128   TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA' },
      { id: 'cipher-tls1_2_x9c', severity: 'INFO', finding: 'TLS 1.2   x9c   AES128-GCM-SHA256   RSA   AESGCM   128   TLS_RSA_WITH_AES_128_GCM_SHA256' },
      { id: 'cipherorder_TLSv1_2', severity: 'INFO', finding: 'ECDHE-RSA-AES128-GCM-SHA256' },
    ];
    const suites = offeredSuites(findings);
    expect(suites).to.have.length(4);
    expect(weakSuites(suites)).to.deep.equal(['TLS 1.2 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA', 'TLS 1.2 TLS_RSA_WITH_AES_128_GCM_SHA256']);
  });

  describe(`${vaultServer.name} on deploy/vault-server.hcl's listener`, function () {
    let node: ServerNode | undefined;

    before(async function () {
      this.timeout(60_000);
      node = await startServerNode(await generateVaultTls());
    });

    after(async function () {
      await node?.stop();
    });

    it('offers only AEAD suites with forward secrecy (testssl.sh -E), TLS 1.3 among them', async function () {
      const suites = await testssl(bin, (node?.addr ?? '').replace(/^https:\/\//, ''));
      expect(weakSuites(suites), JSON.stringify(suites)).to.deep.equal([]);
      expect(suites.map((s) => s.protocol)).to.include('TLS 1.3');
    });

    it('is reached by the clients the project ships: Node.js (the start-up wait above) and the Go CLI', async function () {
      const status = await run(serverBin, ['status', '-format=json'], { env: node?.cliEnv() }).catch((error: unknown) => error as { stdout?: string });
      // Uninitialised: status exits 2, after a TLS handshake that succeeded and an answer read.
      expect((JSON.parse(status.stdout ?? '{}') as { initialized?: boolean }).initialized).to.equal(false);
    });

    it('has the same TLS settings in the three HA nodes\' files (deploy/ha/)', async function () {
      const tlsLines = (text: string) => text.split('\n').map((l) => l.trim()).filter((l) => /^tls_(min_version|max_version|cipher_suites)\b/.test(l));
      const single = tlsLines(await readFile(join(repoRoot, 'deploy/vault-server.hcl'), 'utf8'));
      expect(single).to.have.length.greaterThan(0);
      for (const id of ['vault-1', 'vault-2', 'vault-3']) {
        expect(tlsLines(await readFile(join(repoRoot, `deploy/ha/${id}.hcl`), 'utf8')), id).to.deep.equal(single);
      }
    });
  });

  describe('PostgreSQL with docker-compose.prod.yml\'s ssl settings', function () {
    let postgres: TestPostgres | undefined;

    before(async function () {
      this.timeout(120_000);
      const compose = parse(await readFile(prodComposeFile, 'utf8')) as { services: { postgres: { command: string[] } } };
      const command = compose.services.postgres.command;
      // Every `-c ssl…` setting the file gives, but the certificate's paths and `ssl` itself (the
      // test's own files, turned on by enableTls).
      const settings = command.flatMap((word, i) => (command[i - 1] === '-c' ? [word] : []))
        .map((setting) => setting.split('=') as [string, string])
        .filter(([key]) => key.startsWith('ssl') && !['ssl', 'ssl_cert_file', 'ssl_key_file'].includes(key));
      expect(settings.map(([key]) => key), 'the file sets the TLS protocol or suites').to.satisfy(
        (keys: string[]) => keys.some((key) => ['ssl_min_protocol_version', 'ssl_ciphers'].includes(key)));
      postgres = await startTestPostgres();
      for (const [key, value] of settings) await postgres.query(`ALTER SYSTEM SET ${key} = '${value}'`);
      await enableTls(postgres, await generatePostgresTls('localhost', '127.0.0.1'));
    });

    after(async function () {
      await postgres?.stop();
    });

    it('offers only AEAD suites with forward secrecy (testssl.sh --starttls postgres -E), TLS 1.3 among them', async function () {
      const suites = await testssl(bin, `127.0.0.1:${String(postgres?.layout.port)}`, ['--starttls', 'postgres']);
      expect(weakSuites(suites), JSON.stringify(suites)).to.deep.equal([]);
      expect(suites.map((s) => s.protocol)).to.include('TLS 1.3');
    });
  });
});
