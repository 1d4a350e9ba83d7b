/** Process exit codes of the specula CLI. */
export const EXIT_OK = 0;
/** The run finished but found a problem (stream not verified, invariant broken). */
export const EXIT_FAILED = 1;
/** Bad flags or configuration: nothing ran. */
export const EXIT_USAGE = 2;
