/** The lab's ip-command, from the product's lab module (lab/ip-command.ts). */
export * from '../../lab/ip-command';
