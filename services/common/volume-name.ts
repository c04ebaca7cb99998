/** Docker's rule for volume names: the manager checks mounts by it, the agent's volume store the names it keeps. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const MAX_VOLUME_NAME = 255;

export function isVolumeName(name: string): boolean {
  return name.length <= MAX_VOLUME_NAME && VOLUME_NAME.test(name);
}
