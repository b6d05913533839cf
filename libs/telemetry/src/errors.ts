/** Thrown by startDiscovery for an option the NATS micro protocol would not accept. */
export class DiscoveryOptionError extends Error {
  constructor(
    readonly option: string,
    readonly value: string,
    readonly accepted: string,
  ) {
    super(`service discovery: ${option} = ${JSON.stringify(value)} is invalid: must be ${accepted}`);
    this.name = 'DiscoveryOptionError';
  }
}
