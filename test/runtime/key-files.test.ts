import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  createSecretFile,
  encodeAtmCredential,
  encodeBankKeys,
  encodeRevocations,
  readAtmCredential,
  readBankKeys,
  readRevocations,
  writeFileDurably,
} from '../../runtime/key-files.ts';
import { testCredential } from '../protocol/fixtures.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'key-files-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Records the order of the file-system calls that make a write durable. */
function traceFs(): string[] {
  const trace: string[] = [];
  const fdNames = new Map<number, string>();
  const openSync = fs.openSync.bind(fs);
  vi.spyOn(fs, 'openSync').mockImplementation((file, ...rest) => {
    const fd = openSync(file, ...rest);
    fdNames.set(fd, fs.statSync(file).isDirectory() ? 'dir' : path.basename(String(file)));
    return fd;
  });
  const writeFileSync = fs.writeFileSync.bind(fs);
  vi.spyOn(fs, 'writeFileSync').mockImplementation((file, ...rest) => {
    trace.push(`write ${typeof file === 'number' ? fdNames.get(file) : path.basename(String(file))}`);
    writeFileSync(file, ...rest);
  });
  const fsyncSync = fs.fsyncSync.bind(fs);
  vi.spyOn(fs, 'fsyncSync').mockImplementation((fd) => {
    trace.push(`fsync ${fdNames.get(fd)}`);
    fsyncSync(fd);
  });
  const linkSync = fs.linkSync.bind(fs);
  vi.spyOn(fs, 'linkSync').mockImplementation((from, to) => {
    trace.push(`link ${path.basename(String(to))}`);
    linkSync(from, to);
  });
  const renameSync = fs.renameSync.bind(fs);
  vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
    trace.push(`rename ${path.basename(String(to))}`);
    renameSync(from, to);
  });
  return trace;
}

describe('createSecretFile', () => {
  it('writes a temp file, fsyncs it, links it into place, then fsyncs the directory', () => {
    const file = path.join(tempDir(), 'audit.key');
    const trace = traceFs();
    expect(createSecretFile(file, 'secret\n')).toBe(true);
    expect(trace).toHaveLength(4);
    expect(trace[0]).toMatch(/^write \.tmp-[0-9]+-[0-9a-f]{16}$/);
    expect(trace[1]).toBe(trace[0]?.replace('write', 'fsync'));
    expect(trace.slice(2)).toEqual(['link audit.key', 'fsync dir']);
    expect(fs.readFileSync(file, 'utf8')).toBe('secret\n');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    // No temp file is left beside it.
    expect(fs.readdirSync(path.dirname(file))).toEqual(['audit.key']);
  });

  it('never replaces an existing key, and says it did not create it', () => {
    const file = path.join(tempDir(), 'bank.keys');
    expect(createSecretFile(file, 'first')).toBe(true);
    expect(createSecretFile(file, 'second')).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toBe('first');
    expect(fs.readdirSync(path.dirname(file))).toEqual(['bank.keys']);
  });

  it('leaves no file at the name when it fails before the link (a crash there leaves no empty key)', () => {
    const file = path.join(tempDir(), 'audit.key');
    vi.spyOn(fs, 'fsyncSync').mockImplementationOnce(() => {
      throw Object.assign(new Error('EIO'), { code: 'EIO' });
    });
    expect(() => createSecretFile(file, 'secret')).toThrow('EIO');
    expect(fs.readdirSync(path.dirname(file))).toEqual([]);
  });
});

describe('writeFileDurably with replace', () => {
  it('renames over the old version after fsyncing the new one', () => {
    const file = path.join(tempDir(), 'revoked-atms');
    writeFileDurably(file, 'old', { replace: true });
    const trace = traceFs();
    writeFileDurably(file, 'new', { replace: true });
    expect(trace.slice(2)).toEqual(['rename revoked-atms', 'fsync dir']);
    expect(trace[1]?.startsWith('fsync .tmp-')).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
  });
});

describe('key file formats', () => {
  it('round-trips an ATM credential and refuses another ATM number or a damaged key', () => {
    const dir = tempDir();
    const file = path.join(dir, 'atm-3.key');
    fs.writeFileSync(file, encodeAtmCredential(testCredential(3)));
    expect(readAtmCredential(file, 3)).toEqual(testCredential(3));
    expect(() => readAtmCredential(file, 4)).toThrow("ATM 3's credential, not ATM 4's");
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(file, JSON.stringify({ ...parsed, terminalKey: 'AAAA' }));
    expect(() => readAtmCredential(file)).toThrow('not a valid atm-terminal/v1 credential');
    expect(() => readAtmCredential(path.join(dir, 'missing.key'))).toThrow('ENOENT');
  });

  it('round-trips the bank keys and the revocation list', () => {
    const dir = tempDir();
    const keys = { terminalMasterKey: Buffer.alloc(32, 1), staticPrivateKey: Buffer.alloc(32, 2) };
    fs.writeFileSync(path.join(dir, 'bank.keys'), encodeBankKeys(keys));
    expect(readBankKeys(path.join(dir, 'bank.keys'))).toEqual(keys);
    expect(readRevocations(path.join(dir, 'revoked-atms'))).toEqual([]);
    const revoked = [{ atm: 2, at: '2026-01-01T00:00:00.000Z' }];
    fs.writeFileSync(path.join(dir, 'revoked-atms'), encodeRevocations(revoked));
    expect(readRevocations(path.join(dir, 'revoked-atms'))).toEqual(revoked);
    fs.writeFileSync(path.join(dir, 'revoked-atms'), '{"format":"atm-revocations/v1","revoked":[{"atm":-1}]}');
    expect(() => readRevocations(path.join(dir, 'revoked-atms'))).toThrow('not a valid');
  });
});

describe('writeFileDurably', () => {
  it('writes a file whose name is the longest a name may be (255 bytes)', () => {
    const file = path.join(tempDir(), 'k'.repeat(255));
    writeFileDurably(file, 'card\n', { mode: 0o600 });
    expect(fs.readFileSync(file, 'utf8')).toBe('card\n');
  });
});
