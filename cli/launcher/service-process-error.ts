import { SpeculaError } from '../../lib/errors.js';

/** How a child process ended: its exit code, or the signal that ended it. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A launched service failed (crashed, hung, printed nonsense) after it started. */
export class ServiceProcessError extends SpeculaError {
  readonly code = 'SERVICE_PROCESS';
  readonly retryable = false;

  /**
   * `process`: the child it is about (its label and pid), when it is about one; `childExit`: how that child ended,
   * when it had (its exit code may say why, as the CLI's do: exit-codes.ts).
   */
  constructor(
    message: string,
    readonly process: { readonly label: string; readonly pid: number | undefined } | null = null,
    readonly childExit: Exit | null = null,
  ) {
    super(message);
  }
}
