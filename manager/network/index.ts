/** The manager's network plans: addresses and CIDRs, spec validation, and the allocator's IPAM. */
export * from './cidr';
export * from './network-spec';
export * from './ipam';
