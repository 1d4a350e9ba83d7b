/** An Ethernet frame's bytes around its IP packet on the wire: preamble and SFD (8), header (14), FCS (4), inter-frame gap (12). */
export const ETHERNET_FRAMING_BYTES = 38;
/** The IP packet a frame carries at most. */
export const MTU_BYTES = 1500;

/** Bytes the transmitter spends on `packetBytes`: one frame per MTU, each with its framing (MSS 1448 with timestamps: 94.1% of the line rate is payload). */
export function serializedBytesOf(packetBytes: number): number {
  return packetBytes + Math.max(1, Math.ceil(packetBytes / MTU_BYTES)) * ETHERNET_FRAMING_BYTES;
}
