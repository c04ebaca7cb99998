/** The lab's cgroups, from the product's lab module (lab/cgroups.ts). */
export * from '../../lab/cgroups';
