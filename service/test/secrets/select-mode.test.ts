import { expect } from 'chai';
import { selectMode } from '../../src/secrets/select-mode.js';

const files = { secretsFile: '/vault/secrets/app.json', vaultTokenFile: '/vault/secrets/token' };

describe('selectMode', function () {
  it('takes agent or sdk as given', function () {
    expect(selectMode({ ...files, secretsMode: 'agent' }, {}, () => false)).to.equal('agent');
    expect(selectMode({ ...files, secretsMode: 'sdk' }, {}, () => true)).to.equal('sdk');
  });

  it('auto: agent when the rendered file or the token sink exists', function () {
    expect(selectMode({ ...files, secretsMode: 'auto' }, {}, (p) => p === files.secretsFile)).to.equal('agent');
    expect(selectMode({ ...files, secretsMode: 'auto' }, { VAULT_ROLE_ID: 'x' }, (p) => p === files.vaultTokenFile))
      .to.equal('agent');
  });

  it('auto: sdk when a role id is given and no agent file exists', function () {
    expect(selectMode({ ...files, secretsMode: 'auto' }, { VAULT_ROLE_ID: 'x' }, () => false)).to.equal('sdk');
    expect(selectMode({ ...files, secretsMode: 'auto' }, { VAULT_ROLE_ID_FILE: '/run/role' }, () => false)).to.equal('sdk');
  });

  it('auto: otherwise refuses, listing every file and variable it looked for', function () {
    expect(() => selectMode({ ...files, secretsMode: 'auto' }, { VAULT_ROLE_ID: '' }, () => false)).to.throw(
      'SECRETS_MODE=auto found no way to get secrets: no rendered file at /vault/secrets/app.json (SECRETS_FILE), ' +
      'no agent token at /vault/secrets/token (VAULT_TOKEN_FILE), and neither VAULT_ROLE_ID nor VAULT_ROLE_ID_FILE is set');
  });
});
