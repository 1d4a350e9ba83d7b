import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOutputFile, makeFolders, prepareOutputFolder, writeOutputFile } from '../../../cli/validate.js';
import { ConfigError, OutputFileError } from '../../../lib/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'specula-output-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkOutputFile: the file a command will write, checked before its work', () => {
  it('accepts a new file and leaves nothing behind', () => {
    const file = join(dir, 'new.svg');
    checkOutputFile('--plot', file);
    expect(existsSync(file)).toBe(false);
  });

  it('accepts a file that is there and leaves its bytes as they were', () => {
    const file = join(dir, 'kept.json');
    writeFileSync(file, 'earlier run');
    checkOutputFile('--trace-out', file);
    expect(readFileSync(file, 'utf8')).toBe('earlier run');
  });

  it('leaves a dangling link alone: neither removed nor its target made', () => {
    const link = join(dir, 'link.svg');
    const target = join(dir, 'target.svg');
    symlinkSync(target, link);
    checkOutputFile('--plot', link);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(existsSync(target)).toBe(false);
  });

  it('refuses a folder, or a path under a file, with a ConfigError naming the flag', () => {
    const aFile = join(dir, 'a-file');
    writeFileSync(aFile, '');
    expect(() => checkOutputFile('--plot', dir)).toThrow(ConfigError);
    expect(() => checkOutputFile('--plot', join(aFile, 'x.svg'))).toThrow(/--plot .*is not a folder/);
  });
});

describe('writeOutputFile: a failed write after the work', () => {
  it('is an OutputFileError naming the flag, the file and why, not a bare errno', () => {
    const gone = join(dir, 'gone');
    const file = join(gone, 'experiment.json');
    expect(() => writeOutputFile('--out', file, '{}')).toThrow(OutputFileError);
    expect(() => writeOutputFile('--out', file, '{}')).toThrow(`--out ${file}: cannot be written (it does not exist)`);
  });

  it('writes the data when it can', () => {
    const file = join(dir, 'written.json');
    writeOutputFile('--out', file, '{"ok":true}');
    expect(readFileSync(file, 'utf8')).toBe('{"ok":true}');
  });
});

describe('makeFolders and prepareOutputFolder: the output folder, made before the work', () => {
  it('makes the missing levels, and takes a folder that is there', () => {
    const deep = join(dir, 'made', 'a', 'b');
    makeFolders(deep);
    expect(statSync(deep).isDirectory()).toBe(true);
    makeFolders(deep);
    expect(prepareOutputFolder('--out', join(dir, 'made', 'c'))).toBe(join(dir, 'made', 'c'));
  });

  it('refuses a file where the folder or one of its parents should be, naming the flag', () => {
    const aFile = join(dir, 'plain-file');
    writeFileSync(aFile, '');
    expect(() => prepareOutputFolder('--out', aFile)).toThrow(`--out ${aFile}: cannot be created or written (it exists and is no folder)`);
    expect(() => prepareOutputFolder('--out', join(aFile, 'x'))).toThrow(/--out .*a part of the path is a file/);
  });

  // Node's own recursive mkdir never returns for this path (Node 20).
  it.skipIf(!existsSync('/proc/self'))('refuses a folder under /proc at once, where no folder can be made', () => {
    expect(() => prepareOutputFolder('--out', '/proc/specula-x')).toThrow(ConfigError);
  });
});
