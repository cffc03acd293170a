import { expect } from 'chai';
import { withLogContext } from '../../src/log/log-context.js';
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
});
