import { expect } from 'chai';
import { errorText } from '../../src/vault/vault-error.js';

describe('errorText: Vault\'s error on one line', function () {
  it('keeps OpenBao\'s single reason', function () {
    expect(errorText('permission denied')).to.equal('permission denied');
  });

  it('says every reason of HashiCorp Vault\'s "N errors occurred:" list, not the count', function () {
    expect(errorText('2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n')).to.equal('permission denied, invalid token');
    expect(errorText('1 error occurred:\n\t* lease not found\n\n')).to.equal('lease not found');
  });

  it('keeps the first line of any other multi-line text', function () {
    expect(errorText('invalid lease\nmore detail')).to.equal('invalid lease');
  });
});
