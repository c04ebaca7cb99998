/** The lab's process-tree, from the product's lab module (lab/process-tree.ts). */
export * from '../../lab/process-tree';
