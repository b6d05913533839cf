/** Thrown at start-up when MESH_PARTITIONS disagrees with the count the mesh was provisioned with. */
export class PartitionCountMismatchError extends Error {
  constructor(
    readonly configured: number,
    readonly recorded: number,
  ) {
    super(
      `MESH_PARTITIONS is ${configured}, but this mesh was provisioned with ${recorded} partitions ` +
        `(recorded in bucket mesh_checkpoints, key mesh.partitions). Start with MESH_PARTITIONS=${recorded}, ` +
        'or delete the MESH_* streams and mesh_* buckets to re-partition.',
    );
    this.name = 'PartitionCountMismatchError';
  }
}

/** Credential settings that cannot work: a missing file, a seed that is no seed, two ways at once. */
export class NatsCredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NatsCredentialsError';
  }
}

/**
 * NATS answered but will never let this process in as configured: refused
 * credentials, a certificate it does not trust, a server certificate this
 * process does not trust. Retrying cannot help, so start-up ends.
 */
export class NatsRefusedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NatsRefusedError';
  }
}

/** Thrown at start-up with MESH_PROVISION=false when what the service needs does not exist. */
export class MeshNotProvisionedError extends Error {
  constructor(readonly missing: string[]) {
    super(
      `the mesh is not provisioned: missing ${missing.join(', ')}. This service was started with MESH_PROVISION=false and creates nothing; ` +
        'run `npm run mesh -- provision` with admin credentials to create the streams, buckets and consumers.',
    );
    this.name = 'MeshNotProvisionedError';
  }
}
