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
