/** VXLAN's numbers, for the manager (which allocates VNIs) and the agent (which makes the devices). */

/** The IANA VXLAN UDP port, which every swarmlet VTEP uses. */
export const VXLAN_PORT = 4789;
/** Bytes VXLAN adds over IPv4: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;
/** The first VNI swarmlet allocates (swarmkit's too; lower ones are left to the operator). */
export const VNI_MIN = 4096;
/** VXLAN network identifiers are 24 bits. */
export const VNI_MAX = 0xffffff;

/** Whether `vni` is one swarmlet may use. */
export const isSwarmVni = (vni: number): boolean => Number.isInteger(vni) && vni >= VNI_MIN && vni <= VNI_MAX;
