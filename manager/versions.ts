/**
 * A set of stored objects summed up by their versions: what tells, without comparing them, that two
 * reads of the set hold the same objects at the same versions (the dispatcher's session signatures,
 * the orchestrator's settled services). Pure.
 */

/**
 * The highest version and the count of a set of stored objects. Versions are the store's
 * revisions, which only grow: a member changed, added or re-created since a read has a version
 * above every one that read saw, and one removed lowers the count. So two consistent reads of a
 * set (all members chosen by what they hold) with equal pairs read the same objects at the same
 * versions. An object without a version makes the set unknown: it never matches.
 */
export class Versions {
  private max = 0;
  private count = 0;
  private unknown = false;

  add(o: { meta?: { version: number } }): void {
    const v = o.meta?.version ?? 0;
    if (!v) this.unknown = true;
    if (v > this.max) this.max = v;
    this.count++;
  }

  toString(): string {
    return this.unknown ? '?' : `${this.max}/${this.count}`;
  }
}

export const versionsOf = (objects: Iterable<{ meta?: { version: number } }>): string => {
  const v = new Versions();
  for (const o of objects) v.add(o);
  return v.toString();
};
