/** The manager's network plans: spec validation, and the allocator's IPAM. */
export * from './network-spec';
export * from './ipam';
