import { accessSync, closeSync, constants as fsConstants, lstatSync, mkdirSync, openSync, statSync, Stats, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, parse, resolve, sep } from 'node:path';
import { ConfigError, OutputFileError } from '../lib/errors.js';
import { MAX_SEED, runConfigSchema, vmIdSchema, type RunConfig, type RunConfigInput } from '../lib/config/run-config.js';
import { FLAG_FOR_PATH } from './run-options.js';

/** Fields whose flag counts in another unit: the schema's bound, said in the flag's unit. */
const MESSAGE_FOR_PATH: Readonly<Record<string, string>> = {
  'link.queueBytes': 'must be a whole number of packets, at least 1 (1500 bytes each)',
  'link.bandwidthBitsPerSec': 'must be above 0 and at most 400000 (Mbit/s)',
  seed: `must be a whole number from 0 to ${MAX_SEED}`,
};

/** Validates a run configuration; errors name the flag the user typed. */
export function validateRunConfig(input: RunConfigInput): RunConfig {
  const result = runConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.join('.');
    return `${FLAG_FOR_PATH[path] ?? path}: ${MESSAGE_FOR_PATH[path] ?? issue.message}`;
  });
  // A value can break two rules of one field (an integer's safe range and the field's own): say it once.
  throw new ConfigError([...new Set(problems)].join('; '));
}

const ERRNO_REASONS: Readonly<Record<string, string>> = { ENOENT: 'it does not exist', EACCES: 'permission denied', EPERM: 'permission denied', ENOTDIR: 'a part of the path is a file', EROFS: 'a read-only file system', EEXIST: 'it exists and is no folder' };
const reason = (cause: unknown): string => {
  const code = cause instanceof Error && 'code' in cause ? String((cause as NodeJS.ErrnoException).code) : null;
  return code === null ? String(cause) : (ERRNO_REASONS[code] ?? code);
};

/**
 * Checks, before any work, that a file named by `flag` can be written: its
 * folder exists and is writable, and it is not itself a folder. A run that
 * fails only when it writes its output has spent its time for nothing.
 */
export function checkOutputFile(flag: string, path: string): void {
  const file = resolve(path);
  const folder = dirname(file);
  const fail = (why: string): never => {
    throw new ConfigError(`${flag} ${path}: ${why}`);
  };
  const folderStat = statOrCause(folder);
  if (!(folderStat instanceof Stats)) return fail(`its folder ${folder} cannot be written (${reason(folderStat)})`);
  if (!folderStat.isDirectory()) return fail(`${folder} is not a folder`);
  try {
    accessSync(folder, fsConstants.W_OK);
  } catch (cause) {
    fail(`its folder ${folder} cannot be written (${reason(cause)})`);
  }
  const fileStat = statOrCause(file); // not there yet is fine: it will be created
  if (fileStat instanceof Stats && fileStat.isDirectory()) fail('is a folder, not a file');
  // Opened as the write will open it: a folder's write bit does not tell everything (to root, or on a file system such
  // as /sys that takes no new files). A regular file there is opened to append (nothing changes); a new one is made
  // exclusively, so that only a file this check made is removed again; anything else there (a pipe, whose open would
  // block, a dangling link, /dev/null) is left alone.
  if (lstatOrCause(file) instanceof Stats) {
    if (!(fileStat instanceof Stats && fileStat.isFile())) return;
    try {
      closeSync(openSync(file, 'a'));
    } catch (cause) {
      fail(`cannot be written (${reason(cause)})`);
    }
    return;
  }
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') return; // made meanwhile by someone else: theirs
    return fail(`cannot be written (${reason(cause)})`);
  }
  closeSync(fd);
  unlinkSync(file);
}

/** Writes a command's output file named by `flag`; a failure is an OutputFileError that names the flag and the file, not a stack. */
export function writeOutputFile(flag: string, path: string, data: string): void {
  try {
    writeFileSync(path, data);
  } catch (cause) {
    throw new OutputFileError(`${flag} ${path}: cannot be written (${reason(cause)})`, { cause });
  }
}

/** The path's stats, or why there are none. */
function statOrCause(path: string): Stats | unknown {
  try {
    return statSync(path);
  } catch (cause) {
    return cause;
  }
}

/** The stats of the path itself (a link's, not its target's), or why there are none. */
function lstatOrCause(path: string): Stats | unknown {
  try {
    return lstatSync(path);
  } catch (cause) {
    return cause;
  }
}

/**
 * Creates an absolute folder and its missing parents, one at a time. Node's
 * own `recursive` never returns for a path under /proc (it takes the ENOENT
 * of a folder no one may make there for a parent still to make, and tries
 * again); here each level is tried once, so the error is that level's.
 */
export function makeFolders(folder: string): void {
  const { root } = parse(folder);
  let path = root;
  for (const part of folder.slice(root.length).split(sep).filter((p) => p !== '')) {
    path = join(path, part);
    try {
      mkdirSync(path);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw cause;
    }
  }
  // A file where the folder should be: the EEXIST passed over above said nothing of what exists.
  if (!statSync(folder).isDirectory()) throw Object.assign(new Error(`${folder} exists and is no folder`), { code: 'EEXIST' });
}

/** Creates the output folder named by `flag` (and its parents) before any work, and checks it can be written; its absolute path. */
export function prepareOutputFolder(flag: string, path: string): string {
  const folder = resolve(path);
  try {
    makeFolders(folder);
    accessSync(folder, fsConstants.W_OK);
  } catch (cause) {
    throw new ConfigError(`${flag} ${path}: cannot be created or written (${reason(cause)})`);
  }
  return folder;
}

/** A VM id named by `flag` (or an argument): what a run's vmId may be, or no VM's bus or lease would match it. */
export function checkVmId(flag: string, id: string): void {
  const result = vmIdSchema.safeParse(id);
  if (!result.success) throw new ConfigError(`${flag} '${id}': ${result.error.issues[0]!.message}`);
}

/** A TCP port named by `flag`: a whole number from 1 to 65535. */
export function checkPort(flag: string, port: number): void {
  if (!Number.isSafeInteger(port) || port < 1 || port > 65_535) throw new ConfigError(`${flag} ${port}: must be a port from 1 to 65535`);
}

/** Longest delay Node's timers keep: a longer (or a non-positive) one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay in ms named by `flag`, from `minMs` to MAX_TIMER_MS: what a timer can wait. */
export function checkTimerMs(flag: string, value: number, ms: number, minMs: number): void {
  if (!Number.isFinite(ms) || ms < minMs || ms > MAX_TIMER_MS) throw new ConfigError(`${flag} ${value}: a timer waits from ${minMs} to ${MAX_TIMER_MS} ms (about 24.8 days), this is ${ms} ms`);
}
