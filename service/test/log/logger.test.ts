import { expect } from 'chai';
import { withLogContext } from '../../src/log/log-context.js';
import { createLogger, requestLineLogger } from '../../src/log/logger.js';
import { capturingLogger } from '../support/rendered-secrets.js';

describe('createLogger and the log context', function () {
  it('adds reqId to every line written inside the context, sync or after an await, and none outside', async function () {
    const log = capturingLogger();
    log.logger.info('before');
    await withLogContext({ reqId: 'r-1' }, async () => {
      log.logger.info('sync');
      await new Promise((resolve) => setTimeout(resolve, 1));
      log.logger.warn({ path: '/x' }, 'after await');
    });
    log.logger.info('after');
    expect(log.lines.map(({ msg, reqId }) => ({ msg, reqId }))).to.deep.equal([
      { msg: 'before', reqId: undefined },
      { msg: 'sync', reqId: 'r-1' },
      { msg: 'after await', reqId: 'r-1' },
      { msg: 'after', reqId: undefined },
    ]);
  });

  it('keeps one line\'s fields off the next line of the same context', function () {
    const log = capturingLogger();
    withLogContext({ reqId: 'r-2' }, () => {
      log.logger.info({ path: '/first' }, 'one');
      log.logger.info('two');
    });
    expect(log.lines[1]).to.include({ reqId: 'r-2', msg: 'two' }).and.not.have.property('path');
  });

  it('keeps redacting inside a context', function () {
    const log = capturingLogger();
    withLogContext({ reqId: 'r-3' }, () => { log.logger.info({ password: 'p4ss-never-logged' }, 'oops'); });
    expect(log.lines[0]).to.include({ reqId: 'r-3', password: '[redacted]' });
  });

  it('requestLineLogger writes the same format to the same stream at the same level, without redaction', function () {
    const log = capturingLogger();
    const lines = requestLineLogger(log.logger);
    withLogContext({ reqId: 'r-4' }, () => {
      log.logger.info({ path: '/a' }, 'general');
      lines.info({ path: '/b' }, 'request');
      lines.debug('below the level? no: capturingLogger is at debug');
      // Without the redaction pass: a field the general logger censors goes out as given.
      log.logger.info({ token: 'no-secret-here' }, 'general, redacted');
      lines.info({ token: 'no-secret-here' }, 'request, as given');
    });
    const [general, request] = log.lines;
    expect(Object.keys(request ?? {}).sort()).to.deep.equal(Object.keys(general ?? {}).sort());
    expect(request).to.include({ level: 'info', service: 'saas-app', reqId: 'r-4', path: '/b', msg: 'request' });
    expect(String(request?.time)).to.match(/^\d{4}-\d\d-\d\dT/);
    expect(log.lines[3]).to.include({ msg: 'general, redacted', token: '[redacted]' });
    expect(log.lines[4]).to.include({ msg: 'request, as given', token: 'no-secret-here' });
    expect(log.lines).to.have.length(5);
    const silent = createLogger('silent', { write: () => { throw new Error('nothing may be written'); } });
    requestLineLogger(silent).info('never');
  });
});

