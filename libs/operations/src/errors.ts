/**
 * The two ways an operation on a running mesh fails. The CLI maps them to
 * its exit codes (2 and 1), the console to HTTP statuses (400 and 409/502).
 */

/** The request is wrong as given: a bad rule, a partition out of range. */
export class InvalidRequestError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidRequestError';
  }
}

/** The operation could not be done: the mesh is not provisioned, no such dead letter, a refused redrive. */
export class OperationError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'OperationError';
  }
}
