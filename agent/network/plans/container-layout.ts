/**
 * Where a container's cluster network attachments go in its namespace, as libnetwork names them:
 * an attachment keeps its `eth<i>` for as long as it stays, a new one takes the lowest free `eth<i>`,
 * and one that goes leaves its slot free. So a `network connect` or `disconnect` touches only the
 * interface concerned. The gateway bridge's interface (a container on overlays alone) keeps its
 * slot too, or takes the lowest free one after the attachments are placed.
 */

export interface ContainerLayout {
  /** Attachment id in `eth<i>`; undefined: a free slot. */
  slots: (string | undefined)[];
  /** The gateway bridge's `eth<i>`, when the container is on it. */
  gateway?: number;
}

/**
 * The layout for `attachmentIds` (in their order of creation), starting from `prev` (the layout
 * plugged in now, or the one read from the kernel); `needsGateway`: whether the container is on
 * the gateway bridge with these attachments.
 */
export function planContainerLayout(prev: ContainerLayout | undefined, attachmentIds: readonly string[], needsGateway: boolean): ContainerLayout {
  const wanted = new Set(attachmentIds);
  const slots: (string | undefined)[] = (prev?.slots ?? []).map((id) => (id !== undefined && wanted.has(id) ? id : undefined));
  // An id twice in `prev` keeps its first slot.
  slots.forEach((id, i) => {
    if (id !== undefined && slots.indexOf(id) !== i) slots[i] = undefined;
  });
  let gateway = needsGateway && prev?.gateway !== undefined && slots[prev.gateway] === undefined ? prev.gateway : undefined;
  const free = () => {
    for (let i = 0; ; i++) if (slots[i] === undefined && i !== gateway) return i;
  };
  for (const id of attachmentIds) if (!slots.includes(id)) slots[free()] = id;
  if (needsGateway && gateway === undefined) gateway = free();
  while (slots.length > 0 && slots[slots.length - 1] === undefined) slots.pop();
  return gateway === undefined ? { slots: Array.from(slots) } : { slots: Array.from(slots), gateway };
}
