import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RuleSet, type Candidate } from '../../src/enrollment/rules.js';
import { ConfigError } from '../../src/errors.js';

const device = (over: Partial<Candidate>): Candidate => ({
  macs: [],
  serials: [],
  source: '',
  ...over,
});

const FILE = `# lab switches
mac-prefix 00:1B:21        # Intel
mac-prefix 3c-fd-fe
serial FOC1234X5678
serial-pattern JPE2*
source 10.20.0.0/16
source 2001:db8:1::/48
`;

describe('enrollment rules', () => {
  const rules = RuleSet.parse(FILE, 'rules.txt');

  it('reads one rule per line, skipping comments and blank lines', () => {
    assert.equal(rules.size, 6);
    assert.deepEqual(rules.rules[0], {
      kind: 'mac-prefix',
      value: '00:1B:21',
      where: 'rules.txt:2',
    });
  });

  it('accepts a MAC from a listed vendor prefix, in any notation the prefix was written in', () => {
    assert.equal(rules.match(device({ macs: ['00:1b:21:aa:bb:cc'] }))?.where, 'rules.txt:2');
    assert.equal(rules.match(device({ macs: ['3c:fd:fe:00:00:01'] }))?.where, 'rules.txt:3');
    assert.equal(rules.match(device({ macs: ['00:1b:22:aa:bb:cc'] })), undefined);
  });

  it('accepts listed serials exactly and patterned serials by glob, ignoring case', () => {
    assert.equal(rules.match(device({ serials: ['foc1234x5678'] }))?.where, 'rules.txt:4');
    assert.equal(rules.match(device({ serials: ['FOC1234X567'] })), undefined);
    assert.equal(rules.match(device({ serials: ['JPE2045001'] }))?.where, 'rules.txt:5');
    assert.equal(rules.match(device({ serials: ['XJPE2045001'] })), undefined);
  });

  it('accepts a registration from a listed network, IPv4 (also IPv4-mapped) and IPv6', () => {
    assert.equal(rules.match(device({ source: '10.20.3.4' }))?.where, 'rules.txt:6');
    assert.equal(rules.match(device({ source: '::ffff:10.20.3.4' }))?.where, 'rules.txt:6');
    assert.equal(rules.match(device({ source: '10.21.0.1' })), undefined);
    assert.equal(rules.match(device({ source: '2001:db8:1:5::9' }))?.where, 'rules.txt:7');
    assert.equal(rules.match(device({ source: '' })), undefined);
  });

  it('takes the first matching rule', () => {
    const both = device({ macs: ['00:1b:21:00:00:01'], source: '10.20.0.9' });
    assert.equal(rules.match(both)?.kind, 'mac-prefix');
  });

  it('an empty file accepts nobody', () => {
    const none = RuleSet.parse('# nothing yet\n\n', 'empty');
    assert.equal(none.size, 0);
    assert.equal(none.match(device({ macs: ['00:1b:21:00:00:01'] })), undefined);
  });

  for (const [text, message] of [
    ['mac-prefix 00:1b:21\nvendor intel', /^r:2: unknown rule 'vendor'/],
    ['serial', /^r:1: 'serial' needs a value/],
    ['serial A B', /^r:1: one value per rule/],
    ['mac-prefix 00:1g', /^r:1: '00:1g' is not a MAC prefix/],
    ['mac-prefix 00:11:22:33:44:55:66', /is not a MAC prefix/],
    ['serial FOC\u0001', /is not a serial number/],
    ['serial-pattern FOC[12]', /is not a serial pattern/],
    ['source 10.0.0.0/33', /^r:1: '10.0.0.0\/33' is not an address or network/],
    ['source 10.0.0/8', /is not an address or network/],
    ['source fe80::/129', /is not an address or network/],
  ] as const) {
    it(`refuses ${JSON.stringify(text)} naming the line`, () => {
      assert.throws(
        () => RuleSet.parse(text, 'r'),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    });
  }
});
