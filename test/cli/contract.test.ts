import { describe, expect, it } from 'vitest';

import {
  MAX_ARGUMENT_CHARS,
  formatContractAmount,
  isAccountName,
  isFileName,
  isIpv4,
  parseAtmArgs,
  parseBankArgs,
  parseContractAmount,
  parsePort,
  resultLine,
} from '../../cli/contract.ts';

describe('amounts', () => {
  it.each([
    ['0.00', 0],
    ['10.00', 1000],
    ['4294967295.99', 429_496_729_599],
    ['1.05', 105],
  ])('accepts %s as %i cents', (text, cents) => expect(parseContractAmount(text)).toBe(cents));

  it.each([
    '4294967296.00',
    '99999999999.99',
    '00.00',
    '01.00',
    '1',
    '1.0',
    '1.000',
    '.50',
    '-1.00',
    '+1.00',
    ' 1.00',
    '1,00',
    '1e3',
    '',
  ])('refuses %j', (text) => expect(parseContractAmount(text)).toBeNull());

  it('formats cents as a JSON number with two decimals', () => {
    expect(formatContractAmount(1000)).toBe('10.00');
    expect(formatContractAmount(5)).toBe('0.05');
    expect(formatContractAmount(1_000_000_000_000_00)).toBe('1000000000000.00');
    expect(JSON.parse(resultLine('ted', 'open', 1000))).toEqual({ account: 'ted', initial_balance: 10 });
    expect(resultLine('ted', 'balance', 4363)).toBe('{"account":"ted","balance":43.63}');
  });
});

describe('names, addresses and ports', () => {
  it('accepts account names of 1 to 250 characters of _ - . 0-9 a-z, . and .. included', () => {
    for (const name of ['a', '.', '..', '_-.09az', 'a'.repeat(250)]) expect(isAccountName(name)).toBe(true);
    for (const name of ['', 'a'.repeat(251), 'Ted', 'a b', 'a/b', 'é']) expect(isAccountName(name)).toBe(false);
  });

  it('accepts file names of 1 to 255 characters, never . or ..', () => {
    for (const name of ['a', 'bank.auth', '...', 'a'.repeat(255)]) expect(isFileName(name)).toBe(true);
    for (const name of ['', '.', '..', 'a'.repeat(256), '../x', '/tmp/x', 'A']) expect(isFileName(name)).toBe(false);
  });

  it('accepts dotted quads 0-255 without leading zeros', () => {
    for (const ip of ['127.0.0.1', '0.0.0.0', '255.255.255.255']) expect(isIpv4(ip)).toBe(true);
    for (const ip of ['256.0.0.1', '01.0.0.1', '1.2.3', '1.2.3.4.5', 'localhost', '1.2.3.-1', '']) {
      expect(isIpv4(ip)).toBe(false);
    }
  });

  it('accepts ports 1024 to 65535 without leading zeros', () => {
    expect(parsePort('1024')).toBe(1024);
    expect(parsePort('65535')).toBe(65535);
    for (const port of ['1023', '65536', '03000', '0', '', '3000a']) expect(parsePort(port)).toBeNull();
  });
});

describe('bin/bank command line', () => {
  it('has defaults and takes values attached or separate', () => {
    expect(parseBankArgs([])).toEqual({ port: 3000, authFile: 'bank.auth' });
    expect(parseBankArgs(['-p4000', '-s', 'x.auth'])).toEqual({ port: 4000, authFile: 'x.auth' });
  });

  it.each([
    [['-p', '3000', '-p', '3001']],
    [['-x']],
    [['-p']],
    [['extra']],
    [['-s', '..']],
    [['-p', '80']],
    [['-s', 'a'.repeat(MAX_ARGUMENT_CHARS + 1)]],
  ])('refuses %j', (argv) => expect(parseBankArgs(argv)).toBeNull());
});

describe('bin/atm command line', () => {
  it('has defaults', () => {
    expect(parseAtmArgs(['-a', 'ted', '-g'])).toEqual({
      authFile: 'bank.auth',
      ip: '127.0.0.1',
      port: 3000,
      cardFile: 'ted.card',
      account: 'ted',
      mode: { kind: 'balance' },
    });
  });

  it('takes options in any order, attached or separate, and getopt-style grouping', () => {
    const expected = {
      ip: '10.0.0.1',
      port: 4000,
      cardFile: 'c.card',
      account: 'bob',
      mode: { kind: 'deposit', cents: 2000 },
    };
    expect(parseAtmArgs(['-d', '20.00', '-i10.0.0.1', '-p', '4000', '-c', 'c.card', '-abob'])).toMatchObject(expected);
    expect(parseAtmArgs(['-ga', 'ted'])).toMatchObject({ account: 'ted', mode: { kind: 'balance' } });
    expect(parseAtmArgs(['-a', 'ted', '-n', '10.00'])).toMatchObject({ mode: { kind: 'open', cents: 1000 } });
    expect(parseAtmArgs(['-a', 'ted', '-w', '0.01'])).toMatchObject({ mode: { kind: 'withdraw', cents: 1 } });
  });

  it.each([
    [['-g']],
    [['-a', 'ted']],
    [['-a', 'ted', '-g', '-d', '1.00']],
    [['-a', 'ted', '-g', '-g']],
    [['-a', 'ted', '-a', 'ted', '-g']],
    [['-a', 'ted', '-n', '9.99']],
    [['-a', 'ted', '-d', '0.00']],
    [['-a', 'ted', '-w', '0.00']],
    [['-a', 'ted', '-d', '4294967296.00']],
    [['-a', 'ted', '-g', 'extra']],
    [['-a', 'ted', '-g', '--', 'extra']],
    [['-a', 'ted', '-x', '-g']],
    [['-a', 'ted', '-d']],
    [['-a', 'Ted', '-g']],
    [['-a', 'ted', '-g', '-i', '1.2.3.04']],
    [['-a', 'ted', '-g', '-p', '1023']],
    [['-a', 'ted', '-g', '-c', '.']],
    [['-a', 'ted', '-g', '-s', 'a/b']],
    [['-a', 'a'.repeat(251), '-g']],
    [['-a', 'ted', '-g', '-c', 'x'.repeat(4097)]],
  ])('refuses %j', (argv) => expect(parseAtmArgs(argv)).toBeNull());

  it('names the default card file after the account, also for the longest account name', () => {
    expect(parseAtmArgs(['-a', 'a'.repeat(250), '-g'])?.cardFile).toBe(`${'a'.repeat(250)}.card`);
  });
});
