import { X509Certificate } from 'node:crypto';
import { isIP, Socket } from 'node:net';
import { connect, type ConnectionOptions } from 'node:tls';
import type { Settings } from '../config/settings.js';
import { readNamedFile } from '../config/named-file.js';
import { StartupError } from '../config/startup-error.js';
import type { Logger } from '../log/logger.js';

type TlsSettings = Pick<Settings, 'databaseHost' | 'databasePort' | 'databaseSslMode' | 'databaseCaFile'>;

/** What pg.Pool's `ssl` takes: false (clear), or Node's TLS options. */
export type DatabaseSsl = false | ConnectionOptions;

/** PostgreSQL's SSLRequest: length 8, then the code 1234.5679 (protocol section 55.2.10). */
const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/** Node's codes for a certificate that does not chain to the CA given (its verification errors). */
const chainErrors = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REJECTED', 'INVALID_CA', 'INVALID_PURPOSE',
]);

type ProbeResult = { outcome: 'verified' } | { outcome: 'no-tls' } | { outcome: 'unreachable' | 'refused'; error: Error };

/**
 * The pool's TLS options, checked once against the server before anything else starts.
 *
 * verify-full: the CA file must hold a PEM certificate, and PostgreSQL's certificate must chain
 * to it and name DATABASE_HOST (as libpq's verify-full: a DNS name, or an IP address in its
 * subjectAltName). A server that answers but fails that, or does not speak TLS, stops the
 * start naming the setting at fault; a server that does not answer yet is only logged (the
 * service starts without its database, as in clear, and every connection checks the same).
 */
export async function databaseTls(settings: TlsSettings, logger: Logger, timeoutMs = 5000): Promise<DatabaseSsl> {
  if (settings.databaseSslMode === 'disable') return false;
  const file = settings.databaseCaFile;
  const ca = await readNamedFile('DATABASE_CA_FILE', file);
  try {
    new X509Certificate(ca);
  } catch {
    throw new StartupError(`DATABASE_CA_FILE names ${file}, which holds no PEM certificate`);
  }
  const host = settings.databaseHost;
  // pg gives Node the host name as servername (SNI) only when it is no IP address; Node checks
  // the certificate against that name, or against the address it connected to.
  const ssl: ConnectionOptions = { ca, rejectUnauthorized: true, ...(isIP(host) === 0 ? { servername: host } : {}) };
  const where = `PostgreSQL at ${host}:${settings.databasePort} (DATABASE_HOST, DATABASE_PORT)`;
  const result = await probe(host, settings.databasePort, ssl, timeoutMs);
  switch (result.outcome) {
    case 'verified':
      logger.info({ host, port: settings.databasePort }, 'PostgreSQL\'s certificate verified against DATABASE_CA_FILE');
      return ssl;
    case 'no-tls':
      throw new StartupError(`${where} does not accept TLS, and DATABASE_SSL_MODE is verify-full`);
    case 'refused': {
      const code = (result.error as NodeJS.ErrnoException).code ?? 'error';
      if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
        throw new StartupError(`${where} presents a certificate that does not name DATABASE_HOST (${host}) (${code})`);
      }
      throw new StartupError(`${where} presents a certificate that DATABASE_CA_FILE (${file}) does not verify (${code})`);
    }
    case 'unreachable':
      logger.warn({ host, port: settings.databasePort, err: result.error.message },
        'PostgreSQL does not answer yet: its certificate is checked against DATABASE_CA_FILE at every connection');
      return ssl;
  }
}

/** SSLRequest, then a TLS handshake with the pool's own options; no startup message, no credentials. */
function probe(host: string, port: number, ssl: ConnectionOptions, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let settled = false;
    const done = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => { done({ outcome: 'unreachable', error: new Error(`no answer within ${timeoutMs} ms`) }); }, timeoutMs);
    socket.once('error', (error) => { done({ outcome: 'unreachable', error }); });
    socket.connect(port, host, () => { socket.write(sslRequest); });
    socket.once('data', (answer) => {
      if (answer[0] !== 0x53) { // 'S'; 'N' (no TLS) or an error
        done({ outcome: 'no-tls' });
        return;
      }
      socket.removeAllListeners('error');
      const secure = connect({ ...ssl, socket, host });
      secure.once('secureConnect', () => {
        secure.end();
        done({ outcome: 'verified' });
      });
      secure.once('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? '';
        done(chainErrors.has(code) || code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? { outcome: 'refused', error } : { outcome: 'unreachable', error });
      });
    });
  });
}
